"""Settlement, first version: reporters vote, a majority settles each market.

At ``resolve_s`` every reporter diffuses one vote message naming an outcome per market. A
sequencer that holds a majority of reporters' votes for one outcome includes the settlement in
its block; replicas accept it only with a quorum of distinct reporters behind it and then pay
the winning shares. (Signed votes, Byzantine and crashed reporters, timeouts and the optimistic
protocol are the settlement issue's.)
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from market.exchange import Settlement
from sim.chain import Block, SettleTx, Tx, TxResult
from sim.components import Component
from sim.metrics import settlement_metrics
from sim.records import SettlementRecord
from sim.simulation import Process, Simulation
from sim.tables import settlement_table

VOTE_BYTES = 16
"""A vote message's header (reporter id, signature-less in this version); one byte per market."""


def quorum(reporters: int) -> int:
    """A strict majority of reporters."""
    return reporters // 2 + 1


def majority_ok(settlement: Settlement, *, reporters: frozenset[int], needed: int) -> bool:
    """A settlement counts only with ``needed`` distinct reporters behind it."""
    voters = settlement.voters
    return len(set(voters)) == len(voters) >= needed and set(voters) <= reporters


class MajorityVote(Component):
    """Reporters' votes diffuse to the sequencers; a majority settles a market."""

    def __init__(self, sim: Simulation) -> None:
        super().__init__(sim)
        self.reporters = frozenset(sim.world.reporters)
        self.needed = quorum(len(self.reporters))
        self.pools: dict[int, dict[int, tuple[int, ...]]] = {n: {} for n in sim.validators}
        self.records = [
            SettlementRecord(m, o, [0] * sim.scenario.market.outcomes)
            for m, o in enumerate(sim.world.outcomes)
        ]
        sim.settlement_ok = lambda s: majority_ok(s, reporters=self.reporters, needed=self.needed)
        self.proposed: set[int] = set()

    def start(self) -> None:
        """Schedule the vote at ``resolve_s``."""
        self.sim.env.process(self._vote())

    def _vote(self) -> Process:
        sim = self.sim
        yield sim.env.timeout(sim.scenario.market.resolve_s)
        outcomes = sim.world.outcomes
        for reporter in sorted(self.reporters):
            for market, outcome in enumerate(outcomes):
                self.records[market].votes[outcome] += 1

            def arrive(node: int, _sender: int, voter: int = reporter) -> None:
                pool = self.pools.get(node)
                if pool is not None:
                    pool[voter] = outcomes

            sim.net.flood(reporter, kind="vote", size=VOTE_BYTES + len(outcomes), on_arrival=arrive)

    def propose(self, proposer: int) -> list[Tx]:
        """Settlements the proposer can justify with the votes it holds."""
        txs: list[Tx] = []
        pool = self.pools[proposer]
        for market in range(self.sim.scenario.market.count):
            if market in self.proposed:
                continue
            by_outcome: dict[int, list[int]] = {}
            for reporter, outcomes in sorted(pool.items()):
                by_outcome.setdefault(outcomes[market], []).append(reporter)
            for outcome, voters in sorted(by_outcome.items()):
                if len(voters) >= self.needed:
                    txs.append(SettleTx(Settlement(market, outcome, tuple(voters))))
                    self.proposed.add(market)
                    break
        return txs

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """Record finality of the settlements the chain accepted."""
        for tx, result in zip(block.txs, results, strict=True):
            if isinstance(tx, SettleTx) and result is True:
                record = self.records[tx.settlement.market]
                record.outcome, record.t_final = tx.settlement.outcome, block.t
                record.leader = block.proposer
                record.certificate_size = len(tx.settlement.voters)

    def metrics(self) -> dict[str, float]:
        """``settlement.*`` metrics."""
        messages = self.sim.net.stats.delivered.get("vote", 0)
        return settlement_metrics(
            self.records, resolve_s=self.sim.scenario.market.resolve_s, messages=messages
        )

    def tables(self, run_id: str) -> dict[str, pl.DataFrame]:
        """The ``settlement`` table: one row per market and round."""
        protocol = self.sim.scenario.settlement.protocol
        return {"settlement": settlement_table(self.records, protocol=protocol, run_id=run_id)}
