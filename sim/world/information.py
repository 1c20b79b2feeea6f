"""The information structure of the markets: a prior, private evidence, and what pooling it gives.

Each market's true probability vector is drawn from a Dirichlet prior (a Beta for binary
markets, ``market.prior``); the outcome is drawn from the true probability; each informed trader
sees ``traders.signal_draws`` independent draws of the outcome variable (Bernoulli draws of the
true probability in a binary market). The Dirichlet is conjugate to those draws, so a trader's
posterior is the prior plus its counts, and the **full-information posterior**, what someone
holding every trader's evidence would believe, is the prior plus everyone's counts: computed
exactly, it is the benchmark a market that aggregates information should approach.

Pure functions of values (and a numpy generator for the draws), so tests check them by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from sim.scenario import Prior


def concentration(prior: Prior, outcomes: int) -> tuple[float, ...]:
    """The Dirichlet parameters of ``prior`` over ``outcomes`` outcomes.

    Binary: the Beta(alpha, beta) of outcome 1's probability is the Dirichlet (beta, alpha) over
    outcomes (0, 1). More outcomes: the symmetric Dirichlet with ``alpha`` on each.
    """
    if outcomes == 2:
        return (prior.beta, prior.alpha)
    return (prior.alpha,) * outcomes


def posterior_mean(alpha: Sequence[float], counts: Sequence[int]) -> tuple[float, ...]:
    """The mean of Dirichlet(``alpha`` + ``counts``): the probability each outcome has next."""
    weights = [a + c for a, c in zip(alpha, counts, strict=True)]
    total = sum(weights)
    return tuple(w / total for w in weights)


def evidence(true_probs: Sequence[float], draws: int, rng: np.random.Generator) -> tuple[int, ...]:
    """How many of ``draws`` independent draws from ``true_probs`` fell on each outcome."""
    if draws == 0:
        return (0,) * len(true_probs)
    p = np.asarray(true_probs, dtype=float)
    return tuple(int(c) for c in rng.multinomial(draws, p / p.sum()))


def pooled(alpha: Sequence[float], all_counts: Iterable[Sequence[int]]) -> tuple[float, ...]:
    """The full-information posterior mean: the prior updated on every trader's counts."""
    total = [0] * len(alpha)
    for counts in all_counts:
        total = [t + c for t, c in zip(total, counts, strict=True)]
    return posterior_mean(alpha, total)


def favoured(counts: Sequence[int]) -> int:
    """The outcome a trader's evidence names most often (the lowest such on a tie).

    This is the discrete "signal" that ``privacy.signal_mi_bits`` relates to what the adversary
    inferred.
    """
    return max(range(len(counts)), key=lambda o: (counts[o], -o))
