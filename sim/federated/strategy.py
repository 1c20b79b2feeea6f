"""Federated averaging as a strategy with Flower-like hooks, independent of any clock.

``configure`` picks the round's clients, ``payload`` turns one client's update into the vector
it contributes to the round's sum (the only thing secure aggregation ever reveals), and
``aggregate`` / ``apply_sum`` turn the sum into the next global parameters.

Two estimators, both built from a plain sum so they work unchanged under secure aggregation:

* **FedAvg** (no DP, McMahan et al. 2017): client ``k`` with ``n_k`` records contributes
  ``[w_k·Δ_k, w_k]`` with ``w_k = n_k / weight_unit``; the new parameters are
  ``θ + Σ w_kΔ_k / Σ w_k``, the sample-weighted mean update. (``weight_unit`` only keeps the
  weights near 1 so the secure-aggregation ring needs little headroom.)
* **DP-FedAvg** (McMahan et al. 2018, fixed-denominator estimator with uniform client weights):
  client ``k`` contributes ``clip(Δ_k)``, its update scaled to L2 norm at most ``C``; the server
  adds ``N(0, (σC)²·I)`` to the sum and divides by the *expected* number of participants
  ``q·N``, not by the realised count, which would itself leak membership:
  ``θ + (Σ_k clip(Δ_k) + N(0, σ²C²I)) / (qN)``. One client changes the sum by at most ``C`` in
  L2, so each round is a Poisson-subsampled Gaussian mechanism with noise multiplier ``σ``.
  Who adds the noise is ``noise_at``: the server, in :meth:`FedAvg.apply_sum` (the default),
  or the clients, each its share before masking (:class:`sim.federated.rounds.ClientNoise`),
  in which case a completed secure sum arrives noised and ``apply_sum`` adds nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sim.federated.dp import NOISE_TAILS, clip_l2, gaussian_noise

RoundStatus = Literal["completed", "aborted"]
NoiseAt = Literal["server", "clients"]
AbortReason = Literal[
    "",  # completed
    "none_sampled",  # Poisson sampling picked nobody (only without DP: DP rounds always release)
    "no_survivors",  # every sampled client dropped out
    "too_few_clients",  # fewer participants than secure aggregation's minimum
    "below_threshold",  # fewer survivors than the secret-sharing threshold
    "bad_shares",  # not enough valid shares to unmask after discarding tampered ones
    "horizon",  # the simulated run ended before the round closed (simulation only)
]


@dataclass(frozen=True, slots=True)
class FLConfig:
    """The ``[forecaster]`` scenario block, as the federated code reads it.

    Attributes:
        enabled: whether the run trains a forecaster at all.
        clients: number of federated clients ``N``.
        features: input features of the forecasting model.
        samples_per_client: training records per client.
        non_iid: 0 = every client has the same distribution, 1 = strongly skewed.
        rounds: federated rounds ``T``.
        client_fraction: Poisson sampling probability ``q`` of each client in each round.
        local_steps: minibatch SGD steps per client per round.
        learning_rate: local SGD step size.
        batch_size: local minibatch size.
        dropout: chance that a sampled client drops out mid-round (after key setup, before
            sending its update).
        secure_aggregation: mask updates so the server only learns their sum.
        dp_noise_multiplier: ``σ``; 0 disables DP.
        dp_clip: ``C``, the L2 bound on one client's update under DP.
        dp_delta: the ``δ`` at which ``ε`` is reported.
        round_timeout_s: how long the simulated server waits for updates (used by the simpy
            layer only).
        secagg_bound: per-coordinate clamp of a client's weighted update in the secure ring
            when DP is off (under DP the clip ``C`` bounds every coordinate already).
        dp_noise_at: who adds the Gaussian noise: ``"server"`` (the coordinator, to the
            unmasked sum) or ``"clients"`` (each masking member its share, before masking).
        withdraw_fraction: share of clients that withdraw consent at a round drawn from the
            world seed (:mod:`sim.federated.consent`).
        client_epsilon_budget: each client's own ``ε`` budget at ``dp_delta`` (inf: none).
    """

    enabled: bool = True
    clients: int = 40
    features: int = 16
    samples_per_client: int = 200
    non_iid: float = 0.5
    rounds: int = 20
    client_fraction: float = 0.5
    local_steps: int = 5
    learning_rate: float = 0.5
    batch_size: int = 32
    dropout: float = 0.1
    secure_aggregation: bool = True
    dp_noise_multiplier: float = 0.0
    dp_clip: float = 1.0
    dp_delta: float = 1e-5
    round_timeout_s: float = 60.0
    secagg_bound: float = 8.0
    dp_noise_at: NoiseAt = "server"
    withdraw_fraction: float = 0.0
    client_epsilon_budget: float = math.inf

    def __post_init__(self) -> None:
        checks = {
            "clients": self.clients >= 1,
            "features": self.features >= 1,
            "samples_per_client": self.samples_per_client >= 1,
            "non_iid": 0.0 <= self.non_iid <= 1.0,
            "rounds": self.rounds >= 0,
            "client_fraction": 0.0 < self.client_fraction <= 1.0,
            "local_steps": self.local_steps >= 1,
            "learning_rate": self.learning_rate > 0,
            "batch_size": self.batch_size >= 1,
            "dropout": 0.0 <= self.dropout < 1.0,
            "dp_noise_multiplier": self.dp_noise_multiplier >= 0,
            "dp_clip": self.dp_clip > 0,
            "dp_delta": 0.0 < self.dp_delta < 1.0,
            "round_timeout_s": self.round_timeout_s > 0,
            "secagg_bound": self.secagg_bound > 0,
            "dp_noise_at": self.dp_noise_at in ("server", "clients"),
            "withdraw_fraction": 0.0 <= self.withdraw_fraction <= 1.0,
            "client_epsilon_budget": self.client_epsilon_budget > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid federated settings: {', '.join(bad)}")

    @property
    def dp(self) -> bool:
        """True when updates are clipped and noised."""
        return self.dp_noise_multiplier > 0

    @property
    def clients_noise(self) -> bool:
        """True when each client adds its share of the noise before masking (distributed DP)."""
        return self.dp and self.dp_noise_at == "clients"

    @property
    def epsilon_against(self) -> str:
        """Whom the run's ``ε`` holds against (the ``fl_rounds.epsilon_against`` column).

        The run's ``ε`` is amplified by Poisson sampling, which only protects against someone
        who does not know who was sampled. Server mode: everyone who sees only the released
        models, but not the coordinator, which holds the exact sum of the clipped updates
        before it adds the noise. Clients mode (with secure aggregation, which it requires):
        the coordinator only ever unmasks an already noised sum, but it builds each round's
        roster, so the sampling does not hide anyone from it: against it each client has its
        own unamplified ``fl_clients.epsilon`` (clients that pool their noise shares with it
        are not covered: each share is only ``1/k`` of the noise). Without DP: nobody.
        """
        if not self.dp:
            return "nobody"
        if self.clients_noise:
            return "everyone but the coordinator, which is held to each client's own epsilon"
        return "everyone but the coordinator"


@dataclass(frozen=True, slots=True, eq=False)
class ClientResult:
    """What one client's local training produced (before any clipping or masking).

    Attributes:
        client: the client's id.
        delta: local parameters minus the global parameters the round started from.
        samples: the client's number of training records ``n_k``.
    """

    client: int
    delta: np.ndarray
    samples: int


@dataclass(frozen=True, slots=True)
class RoundOutcome:
    """How a round ended: who was sampled, who made it to aggregation, and why it stopped.

    ``clamped`` counts the payload coordinates secure aggregation clamped to its bound in a
    completed round (a round with ``clamped > 0`` is flagged: its sum is not the true sum);
    None when nothing was quantised (plain aggregation, or the round aborted).
    ``multiplier`` is the Gaussian noise multiplier the round is accounted at: ``σ`` (server
    mode, and every aborted round's noise-only update), the round's effective multiplier in
    clients mode (:func:`sim.federated.dp.distributed_multiplier`), 0 without DP.
    """

    round: int
    status: RoundStatus
    reason: AbortReason
    sampled: tuple[int, ...]
    survivors: tuple[int, ...]
    clamped: int | None = None
    multiplier: float = 0.0


@dataclass(frozen=True, slots=True)
class FedAvg:
    """FedAvg / DP-FedAvg (see the module doc for the exact estimators).

    Attributes:
        client_fraction: Poisson sampling probability ``q``.
        noise_multiplier: ``σ``; 0 means plain FedAvg.
        clip: ``C``, the L2 clip of each update under DP.
        weight_unit: sample count that gets weight 1 in plain FedAvg.
        secagg_bound: per-coordinate range of a plain-FedAvg payload in the secure ring.
        noise_at: ``"server"`` adds the noise to the sum in :meth:`apply_sum`; ``"clients"``
            leaves it to the masking members (a completed secure sum arrives noised).
    """

    client_fraction: float
    noise_multiplier: float = 0.0
    clip: float = 1.0
    weight_unit: float = 1.0
    secagg_bound: float = 8.0
    noise_at: NoiseAt = "server"

    @classmethod
    def from_config(cls, config: FLConfig) -> FedAvg:
        """The strategy a scenario asks for."""
        return cls(
            client_fraction=config.client_fraction,
            noise_multiplier=config.dp_noise_multiplier,
            clip=config.dp_clip,
            weight_unit=float(config.samples_per_client),
            secagg_bound=config.secagg_bound,
            noise_at=config.dp_noise_at,
        )

    @property
    def dp(self) -> bool:
        """True for DP-FedAvg."""
        return self.noise_multiplier > 0

    def payload_size(self, params_size: int) -> int:
        """Length of a client's payload: the update, plus its weight without DP."""
        return params_size if self.dp else params_size + 1

    @property
    def clients_noise(self) -> bool:
        """True when the clients add the noise (distributed DP, :mod:`sim.federated.rounds`)."""
        return self.dp and self.noise_at == "clients"

    def payload_bound(self) -> float:
        """A bound on every payload coordinate's magnitude, for fixed-point secure sums.

        Under DP the clip bounds every coordinate; in clients mode the ring also leaves room
        for at least :data:`~sim.federated.dp.NOISE_TAILS` standard deviations of the summed
        noise (``k`` times that: every member's range is widened).
        """
        if self.clients_noise:
            return self.clip * (1 + NOISE_TAILS * self.noise_multiplier)
        return self.clip if self.dp else self.secagg_bound

    def configure(
        self, round_number: int, clients: Sequence[int], rng: np.random.Generator
    ) -> tuple[int, ...]:
        """Poisson sampling: each client joins independently with probability ``q``.

        The round number does not change the rule (kept for Flower's hook shape); the draw
        comes from ``rng``, one uniform per client in the given order.
        """
        del round_number
        picked = rng.random(len(clients)) < self.client_fraction
        return tuple(sorted(c for c, keep in zip(clients, picked, strict=True) if keep))

    def payload(self, result: ClientResult) -> np.ndarray:
        """The vector client ``k`` adds to the round's sum: ``clip(Δ_k)`` or ``[w_kΔ_k, w_k]``."""
        if self.dp:
            return clip_l2(result.delta, self.clip)
        weight = result.samples / self.weight_unit
        return np.append(weight * result.delta, weight)

    def aggregate(
        self,
        params: np.ndarray,
        results: Sequence[ClientResult],
        *,
        population: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """New global parameters from the survivors' results (plain aggregation)."""
        total = np.zeros(self.payload_size(params.shape[0]))
        for result in results:
            total += self.payload(result)
        return self.apply_sum(params, total, population=population, rng=rng)

    def apply_sum(
        self,
        params: np.ndarray,
        total: np.ndarray,
        *,
        population: int,
        rng: np.random.Generator,
        noised: bool = False,
    ) -> np.ndarray:
        """New global parameters from the sum of payloads (from plain or secure aggregation).

        Under DP, draws the noise from ``rng`` (unless the clients already added it:
        ``noised``) and divides by ``q·population``; without DP, divides by the summed weights,
        and returns ``params`` unchanged if that is zero.
        """
        if self.dp:
            std = 0.0 if noised else self.noise_multiplier * self.clip
            noise = gaussian_noise(total.shape[0], std=std, rng=rng)
            return params + (total + noise) / (self.client_fraction * population)
        weight = float(total[-1])
        if weight <= 0:
            return params.copy()
        return params + total[:-1] / weight
