"""An in-process federated training driver, and the per-client and per-round steps it uses.

The simpy layer drives the same steps with latency, timeouts and dropouts of its own:
:func:`start_round` (server: sample clients), :func:`client_update` (client: local SGD),
:func:`secure_sum` or :func:`plain_sum` (aggregation) and :func:`close_round` (server: apply
the sum, record the outcome). :func:`train` runs them back to back with dropouts drawn from the
generator and no clock, which is what the tests and the benchmark measure.

Randomness: ``rng`` draws the sampling, the dropouts and the DP noise in round order, plus one
base seed from which each client's local-SGD generator derives by ``(round, client)``
(:func:`client_rng`), so a client's local steps do not depend on the order in which clients run.
``randbytes`` provides every key, seed and Shamir coefficient.

Under secure aggregation with DP, the server adds the Gaussian noise to the unmasked sum: it
never sees an individual update, and everyone downstream sees only the noised model. A dropped
client's mask secret was revealed to unmask the round, so the driver rotates that client's mask
key pair before it can take part again (:func:`~sim.federated.secagg.rotate_mask_key`); the
simpy layer must do the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from time import perf_counter
from typing import Literal

import numpy as np

from market.crypto import CryptoMeter, RandBytes
from sim.federated.attacks import SecureSumObservation, UpdateObservation
from sim.federated.data import ClientData, Dataset, pooled
from sim.federated.dp import ACCOUNTANT, RdpLedger
from sim.federated.model import LogisticRegression, Model
from sim.federated.secagg import (
    ClientKeys,
    ClientRound,
    PairKeys,
    Roster,
    SecAggAbortError,
    SecureSum,
    ShareCommitment,
    ShareEnvelope,
    agree_keys,
    client_keys,
    make_roster,
    mask_input,
    receive_shares,
    reveal,
    rotate_mask_key,
    share_keys,
    unmask,
    unmask_request,
    with_members,
)
from sim.federated.strategy import (
    AbortReason,
    ClientResult,
    FedAvg,
    FLConfig,
    RoundOutcome,
    RoundStatus,
)

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


@dataclass(frozen=True, slots=True)
class RoundRow:
    """One row of the per-round table (loss and Brier of the global model on the holdout)."""

    round: int
    status: RoundStatus
    reason: AbortReason
    sampled: int
    survivors: int
    loss: float
    brier: float
    epsilon: float


@dataclass(frozen=True, slots=True, eq=False)
class TrainingResult:
    """Everything a run of federated training produced.

    Attributes:
        rows: one per round.
        outcomes: who was sampled and who survived, per round.
        params: the final global parameters.
        initial: the parameters training started from.
        centralized: the same model trained on all records pooled (the baseline).
        observed: what the server saw of the last completed round: per-client updates
            (plain aggregation) or only their sum (secure aggregation); None if no round
            completed.
        epsilon: final ``ε`` at the configured ``δ`` (inf without DP).
        accountant: which accountant ``ε`` comes from.
    """

    rows: tuple[RoundRow, ...]
    outcomes: tuple[RoundOutcome, ...]
    params: np.ndarray
    initial: np.ndarray
    centralized: np.ndarray
    observed: Observation | None
    epsilon: float
    accountant: str


def client_rng(seed: int, round_number: int, client: int) -> np.random.Generator:
    """The local-SGD generator of ``client`` in ``round_number``, independent of other clients."""
    return np.random.default_rng([seed, round_number, client])


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
) -> SecureSum:
    """Run one secure-aggregation round in process, phase by phase.

    Sampled clients absent from ``payloads`` dropped out after sharing their keys. Raises
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
            c: mask_input(states[c], payloads[c], pairs=pairs, meter=meter)
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
) -> tuple[np.ndarray, RoundOutcome]:
    """Server: the next global parameters and the round's outcome.

    ``total`` is the sum of the survivors' payloads, or None when the round aborted (then
    ``reason`` says why and the parameters stay as they were).
    """
    if total is None:
        if not reason:
            raise ValueError("an aborted round needs a reason")
        outcome = RoundOutcome(round_number, "aborted", reason, tuple(sampled), tuple(survivors))
        return params.copy(), outcome
    new = strategy.apply_sum(params, total, population=population, rng=rng)
    return new, RoundOutcome(round_number, "completed", "", tuple(sampled), tuple(survivors))


def train_centralized(
    config: FLConfig,
    datasets: Sequence[ClientData],
    *,
    rng: np.random.Generator,
    model: Model | None = None,
) -> np.ndarray:
    """The baseline: the same model and SGD settings on all records pooled.

    Runs as many minibatch steps as the federated run's expected participants do together
    (``rounds × local_steps × max(1, round(q·N))``).
    """
    model = model or LogisticRegression(config.features)
    data = pooled(datasets)
    per_round = max(1, round(config.client_fraction * len(datasets)))
    return model.local_sgd(
        model.init(rng),
        data.x,
        data.y,
        steps=config.rounds * config.local_steps * per_round,
        lr=config.learning_rate,
        batch=config.batch_size,
        rng=rng,
    )


@dataclass(slots=True)
class Session:
    """An in-process training run between rounds: its context, keys and key cache.

    :func:`train` runs a session to the end; :func:`run_round` advances it by one round (the
    benchmark uses it to time rounds one by one).
    """

    config: FLConfig
    model: Model
    strategy: FedAvg
    clients: dict[int, ClientData]
    rng: np.random.Generator
    sgd_seed: int
    central_seed: int
    randbytes: RandBytes
    meter: CryptoMeter | None
    timer: PhaseTimer | None
    keys: dict[int, ClientKeys]
    pairs: PairKeys

    @classmethod
    def start(
        cls,
        config: FLConfig,
        datasets: Sequence[ClientData],
        *,
        rng: np.random.Generator,
        randbytes: RandBytes,
        meter: CryptoMeter | None = None,
        model: Model | None = None,
        timer: PhaseTimer | None = None,
    ) -> Session:
        """Draw the run's seeds from ``rng`` and, for secure aggregation, every client's keys."""
        sgd_seed, central_seed = (int(s) for s in rng.integers(2**63, size=2))
        clients = {d.client: d for d in datasets}
        keys = {}
        if config.secure_aggregation:
            keys = {c: client_keys(c, randbytes, meter=meter) for c in sorted(clients)}
        return cls(
            config, model or LogisticRegression(config.features), FedAvg.from_config(config),
            clients, rng, sgd_seed, central_seed, randbytes, meter, timer, keys,
            PairKeys(meter=meter),
        )  # fmt: skip


def _aggregate(
    run: Session, round_number: int, sampled: tuple[int, ...], results: list[ClientResult]
) -> tuple[np.ndarray | None, tuple[int, ...], AbortReason, Observation | None]:
    """The round's payload sum, its survivors, an abort reason and what the server saw."""
    strategy, size = run.strategy, run.model.size
    if not run.config.secure_aggregation:
        if not results and not strategy.dp:
            return None, (), "none_sampled" if not sampled else "no_survivors", None
        seen = tuple(UpdateObservation(r.client, _visible_delta(strategy, r)) for r in results)
        survivors = tuple(r.client for r in results)
        return plain_sum(strategy, results, size), survivors, "", seen
    payloads = {r.client: strategy.payload(r) for r in results}
    alive = set(payloads)
    try:
        secure = secure_sum(
            payloads,
            sampled,
            round_number=round_number,
            bound=strategy.payload_bound(),
            keys=run.keys,
            pairs=run.pairs,
            randbytes=run.randbytes,
            meter=run.meter,
            timer=run.timer,
        )
    except SecAggAbortError as abort:
        if abort.reason != "too_few_clients":  # shares went out: the server may hold some
            _rotate(run, [c for c in sampled if c not in alive])
        return None, tuple(sorted(alive)), abort.reason, None
    _rotate(run, secure.dropped)
    return secure.total, secure.survivors, "", SecureSumObservation(secure.total)


def _visible_delta(strategy: FedAvg, result: ClientResult) -> np.ndarray:
    """The update the server can read off a plain payload (clipped under DP)."""
    payload = strategy.payload(result)
    return payload if strategy.dp else payload[:-1] / payload[-1]


def _rotate(run: Session, dropped: Sequence[int]) -> None:
    """Dropped clients' mask secrets were (or may have been) revealed: draw new ones."""
    for c in dropped:
        run.pairs.forget(c, run.keys[c].epoch)
        run.keys[c] = rotate_mask_key(run.keys[c], run.randbytes, meter=run.meter)


def run_round(
    run: Session, params: np.ndarray, round_number: int
) -> tuple[np.ndarray, RoundOutcome, Observation | None]:
    """One full round: sample, drop out, train locally, aggregate, apply.

    Returns the new parameters, the outcome and what the server saw (None if aborted).
    """
    config = run.config
    sampled = start_round(run.strategy, round_number, sorted(run.clients), run.rng)
    drops = run.rng.random(len(sampled)) < config.dropout
    alive = [c for c, dropped in zip(sampled, drops, strict=True) if not dropped]
    results = [
        client_update(
            run.model,
            params,
            run.clients[c],
            config=config,
            rng=client_rng(run.sgd_seed, round_number, c),
        )
        for c in alive
    ]
    total, survivors, reason, seen = _aggregate(run, round_number, sampled, results)
    new, outcome = close_round(
        run.strategy,
        params,
        total,
        round_number=round_number,
        sampled=sampled,
        survivors=survivors,
        population=len(run.clients),
        rng=run.rng,
        reason=reason,
    )
    return new, outcome, seen


def train(
    config: FLConfig,
    datasets: Sequence[ClientData],
    *,
    holdout: Dataset,
    rng: np.random.Generator,
    randbytes: RandBytes,
    meter: CryptoMeter | None = None,
    model: Model | None = None,
    timer: PhaseTimer | None = None,
) -> TrainingResult:
    """Federated training as the simulation runs it, without a clock (see the module doc)."""
    ledger = RdpLedger.for_rounds(
        sampling_rate=config.client_fraction, noise_multiplier=config.dp_noise_multiplier
    )
    run = Session.start(
        config, datasets, rng=rng, randbytes=randbytes, meter=meter, model=model, timer=timer
    )
    model = run.model
    params = initial = model.init(rng)
    rows: list[RoundRow] = []
    outcomes: list[RoundOutcome] = []
    observed: Observation | None = None
    for r in range(config.rounds):
        params, outcome, seen = run_round(run, params, r)
        observed = seen if seen is not None else observed
        outcomes.append(outcome)
        rows.append(
            _row(model, params, outcome, holdout, ledger.epsilon(r + 1, delta=config.dp_delta))
        )
    centralized = train_centralized(
        config, datasets, rng=np.random.default_rng(run.central_seed), model=model
    )
    return TrainingResult(
        rows=tuple(rows),
        outcomes=tuple(outcomes),
        params=params,
        initial=initial,
        centralized=centralized,
        observed=observed,
        epsilon=ledger.epsilon(config.rounds, delta=config.dp_delta),
        accountant=ACCOUNTANT,
    )


def _row(
    model: Model, params: np.ndarray, outcome: RoundOutcome, holdout: Dataset, epsilon: float
) -> RoundRow:
    return RoundRow(
        round=outcome.round,
        status=outcome.status,
        reason=outcome.reason,
        sampled=len(outcome.sampled),
        survivors=len(outcome.survivors),
        loss=model.loss(params, holdout.x, holdout.y),
        brier=brier(model, params, holdout),
        epsilon=epsilon,
    )


def brier(model: Model, params: np.ndarray, data: Dataset) -> float:
    """Mean squared error of the predicted probabilities against the 0/1 outcomes."""
    return float(np.mean((model.predict_proba(params, data.x) - data.y) ** 2))
