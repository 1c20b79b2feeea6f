"""The federated forecaster as a simulation component: FedAvg rounds over the simulated network.

A coordinator node (drawn with the rest of the forecasting world from the world seed, see
:func:`sim.world.forecast.forecast_world`) runs ``forecaster.rounds`` rounds back to back from
time 0. Each round it samples clients by Poisson sampling (each with probability
``client_fraction``) and draws which sampled clients will drop out (``dropout``); the round
itself travels over the network as :mod:`sim.federated.net_rounds` describes (plain, or with
secure aggregation's messages and real cryptography metered into ``sim.meter``). When it
closes, the coordinator applies the sum (FedAvg or DP-FedAvg, :mod:`sim.federated.strategy`)
or keeps the parameters if it aborted, and records one ``fl_rounds`` row. Training that has not
finished when the run ends leaves its open round recorded as aborted (``horizon``).

Once training has finished (with at least one completed round), the forecaster trader
(:mod:`sim.federated.trader`) trades the live markets toward the model's probabilities.

Randomness: the protocol's draws (sampling, dropouts, DP noise, local-SGD seeds, keys) come from
the run seed's ``forecaster`` streams; the data, the markets' truth and the roles from the world
seed. Same seed, same rounds, same bytes.

Metrics (SPEC section 4): ``fl.model_brier`` (holdout of 10,000 events), ``fl.centralized_brier``
(the same model trained on the pooled records), ``fl.market_brier`` (the model's probability of
each market's event against its realised outcome, averaged over markets, the binary
``(p − o)²`` convention of the other two, half of ``market.brier``'s sum over both outcomes),
``fl.dp_epsilon`` (RDP accountant over every round started, each at its accounted noise
multiplier; inf without DP; whom it holds against is ``fl_rounds.epsilon_against``),
``fl.mia_auc`` / ``fl.mia_advantage`` (loss-threshold attack on the final model: all training
records against as many fresh ones), ``fl.mia_advantage_bound`` (the largest TPR − FPR any
membership test can reach against the run's (ε, δ), Kairouz et al. 2015; it bounds a balanced
game over one whole client's data, and so over any one record of it; NaN without DP),
``fl.reconstruction_rate`` (gradient inversion of everything the coordinator received, in every
completed round and every mode: distinct records recovered over all clients' records; NaN if no
round completed; ``fl_rounds.records_reconstructed`` per round) and
``fl.client_epsilon_max`` / ``fl.client_epsilon_mean`` (the clients' own epsilons, the
individual filter of :mod:`sim.federated.consent`), ``fl.clients_withdrawn`` /
``fl.clients_exhausted``, ``fl.withdrawn_mia_auc`` (the ``fl.mia_auc`` attack with only the
withdrawn clients' records as members; NaN when nobody withdrew) and
``traders.forecaster_pnl``. Tables: ``fl_rounds``, ``fl_roc`` (the attack's ROC curve),
``fl_clients`` (one row per client) and ``fl_client_epsilon`` (each client's own epsilon after
each round it took part in).

Consent: before each round the coordinator samples only the clients the consent ledger allows
(not withdrawn, budget left); a completed round charges its survivors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import partial

import numpy as np
import polars as pl

from market.types import to_micro
from sim.federated.attacks import (
    MembershipResult,
    membership_advantage_bound,
    membership_inference,
    reconstruction_rate,
    recovered_records,
    thin_roc,
)
from sim.federated.consent import ClientPrivacy, ConsentLedger, worst_round_multiplier
from sim.federated.dp import RdpLedger
from sim.federated.net_rounds import PlainRound, RoundEnd, RoundPlan, SecureRound
from sim.federated.rounds import Observation, close_round, start_round
from sim.federated.strategy import AbortReason, FLConfig, RoundOutcome, RoundStatus
from sim.federated.trader import ForecastTrader
from sim.federated.training import Session, brier, train_centralized
from sim.federated.wire import Courier
from sim.host.component import Component, Genesis
from sim.host.host import Host
from sim.results import tables
from sim.scenario import Forecaster, Traders
from sim.world.forecast import ForecastWorld, pooled

"""The ``fl_roc`` table: the membership-inference ROC curve on an even FPR grid."""


def fl_config(cfg: Forecaster) -> FLConfig:
    """The federated settings of a scenario's ``[forecaster]`` block."""
    return FLConfig(**cfg.model_dump())


@dataclass(frozen=True, slots=True)
class FlRow:
    """One ``fl_rounds`` row (loss and Brier of the global model on the holdout after it)."""

    round: int
    status: RoundStatus
    reason: AbortReason
    t_start: float
    t_end: float
    sampled: int
    survivors: int
    loss: float
    brier: float
    epsilon: float
    records_reconstructed: int | None = None
    """Records the server's inversion recovered from this round (None: it did not complete)."""
    clamped: int | None = None
    """Coordinates secure aggregation clamped to ``secagg_bound`` (None: plain or aborted)."""
    noise_multiplier: float = math.nan
    """The multiplier the round is accounted at (its clients-mode effective one; NaN if open)."""


@dataclass(frozen=True, slots=True, eq=False)
class Report:
    """What the run's end measures of the forecaster (computed once)."""

    rows: tuple[FlRow, ...]
    metrics: dict[str, float]
    membership: MembershipResult


class FederatedForecaster(Component):
    """Trains the forecaster over the network, then lets it trade (see the module doc).

    Args:
        sim: the host.
        forecaster: ``[forecaster]``.
        traders: ``[traders]`` (the forecaster trades like one, from the same budget).
        close_s: when trading stops.
        account: its trading account.
    """

    def __init__(
        self,
        sim: Host,
        *,
        forecaster: Forecaster,
        traders: Traders,
        close_s: float,
        account: int,
    ) -> None:
        super().__init__(sim)
        if sim.world.forecast is None:
            raise ValueError("the world has no forecasting data: is forecaster.enabled set?")
        self.forecast: ForecastWorld = sim.world.forecast
        self.config = fl_config(forecaster)
        self.rng = sim.streams.numpy("forecaster")
        self.session = Session.start(
            self.config,
            self.forecast.clients,
            rng=self.rng,
            randbytes=sim.streams.randbytes("forecaster"),
            meter=sim.meter,
        )
        self.ledger = RdpLedger.for_rounds(
            sampling_rate=self.config.client_fraction,
            noise_multiplier=self.config.dp_noise_multiplier,
        )
        worst = worst_round_multiplier(
            self.config,
            self.session.noise,
            members=len(self.session.clients),
            dim=self.session.strategy.payload_size(self.session.model.size),
        )
        self.consent = ConsentLedger.for_config(
            self.config, self.ledger, self.forecast.withdrawals, worst=worst
        )
        self.params = self.session.model.init(self.rng)
        self.courier = Courier(
            sim, coordinator=self.forecast.coordinator, nodes=self.forecast.client_nodes
        )
        self.rows: list[FlRow] = []
        self.outcomes: list[RoundOutcome] = []
        """Who was sampled and who survived, per closed round."""
        self.received: list[Observation] = []
        """What the coordinator received in every completed round (what its attacks see)."""
        self.records = {c.client: c.data.x for c in self.forecast.clients}
        self.open: RoundPlan | None = None
        self.open_since = math.nan
        self.budget = to_micro(traders.budget)
        self.trader = ForecastTrader(
            sim, account=account, node=self.forecast.coordinator, traders=traders, close_s=close_s
        )
        self._report: Report | None = None

    def genesis(self) -> Genesis:
        """The forecaster's trading account starts with a trader's budget."""
        return Genesis(mints=((self.trader.account, self.budget),))

    def start(self) -> None:
        """Start round 0 at time 0."""
        if self.config.rounds > 0:
            self.sim.after(0.0, partial(self._start_round, 0))

    def _start_round(self, number: int) -> None:
        session, now = self.session, self.sim.now
        eligible = self.consent.eligible(number, sorted(session.clients))
        sampled = start_round(session.strategy, number, eligible, self.rng)
        drops = self.rng.random(len(sampled)) < self.config.dropout
        dropping = frozenset(c for c, d in zip(sampled, drops, strict=True) if d)
        plan = RoundPlan(number, self.params.copy(), sampled, dropping)
        self.open, self.open_since = plan, now
        kind = SecureRound if self.config.secure_aggregation else PlainRound
        kind(self.sim, session, self.courier, plan, close=partial(self._close, plan, now)).start()

    def _close(self, plan: RoundPlan, t_start: float, end: RoundEnd) -> None:
        session = self.session
        self.params, outcome = close_round(
            session.strategy,
            plan.params,
            end.total,
            round_number=plan.number,
            sampled=plan.sampled,
            survivors=end.survivors,
            population=len(session.clients),
            rng=self.rng,
            reason=end.reason,
            clamped=end.clamped,
            client_multiplier=end.client_multiplier,
        )
        self.outcomes.append(outcome)
        if outcome.status == "completed":  # the survivors' data entered the released sum
            self.consent.charge(plan.number, outcome.survivors, outcome.multiplier)
        recovered = None
        if outcome.status == "completed" and end.observed is not None:
            self.received.append(end.observed)
            recovered = len(recovered_records(end.observed, self.records))
        self.rows.append(
            self._row(
                plan,
                status=outcome.status,
                reason=end.reason,
                t_start=t_start,
                t_end=self.sim.now,
                survivors=len(end.survivors),
                records_reconstructed=recovered,
                clamped=outcome.clamped,
                noise_multiplier=outcome.multiplier,
            )
        )
        self.open = None
        if plan.number + 1 < self.config.rounds:
            self.sim.after(0.0, partial(self._start_round, plan.number + 1))
        else:
            self._trained()

    def _row(
        self,
        plan: RoundPlan,
        *,
        status: RoundStatus,
        reason: AbortReason,
        t_start: float,
        t_end: float,
        survivors: int,
        records_reconstructed: int | None = None,
        clamped: int | None = None,
        noise_multiplier: float = math.nan,
    ) -> FlRow:
        model, holdout = self.session.model, self.forecast.holdout
        return FlRow(
            round=plan.number,
            status=status,
            reason=reason,
            t_start=t_start,
            t_end=t_end,
            sampled=len(plan.sampled),
            survivors=survivors,
            loss=model.loss(self.params, holdout.x, holdout.y),
            brier=brier(model, self.params, holdout),
            epsilon=self._epsilon(open_round=plan.number >= len(self.outcomes)),
            records_reconstructed=records_reconstructed,
            clamped=clamped,
            noise_multiplier=noise_multiplier,
        )

    def _epsilon(self, *, open_round: bool = False) -> float:
        """``ε`` at ``δ`` of every round closed so far, and the open one at ``σ`` if asked.

        A closed round counts at its accounted multiplier (``σ``, or its clients-mode
        effective multiplier); a round the horizon cut off counts at ``σ`` (conservative: it
        may have released nothing).
        """
        spent = [o.multiplier for o in self.outcomes]
        if open_round:
            spent.append(self.config.dp_noise_multiplier)
        return self.ledger.epsilon_of(spent, delta=self.config.dp_delta)

    def _trained(self) -> None:
        """Training is over: a forecaster that learnt something starts trading."""
        if any(row.status == "completed" for row in self.rows):
            probs = self.session.model.predict_proba(self.params, self.forecast.market_x)
            self.trader.start(probs.tolist())

    # -- the end of the run -----------------------------------------------------------------

    def report(self) -> Report:
        """Rows (with a round cut off by the horizon) and metrics, computed once at the end."""
        if self._report is None:
            rows = list(self.rows)
            if self.open is not None:  # the run ended mid-round: started, never closed
                rows.append(
                    self._row(
                        self.open,
                        status="aborted",
                        reason="horizon",
                        t_start=self.open_since,
                        t_end=math.nan,
                        survivors=0,
                    )
                )
            membership = membership_inference(
                self.session.model,
                self.params,
                pooled(self.forecast.clients),
                self.forecast.nonmembers,
            )
            self._report = Report(tuple(rows), self._metrics(len(rows), membership), membership)
        return self._report

    def _metrics(self, started: int, membership: MembershipResult) -> dict[str, float]:
        model, forecast, config = self.session.model, self.forecast, self.config
        centralized = train_centralized(
            config,
            forecast.clients,
            rng=np.random.default_rng(self.session.central_seed),
            model=model,
        )
        events = np.array([float(o == 1) for o in self.sim.world.outcomes])
        market_probs = model.predict_proba(self.params, forecast.market_x)
        eps = self._epsilon(open_round=started > len(self.outcomes))
        bound = membership_advantage_bound(eps, config.dp_delta) if config.dp else math.nan
        clients = self.client_rows()
        epsilons = [c.epsilon for c in clients]
        withdrawn = [c for c in clients if c.withdrawn_at is not None]
        return {
            "fl.model_brier": brier(model, self.params, forecast.holdout),
            "fl.centralized_brier": brier(model, centralized, forecast.holdout),
            "fl.market_brier": float(np.mean((market_probs - events) ** 2)),
            "fl.dp_epsilon": eps,
            "fl.mia_auc": membership.auc,
            "fl.mia_advantage": membership.advantage,
            "fl.mia_advantage_bound": bound,
            "fl.reconstruction_rate": reconstruction_rate(self.received, self.records),
            "fl.client_epsilon_max": max(epsilons),
            "fl.client_epsilon_mean": float(np.mean(epsilons)),
            # NaN, not 0, when the run gives clients no way to withdraw or no budget to exhaust
            "fl.clients_withdrawn": (
                float(len(withdrawn)) if self.config.withdraw_fraction > 0 else math.nan
            ),
            "fl.clients_exhausted": (
                float(sum(c.exhausted_at is not None for c in clients))
                if math.isfinite(self.config.client_epsilon_budget)
                else math.nan
            ),
            "fl.withdrawn_mia_auc": self._withdrawn_auc([c.client for c in withdrawn]),
            "traders.forecaster_pnl": self.trader.pnl(),
        }

    def _withdrawn_auc(self, withdrawn: list[int]) -> float:
        """The membership attack on the final model against withdrawn clients' records only.

        The same loss-threshold attack and non-member set as ``fl.mia_auc``; NaN when nobody
        withdrew.
        """
        if not withdrawn:
            return math.nan
        members = pooled([self.forecast.clients[c] for c in withdrawn])
        result = membership_inference(
            self.session.model, self.params, members, self.forecast.nonmembers
        )
        return result.auc

    def client_rows(self) -> list[ClientPrivacy]:
        """One ``fl_clients`` row per client (its own ``ε``: the individual filter's)."""
        consent, forecast = self.consent, self.forecast
        return [
            ClientPrivacy(
                client=data.client,
                node=forecast.client_nodes[data.client],
                records=data.samples,
                rounds=consent.rounds(data.client),
                epsilon=consent.epsilon(data.client),
                withdrawn_at=consent.withdrawn_at.get(data.client),
                exhausted_at=consent.exhausted_at.get(data.client),
            )
            for data in forecast.clients
        ]

    def metrics(self) -> dict[str, float]:
        """The ``fl.*`` metrics and ``traders.forecaster_pnl``."""
        return dict(self.report().metrics)

    def tables(self, run_id: str) -> dict[str, pl.DataFrame]:
        """``fl_rounds`` (one row per round started) and ``fl_roc``."""
        rows = self.report().rows
        fl_rounds = tables.frame(
            "fl_rounds",
            {
                "round": [r.round for r in rows],
                "status": [r.status for r in rows],
                "reason": [r.reason or None for r in rows],
                "t_start": [r.t_start for r in rows],
                "t_end": [None if math.isnan(r.t_end) else r.t_end for r in rows],
                "sampled": [r.sampled for r in rows],
                "survivors": [r.survivors for r in rows],
                "loss": [r.loss for r in rows],
                "brier": [r.brier for r in rows],
                "epsilon": [r.epsilon for r in rows],
                "records_reconstructed": [r.records_reconstructed for r in rows],
                "clamped": [r.clamped for r in rows],
                "noise_multiplier": [tables.nan_to_none(r.noise_multiplier) for r in rows],
                "epsilon_against": [self.config.epsilon_against] * len(rows),
            },
            run_id,
        )
        fpr, tpr = thin_roc(self.report().membership)
        roc = tables.frame("fl_roc", {"fpr": fpr.tolist(), "tpr": tpr.tolist()}, run_id)
        clients = self.client_rows()
        columns = [f.name for f in fields(ClientPrivacy)]  # the fl_clients columns, in order
        fl_clients = tables.frame(
            "fl_clients", {name: [getattr(c, name) for c in clients] for name in columns}, run_id
        )
        history = self.consent.history  # (round, client, epsilon) rows
        by_column = {
            n: [h[i] for h in history] for i, n in enumerate(("round", "client", "epsilon"))
        }
        client_epsilon = tables.frame("fl_client_epsilon", by_column, run_id)
        return {
            "fl_rounds": fl_rounds,
            "fl_roc": roc,
            "fl_clients": fl_clients,
            "fl_client_epsilon": client_epsilon,
        }
