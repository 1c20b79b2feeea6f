"""The per-client and per-round steps of federated training, shared by every driver.

:func:`start_round` (server: sample clients), :func:`client_update` (client: local SGD),
:func:`secure_sum` or :func:`plain_sum` (aggregation) and :func:`close_round` (server: apply the
sum, record the outcome). The in-process driver (:mod:`sim.federated.training`) runs them back
to back; the simulated network (:mod:`sim.federated.process`) runs them with its own clock,
latencies and dropouts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from time import perf_counter
from typing import Literal

import numpy as np

from market.crypto import CryptoMeter, RandBytes
from sim.federated.attacks import SecureSumObservation, UpdateObservation
from sim.federated.dp import ddg_tau, discrete_gaussian, distributed_multiplier, share_sigma
from sim.federated.model import Model
from sim.federated.secagg import (
    ClientKeys,
    ClientRound,
    PairKeys,
    Roster,
    SecureSum,
    ShareCommitment,
    ShareEnvelope,
    agree_keys,
    fixed_point_scale,
    make_roster,
    mask_input,
    receive_shares,
    reveal,
    share_keys,
    unmask,
    unmask_request,
    with_members,
)
from sim.federated.strategy import AbortReason, ClientResult, FedAvg, FLConfig, RoundOutcome
from sim.world.forecast import ClientData

Observation = tuple[UpdateObservation, ...] | SecureSumObservation
Phase = Literal["key_agreement", "sharing", "masking", "unmasking"]


@dataclass(slots=True)
class PhaseTimer:
    """Wall seconds per secure-aggregation phase, summed over rounds (for the benchmark).

    ``agreements`` counts the clients' ECDH agreements that missed the cache (timed under
    ``key_agreement``); ``server_agreements`` counts the server's recomputations of dropped
    clients' pair keys (timed under ``unmasking``).
    """

    key_agreement: float = 0.0
    sharing: float = 0.0
    masking: float = 0.0
    unmasking: float = 0.0
    agreements: int = 0
    server_agreements: int = 0
    rounds: int = 0

    @contextmanager
    def phase(self, name: Phase) -> Iterator[None]:
        """Add the wall time of the ``with`` body to phase ``name``."""
        start = perf_counter()
        try:
            yield
        finally:
            setattr(self, name, getattr(self, name) + perf_counter() - start)

    def total(self) -> float:
        """All timed seconds."""
        return self.key_agreement + self.sharing + self.masking + self.unmasking


def client_rng(seed: int, round_number: int, client: int) -> np.random.Generator:
    """The local-SGD generator of ``client`` in ``round_number``, independent of other clients."""
    return np.random.default_rng([seed, round_number, client])


NOISE_STREAM = 0x6E6F697365
"""Tag ("noise") that separates a client's DP-noise generator from its local-SGD one."""


@dataclass(frozen=True, slots=True)
class ClientNoise:
    """Distributed DP (``dp_noise_at = "clients"``): each masking member's share of the noise.

    The distributed discrete Gaussian of Kairouz, Liu & Steinke (ICML 2021), on the secure
    ring's fixed-point integers: a member rounds its clipped update ``x`` (``‖x‖₂ ≤ C``) to
    ``round(s·x)``, whose L2 norm is at most ``Δ = s·C + √d/2`` (the rounding error, at most
    ½ per coordinate, is bounded *in the sensitivity*), and adds ``N_Z(0, (σΔ)²/k)`` drawn by
    :func:`~sim.federated.dp.discrete_gaussian`, ``k`` being the round's masking members. The
    ``k`` shares sum to the calibrated ``σΔ`` when every member survives; each dropout removes
    its share, and :meth:`multiplier` says what the surviving noise is worth.

    Randomness: a member's noise generator derives from the run's local-SGD seed, the round,
    the client and :data:`NOISE_STREAM`, so it is reproducible from the run seed and
    independent of every other stream.
    """

    noise_multiplier: float
    clip: float
    bound: float
    seed: int

    def sensitivity(self, members: int, dim: int) -> float:
        """``Δ``: the L2 norm of one member's encoded clipped update, rounding included."""
        return fixed_point_scale(members, self.bound) * self.clip + math.sqrt(dim) / 2

    def share(self, roster: Roster, client: int) -> np.ndarray:
        """``client``'s integer noise vector for this round's masking members."""
        members = len(roster.members)
        sigma = share_sigma(
            self.noise_multiplier,
            sensitivity=self.sensitivity(members, roster.dim),
            members=members,
        )
        rng = np.random.default_rng([self.seed, roster.round, client, NOISE_STREAM])
        return discrete_gaussian(roster.dim, sigma=sigma, rng=rng)

    def multiplier(self, *, members: int, survivors: int, dim: int) -> float:
        """The Gaussian multiplier the round's sum is accounted at (``distributed_multiplier``)."""
        return distributed_multiplier(
            self.noise_multiplier,
            sensitivity=self.sensitivity(members, dim),
            members=members,
            survivors=survivors,
            dim=dim,
        )

    def worst_multiplier(self, *, members: int, dim: int, surviving: float) -> float:
        """A floor under :meth:`multiplier` for every round of at most ``members`` members of
        which at least a ``surviving`` share reached the sum.

        ``σ·√r / √(1 + ½τdσ²r)`` grows with the surviving share ``r`` and shrinks with
        Kairouz et al.'s ``τ``, which is largest for the most members (the smallest shares,
        summed over the most terms); so the floor takes ``r = surviving`` and that ``τ``.
        """
        sigma = self.noise_multiplier
        share = share_sigma(sigma, sensitivity=self.sensitivity(members, dim), members=members)
        tau = ddg_tau(share, members)
        return sigma * math.sqrt(surviving) / math.sqrt(1 + tau * dim * sigma**2 * surviving / 2)

    def of_sum(self, result: SecureSum, dim: int) -> float:
        """:meth:`multiplier` of a completed secure sum (its members: survivors and dropped)."""
        members = len(result.survivors) + len(result.dropped)
        return self.multiplier(members=members, survivors=len(result.survivors), dim=dim)


def start_round(
    strategy: FedAvg, round_number: int, clients: Sequence[int], rng: np.random.Generator
) -> tuple[int, ...]:
    """Server: the clients sampled for this round (Poisson sampling)."""
    return strategy.configure(round_number, clients, rng)


def client_update(
    model: Model,
    params: np.ndarray,
    data: ClientData,
    *,
    config: FLConfig,
    rng: np.random.Generator,
) -> ClientResult:
    """Client: ``local_steps`` of minibatch SGD from the global parameters; returns the update."""
    local = model.local_sgd(
        params,
        data.data.x,
        data.data.y,
        steps=config.local_steps,
        lr=config.learning_rate,
        batch=config.batch_size,
        rng=rng,
    )
    return ClientResult(client=data.client, delta=local - params, samples=data.samples)


def plain_sum(strategy: FedAvg, results: Sequence[ClientResult], size: int) -> np.ndarray:
    """Server without secure aggregation: the sum of the survivors' payloads."""
    total = np.zeros(strategy.payload_size(size))
    for result in results:
        total += strategy.payload(result)
    return total


def secure_sum(
    payloads: Mapping[int, np.ndarray],
    sampled: Sequence[int],
    *,
    round_number: int,
    bound: float,
    keys: Mapping[int, ClientKeys],
    pairs: PairKeys,
    randbytes: RandBytes,
    meter: CryptoMeter | None = None,
    timer: PhaseTimer | None = None,
    noise: ClientNoise | None = None,
) -> SecureSum:
    """Run one secure-aggregation round in process, phase by phase.

    Sampled clients absent from ``payloads`` dropped out after sharing their keys; with
    ``noise`` (clients mode) each member adds its noise share before masking. Raises
    :class:`SecAggAbortError` when the round cannot finish.
    """
    timer = timer if timer is not None else PhaseTimer()
    dim = len(next(iter(payloads.values()))) if payloads else 1
    roster = make_roster(round_number, [keys[c].advert() for c in sampled], dim=dim, bound=bound)
    with timer.phase("key_agreement"):
        before = pairs.agreements
        for c in roster.holders:
            agree_keys(keys[c], roster, pairs)
        timer.agreements += pairs.agreements - before
    with timer.phase("sharing"):
        states, commitments = _share(roster, keys, pairs=pairs, randbytes=randbytes, meter=meter)
    with timer.phase("masking"):
        inputs = {
            c: mask_input(
                states[c],
                payloads[c],
                pairs=pairs,
                meter=meter,
                noise=None if noise is None else noise.share(states[c].roster, c),
            )
            for c in roster.members
            if c in payloads
        }
    with timer.phase("unmasking"):
        request = unmask_request(roster, list(inputs))
        reveals = [reveal(states[c], request)[1] for c in request.survivors]
        result = unmask(roster, request, commitments, inputs, reveals, meter=meter)
    timer.server_agreements += len(result.dropped) * len(result.survivors)
    timer.rounds += 1
    return result


def _share(
    roster: Roster,
    keys: Mapping[int, ClientKeys],
    *,
    pairs: PairKeys,
    randbytes: RandBytes,
    meter: CryptoMeter | None,
) -> tuple[dict[int, ClientRound], dict[int, ShareCommitment]]:
    """Every holder shares its secrets; envelopes are routed; the members adopt ``U2``."""
    states: dict[int, ClientRound] = {}
    mail: dict[int, list[ShareEnvelope]] = {}
    commitments: dict[int, ShareCommitment] = {}
    for c in roster.holders:
        state, envelopes, commitment = share_keys(
            keys[c], roster, randbytes=randbytes, pairs=pairs, meter=meter
        )
        states[c], commitments[c] = state, commitment
        for envelope in envelopes:
            mail.setdefault(envelope.holder, []).append(envelope)
    members = with_members(roster, list(commitments))
    for c in members.holders:
        state = replace(states[c], roster=members)
        states[c] = receive_shares(state, mail.get(c, []), pairs=pairs)
    return states, commitments


def close_round(
    strategy: FedAvg,
    params: np.ndarray,
    total: np.ndarray | None,
    *,
    round_number: int,
    sampled: Sequence[int],
    survivors: Sequence[int],
    population: int,
    rng: np.random.Generator,
    reason: AbortReason = "",
    clamped: int | None = None,
    client_multiplier: float | None = None,
) -> tuple[np.ndarray, RoundOutcome]:
    """Server: the next global parameters and the round's outcome.

    ``total`` is the sum of the survivors' payloads, or None when the round aborted (then
    ``reason`` says why); ``clamped`` is the secure sum's count of clamped coordinates;
    ``client_multiplier`` is set when the clients already noised ``total`` (clients mode) and
    says what that noise is worth; otherwise the server adds the noise, worth ``σ``.
    Without DP an aborted round keeps the parameters. Under DP it releases a noise-only update,
    the mechanism applied to an empty sum (the server adds the noise: nobody's data is in it):
    whether a round releases anything would otherwise depend on how many clients were sampled
    or survived, which the accountant's Poisson-subsampled Gaussian does not model (with secure
    aggregation a round aborts below 3 participants or below the sharing threshold). With the
    release independent of the count, the accounted mechanism is the one that ran.
    """
    base = strategy.noise_multiplier
    if total is None:
        if not reason:
            raise ValueError("an aborted round needs a reason")
        outcome = RoundOutcome(
            round_number, "aborted", reason, tuple(sampled), tuple(survivors), multiplier=base
        )
        if strategy.dp:
            empty = np.zeros(strategy.payload_size(params.shape[0]))
            return strategy.apply_sum(params, empty, population=population, rng=rng), outcome
        return params.copy(), outcome
    noised = client_multiplier is not None
    new = strategy.apply_sum(params, total, population=population, rng=rng, noised=noised)
    multiplier = client_multiplier if client_multiplier is not None else base
    outcome = RoundOutcome(
        round_number, "completed", "", tuple(sampled), tuple(survivors), clamped, multiplier
    )
    return new, outcome


def visible_sum(strategy: FedAvg, total: np.ndarray) -> SecureSumObservation:
    """What the server holds of a secure sum, and the update it reads off it."""
    if strategy.dp:
        return SecureSumObservation(total, total)
    weight = float(total[-1])
    update = total[:-1] / weight if weight else np.zeros(total.shape[0] - 1)
    return SecureSumObservation(total, update)


def visible_delta(strategy: FedAvg, result: ClientResult) -> np.ndarray:
    """The update the server can read off a plain payload (clipped under DP)."""
    payload = strategy.payload(result)
    return payload if strategy.dp else payload[:-1] / payload[-1]
