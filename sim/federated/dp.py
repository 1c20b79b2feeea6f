"""Differential privacy for federated averaging: clipping, central or distributed noise, ε.

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

Who adds the noise (``dp_noise_at``): the server, as above, or the clients (distributed DP):
each of a round's ``k`` masking members adds a discrete Gaussian share to its rounded update
(:func:`discrete_gaussian`, :func:`share_sigma`), and the round is accounted at the Gaussian
multiplier with the same concentrated-DP parameter as the surviving noise
(:func:`distributed_multiplier`; rounds then differ, and :class:`RdpLedger` composes each at its
own multiplier). Amplification by sampling then uses dp_accounting's curve for the continuous
Gaussian of that multiplier, an approximation for the discrete sum that the unamplified
per-client charges (:meth:`RdpLedger.client_epsilon`) do not need.

``dp_accounting`` is imported where the accountant is used, not with this module: it pulls in
scipy (about a second), which a run without the forecaster, or the CLI, should not pay for.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
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


NOISE_TAILS = 8.0
"""Standard deviations of the summed client noise the secure ring leaves room for (clients mode).

The ring's per-coordinate range is widened from ``C`` to ``C·(1 + NOISE_TAILS·σ)`` per member, so
the sum of ``k`` members has ``8kσC`` of room for noise whose standard deviation is about ``σC``:
the noisy sum wraps modulo ``2^32`` with probability below ``2·d·Φ(−8) ≈ 10^-14`` per round (far
below, for ``k > 1``; the price is a fixed point ``1 + 8σ`` times coarser than the clip alone
would need, which the rounding term of the sensitivity accounts for). A wrap
would cost accuracy, never privacy: reduction modulo the ring commutes with the sum, so it is
post-processing of the noisy sum (Kairouz, Liu & Steinke 2021, section 4).
"""


def discrete_gaussian(size: int, *, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``size`` independent draws of the discrete Gaussian ``N_Z(0, σ²)`` on the integers.

    The rejection sampler of Canonne, Kamath & Steinke ("The Discrete Gaussian for Differential
    Privacy", NeurIPS 2020, Algorithm 3), vectorised: propose a discrete Laplace of scale
    ``t = ⌊σ⌋ + 1`` (a difference of two geometric variables) and accept ``y`` with probability
    ``exp(−(|y| − σ²/t)² / (2σ²))``. Floating-point acceptance, as in Google's distributed-DP
    implementation; the exact-arithmetic version differs only at double-precision rounding.
    """
    if sigma < 0:
        raise ValueError(f"sigma must be non-negative, got {sigma}")
    out = np.zeros(size, dtype=np.int64)
    if sigma == 0 or size == 0:
        return out
    t = math.floor(sigma) + 1
    p = -math.expm1(-1.0 / t)  # success probability of the geometric halves
    todo = np.arange(size)
    while todo.size:
        y = rng.geometric(p, size=todo.size) - rng.geometric(p, size=todo.size)
        accept = rng.random(todo.size) < np.exp(-((np.abs(y) - sigma**2 / t) ** 2) / (2 * sigma**2))
        out[todo[accept]] = y[accept]
        todo = todo[~accept]
    return out


def ddg_tau(sigma: float, participants: int) -> float:
    """Kairouz, Liu & Steinke's ``τ = 10 Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1))`` (their Theorem 1).

    How far a sum of ``n`` independent ``N_Z(0, σ²)`` is from one discrete Gaussian; it enters
    the sum's concentrated-DP bound as ``½τd``. At the integer scales of the secure ring
    (``σ`` in the millions) it underflows to 0.
    """
    return 10.0 * sum(
        math.exp(-2 * math.pi**2 * sigma**2 * k / (k + 1)) for k in range(1, participants)
    )


def share_sigma(noise_multiplier: float, *, sensitivity: float, members: int) -> float:
    """Each of ``members`` clients' discrete-Gaussian scale: ``σ·Δ/√k`` (the sum has ``σ·Δ``)."""
    return noise_multiplier * sensitivity / math.sqrt(members)


def distributed_multiplier(
    noise_multiplier: float, *, sensitivity: float, members: int, survivors: int, dim: int
) -> float:
    """The Gaussian noise multiplier a clients-mode round is accounted at.

    ``members`` clients each added ``N_Z(0, s²)`` with ``s = share_sigma(σ, Δ, k)`` to their
    rounded, clipped update (L2 sensitivity ``Δ`` in ring units, rounding included);
    ``survivors`` of them reached the sum. By Kairouz, Liu & Steinke (2021, Theorem 1) the sum
    is ``½ε²``-concentrated DP with ``ε² = Δ²/(n·s²) + ½τd = k/(nσ²) + ½τd``, which is the
    zCDP of a Gaussian with multiplier ``1/ε = σ·√(n/k) / √(1 + ½τd·σ²n/k)``: ``σ`` exactly
    when every member survives, less when some dropped out (their noise is missing).
    """
    if survivors < 1:
        raise ValueError("a round with no survivors released no sum")
    tau = ddg_tau(
        share_sigma(noise_multiplier, sensitivity=sensitivity, members=members), survivors
    )
    ratio = survivors / members
    return (
        noise_multiplier
        * math.sqrt(ratio)
        / math.sqrt(1 + tau * dim * noise_multiplier**2 * ratio / 2)
    )


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
    """RDP curves of rounds, ready to turn a run's (or one client's) rounds into ``ε``.

    A round is a Poisson-subsampled Gaussian at sampling rate ``q`` with the round's noise
    multiplier (``σ`` in every round in server mode; in clients mode the round's effective
    multiplier, see :func:`distributed_multiplier`). :meth:`epsilon` composes the rounds'
    subsampled curves; :meth:`client_epsilon` composes *unamplified* Gaussian curves (the
    individual privacy filter of :mod:`sim.federated.consent`). RDP is additive under
    composition, so each distinct multiplier's curve is computed once by dp_accounting's
    ``RdpAccountant`` (default orders, add-or-remove neighbouring), multiplied by how many
    rounds used it and converted with dp_accounting's own ``compute_epsilon``: the same number
    as composing the events one by one, at a fraction of the cost. Without noise (``σ = 0``)
    every ``ε`` after a round is infinite.
    """

    sampling_rate: float
    noise_multiplier: float
    _curves: dict[tuple[bool, float], np.ndarray] = field(default_factory=dict)
    _orders: list[np.ndarray] = field(default_factory=list)
    _epsilons: dict[tuple[bool, float, tuple[tuple[float, int], ...]], float] = field(
        default_factory=dict
    )
    """Converted values by (amplified, δ, rounds per multiplier): budget checks repeat them."""

    @classmethod
    def for_rounds(cls, *, sampling_rate: float, noise_multiplier: float) -> RdpLedger:
        """The ledger of rounds sampled at ``q`` with base noise multiplier ``σ``."""
        if not 0.0 <= sampling_rate <= 1.0:
            raise ValueError(f"sampling rate must lie in [0, 1], got {sampling_rate}")
        if noise_multiplier < 0:
            raise ValueError(f"noise multiplier must be non-negative, got {noise_multiplier}")
        return cls(sampling_rate, noise_multiplier)

    @property
    def private(self) -> bool:
        """False without noise: nothing to account, every ``ε`` is infinite."""
        return self.noise_multiplier > 0

    def curve(self, multiplier: float, *, amplified: bool = True) -> np.ndarray:
        """The RDP curve of one round at ``multiplier`` (Poisson-subsampled or plain Gaussian)."""
        key = (amplified, multiplier)
        if key not in self._curves:
            import dp_accounting
            from dp_accounting.rdp import RdpAccountant

            accountant = RdpAccountant()
            event: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(multiplier)
            if amplified:
                event = round_event(sampling_rate=self.sampling_rate, noise_multiplier=multiplier)
            accountant.compose(event)
            self._curves[key] = accountant.rdp
            if not self._orders:
                self._orders.append(accountant.orders)
        return self._curves[key]

    def epsilon(self, rounds: int, *, delta: float) -> float:
        """``ε`` at ``δ`` after ``rounds`` started rounds at the base multiplier ``σ``."""
        if rounds < 0:
            raise ValueError(f"rounds must be non-negative, got {rounds}")
        return self.epsilon_of([self.noise_multiplier] * rounds, delta=delta)

    def epsilon_of(self, multipliers: Sequence[float], *, delta: float) -> float:
        """``ε`` at ``δ`` of subsampled rounds with these multipliers (0 before any round)."""
        return self._convert(multipliers, delta=delta, amplified=True)

    def client_epsilon(self, multipliers: Sequence[float], *, delta: float) -> float:
        """``ε`` at ``δ`` of one client's rounds, each an unamplified Gaussian."""
        return self._convert(multipliers, delta=delta, amplified=False)

    def _convert(self, multipliers: Sequence[float], *, delta: float, amplified: bool) -> float:
        if not multipliers:
            return 0.0
        if not self.private or min(multipliers) <= 0:
            return math.inf
        from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon

        counts = tuple(sorted(Counter(multipliers).items()))
        key = (amplified, delta, counts)
        if key not in self._epsilons:
            rdp = sum(n * self.curve(m, amplified=amplified) for m, n in counts)
            eps, _order = compute_epsilon(self._orders[0], rdp, delta)
            self._epsilons[key] = float(eps)
        return self._epsilons[key]


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
