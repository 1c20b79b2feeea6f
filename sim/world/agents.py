"""Trader policies: pure functions from what a trader knows to the order it submits.

The world decides *when* a trader acts, on which market and how many shares it would like
(:class:`sim.world.build.PlannedOrder`); the policy decides the outcome, the final size within its
budget and the limit price from the prices it sees at that moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIN_EDGE = 0.02
"""An informed trader only trades when its belief exceeds the price by at least this."""

NOISE_LIMIT = 0.99
"""Noise traders accept any average price up to this per share."""


@dataclass(frozen=True, slots=True)
class Intent:
    """What a trader wants to trade: buy ``shares`` of ``outcome`` paying at most ``limit``."""

    outcome: int
    shares: float
    limit: float


def belief(signal: int, outcomes: int, accuracy: float) -> tuple[float, ...]:
    """Posterior over the realised outcome after one signal, from a uniform prior.

    The signal is right with probability ``accuracy`` and otherwise names one of the other
    outcomes uniformly, so the posterior puts ``accuracy`` on the signalled outcome.
    """
    other = (1.0 - accuracy) / (outcomes - 1)
    return tuple(accuracy if o == signal else other for o in range(outcomes))


def affordable(shares: float, limit: float, cash: float) -> float:
    """Shrink ``shares`` so that paying ``limit`` per share stays within ``cash``."""
    return max(0.0, min(shares, cash / limit)) if limit > 0 else 0.0


def informed_intent(
    prices: Sequence[float], beliefs: Sequence[float], *, shares: float, cash: float
) -> Intent | None:
    """Buy the outcome whose belief most exceeds its price, paying at most the belief."""
    edges = [b - p for b, p in zip(beliefs, prices, strict=True)]
    outcome = max(range(len(edges)), key=edges.__getitem__)
    if edges[outcome] < MIN_EDGE:
        return None
    limit = beliefs[outcome]
    size = affordable(shares, limit, cash)
    return Intent(outcome, size, limit) if size > 0 else None


def noise_intent(outcomes: int, *, pick: float, shares: float, cash: float) -> Intent | None:
    """Buy a uniformly chosen outcome (``pick`` is a uniform draw), whatever its price."""
    outcome = min(int(pick * outcomes), outcomes - 1)
    size = affordable(shares, NOISE_LIMIT, cash)
    return Intent(outcome, size, NOISE_LIMIT) if size > 0 else None
