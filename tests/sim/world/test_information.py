"""The information structure: a Beta/Dirichlet prior, private draws, and the pooled posterior."""

from __future__ import annotations

import numpy as np
import pytest

from sim.scenario import Prior
from sim.world.information import concentration, evidence, favoured, pooled, posterior_mean


def test_a_binary_prior_is_the_beta_of_outcome_one() -> None:
    assert concentration(Prior(alpha=3.0, beta=1.0), 2) == (1.0, 3.0)
    # Beta(3, 1) has mean 3/4 for "yes" (outcome 1)
    assert posterior_mean(concentration(Prior(alpha=3.0, beta=1.0), 2), (0, 0)) == (0.25, 0.75)
    assert concentration(Prior(alpha=2.0, beta=2.0), 3) == (2.0, 2.0, 2.0)


def test_the_posterior_is_the_prior_plus_the_counts_by_hand() -> None:
    # Beta(1.5, 1.5) and 7 "yes" out of 10: Beta(8.5, 4.5), mean 8.5/13
    assert posterior_mean((1.5, 1.5), (3, 7)) == pytest.approx((4.5 / 13, 8.5 / 13))


def test_pooling_adds_every_traders_counts_to_one_prior() -> None:
    # three traders: (2 no, 3 yes), (4, 1), (0, 5) -> 6 no, 9 yes on Beta(2, 2): mean 11/19
    assert pooled((2.0, 2.0), [(2, 3), (4, 1), (0, 5)]) == pytest.approx((8 / 19, 11 / 19))
    assert pooled((2.0, 2.0), []) == (0.5, 0.5)  # no evidence: the prior


def test_draws_are_draws_of_the_true_probability() -> None:
    rng = np.random.default_rng(5)
    counts = np.array([evidence((0.3, 0.7), 20, rng) for _ in range(4000)])
    assert (counts.sum(axis=1) == 20).all()
    # the share of "yes" draws estimates the true probability (s.e. 0.0016)
    assert counts[:, 1].mean() / 20 == pytest.approx(0.7, abs=0.01)
    assert evidence((0.3, 0.7), 0, rng) == (0, 0)


def test_the_favoured_outcome_is_the_most_drawn_the_lowest_on_ties() -> None:
    assert favoured((2, 5)) == 1
    assert favoured((3, 3)) == 0
    assert favoured((1, 4, 4)) == 1
