"""What every settlement protocol shares: keys, endowments, the replicas' check, records, metrics.

A protocol is a :class:`sim.host.component.Component`. At construction (before the replicas copy the
exchange) it mints each reporter's ``endowment`` into its ledger account, sets the optimistic
oracle's terms, draws the reporters' keys and installs ``sim.settlement_ok``: the check every
replica runs on a settlement step before it applies it. After each block it reads which steps
the chain applied (``Exchange.applied``) and which it refused, and records them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import polars as pl

from market.accounts import reporter_account
from market.oracle import OracleTerms, Settlement
from market.types import to_micro
from sim.chain.blocks import Block, SettleTx, TxResult
from sim.host.component import Component, Genesis
from sim.host.faults import FaultPlan
from sim.host.host import Host
from sim.results.audit import BondRecord, PayoutRecords
from sim.results.metrics import accountability_metrics, settlement_metrics
from sim.scenario import MarketConfig
from sim.scenario import Settlement as SettlementConfig
from sim.settlement.records import RoundRecord, market_summaries, settlement_table, steps_table
from sim.settlement.rounds import Voting, reporter_keys
from sim.settlement.rules import bft_quorum, settlement_ok

MESSAGE_KINDS = ("vote", "oracle")
"""What settlement sends: consensus bundles, optimistic bond steps (counted as sent, per hop)."""


class SettlementProtocol(Component):
    """The common part of the settlement protocols.

    Args:
        sim: the run (its exchange not yet copied to the replicas).
        plan: the run's faults (who is Byzantine: the protocol runs the other reporters only).
        market: ``[market]`` (how many markets, their outcomes, when the truth is known).
        settlement: ``[settlement]``.
        terms: the optimistic oracle's terms (None: proposals are refused).
    """

    protocol = "abstract"
    first_vote_row = 0
    """The table's ``round`` of a market's first voting round."""
    collects_evidence = False
    """Whether honest sequencers put equivocation evidence on chain (and the chain slashes)."""

    def __init__(
        self,
        sim: Host,
        plan: FaultPlan,
        *,
        market: MarketConfig,
        settlement: SettlementConfig,
        terms: OracleTerms | None = None,
    ) -> None:
        super().__init__(sim)
        self.market, self.settlement = market, settlement
        self.plan = plan
        self.reporters = tuple(sorted(sim.validators))
        self.keys = reporter_keys(self.reporters, sim)
        self.quorum = bft_quorum(len(self.reporters))
        self.records: dict[tuple[int, int], RoundRecord] = {}
        self.voting = Voting(
            sim,
            keys=self.keys,
            byzantine=plan.byzantine,
            records=self.records,
            first_row=self.first_vote_row,
            outcomes=market.outcomes,
            round_timeout_s=settlement.round_timeout_s,
            observation_error=settlement.observation_error,
        )
        self.terms = terms
        self.seen = len(sim.exchange.applied)
        self.taken: list[Settlement] = []
        """Every piece of evidence the chain took, as the blocks were committed."""

    def genesis(self) -> Genesis:
        """Reporters' endowments, the oracle's terms, and the check of settlement evidence."""
        endowment = to_micro(self.settlement.endowment)
        return Genesis(
            mints=tuple((reporter_account(node), endowment) for node in self.reporters),
            settlement_check=partial(settlement_ok, keyring=self.keys.ring, quorum=self.quorum),
            oracle_terms=self.terms,
        )

    def up(self, node: int) -> bool:
        """Whether ``node`` is running (not crashed)."""
        return node not in self.sim.net.down

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """Sort the block's settlement steps into applied and refused, and record them."""
        applied = self.sim.exchange.applied[self.seen :]
        self.seen += len(applied)
        steps = [tx.settlement for tx in block.txs if isinstance(tx, SettleTx)]
        if steps:
            done = set(applied)
            self.on_chain(block, applied, [s for s in steps if s not in done])

    def on_chain(
        self, block: Block, applied: Sequence[Settlement], refused: Sequence[Settlement]
    ) -> None:
        """What a protocol does about the steps a block applied and refused."""
        self.taken += [s for s in applied if s.kind == "evidence"]
        self.voting.on_chain(block.t, applied, refused)

    def rows(self) -> list[RoundRecord]:
        """Every record by market and round; a market that never started one gets an empty row."""
        outcomes, truth = self.market.outcomes, self.sim.world.outcomes
        started = {market for market, _ in self.records}
        empty = [
            RoundRecord(m, 0, "vote", o, [0] * outcomes, math.nan)
            for m, o in enumerate(truth)
            if m not in started
        ]
        return sorted([*self.records.values(), *empty], key=lambda r: (r.market, r.round))

    def metrics(self) -> dict[str, float]:
        """``settlement.*``: finality, correctness, latency, messages sent, conflicts, slashing."""
        stats = self.sim.net.stats
        messages = sum(stats.sent.get(kind, 0) for kind in MESSAGE_KINDS)
        summaries = market_summaries(self.rows(), truth=self.sim.world.outcomes)
        resolve_s = self.market.resolve_s
        metrics = settlement_metrics(summaries, resolve_s=resolve_s, messages=messages)
        chain = self.sim.exchange
        return metrics | accountability_metrics(
            conflicting=self.voting.conflicting(),
            evidence=len(chain.evidence) if self.collects_evidence else None,
            slashed=sum(chain.slashed.values()) if self.collects_evidence else None,
        )

    def payouts(self) -> PayoutRecords:
        """The outcome each final market's record says the chain paid, the bonds posted, and who
        the chain slashed."""
        summaries = market_summaries(self.rows(), truth=self.sim.world.outcomes)
        outcomes = {s.market: s.outcome for s in summaries if not math.isnan(s.t_final)}
        slashes = tuple(sorted({e.voters[0] for e in self.taken}))
        return PayoutRecords(outcomes, self.bond_records(), slashes)

    def bond_records(self) -> tuple[BondRecord, ...]:
        """The bonds posted (none without an optimistic oracle)."""
        return ()

    def tables(self, run_id: str) -> dict[str, pl.DataFrame]:
        """``settlement`` (one row per market) and ``settlement_steps`` (per round or request)."""
        rows, protocol = self.rows(), self.protocol
        return {
            "settlement": settlement_table(rows, protocol=protocol, run_id=run_id),
            "settlement_steps": steps_table(rows, protocol=protocol, run_id=run_id),
        }
