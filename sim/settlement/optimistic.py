"""``optimistic``: UMA-style settlement, a bonded proposal that stands unless disputed.

At ``resolve_s`` a reporter proposes each market's outcome with a ``bond``. During
``liveness_s`` any reporter who disagrees disputes it with an equal bond: the first dispute
resets the request and a new proposal is made; a second dispute sends the market to a vote of
all reporters (Tendermint consensus, :mod:`sim.settlement.rounds`). An undisputed proposal
settles the market when its liveness ends. Bonds wait in escrow until the market is final, then
the right side of each dispute gets its bond back plus half of the loser's and the treasury the
rest (:func:`market.exchange.bond_release`). Every step is a signed transaction on chain;
replicas check the signature, the exchange checks the state and the time.

Who acts: honest reporters propose what they observed (the truth, but for
``settlement.observation_error``) in turn (a rota, one per ``round_timeout_s``, while
the request waits) and dispute every wrong proposal that reaches them while they can pay the
bond. That is all :class:`Optimistic` runs. Byzantine reporters are an adversary component of
their own: it learns of each request that opens (:attr:`Optimistic.on_open`) and of each
proposal the chain takes (:attr:`Optimistic.on_proposal`), and floods its signed bond steps
through :meth:`Optimistic.offer`, the call honest reporters' steps go through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

from market.accounts import reporter_account
from market.crypto import sign
from market.exchange import Exchange
from market.oracle import OracleTerms, Settlement, SettlementKind
from market.types import to_micro
from sim.chain.blocks import Block, SettleTx, Tx
from sim.host.faults import FaultPlan
from sim.host.host import Host
from sim.net.network import Message, unexpected
from sim.results.audit import BondRecord
from sim.scenario import MarketConfig
from sim.scenario import Settlement as SettlementConfig
from sim.settlement.protocol import SettlementProtocol
from sim.settlement.records import RoundRecord
from sim.settlement.rules import rota, step_message


def awaiting(exchange: Exchange, market: int, request: int) -> bool:
    """Whether ``exchange`` waits for proposal number ``request`` on ``market``."""
    if exchange.ledger.is_settled(market):
        return False
    requests = exchange.requests.get(market, ())
    return len(requests) == request and (request == 0 or requests[-1].disputed)


def disputable(exchange: Exchange, market: int, request: int, now: float) -> bool:
    """Whether proposal ``request`` of ``market`` stands undisputed within its liveness."""
    requests = exchange.requests.get(market, ())
    if not requests or exchange.ledger.is_settled(market) or request != len(requests) - 1:
        return False
    terms, last = exchange.terms, requests[-1]
    return terms is not None and not last.disputed and now < last.t + terms.liveness


class Optimistic(SettlementProtocol):
    """Bonded proposals, disputes, liveness, and a vote after a second dispute.

    Attributes:
        on_open: ``hook(market, request)``, called when a request opens, before the honest rota
            is scheduled.
        on_proposal: ``hook(step)``, called for each proposal the chain applies, once recorded.
    """

    protocol = "optimistic"
    first_vote_row = 2

    def __init__(
        self, sim: Host, plan: FaultPlan, *, market: MarketConfig, settlement: SettlementConfig
    ) -> None:
        self.bond, self.liveness = to_micro(settlement.bond), settlement.liveness_s
        terms = OracleTerms(self.bond, self.liveness)
        super().__init__(sim, plan, market=market, settlement=settlement, terms=terms)
        self.timeout = settlement.round_timeout_s
        self.truth = sim.world.outcomes
        self.pools: dict[int, dict[Settlement, None]] = {}
        self.signed: set[tuple[int, SettlementKind, int, int]] = set()
        self.included: set[Settlement] = set()
        self.on_open: list[Callable[[int, int], None]] = []
        self.on_proposal: list[Callable[[Settlement], None]] = []

    def start(self) -> None:
        """Watch blocks at honest reporters; open every market's first request at resolve."""
        sim = self.sim
        self.pools = {node: {} for node in sim.sequencers}
        for node in self.voting.honest:
            sim.on_block(node, partial(self._watch, node))
        sim.after(self.market.resolve_s, self._resolve)

    def _resolve(self) -> None:
        for market in range(self.market.count):
            self._open(market, 0, honest_after=0.0)

    def _open(self, market: int, request: int, *, honest_after: float) -> None:
        """Request ``request`` of ``market`` opens: the ``on_open`` hooks, the honest rota starts.

        After a reset the honest rota waits ``honest_after`` (a round timeout), so that the
        reset has reached its first proposer.
        """
        outcomes = self.market.outcomes
        record = RoundRecord(
            market, request, "proposal", self.truth[market], [0] * outcomes, self.sim.now
        )
        self.records[(market, request)] = record
        for hook in self.on_open:
            hook(market, request)
        self.sim.after(honest_after, partial(self._honest_turn, market, request, 0))

    def _honest_turn(self, market: int, request: int, turn: int) -> None:
        """The rota's reporter for ``turn`` proposes what it observed if the request still waits."""
        chain, voting = self.sim.exchange, self.voting
        if turn >= len(voting.order) or not awaiting(chain, market, request):
            return
        node = rota(voting.order, market + request + turn)
        if node in voting.honest_set and self.up(node):
            mine = self.sim.replicas[node].exchange
            cash = mine.ledger.cash(reporter_account(node))
            if awaiting(mine, market, request) and cash >= self.bond:
                self._send(node, "propose", market, request, voting.observation(node, market))
        self.sim.after(self.timeout, partial(self._honest_turn, market, request, turn + 1))

    def _send(
        self, node: int, kind: SettlementKind, market: int, request: int, outcome: int
    ) -> None:
        """Honest ``node`` signs a bond step and offers it (once per step)."""
        if (node, kind, market, request) in self.signed:
            return
        self.signed.add((node, kind, market, request))
        step = Settlement(market, outcome, (node,), kind=kind, request=request)
        signature = sign(self.keys.secrets[node], step_message(step), meter=self.sim.meter)
        self.offer(node, replace(step, signatures=(signature,)))

    def offer(self, node: int, step: Settlement) -> None:
        """``node`` floods its signed bond ``step``; each sequencer it reaches pools it."""
        self.sim.net.flood(node, SettleTx(step), to=self.receive)

    def receive(self, node: int, _sender: int, msg: Message) -> None:
        """A bond step reaches ``node``: a sequencer pools it for its next block."""
        match msg:
            case SettleTx(settlement=step):
                pool = self.pools.get(node)
                if pool is not None and step not in self.included:
                    pool[step] = None
            case _:
                unexpected(msg)

    def _watch(self, node: int, block: Block) -> None:
        """A block reached honest ``node``: dispute every wrong proposal its replica now shows."""
        mine, now = self.sim.replicas[node].exchange, self.sim.now
        for tx in block.txs:
            if not (isinstance(tx, SettleTx) and tx.settlement.kind == "propose"):
                continue
            market = tx.settlement.market
            requests = mine.requests.get(market, ())
            request = len(requests) - 1
            if not disputable(mine, market, request, now):
                continue
            last = requests[-1]
            cash = mine.ledger.cash(reporter_account(node))
            seen = self.voting.observation(node, market)
            if last.outcome != seen and last.proposer != node and cash >= last.bond:
                self._send(node, "dispute", market, request, seen)

    def propose(self, proposer: int) -> list[Tx]:
        """Bond steps the proposer heard, expiries that are due, certificates it holds."""
        if not self.up(proposer):
            return []
        chain, now = self.sim.exchange, self.sim.now
        txs: list[Tx] = []
        slots: set[tuple[SettlementKind, int, int]] = set()
        pool = self.pools.get(proposer, {})
        for step in list(pool):
            del pool[step]
            slot = (step.kind, step.market, step.request)
            if step in self.included or slot in slots or not self._current(chain, step, now):
                continue
            slots.add(slot)
            self.included.add(step)
            txs.append(SettleTx(replace(step, t=now)))
        for market, requests in sorted(chain.requests.items()):
            last, request = requests[-1], len(requests) - 1
            due = not last.disputed and now >= last.t + self.liveness
            if due and not chain.ledger.is_settled(market):
                expiry = Settlement(market, last.outcome, kind="expire", request=request, t=now)
                txs.append(SettleTx(expiry))
        txs += [SettleTx(cert) for cert in self.voting.certificates_for(proposer)]
        return txs

    @staticmethod
    def _current(chain: Exchange, step: Settlement, now: float) -> bool:
        """Whether a heard step still applies to the chain (races leave stale ones behind)."""
        if step.kind == "propose":
            return awaiting(chain, step.market, step.request)
        return disputable(chain, step.market, step.request, now)

    def on_chain(
        self, block: Block, applied: Sequence[Settlement], refused: Sequence[Settlement]
    ) -> None:
        """Record proposals, disputes and finality; react to them."""
        super().on_chain(block, applied, refused)
        for s in applied:
            record = self.records.get((s.market, s.request))
            match s.kind:
                case "propose" if record is not None:
                    self._proposed(s, record)
                case "dispute" if record is not None:
                    self._disputed(s, record)
                case "expire" if record is not None:
                    record.outcome, record.t_final = s.outcome, block.t
            if s.kind in ("expire", "certificate"):
                self._released(s.market)
        for s in refused:
            record = self.records.get((s.market, s.request))
            if s.kind != "certificate" and record is not None:
                record.refused += 1

    def _proposed(self, step: Settlement, record: RoundRecord) -> None:
        record.leader, record.proposed = step.voters[0], step.outcome
        record.bonds_moved += self.bond
        for hook in self.on_proposal:
            hook(step)

    def _disputed(self, step: Settlement, record: RoundRecord) -> None:
        record.disputes += 1
        record.disputer = step.voters[0]
        record.bonds_moved += self.bond
        if step.request == 0:
            self._open(step.market, 1, honest_after=self.timeout)
        else:
            self.voting.open(step.market)

    def bond_records(self) -> tuple[BondRecord, ...]:
        """Every request whose proposal the chain took, with who bonded on each side."""
        return tuple(
            BondRecord(r.market, r.leader, r.proposed, self.bond, r.disputer)
            for r in self.rows()
            if r.step == "proposal" and r.leader >= 0
        )

    def _released(self, market: int) -> None:
        """The market is final: the wrong side of each dispute lost its bond."""
        for request, proposal in enumerate(self.sim.exchange.requests.get(market, ())):
            record = self.records.get((market, request))
            if record is not None and proposal.disputed:
                record.bond_slashed = proposal.bond
