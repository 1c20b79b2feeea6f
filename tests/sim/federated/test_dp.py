"""Clipping, noise and the privacy accountant against dp_accounting itself."""

from __future__ import annotations

import itertools
import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting.rdp import RdpAccountant

from sim.federated.dp import (
    ACCOUNTANT,
    RdpLedger,
    clip_l2,
    epsilon,
    gaussian_noise,
    membership_advantage_bound,
)


def test_epsilon_matches_dp_accounting_built_directly() -> None:
    q, sigma, rounds, delta = 0.5, 1.3, 20, 1e-5
    accountant = RdpAccountant()
    accountant.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), rounds
        )
    )
    direct = accountant.get_epsilon(delta)
    assert ACCOUNTANT == "rdp"
    assert epsilon(sampling_rate=q, noise_multiplier=sigma, rounds=rounds, delta=delta) == (
        pytest.approx(direct, rel=1e-12)
    )
    assert math.isfinite(direct) and direct > 0


def test_epsilon_grows_with_rounds_and_falls_with_noise() -> None:
    ledger = RdpLedger.for_rounds(sampling_rate=0.1, noise_multiplier=1.0)
    per_round = [ledger.epsilon(t, delta=1e-5) for t in (0, 1, 10, 100)]
    assert per_round[0] == 0.0
    assert per_round == sorted(per_round) and len(set(per_round)) == 4
    by_sigma = [
        epsilon(sampling_rate=0.1, noise_multiplier=s, rounds=50, delta=1e-5)
        for s in (0.7, 1.0, 2.0, 4.0)
    ]
    assert all(math.isfinite(e) for e in by_sigma)
    assert all(a > b for a, b in itertools.pairwise(by_sigma))


def test_no_noise_means_no_privacy() -> None:
    assert epsilon(sampling_rate=0.5, noise_multiplier=0.0, rounds=3, delta=1e-5) == math.inf
    assert membership_advantage_bound(math.inf, 1e-5) == 1.0


def test_clip_keeps_direction_and_bounds_norm() -> None:
    np.testing.assert_allclose(clip_l2(np.array([3.0, 4.0]), 1.0), [0.6, 0.8])
    small = np.array([0.1, -0.2])
    clipped = clip_l2(small, 1.0)
    np.testing.assert_array_equal(clipped, small)
    assert clipped is not small
    with pytest.raises(ValueError):
        clip_l2(small, 0.0)


def test_gaussian_noise_std() -> None:
    draws = gaussian_noise(100_000, std=0.7, rng=np.random.default_rng(1))
    assert draws.std() == pytest.approx(0.7, rel=0.01)
    np.testing.assert_array_equal(gaussian_noise(3, std=0.0, rng=np.random.default_rng(1)), 0.0)


def test_advantage_bound_known_values() -> None:
    # ε = 0: only δ helps the attacker; ε = ln 3: (3 − 1 + 2δ)/(3 + 1)
    assert membership_advantage_bound(0.0, 1e-5) == pytest.approx(1e-5)
    assert membership_advantage_bound(math.log(3), 0.01) == pytest.approx((2 + 0.02) / 4)
    assert membership_advantage_bound(1000.0, 1e-5) == 1.0


def test_advantage_bound_is_the_corner_of_the_dp_privacy_region() -> None:
    """Brute force over the (ε, δ) hypothesis-testing region (Kairouz, Oh and Viswanath 2015).

    Any test's FPR ``α`` and miss rate ``β`` satisfy ``α + e^ε β ≥ 1 − δ`` and
    ``β + e^ε α ≥ 1 − δ``: the best TPR at ``α`` is ``min(e^ε α + δ, 1 − (1 − δ − α)e^{−ε})``.
    The closed form must equal the largest ``TPR − FPR`` found on a fine grid of ``α``.
    """
    alpha = np.linspace(0.0, 1.0, 200_001)
    for eps, delta in ((0.1, 1e-5), (0.7, 1e-5), (math.log(3), 0.01), (2.5, 1e-3), (6.0, 0.0)):
        tpr = np.minimum(
            np.minimum(np.exp(eps) * alpha + delta, 1 - (1 - delta - alpha) * np.exp(-eps)), 1.0
        )
        brute = float(np.max(tpr - alpha))
        assert membership_advantage_bound(eps, delta) == pytest.approx(brute, abs=1e-5)
