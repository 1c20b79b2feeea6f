"""Blocks and replicas: order of execution, catch-up by height, no divergence."""

from __future__ import annotations

import itertools

from market.exchange import Exchange, Settlement, maker_account, maker_funding
from market.ledger import Ledger
from market.lmsr import LMSR
from market.types import MICRO, Order
from sim.chain import Block, Replica, build_block, order_priority, settlement_valid

REPORTERS = frozenset({100, 101, 102})


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
    return [
        Block(0, 2.0, 100, orders=(_order(0, 0), _order(1, 1, 1))),
        Block(1, 4.0, 101, orders=(_order(2, 2),)),
        Block(2, 6.0, 102, closes=(0,), settlements=(Settlement(0, 1, (100, 101)),)),
    ]


def test_replicas_applying_blocks_in_any_arrival_order_agree() -> None:
    hashes = set()
    for arrival in itertools.permutations(_blocks()):
        replica = Replica(100, _exchange(), REPORTERS, 2)
        for block in arrival:
            replica.receive(block)
        assert replica.next_height == 3 and not replica.pending
        assert replica.exchange.ledger.conservation_error() == 0
        hashes.add(replica.exchange.state_hash())
    assert len(hashes) == 1


def test_a_gap_is_reported_until_the_missing_block_arrives() -> None:
    blocks = _blocks()
    replica = Replica(100, _exchange(), REPORTERS, 2)
    replica.receive(blocks[0])
    replica.receive(blocks[2])
    assert replica.missing(2) == 1
    assert replica.exchange.ledger.is_settled(0) is False  # block 2 waits for block 1
    replica.receive(blocks[1])
    assert replica.missing(2) is None
    assert replica.exchange.ledger.is_settled(0)


def test_a_duplicate_block_is_ignored() -> None:
    blocks = _blocks()
    replica = Replica(100, _exchange(), REPORTERS, 2)
    replica.receive(blocks[0])
    before = replica.exchange.state_hash()
    assert replica.receive(blocks[0]) == 0
    assert replica.exchange.state_hash() == before


def test_sequencer_orders_by_priority_fee_then_arrival() -> None:
    early, late, rich = _order(0, 0), _order(1, 1), _order(2, 2, fee=10)
    mempool = {early.key: (early, 1.0), late.key: (late, 2.0), rich.key: (rich, 3.0)}
    block = build_block(
        height=0,
        t=4.0,
        proposer=100,
        mempool=mempool,
        included={late.key},
        closes=(),
        settlements=(),
    )
    assert block is not None
    assert block.orders == (rich, early)
    assert order_priority(rich, 3.0) < order_priority(early, 1.0)


def test_an_empty_block_is_not_emitted() -> None:
    assert (
        build_block(
            height=0, t=1.0, proposer=1, mempool={}, included=set(), closes=(), settlements=()
        )
        is None
    )


def test_a_settlement_needs_a_quorum_of_distinct_reporters() -> None:
    assert settlement_valid(Settlement(0, 1, (100, 101)), reporters=REPORTERS, quorum=2)
    assert not settlement_valid(Settlement(0, 1, (100,)), reporters=REPORTERS, quorum=2)
    assert not settlement_valid(Settlement(0, 1, (100, 100)), reporters=REPORTERS, quorum=2)
    assert not settlement_valid(Settlement(0, 1, (100, 7)), reporters=REPORTERS, quorum=2)


def test_block_size_counts_its_orders_bytes() -> None:
    blocks = _blocks()
    assert blocks[0].size() - blocks[1].size() == 32
