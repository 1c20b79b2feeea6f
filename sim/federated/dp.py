"""Differential privacy for federated averaging: clipping, Gaussian noise and the accountant.

The guarantee is **client-level** (user-level) DP in the add-or-remove-one-client relation, as
in DP-FedAvg (McMahan et al., "Learning Differentially Private Recurrent Language Models",
ICLR 2018): each round samples every client independently with probability ``q`` (Poisson
sampling), each sampled client's update is clipped to L2 norm ``C``, and Gaussian noise of
standard deviation ``σ·C`` is added to the sum. A round is therefore the Poisson-subsampled
Gaussian mechanism with noise multiplier ``σ``, and a run of ``T`` started rounds is its
``T``-fold composition.

Accountant: Google's ``dp_accounting`` (0.6) **RDP accountant** (``RdpAccountant`` with its
default orders, add-or-remove neighbouring) on
``SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(σ)), T)``. The RDP of one round
is linear in ``T`` under composition, so :class:`RdpLedger` computes the per-round RDP curve
once and converts ``T`` times it to ``ε`` with ``dp_accounting``'s own conversion; this gives
the same number as composing the event ``T`` times, at a fraction of the cost. Client-level DP
implies record-level DP with the same ``(ε, δ)``.

``dp_accounting`` is imported where the accountant is used, not with this module: it pulls in
scipy (about a second), which a run without the forecaster, or the CLI, should not pay for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import dp_accounting

ACCOUNTANT = "rdp"
"""Which accountant the reported ε comes from (dp_accounting's RDP accountant)."""


def clip_l2(vector: np.ndarray, clip: float) -> np.ndarray:
    """``vector`` scaled down to L2 norm at most ``clip`` (a new array; direction kept)."""
    if clip <= 0:
        raise ValueError(f"clip must be positive, got {clip}")
    norm = float(np.linalg.norm(vector))
    if norm <= clip:
        return vector.copy()
    return vector * (clip / norm)


def gaussian_noise(size: int, *, std: float, rng: np.random.Generator) -> np.ndarray:
    """``size`` independent ``N(0, std²)`` draws (all zeros when ``std`` is 0)."""
    if std < 0:
        raise ValueError(f"std must be non-negative, got {std}")
    if std == 0:
        return np.zeros(size)
    return rng.normal(0.0, std, size=size)


def round_event(
    *, sampling_rate: float, noise_multiplier: float
) -> dp_accounting.PoissonSampledDpEvent:
    """The DP event of one round: Poisson sampling at ``q`` of a Gaussian with multiplier ``σ``."""
    import dp_accounting

    return dp_accounting.PoissonSampledDpEvent(
        sampling_rate, dp_accounting.GaussianDpEvent(noise_multiplier)
    )


@dataclass(frozen=True, slots=True, eq=False)
class RdpLedger:
    """The RDP curve of one round, ready to turn ``T`` rounds into ``ε`` at any ``δ``.

    Build it with :meth:`for_rounds`; without noise (``σ = 0``) every ``ε`` is infinite and
    the curve is empty.
    """

    orders: np.ndarray
    per_round: np.ndarray
    private: bool

    @classmethod
    def for_rounds(cls, *, sampling_rate: float, noise_multiplier: float) -> RdpLedger:
        """The ledger of rounds sampled at ``q`` with noise multiplier ``σ``."""
        if not 0.0 <= sampling_rate <= 1.0:
            raise ValueError(f"sampling rate must lie in [0, 1], got {sampling_rate}")
        if noise_multiplier < 0:
            raise ValueError(f"noise multiplier must be non-negative, got {noise_multiplier}")
        if noise_multiplier == 0:  # no guarantee to account: no need for the accountant
            return cls(orders=np.empty(0), per_round=np.empty(0), private=False)
        from dp_accounting.rdp import RdpAccountant

        accountant = RdpAccountant()
        accountant.compose(
            round_event(sampling_rate=sampling_rate, noise_multiplier=noise_multiplier)
        )
        return cls(orders=accountant.orders, per_round=accountant.rdp, private=True)

    def epsilon(self, rounds: int, *, delta: float) -> float:
        """``ε`` at ``δ`` after ``rounds`` started rounds (0 before any, inf without noise)."""
        if rounds < 0:
            raise ValueError(f"rounds must be non-negative, got {rounds}")
        if rounds == 0:
            return 0.0
        if not self.private:
            return math.inf
        from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon

        eps, _order = compute_epsilon(self.orders, rounds * self.per_round, delta)
        return float(eps)


def epsilon(*, sampling_rate: float, noise_multiplier: float, rounds: int, delta: float) -> float:
    """``ε`` at ``δ`` of ``rounds`` Poisson-subsampled Gaussian rounds (RDP accountant)."""
    ledger = RdpLedger.for_rounds(sampling_rate=sampling_rate, noise_multiplier=noise_multiplier)
    return ledger.epsilon(rounds, delta=delta)


def membership_advantage_bound(eps: float, delta: float) -> float:
    """The largest ``TPR − FPR`` any membership test can reach against an ``(ε, δ)``-DP release.

    From the hypothesis-testing view of DP (Kairouz et al. 2015): ``TPR ≤ e^ε·FPR + δ`` and
    ``1 − FPR ≤ e^ε·(1 − TPR) + δ`` give ``max(TPR − FPR) = (e^ε − 1 + 2δ) / (e^ε + 1)``.
    """
    if eps > 700:  # e^ε overflows a float; the bound is 1 to double precision long before
        return 1.0
    return min(1.0, (math.expm1(eps) + 2 * delta) / (math.exp(eps) + 1))
