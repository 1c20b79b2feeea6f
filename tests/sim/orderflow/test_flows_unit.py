"""Order-flow rules on the instant host: hand-written message timings, no simpy, milliseconds.

Nodes 0-3 are the validators (the sequencers), traders send from nodes 5 and 6, node 7 is a
spy. Every message takes :data:`HOP` seconds unless a test gives it another delay.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from market.accounts import ESCROW, ONE_TIME_BASE, TREASURY
from market.crypto import ecies_decrypt
from market.threshold import combine_secret, forged_share
from market.types import MICRO, Order, decode_compact, to_micro
from sim.chain.blocks import BatchTx, CommitTx, OrderTx, RevealTx, SealedTx
from sim.host.component import OrderFlow
from sim.host.instant import InstantHost, tiny_world
from sim.orderflow.commit_reveal import CommitReveal
from sim.orderflow.operator import Operator
from sim.orderflow.threshold import RELEASE_TIMEOUT_S, Threshold, epoch_aad
from sim.orderflow.transparent import Transparent
from sim.results.records import OrderRecord
from sim.runs import assembly
from sim.scenario import Scenario

HOP = 0.05
VALIDATORS = (0, 1, 2, 3)
TRADER_NODES = (5, 6)


def _scenario(**sections: dict[str, Any]) -> Scenario:
    data: dict[str, Any] = {
        "name": "unit",
        "seed": 3,
        "duration_s": 1000.0,
        "network": {"nodes": 8, "topology": "complete", "block_interval_s": 2.0},
        "market": {"count": 1, "liquidity_b": 50.0, "close_s": 900.0, "resolve_s": 950.0},
        "traders": {"informed": 0, "noise": 2, "budget": 100.0},
        "settlement": {"reporters": 4},
        "adversary": {"spy_fraction": 0.0},
    }
    for name, values in sections.items():
        data[name] = data.get(name, {}) | values
    return Scenario.model_validate(data)


def _host(flow: type[OrderFlow], latency: Any = HOP, **sections: dict[str, Any]) -> InstantHost:
    """An instant host running ``flow``, built as a run builds it (from ``privacy.order_flow``)."""
    sections["privacy"] = sections.get("privacy", {}) | {"order_flow": flow.mode}
    scenario = _scenario(**sections)
    world = tiny_world(
        scenario,
        reporters=VALIDATORS,
        spies=(7,),
        keypers=(4, 5, 6, 7, 0),
        operator=4,
        trader_nodes=TRADER_NODES,
    )
    host = InstantHost(scenario, world, latency=latency)
    host.plug(assembly.order_flow(host, scenario, world))
    host.start()
    return host


def _buy(trader: int, nonce: int, *, shares: float = 2.0, fee: float = 0.0) -> Order:
    return Order(trader, nonce, 0, 1, to_micro(shares), MICRO, to_micro(fee))


def _submit(host: InstantHost, order: Order) -> OrderRecord:
    return host.submit(order, node=TRADER_NODES[order.trader], kind="noise")


def _next_nonce(host: InstantHost) -> int:
    return len(host.records.orders)


# -- transparent -----------------------------------------------------------------------------


def test_transparent_order_reaches_the_mempools_and_executes_in_the_next_block() -> None:
    host = _host(Transparent)
    flow = host.orderflow
    assert isinstance(flow, Transparent)
    record = _submit(host, _buy(0, 0))
    host.run(until=HOP / 2)
    assert all(not flow.mempools.pools[v] for v in VALIDATORS)  # still on the wire
    host.run(until=1.0)
    assert all(order.key in flow.mempools.pools[v] for v in VALIDATORS for order in [record.order])
    assert record.first_seen_by in (*VALIDATORS, 6, 7) and record.t_first_seen == HOP
    block = host.close_block()
    assert block is not None and block.height == 0
    assert block.txs == (OrderTx(record.order),)
    assert record.status == "executed" and record.block == 0 and record.t_executed == 1.0
    assert record.t_sequencer == HOP  # its arrival at the proposer's mempool
    assert host.exchange.ledger.position(0, 0, 1) == to_micro(2.0)
    host.run(until=2.0)
    assert all(r.next_height == 1 for r in host.replicas.values())
    assert host.close_block() is None  # the order is on chain: no other proposer takes it again


def test_an_order_still_on_the_wire_waits_for_a_later_block() -> None:
    host = _host(Transparent, latency=1.5)
    record = _submit(host, _buy(0, 0))
    host.run(until=1.0)
    assert host.close_block() is None
    host.run(until=2.0)
    block = host.close_block()
    assert block is not None and block.txs == (OrderTx(record.order),)
    assert record.block == 0 and record.t_executed == 2.0


def test_transparent_proposer_orders_by_priority_fee_then_arrival() -> None:
    host = _host(Transparent)
    cheap_early = _submit(host, _buy(0, _next_nonce(host), fee=0.0))
    host.run(until=0.2)
    rich_late = _submit(host, _buy(1, _next_nonce(host), fee=0.5))
    host.run(until=0.4)
    cheap_late = _submit(host, _buy(1, _next_nonce(host), fee=0.0))
    host.run(until=1.0)
    block = host.close_block()
    assert block is not None
    assert [tx.order for tx in block.txs if isinstance(tx, OrderTx)] == [
        rich_late.order,
        cheap_early.order,
        cheap_late.order,
    ]
    # the fee pays for the better price: the rich order bought first, so it paid least per share
    assert rich_late.price < cheap_early.price < cheap_late.price


# -- operator -------------------------------------------------------------------------------------


def test_operator_reads_sealed_orders_alone_and_executes_them_in_its_next_block() -> None:
    host = _host(Operator, latency=0.3)
    assert host.sequencers == (4,)
    record = _submit(host, _buy(0, 0))
    assert record.wire_bytes >= 256  # padded ciphertext, not the 32 plaintext bytes
    host.run(until=0.2)
    assert host.close_block() is None  # still on its way to the operator
    host.run(until=1.0)
    assert record.first_seen_by == 4 and record.t_first_seen == 0.3
    block = host.close_block()
    assert block is not None and block.proposer == 4 and block.txs == (OrderTx(record.order),)
    assert record.status == "executed"
    assert record.adv_read_t != record.adv_read_t  # an honest operator: the adversary read nothing


def test_a_front_running_operator_reads_every_order_when_it_decrypts_it() -> None:
    host = _host(Operator, latency=0.3, adversary={"operator_frontruns": True})
    record = _submit(host, _buy(0, 0))
    host.run(until=1.0)
    assert record.adv_read_t == 0.3


# -- commit-reveal ------------------------------------------------------------------------------


def _cr_host(latency: Any = HOP) -> tuple[InstantHost, CommitReveal]:
    host = _host(CommitReveal, latency=latency, privacy={"reveal_deadline_s": 10.0, "deposit": 5.0})
    flow = host.orderflow
    assert isinstance(flow, CommitReveal)
    return host, flow


def _kinds(host: InstantHost) -> list[list[str]]:
    return [[type(tx).__name__ for tx in block.txs] for block, _ in host.blocks]


def test_commit_reveal_commits_then_reveals_then_executes() -> None:
    host, _flow = _cr_host()
    record = _submit(host, _buy(0, 0))
    host.run(until=1.0)
    assert record.first_seen_by == -1  # only a hash has travelled
    commit_block = host.close_block()
    assert commit_block is not None and isinstance(commit_block.txs[0], CommitTx)
    assert host.exchange.ledger.cash(ESCROW) == to_micro(5.0)
    host.run(until=2.0)  # the block reached the trader, who revealed; the reveal reached them
    reveal_block = host.close_block()
    assert reveal_block is not None and isinstance(reveal_block.txs[0], RevealTx)
    assert record.status == "executed" and record.block == 1
    assert host.exchange.ledger.cash(ESCROW) == 0  # the deposit came back
    assert record.first_seen_by >= 0  # the reveal is plaintext


def test_every_node_that_applies_a_reveal_checks_its_commitment_and_is_metered() -> None:
    host, _flow = _cr_host()
    _submit(host, _buy(0, 0))
    host.run(until=1.0)
    host.close_block()
    host.run(until=2.0)
    hashes = host.meter.ops.get("hash", 0)
    host.close_block()  # the reveal: the canonical chain opens the commitment
    host.run(until=3.0)  # and so does every replica the block reaches
    assert all(r.next_height == 2 for r in host.replicas.values())
    assert host.meter.ops.get("hash", 0) - hashes == 1 + len(host.replicas)


def test_a_reveal_that_does_not_open_its_commitment_is_rejected() -> None:
    host, flow = _cr_host()
    record = _submit(host, _buy(0, 0))
    host.run(until=1.0)
    host.close_block()
    [commitment] = flow.waiting
    honest = flow.waiting[commitment]
    # the trader reveals the right order with another salt (a reveal not matching its hash)
    flow.waiting[commitment] = RevealTx(honest.order, bytes(16), commitment)
    host.run(until=2.0)
    block = host.close_block()
    assert block is not None and isinstance(block.txs[0], RevealTx)
    assert record.status == "rejected" and record.reason == "invalid"
    assert host.exchange.ledger.position(0, 0, 1) == 0
    assert commitment in host.exchange.commitments  # the deposit stays in escrow
    assert host.exchange.ledger.cash(ESCROW) == to_micro(5.0)


def test_the_deposit_behind_an_invalid_reveal_is_forfeited_after_the_deadline() -> None:
    host, flow = _cr_host()
    _submit(host, _buy(0, 0))
    host.run(until=1.0)
    host.close_block()
    [commitment] = flow.waiting
    flow.waiting[commitment] = RevealTx(flow.waiting[commitment].order, bytes(16), commitment)
    for t in range(2, 30, 2):
        host.run(until=float(t))
        host.close_block()
    assert commitment not in host.exchange.commitments
    assert host.exchange.ledger.cash(TREASURY) == to_micro(5.0)


def test_a_reveal_arriving_after_the_forfeit_is_not_executed() -> None:
    # the commitment's block reaches the trader at once, its reveal takes 20 s to the validators
    host, _flow = _cr_host(
        latency=lambda kind, _src, _dst: 20.0 if kind == "reveal" else HOP,
    )
    record = _submit(host, _buy(0, 0))
    host.run(until=1.0)
    host.close_block()  # the commitment, at t = 1: the deadline is t = 11
    for t in (4.0, 8.0, 12.0):
        host.run(until=t)
        host.close_block()
    assert _kinds(host)[-1] == ["ForfeitTx"]
    assert record.status == "rejected" and record.reason == "forfeited"
    assert host.exchange.ledger.cash(TREASURY) == to_micro(5.0)
    host.run(until=30.0)  # the reveal is in every mempool now
    assert host.close_block() is None
    assert host.exchange.ledger.position(0, 0, 1) == 0


def test_a_reveal_made_after_the_deadline_is_rejected_late_and_its_deposit_forfeited() -> None:
    # the commitment's block reaches the trader only 10.2 s later, after the 10 s deadline
    host, _flow = _cr_host(
        latency=lambda kind, _src, dst: 10.2 if kind == "block" and dst == 5 else HOP,
    )
    record = _submit(host, _buy(0, 0))
    host.run(until=1.0)
    host.close_block()  # the commitment, at t = 1: the deadline is t = 11
    host.run(until=12.0)  # the trader revealed at 11.2; its reveal reached the validators
    assert record.status == "pending"
    block = host.close_block()
    assert block is not None and any(isinstance(tx, RevealTx) for tx in block.txs)
    assert record.status == "rejected" and record.reason == "late"
    assert host.exchange.ledger.position(0, 0, 1) == 0  # never executed
    assert host.exchange.ledger.cash(TREASURY) == to_micro(5.0)  # the deposit is forfeited
    # every replica judged it so, by the block's time
    host.run(until=12.5)
    for replica in host.replicas.values():
        assert replica.exchange.ledger.cash(TREASURY) == to_micro(5.0)


def test_a_reveal_within_the_deadline_executes_even_one_block_before_it() -> None:
    host, _flow = _cr_host(
        latency=lambda kind, _src, dst: 9.0 if kind == "block" and dst == 5 else HOP,
    )
    record = _submit(host, _buy(0, 0))
    host.run(until=1.0)
    host.close_block()  # the deadline is t = 11
    host.run(until=11.0)  # revealed at 10.0, at the validators at 10.1; a block at 11 is in time
    host.close_block()
    assert record.status == "executed"


def test_reveal_delay_and_failure_follow_their_settings() -> None:
    host = _host(
        CommitReveal,
        latency=HOP,
        privacy={"reveal_deadline_s": 1000.0, "reveal_delay_s": 20.0, "reveal_failure": 0.25},
    )
    records = [_submit(host, _buy(i % 2, i)) for i in range(40)]
    host.run(until=1.0)
    host.close_block()  # every commitment at t = 1
    revealed_at: list[float] = []
    for t in range(2, 400, 2):
        host.run(until=float(t))
        host.close_block()
    for r in records:
        if r.status == "executed":
            revealed_at.append(r.t_sequencer - 1.0 - 2 * HOP)
    failed = [r for r in records if r.status == "pending"]
    # about a quarter never reveal (binomial: 40 trials), the rest after an exponential delay
    assert 3 <= len(failed) <= 18
    assert len(revealed_at) + len(failed) == len(records)
    mean = sum(revealed_at) / len(revealed_at)
    assert 10.0 < mean < 35.0  # mean 20 s (plus under one block of waiting), 22-37 samples


# -- threshold ------------------------------------------------------------------------------------


def _th_host(
    *, lost_shares_from: frozenset[int] = frozenset(), colluding: int = 0, cheating: int = 0
) -> tuple[InstantHost, Threshold]:
    def latency(kind: str, src: int, _dst: int) -> float | None:
        return None if kind == "share" and src in lost_shares_from else HOP

    host = _host(
        Threshold,
        latency=latency,
        privacy={"keypers": 5, "threshold": 3, "batch_interval_s": 30.0, "pad_to_bytes": 0},
        adversary={
            "colluding_keypers": colluding,
            "cheating_keypers": cheating,
            "spy_fraction": 0.0,
        },
    )
    flow = host.orderflow
    assert isinstance(flow, Threshold)
    return host, flow


def _slots(host: InstantHost, until: float) -> None:
    t = host.now
    while t < until:
        t += 2.0
        host.run(until=t)
        host.close_block()


def test_threshold_shares_decrypt_the_epoch_batch() -> None:
    host, flow = _th_host()
    record = _submit(host, _buy(0, 0))
    assert record.batch_id == 0  # made at t = 0, it goes to the epoch closing at 30 s
    _slots(host, 34.0)
    kinds = _kinds(host)
    assert kinds[0] == ["SealedTx"]
    assert kinds[-1] == ["BatchTx"]
    assert 0 in flow.released
    assert record.status == "executed"


def _forging(flow: Threshold, forge: Any) -> None:
    """Make the proposer's batch derivation return ``forge(orders)`` instead of the truth."""
    honest = flow._open
    flow._open = lambda epoch, opening: forge(honest(epoch, opening))  # type: ignore[method-assign]


def test_every_replica_refuses_a_batch_with_a_forged_order() -> None:
    host, flow = _th_host()
    record = _submit(host, _buy(0, 0))
    forged = _buy(1, 99)  # an order nobody sealed
    _forging(flow, lambda orders: (*orders, forged))
    _slots(host, 34.0)
    [batch] = [tx for block, _ in host.blocks for tx in block.txs if isinstance(tx, BatchTx)]
    assert forged in batch.orders
    assert host.exchange.ledger.position(1, 0, 1) == 0  # the forged order never executed
    assert host.exchange.ledger.position(0, 0, 1) == 0  # nor, in a refused batch, the real one
    host.run(until=36.0)
    for replica in host.replicas.values():
        assert replica.exchange.state_hash() == host.exchange.state_hash()
    assert record.status == "pending"


def test_every_replica_refuses_a_batch_missing_an_order_or_with_a_forged_share() -> None:
    for forge in (lambda orders: orders[1:], lambda orders: tuple(reversed(orders))):
        host, flow = _th_host()
        _submit(host, _buy(0, 0))
        _submit(host, _buy(1, 1))
        _forging(flow, forge)
        _slots(host, 34.0)
        assert host.exchange.ledger.position(0, 0, 1) == 0
        assert host.exchange.ledger.position(1, 0, 1) == 0
    host, flow = _th_host()
    _submit(host, _buy(0, 0))
    _slots(host, 31.0)  # the shares are released, not yet batched
    [(epoch, opening)] = list(flow.released.items())
    sealed = [(tx.sender, tx.ciphertext) for tx in flow.onchain[epoch]]
    orders = flow._open(epoch, opening)
    assert flow.verifier(BatchTx(epoch, orders, opening.shares), sealed)
    [shares] = opening.shares
    forged = ((forged_share(shares[0]), *shares[1:]),)
    assert not flow.verifier(BatchTx(epoch, orders, forged), sealed)  # a share that fails
    # the right point with a broken proof still opens the order, and is still refused
    unproven = replace(shares[0], proof=bytes(64))
    assert not flow.verifier(BatchTx(epoch, orders, ((unproven, *shares[1:]),)), sealed)
    fewer = (shares[1:],)
    assert not flow.verifier(BatchTx(epoch, orders, fewer), sealed)  # too few to open it
    assert not flow.verifier(BatchTx(epoch, (), ((),)), sealed)  # withheld: the order dropped


def test_the_replicas_check_is_metered_once_per_replica() -> None:
    host, flow = _th_host()
    _submit(host, _buy(0, 0))
    _slots(host, 29.0)  # blocks up to t = 30, when the epoch closes
    host.run(until=31.0)  # the shares are checked, and reach the sequencers
    before = host.meter.total_ops()
    host.close_block()  # the batch: the proposer opens it, the canonical chain checks it
    host.run(until=32.0)  # the block reaches every replica, which checks it too
    opened = [tally for key, (_, tally) in flow.verifier.memo.items() if key[0] == "open"]
    checked = [(ok, tally) for key, (ok, tally) in flow.verifier.memo.items() if key[0] == "batch"]
    [proposer], [(ok, check)] = opened, checked
    # opening: 3 multiplications by λ_j, a KDF and an AEAD call; checking adds 3 proofs of 4
    assert proposer.ops == {"scalar_mult": 3, "kdf": 1, "aead": 1}
    assert ok and check.ops == {"scalar_mult": 3 * 4 + 3, "hash": 3, "kdf": 1, "aead": 1}
    checks = 1 + len(host.replicas)
    assert host.meter.total_ops() - before == proposer.total_ops() + checks * check.total_ops()


def _dkg_ops(keypers: int, threshold: int) -> int:
    """Operations metered for one epoch's DKG by a committee of ``keypers``."""
    host, _ = _th_host()
    privacy = host.orderflow.privacy.model_copy(update={"keypers": keypers, "threshold": threshold})
    flow = Threshold(
        host,
        privacy=privacy,
        watchers=frozenset(),
        keypers=tuple(range(keypers)),
        colluding_keypers=0,
        reader=7,
    )
    before = host.meter.total_ops()
    flow.epoch_key(5)
    return host.meter.total_ops() - before


def test_threshold_key_generation_costs_grow_as_keypers_squared() -> None:
    # every ordered pair of keypers moves a sealed share that its recipient opens and checks:
    # doubling the committee (threshold in proportion) must roughly quadruple the work, or
    # more (each check also grows with the threshold), where a linear count would double it
    ops = {n: _dkg_ops(n, (2 * n) // 3) for n in (6, 12, 24)}
    for small, large in ((6, 12), (12, 24)):
        assert ops[large] / ops[small] > 3.5, ops
    # and at 7 keypers, threshold 5, every pair's share is in the count: 42 pairs of at
    # least 8 multiplications, far above the 55 operations a shortcut's count would give
    assert _dkg_ops(7, 5) >= 42 * 8


def test_threshold_below_threshold_shares_do_not_decrypt() -> None:
    # keypers 4, 5, 6, 7, 0 in committee order; the first, 4, aggregates: only its own share
    # and 0's arrive
    host, flow = _th_host(lost_shares_from=frozenset({5, 6, 7}))
    record = _submit(host, _buy(0, 0))
    _slots(host, 30.0 + RELEASE_TIMEOUT_S + 4.0)
    assert len(flow.shares[0]) == 2
    assert 0 not in flow.released
    assert not any(isinstance(tx, BatchTx) for block, _ in host.blocks for tx in block.txs)
    assert 0 in flow.failed
    assert record.status == "rejected" and record.reason == "undecryptable"
    assert record.first_seen_by == -1  # nobody ever read it


def test_threshold_exactly_threshold_shares_decrypt() -> None:
    host, flow = _th_host(lost_shares_from=frozenset({5, 6}))
    record = _submit(host, _buy(0, 0))
    _slots(host, 34.0)
    assert len(flow.shares[0]) == 3 and 0 in flow.released
    assert record.status == "executed"


def test_threshold_a_sealed_order_on_chain_after_its_epoch_closed_is_late() -> None:
    host, _flow = _th_host()
    host.run(until=23.0)  # epoch 0 closes at 30: an order made now still goes to epoch 0
    record = _submit(host, _buy(0, _next_nonce(host)))
    assert record.batch_id == 0
    host.run(until=31.0)  # no block closed meanwhile: it reaches the chain too late
    host.close_block()
    assert record.status == "rejected" and record.reason == "late"
    assert not any(isinstance(tx, SealedTx) for block, _ in host.blocks for tx in block.txs)


def test_a_sealed_order_nobody_can_share_is_rejected_and_the_rest_of_its_batch_opens() -> None:
    host, flow = _th_host()
    spoiled: list[OrderRecord] = []
    deliver = flow.receive

    def receive(node: int, sender: int, msg: Any) -> None:
        # the second order's ephemeral point arrives off the curve: no keyper can share it
        if isinstance(msg, SealedTx) and flow.owner.get(msg) in spoiled:
            broken = replace(msg, ciphertext=b"\x04" + msg.ciphertext[1:])
            flow.owner[broken] = flow.owner[msg]
            msg = broken
        deliver(node, sender, msg)

    flow.receive = receive  # type: ignore[method-assign]
    good = _submit(host, _buy(0, 0))
    spoiled.append(_submit(host, _buy(1, 1)))
    _slots(host, 34.0)
    assert good.status == "executed"
    assert spoiled[0].status == "rejected" and spoiled[0].reason == "invalid"
    [batch] = [tx for block, _ in host.blocks for tx in block.txs if isinstance(tx, BatchTx)]
    assert [len(shares) for shares in batch.shares] == [3, 0]  # none published for it
    for replica in host.replicas.values():
        assert replica.exchange.state_hash() == host.exchange.state_hash()


def test_a_cheating_keyper_is_named_and_the_batch_still_opens() -> None:
    # keyper 5 of 5 cheats: its DKG deal to keyper 1 is bad, and its decryption shares forged
    host, flow = _th_host(cheating=1)
    records = [_submit(host, _buy(0, 0)), _submit(host, _buy(1, 1))]
    _slots(host, 34.0)
    assert flow.key is not None and flow.key.complaints == ((1, 5),)
    assert 5 not in flow.key.qualified  # excluded as a dealer, the key formed without it
    assert [r.status for r in records] == ["executed", "executed"]
    # the aggregator checked all five share sets: keyper 5's two shares failed their proofs
    assert len(flow.shares[0]) == 5
    assert all(s.keyper != 5 for shares in flow.released[0].shares for s in shares)
    assert flow.metrics()["privacy.cheating_shares_detected"] == 1 + 2
    assert flow.metrics()["privacy.failed_batch_fraction"] == 0.0


def test_too_many_cheating_keypers_fail_the_batch_visibly() -> None:
    # 3 of 5 cheat: 2 honest shares, threshold 3
    host, flow = _th_host(cheating=3)
    record = _submit(host, _buy(0, 0))
    _slots(host, 30.0 + RELEASE_TIMEOUT_S + 4.0)
    assert record.status == "rejected" and record.reason == "undecryptable"
    assert flow.metrics()["privacy.failed_batch_fraction"] == 1.0
    assert flow.metrics()["privacy.cheating_shares_detected"] == 3 + 3
    assert not any(isinstance(tx, BatchTx) for block, _ in host.blocks for tx in block.txs)


def test_threshold_fewer_colluding_keypers_than_the_threshold_read_nothing() -> None:
    host, flow = _th_host(colluding=2)
    record = _submit(host, _buy(0, 0))
    _slots(host, 4.0)
    assert flow.adversary_secret is None
    assert record.adv_seen_t == record.adv_seen_t  # it saw the envelope on chain
    assert record.adv_read_t != record.adv_read_t  # never its content


def test_threshold_colluding_keypers_at_the_threshold_read_orders_early() -> None:
    host, flow = _th_host(colluding=3)
    record = _submit(host, _buy(0, 0))
    _slots(host, 4.0)
    assert flow.adversary_secret is not None
    assert record.adv_read_t < flow.close_time(0)


# -- unlinkable senders ----------------------------------------------------------------------


def _public_traders(host: InstantHost, flow: OrderFlow) -> list[int]:
    """Every trader id a public byte of the run carries: envelopes, chain, and decrypted bytes."""
    ids: list[int] = []
    for block, _ in host.blocks:
        for tx in block.txs:
            match tx:
                case OrderTx(order=order) | RevealTx(order=order):
                    ids.append(order.trader)
                case CommitTx(trader=trader):
                    ids.append(trader)
                case SealedTx(sender=sender, epoch=epoch, ciphertext=blob):
                    ids.append(sender)
                    assert isinstance(flow, Threshold)
                    assert flow.key is not None
                    secret = combine_secret(flow.key, flow.key.secret_shares)
                    plain = decode_compact(ecies_decrypt(secret, blob, aad=epoch_aad(epoch)))
                    ids.append(plain.trader)  # what the ciphertext hides
                case BatchTx(orders=orders):
                    ids.extend(o.trader for o in orders)
    if isinstance(flow, Operator):
        ids.extend(decode_compact(ecies_decrypt(flow.secret, blob)).trader for blob in flow.owner)
    return ids


@pytest.mark.parametrize("flow_type", [Transparent, Operator, CommitReveal, Threshold])
def test_unlinkable_senders_put_a_one_time_address_on_every_public_byte(
    flow_type: type[OrderFlow],
) -> None:
    privacy: dict[str, Any] = {"unlinkable_senders": True, "pad_to_bytes": 0}
    if flow_type is Threshold:
        privacy |= {"keypers": 5, "threshold": 3, "batch_interval_s": 30.0}
    host = _host(flow_type, privacy=privacy)
    flow = host.orderflow
    records = [_submit(host, _buy(trader, trader)) for trader in (0, 1)]
    _slots(host, 40.0)
    assert [r.status for r in records] == ["executed", "executed"]
    carried = _public_traders(host, flow)
    addresses = {r.public.trader for r in records}
    assert len(addresses) == 2 and min(addresses) >= ONE_TIME_BASE
    assert addresses <= set(carried)
    assert not {0, 1} & set(carried)  # no public byte names either account
    for r in records:  # the trades were booked to the accounts behind the addresses
        assert host.exchange.ledger.position(r.order.trader, 0, 1) == r.order.shares
        assert host.exchange.ledger.position(r.public.trader, 0, 1) == 0
    for replica in host.replicas.values():
        assert replica.exchange.state_hash() == host.exchange.state_hash()
