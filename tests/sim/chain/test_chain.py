"""Blocks and replicas: transactions, order of execution, catch-up by height, no divergence."""

from __future__ import annotations

import itertools

from market.accounts import ESCROW, TREASURY, maker_account
from market.crypto import commit
from market.exchange import Exchange, maker_funding
from market.ledger import Ledger
from market.lmsr import LMSR
from market.oracle import Settlement
from market.types import MICRO, Fill, Order
from sim.chain.blocks import (
    BatchTx,
    Block,
    CloseTx,
    CommitTx,
    ForfeitTx,
    OrderTx,
    Replica,
    RevealTx,
    SettleTx,
    apply_block,
    order_priority,
)
from sim.settlement import majority_ok

REPORTERS = frozenset({100, 101, 102})
SALT = bytes(range(16))


def _ok(settlement: Settlement) -> bool:
    return majority_ok(settlement, reporters=REPORTERS, needed=2)


def _exchange() -> Exchange:
    makers = [LMSR.create(outcomes=2, b=10.0)]
    ledger = Ledger()
    for trader in range(3):
        ledger.mint(trader, 100 * MICRO)
    ledger.mint(maker_account(0), maker_funding(makers[0]))
    return Exchange(makers, ledger, fee_per_share=0)


def _order(trader: int, nonce: int, outcome: int = 0, fee: int = 0) -> Order:
    return Order(trader, nonce, 0, outcome, 2 * MICRO, MICRO, fee)


def _blocks() -> list[Block]:
    hidden = _order(2, 9)
    commitment = commit(hidden.encode(), SALT)
    return [
        Block(0, 2.0, 100, (OrderTx(_order(0, 0)), OrderTx(_order(1, 1, 1)))),
        Block(1, 4.0, 101, (OrderTx(_order(2, 2)), CommitTx(2, commitment, 5 * MICRO))),
        Block(
            2,
            5.0,
            102,
            (RevealTx(hidden, SALT, commitment), BatchTx(0, (_order(0, 3), _order(1, 4, 1)))),
        ),
        Block(3, 6.0, 100, (CloseTx(0), SettleTx(Settlement(0, 1, (100, 101))))),
    ]


def test_replicas_applying_blocks_in_any_arrival_order_agree() -> None:
    hashes = set()
    for arrival in itertools.permutations(_blocks()):
        replica = Replica(100, _exchange(), _ok)
        for block in arrival:
            replica.receive(block)
        assert replica.next_height == 4 and not replica.pending
        assert replica.exchange.ledger.conservation_error() == 0
        hashes.add(replica.exchange.state_hash())
    assert len(hashes) == 1


def test_a_gap_is_reported_until_the_missing_block_arrives() -> None:
    blocks = _blocks()
    replica = Replica(100, _exchange(), _ok)
    replica.receive(blocks[0])
    replica.receive(blocks[3])
    assert replica.missing(3) == 1
    assert replica.exchange.ledger.is_settled(0) is False  # block 3 waits for blocks 1 and 2
    replica.receive(blocks[2])
    replica.receive(blocks[1])
    assert replica.missing(3) is None
    assert replica.exchange.ledger.is_settled(0)


def test_a_duplicate_block_is_ignored() -> None:
    blocks = _blocks()
    replica = Replica(100, _exchange(), _ok)
    replica.receive(blocks[0])
    before = replica.exchange.state_hash()
    assert replica.receive(blocks[0]) == 0
    assert replica.exchange.state_hash() == before


def test_a_revealed_commitment_refunds_its_deposit_and_executes() -> None:
    exchange = _exchange()
    blocks = _blocks()
    for block in blocks[:2]:
        apply_block(exchange, block, settlement_ok=_ok)
    assert exchange.ledger.cash(ESCROW) == 5 * MICRO
    reveal, _ = apply_block(exchange, blocks[2], settlement_ok=_ok)
    assert isinstance(reveal, Fill)
    assert exchange.ledger.cash(ESCROW) == 0 and not exchange.commitments


def test_a_forged_reveal_is_rejected_and_the_deposit_forfeited() -> None:
    exchange = _exchange()
    exchange.reveal_deadline_s = 10.0
    hidden = _order(2, 9)
    commitment = commit(hidden.encode(), SALT)
    forged = _order(2, 9, outcome=1)
    block = Block(
        0, 1.0, 100, (CommitTx(2, commitment, 5 * MICRO), RevealTx(forged, SALT, commitment))
    )
    _, reveal = apply_block(exchange, block, settlement_ok=_ok)
    assert reveal.reason == "invalid"  # type: ignore[union-attr]
    early = Block(1, 5.0, 100, (ForfeitTx(commitment),))
    assert apply_block(exchange, early, settlement_ok=_ok) == [False]  # within the deadline
    late = Block(2, 11.5, 100, (ForfeitTx(commitment),))
    assert apply_block(exchange, late, settlement_ok=_ok) == [True]
    assert exchange.ledger.cash(TREASURY) == 5 * MICRO
    assert exchange.ledger.cash(2) == 95 * MICRO
    assert exchange.ledger.conservation_error() == 0


def test_orders_after_close_are_rejected() -> None:
    exchange = _exchange()
    block = Block(0, 1.0, 100, (CloseTx(0), OrderTx(_order(0, 0)), BatchTx(1, (_order(1, 1),))))
    _, single, batch = apply_block(exchange, block, settlement_ok=_ok)
    assert single.reason == "closed"  # type: ignore[union-attr]
    assert [r.reason for r in batch.rejections] == ["closed"]  # type: ignore[union-attr]


def test_a_settlement_without_quorum_pays_nothing() -> None:
    exchange = _exchange()
    block = Block(0, 1.0, 100, (OrderTx(_order(0, 0)), SettleTx(Settlement(0, 0, (100,)))))
    _, settled = apply_block(exchange, block, settlement_ok=_ok)
    assert settled is False and not exchange.ledger.is_settled(0)


def test_priority_fee_first_then_arrival() -> None:
    early, rich = _order(0, 0), _order(2, 2, fee=10)
    assert order_priority(rich, 3.0) < order_priority(early, 1.0)
    assert order_priority(early, 1.0) < order_priority(_order(1, 1), 2.0)


def test_a_settlement_needs_a_quorum_of_distinct_reporters() -> None:
    assert _ok(Settlement(0, 1, (100, 101)))
    assert not _ok(Settlement(0, 1, (100,)))
    assert not _ok(Settlement(0, 1, (100, 100)))
    assert not _ok(Settlement(0, 1, (100, 7)))


def test_block_size_counts_its_transactions_bytes() -> None:
    one = Block(0, 1.0, 1, (OrderTx(_order(0, 0)),))
    two = Block(0, 1.0, 1, (OrderTx(_order(0, 0)), OrderTx(_order(0, 1))))
    assert two.size - one.size == 32
