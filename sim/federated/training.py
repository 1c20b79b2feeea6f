"""An in-process federated training driver: sessions, rounds back to back, the baseline.

The steps it drives live in :mod:`sim.federated.rounds` (re-exported here):
:func:`start_round` (server: sample clients), :func:`client_update` (client: local SGD),
:func:`secure_sum` or :func:`plain_sum` (aggregation) and :func:`close_round` (server: apply
the sum, record the outcome). :func:`train` runs them back to back with dropouts drawn from the
generator and no clock, which is what the tests and the benchmark measure; the simpy layer
(:mod:`sim.federated.process`) drives the same steps with latency, timeouts and dropouts.

Randomness: ``rng`` draws the sampling, the dropouts and the DP noise in round order, plus one
base seed from which each client's local-SGD generator derives by ``(round, client)``
(:func:`client_rng`), so a client's local steps do not depend on the order in which clients run.
``randbytes`` provides every key, seed and Shamir coefficient.

Under secure aggregation with DP, the server adds the Gaussian noise to the unmasked sum
(``dp_noise_at = "server"``): it never sees an individual update, but it does see their exact
sum; everyone downstream sees only the noised model. With ``dp_noise_at = "clients"`` each
masking member adds its share of the noise before masking (:class:`ClientNoise`), so the
server too sees only a noised sum. A dropped
client's mask secret was revealed to unmask the round, so the driver rotates that client's mask
key pair before it can take part again (:func:`rotate`); the simpy layer does the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from market.crypto import CryptoMeter, RandBytes
from sim.federated.attacks import UpdateObservation
from sim.federated.dp import ACCOUNTANT, RdpLedger
from sim.federated.model import LogisticRegression, Model
from sim.federated.rounds import (
    ClientNoise,
    Observation,
    PhaseTimer,
    client_rng,
    client_update,
    close_round,
    plain_sum,
    secure_sum,
    start_round,
    visible_delta,
    visible_sum,
)
from sim.federated.secagg import (
    ClientKeys,
    PairKeys,
    SecAggAbortError,
    client_keys,
    rotate_mask_key,
)
from sim.federated.strategy import (
    AbortReason,
    ClientResult,
    FedAvg,
    FLConfig,
    RoundOutcome,
    RoundStatus,
)
from sim.world.forecast import ClientData, Dataset, pooled

__all__ = [
    "Observation",
    "PhaseTimer",
    "RoundRow",
    "Session",
    "TrainingResult",
    "brier",
    "client_rng",
    "client_update",
    "close_round",
    "plain_sum",
    "rotate",
    "run_round",
    "secure_sum",
    "start_round",
    "train",
    "train_centralized",
]


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
    clamped: int | None = None


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


def train_centralized(
    config: FLConfig,
    datasets: Sequence[ClientData],
    *,
    rng: np.random.Generator,
    model: Model | None = None,
) -> np.ndarray:
    """The baseline: minibatch SGD on all records pooled, with FedAvg's steps and records.

    Runs ``rounds × local_steps`` sequential steps at the same learning rate, each on a
    minibatch of ``max(1, round(q·N)) × batch_size`` records: the records the round's expected
    participants use per local step. This is the minibatch-SGD counterpart of local SGD
    (Woodworth et al., "Minibatch vs Local SGD", NeurIPS 2020): on IID data FedAvg and it end
    within noise of each other, so the gap between them is what heterogeneity costs (client
    drift and the sampled clients' own concepts), not a difference in the number of steps.
    """
    model = model or LogisticRegression(config.features)
    data = pooled(datasets)
    per_round = max(1, round(config.client_fraction * len(datasets)))
    return model.local_sgd(
        model.init(rng),
        data.x,
        data.y,
        steps=config.rounds * config.local_steps,
        lr=config.learning_rate,
        batch=config.batch_size * per_round,
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
    noise: ClientNoise | None = None
    """Each member's share of the DP noise (clients mode with secure aggregation), else None."""

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
        strategy = FedAvg.from_config(config)
        noise = None
        if config.clients_noise:
            if not config.secure_aggregation:
                raise ValueError("clients-side DP noise needs secure aggregation")
            bound = strategy.payload_bound()
            noise = ClientNoise(config.dp_noise_multiplier, config.dp_clip, bound, sgd_seed)
        return cls(
            config, model or LogisticRegression(config.features), strategy,
            clients, rng, sgd_seed, central_seed, randbytes, meter, timer, keys,
            PairKeys(meter=meter), noise,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class _Aggregate:
    """A round's payload sum (None: aborted), survivors, abort reason, view and clamp count.

    ``client_multiplier``: what the clients' own noise in ``total`` is worth (clients mode).
    """

    total: np.ndarray | None
    survivors: tuple[int, ...]
    reason: AbortReason
    seen: Observation | None
    clamped: int | None = None
    client_multiplier: float | None = None


def _aggregate(
    run: Session, round_number: int, sampled: tuple[int, ...], results: list[ClientResult]
) -> _Aggregate:
    """The round's payload sum, its survivors, an abort reason and what the server saw."""
    strategy, size = run.strategy, run.model.size
    if not run.config.secure_aggregation:
        if not results and not strategy.dp:
            return _Aggregate(None, (), "none_sampled" if not sampled else "no_survivors", None)
        seen = tuple(UpdateObservation(r.client, visible_delta(strategy, r)) for r in results)
        survivors = tuple(r.client for r in results)
        return _Aggregate(plain_sum(strategy, results, size), survivors, "", seen)
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
            noise=run.noise,
        )
    except SecAggAbortError as abort:
        if abort.reason != "too_few_clients":  # shares went out: the server may hold some
            rotate(run, [c for c in sampled if c not in alive])
        return _Aggregate(None, tuple(sorted(alive)), abort.reason, None)
    rotate(run, secure.dropped)
    summed = visible_sum(strategy, secure.total)
    worth = None if run.noise is None else run.noise.of_sum(secure, size)
    return _Aggregate(secure.total, secure.survivors, "", summed, secure.clamped, worth)


def rotate(run: Session, dropped: Sequence[int]) -> None:
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
    summed = _aggregate(run, round_number, sampled, results)
    new, outcome = close_round(
        run.strategy,
        params,
        summed.total,
        round_number=round_number,
        sampled=sampled,
        survivors=summed.survivors,
        population=len(run.clients),
        rng=run.rng,
        reason=summed.reason,
        clamped=summed.clamped,
        client_multiplier=summed.client_multiplier,
    )
    return new, outcome, summed.seen


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
    """Federated training as the simulation runs it, without a clock (see the module doc).

    Consent (``withdraw_fraction``, ``client_epsilon_budget``) lives in the network
    simulation's forecaster only; asking this driver for it is refused rather than ignored.
    """
    if config.withdraw_fraction > 0 or math.isfinite(config.client_epsilon_budget):
        raise ValueError(
            "withdraw_fraction and client_epsilon_budget need the network simulation "
            "(sim.federated.process), not the in-process driver"
        )
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
        spent = [o.multiplier for o in outcomes]
        rows.append(
            _row(model, params, outcome, holdout, ledger.epsilon_of(spent, delta=config.dp_delta))
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
        epsilon=ledger.epsilon_of([o.multiplier for o in outcomes], delta=config.dp_delta),
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
        clamped=outcome.clamped,
    )


def brier(model: Model, params: np.ndarray, data: Dataset) -> float:
    """Mean squared error of the predicted probabilities against the 0/1 outcomes."""
    return float(np.mean((model.predict_proba(params, data.x) - data.y) ** 2))
