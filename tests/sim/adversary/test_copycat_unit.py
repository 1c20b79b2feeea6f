"""The copycat and sender proofs on the instant host: threshold order flow, hand-made timings.

Nodes 0-3 are the sequencers, traders send from nodes 5 and 6, node 7 is the adversary's (a
spy, and where the copycat trades). Keypers 4, 5, 6, 7, 0, threshold 3, batches every 30 s.
"""

from __future__ import annotations

from market.accounts import copycat_account
from market.types import MICRO, Order, to_micro
from sim.adversary.copycat import Copycat
from sim.chain.blocks import BatchTx, SealedTx
from sim.host.instant import InstantHost, tiny_world
from sim.orderflow.threshold import Threshold
from sim.results.records import OrderRecord
from sim.runs import assembly
from sim.scenario import Scenario

HOP = 0.05
ADVERSARY = 7
TRADER_NODES = (5, 6)


def _host(*, proofs: bool) -> tuple[InstantHost, Threshold, Copycat]:
    scenario = Scenario.model_validate(
        {
            "name": "unit",
            "seed": 4,
            "duration_s": 1000.0,
            "network": {"nodes": 8, "topology": "complete", "block_interval_s": 2.0},
            "market": {"count": 1, "liquidity_b": 50.0, "close_s": 900.0, "resolve_s": 950.0},
            "traders": {"informed": 0, "noise": 2, "budget": 100.0},
            "settlement": {"reporters": 4},
            "adversary": {"copycat": True, "spy_fraction": 0.0},
            "privacy": {
                "order_flow": "threshold",
                "keypers": 5,
                "threshold": 3,
                "batch_interval_s": 30.0,
                "pad_to_bytes": 0,
                "sender_proofs": proofs,
            },
        }
    )
    world = tiny_world(
        scenario,
        reporters=(0, 1, 2, 3),
        spies=(ADVERSARY,),
        keypers=(4, 5, 6, 7, 0),
        trader_nodes=TRADER_NODES,
    )
    host = InstantHost(scenario, world, latency=HOP)
    components = assembly.components(host, scenario, world)
    for component in components:
        host.plug(component)
    host.start()
    [flow] = [c for c in components if isinstance(c, Threshold)]
    [copycat] = [c for c in components if isinstance(c, Copycat)]
    return host, flow, copycat


def _buy(host: InstantHost, trader: int, *, outcome: int = 1, shares: float = 4.0) -> OrderRecord:
    order = Order(trader, len(host.records.orders), 0, outcome, to_micro(shares), MICRO)
    return host.submit(order, node=TRADER_NODES[trader], kind="informed")


def _slots(host: InstantHost, until: float) -> None:
    t = host.now
    while t < until:
        t += 2.0
        host.run(until=t)
        host.close_block()


def _two_epochs(proofs: bool) -> tuple[InstantHost, Copycat, OrderRecord]:
    """Epoch 0 (public by t = 34): trader 0 buys outcome 1 twice, trader 1 buys each outcome.

    In epoch 1 both buy again: only trader 0 looks informed, so only its order is copied.
    """
    host, _flow, copycat = _host(proofs=proofs)
    _buy(host, 0)
    _buy(host, 0)
    _buy(host, 1, outcome=0)
    _buy(host, 1, outcome=1)  # two-sided: a noise trader's history
    _slots(host, 40.0)
    victim = _buy(host, 0, shares=6.0)
    _buy(host, 1, outcome=1)
    _slots(host, 80.0)
    return host, copycat, victim


def test_a_sender_with_a_one_sided_history_is_linked_and_its_next_order_copied() -> None:
    host, copycat, victim = _two_epochs(proofs=False)
    assert copycat.history[("sender", 1)] == [(0, 0), (0, 1), (0, 1)]  # both epochs
    assert copycat.linked(("sender", 0)) and not copycat.linked(("sender", 1))
    [copy] = copycat.copies
    assert copy.kind == "copycat" and not copy.honest
    # the copy carried the victim's very ciphertext, under the copycat's address
    sealed = [tx for block, _ in host.blocks for tx in block.txs if isinstance(tx, SealedTx)]
    [original] = [tx for tx in sealed if tx.sender == 0 and tx.epoch == 1]
    [copied] = [tx for tx in sealed if tx.sender == copy.public.trader]
    assert copied.ciphertext == original.ciphertext
    # it executed for the copier, with the victim's direction and size, in the victim's batch
    assert victim.status == copy.status == "executed" and copy.block == victim.block
    account = copycat_account(2)
    assert host.exchange.ledger.position(account, 0, 1) == victim.order.shares
    assert host.exchange.ledger.position(0, 0, 1) == to_micro(4.0 + 4.0 + 6.0)
    metrics = copycat.metrics()
    assert metrics["mev.copied_orders"] == 1
    assert metrics["mev.copycat_pnl"] != 0.0  # it paid for the shares, now valued at the price


def test_with_sender_proofs_every_replica_refuses_the_copy() -> None:
    host, copycat, victim = _two_epochs(proofs=True)
    [copy] = copycat.copies
    assert victim.status == "executed"
    assert copy.status == "rejected" and copy.reason == "proof"
    batches = [tx for block, _ in host.blocks for tx in block.txs if isinstance(tx, BatchTx)]
    assert all(o.trader != copy.public.trader for b in batches for o in b.orders)
    for replica in host.replicas.values():
        assert replica.exchange.state_hash() == host.exchange.state_hash()
        assert all(sender != copy.public.trader for s in replica.exchange.sealed.values()
                   for sender, _ in s)  # fmt: skip
    assert host.exchange.ledger.position(copycat_account(2), 0, 1) == 0
    assert copycat.metrics()["mev.copycat_pnl"] == 0.0  # no fee for a refused transaction


def test_sender_proofs_are_metered_once_per_node_that_checks_them() -> None:
    host, _flow, _copycat = _host(proofs=True)
    before = dict(host.meter.ops)
    _buy(host, 0)
    after_submit = dict(host.meter.ops)
    # the trader: the epoch's DKG, its ECIES encryption, then the proof (a mult, 2 hashes)
    assert after_submit.get("hash", 0) - before.get("hash", 0) == 2
    _slots(host, 4.0)  # the sealed order is on chain and reached every replica
    checks = 1 + len(host.replicas)  # the canonical chain and every replica verify it
    assert host.meter.ops["hash"] - after_submit["hash"] == checks
    assert all(r.next_height >= 1 for r in host.replicas.values())


def test_the_copycat_never_copies_its_own_copies_nor_an_unlinked_sender() -> None:
    _, copycat, _victim = _two_epochs(proofs=False)
    assert copycat.mine == {copycat.copies[0].public.trader}
    learnt = {sender for kind, sender in copycat.history if kind == "sender"}
    assert learnt == {0, 1}  # the traders' senders, never its own
    assert len(copycat.copies) == 1  # trader 1's order was never copied
