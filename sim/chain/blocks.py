"""Blocks, transactions and replicas: the chain's rules, apart from the clock.

A rotating sequencer closes a block every ``block_interval_s`` from what it holds and emits it
only when it is not empty. Blocks diffuse like any message. Every replica applies blocks strictly
in height order; a replica that sees a gap fetches the missing block by height, so loss delays a
replica but never makes it diverge.

A block is a sequence of transactions, one small frozen dataclass per kind, applied by
:func:`apply_tx` with ``match``. Applying the same blocks in the same order gives the same state
everywhere; the runner compares replicas' state hashes to prove it.

Assumption, stated once: the rotating sequencers agree on the chain tip among themselves (their
own consensus is not simulated), so a proposer always builds on the latest height and never
includes a transaction the chain already holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from market.batch import BatchResult
from market.crypto import CryptoMeter
from market.exchange import Exchange
from market.execute import Rejection
from market.oracle import Settlement
from market.threshold import DECRYPTION_SHARE_BYTES, DecryptionShare
from market.types import ORDER_WIRE_BYTES, Fill, Order

BLOCK_HEADER_BYTES = 96
"""Height, time, proposer, parent hash and state root, as a real header would carry."""


@dataclass(frozen=True, slots=True)
class OrderTx:
    """A plaintext order, executed at once against its market maker."""

    kind: ClassVar[str] = "order"
    """Gossiped as it is: a transaction is its own network message."""

    order: Order

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return tx_size(self)


@dataclass(frozen=True, slots=True)
class SealedTx:
    """An encrypted order on chain: its sender and size are public, its content is not yet.

    The sender is the account that pays: the order it hides executes for the sender, whatever
    its plaintext says. ``proof`` (``privacy.sender_proofs``) is a Schnorr proof binding the
    ciphertext to the sender and the epoch (:mod:`market.proofs`); empty without it.
    """

    kind: ClassVar[str] = "sealed"
    """Gossiped as it is: a transaction is its own network message."""

    sender: int
    epoch: int
    ciphertext: bytes
    proof: bytes = b""

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return tx_size(self)


@dataclass(frozen=True, slots=True)
class BatchTx:
    """A decrypted batch of orders, cleared together at one price per outcome.

    ``shares`` are the keypers' decryption shares that open each of the epoch's sealed orders,
    in chain order (:class:`~market.threshold.DecryptionShare`, each with its proof), published
    with the batch so that anyone can check its decryption; empty for a batch with none.
    """

    batch_id: int
    orders: tuple[Order, ...]
    shares: tuple[tuple[DecryptionShare, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class CommitTx:
    """A commitment to a hidden order; the trader's deposit is escrowed until it reveals."""

    kind: ClassVar[str] = "commit"
    """Gossiped as it is: a transaction is its own network message."""

    trader: int
    commitment: bytes
    deposit: int

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return tx_size(self)


@dataclass(frozen=True, slots=True)
class RevealTx:
    """The order behind a commitment, with its salt; executed if the commitment opens."""

    kind: ClassVar[str] = "reveal"
    """Gossiped as it is: a transaction is its own network message."""

    order: Order
    salt: bytes
    commitment: bytes

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return tx_size(self)


@dataclass(frozen=True, slots=True)
class ForfeitTx:
    """A commitment not revealed in time: its deposit goes to the treasury."""

    commitment: bytes


@dataclass(frozen=True, slots=True)
class CloseTx:
    """Trading in a market stops."""

    market: int


@dataclass(frozen=True, slots=True)
class SettleTx:
    """A market's outcome with the evidence that justifies it."""

    kind: ClassVar[str] = "oracle"
    """Gossiped as it is: a transaction is its own network message."""

    settlement: Settlement

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return tx_size(self)


Tx = OrderTx | SealedTx | BatchTx | CommitTx | RevealTx | ForfeitTx | CloseTx | SettleTx
TxResult = Fill | Rejection | BatchResult | bool | None


def tx_size(tx: Tx) -> int:
    """Bytes a transaction takes on the wire."""
    match tx:
        case OrderTx():
            return ORDER_WIRE_BYTES
        case SealedTx(ciphertext=ciphertext, proof=proof):
            return 4 + 4 + len(ciphertext) + len(proof)
        case BatchTx(orders=orders, shares=shares):
            opened = sum(2 + DECRYPTION_SHARE_BYTES * len(s) for s in shares)
            return 8 + opened + ORDER_WIRE_BYTES * len(orders)
        case CommitTx():
            return 4 + 32 + 8
        case RevealTx():
            return ORDER_WIRE_BYTES + 16 + 32
        case ForfeitTx():
            return 32
        case CloseTx():
            return 4
        case SettleTx(settlement=s):
            return 8 + s.evidence_bytes()
    raise AssertionError(tx)


@dataclass(frozen=True, slots=True)
class Block:
    """One block: height 0, 1, 2, ... without gaps, its time, proposer and transactions."""

    height: int
    t: float
    proposer: int
    txs: tuple[Tx, ...]

    kind: ClassVar[str] = "block"
    """Blocks diffuse as they are: a block is its own network message."""

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return BLOCK_HEADER_BYTES + sum(tx_size(tx) for tx in self.txs)


SettlementCheck = Callable[[Settlement], bool]
"""Whether a replica accepts a settlement's evidence (quorum, signatures, certificate)."""


class BatchCheck(Protocol):
    """How every replica checks the encrypted order flow's transactions."""

    def sealed_ok(self, tx: SealedTx) -> bool:
        """Whether a sealed order may join its epoch (its sender's proof, where one is due)."""
        ...

    def __call__(self, tx: BatchTx, sealed: Sequence[tuple[int, bytes]]) -> bool:
        """Whether a decrypted batch is the one the epoch's ``(sender, ciphertext)`` give."""
        ...


def apply_tx(
    exchange: Exchange,
    tx: Tx,
    *,
    settlement_ok: SettlementCheck,
    t: float,
    batch_ok: BatchCheck | None = None,
    meter: CryptoMeter | None = None,
) -> TxResult:
    """Apply one transaction of a block made at ``t`` to ``exchange``; returns what it did.

    The block's time is the chain's clock: commitments record it, and reveal deadlines and
    forfeits are judged by it, on every replica alike. With ``batch_ok`` a decrypted batch is
    executed only if it checks against the epoch's sealed orders on chain (False: refused), and
    a sealed order joins its epoch only if its proof checks (False: refused); without it (a
    counterfactual replay, a chain with no encrypted order flow) both are trusted.
    ``meter`` counts the node's own checks (a reveal's commitment); a replay passes none.
    """
    match tx:
        case OrderTx(order=order):
            return exchange.execute(order)
        case SealedTx(sender=sender, epoch=epoch, ciphertext=ciphertext):
            if batch_ok is not None and not batch_ok.sealed_ok(tx):
                return False
            exchange.sealed.setdefault(epoch, []).append((sender, ciphertext))
            return None
        case BatchTx(batch_id=epoch, orders=orders):
            if batch_ok is not None and not batch_ok(tx, exchange.sealed.get(epoch, ())):
                return False
            return exchange.execute_batch(orders)
        case CommitTx(trader=trader, commitment=commitment, deposit=deposit):
            return exchange.commit(trader, commitment, deposit, t=t)
        case RevealTx(order=order, salt=salt, commitment=commitment):
            return exchange.reveal(order, salt, commitment, t=t, meter=meter)
        case ForfeitTx(commitment=commitment):
            return exchange.forfeit(commitment, t=t)
        case CloseTx(market=market):
            exchange.close(market)
            return None
        case SettleTx(settlement=settlement):
            accountable = settlement.kind == "evidence"  # taken on a settled market too
            settled = exchange.ledger.is_settled(settlement.market)
            if settlement_ok(settlement) and (accountable or not settled):
                exchange.settle(settlement)
                return True
            return False
    raise AssertionError(tx)


def apply_block(
    exchange: Exchange,
    block: Block,
    *,
    settlement_ok: SettlementCheck,
    batch_ok: BatchCheck | None = None,
    meter: CryptoMeter | None = None,
) -> list[TxResult]:
    """Apply every transaction of ``block`` in order (see :func:`apply_tx`)."""
    return [
        apply_tx(
            exchange, tx, settlement_ok=settlement_ok, t=block.t, batch_ok=batch_ok, meter=meter
        )
        for tx in block.txs
    ]


def order_priority(order: Order, arrival: float) -> tuple[int, float, int, int]:
    """Sort key of the sequencer: highest priority fee first, then earliest arrival."""
    return (-order.priority_fee, arrival, order.trader, order.nonce)


@dataclass(slots=True)
class Replica:
    """A node's copy of the exchange, applying blocks strictly in height order.

    Attributes:
        node: the node holding this replica.
        exchange: its state.
        settlement_ok: how it checks a settlement's evidence before paying out.
        batch_ok: how it checks a decrypted batch before executing it (None: no batches).
        meter: the run's protocol meter, counting the replica's own checks.
        next_height: the height it needs next.
        pending: blocks received ahead of a gap.
    """

    node: int
    exchange: Exchange
    settlement_ok: SettlementCheck
    batch_ok: BatchCheck | None = None
    meter: CryptoMeter | None = None
    next_height: int = 0
    pending: dict[int, Block] = field(default_factory=dict)

    def receive(self, block: Block) -> int:
        """Take a block; apply it and any pending successors in order. Returns blocks applied."""
        if block.height < self.next_height:
            return 0
        self.pending[block.height] = block
        applied = 0
        while self.next_height in self.pending:
            ready = self.pending.pop(self.next_height)
            apply_block(
                self.exchange,
                ready,
                settlement_ok=self.settlement_ok,
                batch_ok=self.batch_ok,
                meter=self.meter,
            )
            self.next_height += 1
            applied += 1
        return applied

    def missing(self, known_height: int) -> int | None:
        """The height to fetch when blocks up to ``known_height`` exist, or None."""
        if self.next_height <= known_height and self.next_height not in self.pending:
            return self.next_height
        return None
