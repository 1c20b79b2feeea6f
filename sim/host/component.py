"""What plugs into a run: order flows, settlement protocols, adversaries, the forecaster.

A component declares what it adds before the chain starts in :meth:`Component.genesis`, starts
its timers in :meth:`Component.start`, offers transactions for
the next block in :meth:`Component.propose`, learns what the chain did with them in
:meth:`Component.committed`, and reports its metrics and tables at the end. The core
(:mod:`sim.runs.simulation`) knows nothing of privacy modes or settlement protocols.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import polars as pl

from market.exchange import Exchange
from market.oracle import OracleTerms, Settlement
from market.types import Order
from sim.chain.blocks import BatchCheck, Block, Tx, TxResult
from sim.host.host import Host
from sim.net.network import Message
from sim.results.audit import PayoutRecords
from sim.results.records import OrderRecord
from sim.scenario import Privacy


@dataclass(frozen=True, slots=True)
class Genesis:
    """What a component adds to the chain's first state, before the replicas copy it.

    Components return this instead of writing into the host when they are built, so the order
    in which they are plugged does not matter: the host applies every component's genesis when
    the run starts, then copies the exchange to the replicas.

    Attributes:
        mints: ``(account, micro-units)`` to credit (endowments, the adversary's budget).
        settlement_check: how every replica checks a settlement's evidence (one component at
            most may give it; without one, every settlement is refused).
        oracle_terms: the optimistic oracle's bond and liveness (None: proposals are refused).
        reveal_deadline_s: how long after its block a commitment may be revealed (None: no
            commit-reveal; the chain enforces it on every replica).
        batch_check: how every replica checks a decrypted batch against the epoch's sealed
            orders before executing it (one component at most; None: batches are trusted, as
            none is ever proposed without an encrypted order flow).
        faulty_replicas: replicas that are Byzantine from the start (left out of
            ``ledger.replica_divergence``).
        faults_scheduled: crashes or partitions will happen, so diffusion must be simulated
            message by message rather than computed.
    """

    mints: tuple[tuple[int, int], ...] = ()
    settlement_check: Callable[[Settlement], bool] | None = None
    oracle_terms: OracleTerms | None = None
    reveal_deadline_s: float | None = None
    batch_check: BatchCheck | None = None
    faulty_replicas: frozenset[int] = frozenset()
    faults_scheduled: bool = False


def refuse_settlements(_settlement: Settlement) -> bool:
    """The settlement check before a settlement protocol gives one: nothing settles."""
    return False


@dataclass(frozen=True, slots=True)
class Opening:
    """What the host keeps after every genesis was applied to the exchange."""

    settlement_check: Callable[[Settlement], bool]
    batch_check: BatchCheck | None
    faulty_replicas: frozenset[int]
    faults_scheduled: bool


def open_chain(geneses: Sequence[Genesis], exchange: Exchange) -> Opening:
    """Apply the components' geneses to ``exchange`` (mints, the oracle's terms), in order.

    Both hosts call this before the replicas copy the exchange; at most one genesis may give
    the settlement check.
    """
    checks = [g.settlement_check for g in geneses if g.settlement_check is not None]
    assert len(checks) <= 1, "two components check settlements"
    batches = [g.batch_check for g in geneses if g.batch_check is not None]
    assert len(batches) <= 1, "two components check batches"
    for genesis in geneses:
        for account, amount in genesis.mints:
            exchange.ledger.mint(account, amount)
        if genesis.oracle_terms is not None:
            exchange.terms = genesis.oracle_terms
        if genesis.reveal_deadline_s is not None:
            exchange.reveal_deadline_s = genesis.reveal_deadline_s
    return Opening(
        settlement_check=checks[0] if checks else refuse_settlements,
        batch_check=batches[0] if batches else None,
        faulty_replicas=frozenset().union(*(g.faulty_replicas for g in geneses)),
        faults_scheduled=any(g.faults_scheduled for g in geneses),
    )


class Component:
    """Base of everything that plugs into a run; every hook does nothing by default."""

    def __init__(self, sim: Host) -> None:
        self.sim = sim

    def genesis(self) -> Genesis:
        """What this component adds before the chain starts (nothing by default)."""
        return Genesis()

    def start(self) -> None:
        """Register simpy processes (called once, at time 0)."""

    def propose(self, proposer: int) -> list[Tx]:
        """Transactions for the block ``proposer`` is closing now."""
        return []

    def before_commit(self, block: Block) -> None:
        """The canonical chain is about to execute ``block`` (its state is still the old one)."""

    def committed(self, block: Block, results: Sequence[TxResult]) -> None:
        """The canonical chain executed ``block``; ``results`` align with its transactions."""

    def metrics(self) -> dict[str, float]:
        """This component's metrics (SPEC section 4 names)."""
        return {}

    def tables(self, run_id: str) -> dict[str, pl.DataFrame]:
        """Extra tables this component contributes."""
        return {}

    def payouts(self) -> PayoutRecords | None:
        """What this component recorded of outcomes and bonds, for the payout audit (None: it
        settles nothing)."""
        return None


class OrderFlow(Component):
    """How an order travels from its trader to execution (one subclass per privacy mode).

    Args:
        sim: the host.
        privacy: ``[privacy]``.
        watchers: the adversary's nodes (spies, the front-runner's node, a front-running
            operator): every message that reaches one of them is seen by the adversary.

    Attributes:
        readers: callbacks run when the adversary first reads an order's content before it
            executes, with the order as the adversary decoded it from the message it holds
            (the front-runner acts on these).
        sightings: callbacks run when the adversary first holds any message of an order, with
            the message (the copycat acts on these; the record is for the spies' reports).
    """

    mode: str = "abstract"
    can_front_run: bool = True
    """Whether a reader can get an order of its own executed ahead of what it read."""

    def __init__(self, sim: Host, *, privacy: Privacy, watchers: frozenset[int]) -> None:
        super().__init__(sim)
        self.privacy = privacy
        self.watchers = watchers
        self.readers: list[Callable[[OrderRecord, Order], None]] = []
        self.sightings: list[Callable[[OrderRecord, Message], None]] = []
        self._listeners: tuple[int, ...] | None = None

    def listeners(self) -> tuple[int, ...]:
        """The nodes whose receipt of an order-bearing message matters: sequencers and watchers.

        Passed to :meth:`Host.spread`, so loss-free diffusion is computed and only these
        nodes (with the first hop and any stem nodes) are told, at their exact arrival times.
        """
        if self._listeners is None:
            self._listeners = tuple(sorted(set(self.sequencers()) | self.watchers))
        return self._listeners

    def sequencers(self) -> tuple[int, ...]:
        """The nodes that close blocks: the validators by default."""
        return self.sim.validators

    def proposer(self, slot: int) -> int:
        """The node that closes the block of ``slot``: the sequencers take turns."""
        sequencers = self.sequencers()
        return sequencers[slot % len(sequencers)]

    def submit(self, record: OrderRecord) -> None:
        """The trader at ``record.node`` sends ``record.order`` (at ``now``)."""
        raise NotImplementedError

    def seen_plaintext(self, record: OrderRecord, node: int) -> None:
        """Note that ``node`` (not the sender) now sees the order's content."""
        record.saw(node, self.sim.now)

    def public_order(self, record: OrderRecord) -> Order:
        """The order as it goes on the wire and on chain (``record.public``).

        With ``privacy.unlinkable_senders`` its trader is a one-time address minted in the
        exchange's shielded pool, so no public byte names the account; the order's record is
        found by this order too.
        """
        if self.privacy.unlinkable_senders and record.public is record.order:
            address = self.sim.exchange.pool.mint(record.order.trader, record.order_id)
            record.public = replace(record.order, trader=address)
            self.sim.by_key[record.public.key] = record
        return record.public

    def public_sender(self, record: OrderRecord) -> int:
        """The sender address on the order's envelope: its trader, or a one-time address."""
        return self.public_order(record).trader

    def overheard(self, record: OrderRecord, msg: Message, *, read: Order | None) -> None:
        """The adversary holds ``msg``, a message of ``record``, now.

        It sees the envelope (its size, the public sender); ``read`` is the order it decoded
        from the message's bytes (a plaintext, or a ciphertext it could decrypt), or None.
        ``record`` is the simulator's ground truth, used only to score what the adversary saw.
        """
        now = self.sim.now
        if math.isnan(record.adv_seen_t):
            record.adv_seen_t, record.adv_size = now, msg.size
            record.adv_sender = self.public_sender(record)
            for sighting in self.sightings:
                sighting(record, msg)
        if read is not None and math.isnan(record.adv_read_t) and not record.final:
            record.adv_read_t = now
            for reader in self.readers:
                reader(record, read)
