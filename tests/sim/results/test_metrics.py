"""The order metrics cover users' orders only: the adversary's own never inflate them."""

from __future__ import annotations

import math

import pytest

from market.exchange import Exchange
from market.types import MICRO, Fill, Order
from sim.chain.blocks import Block, OrderTx
from sim.host.instant import InstantHost, tiny_world
from sim.results.metrics import ReplicaCheck, check_replicas, order_metrics
from sim.results.records import ADVERSARY_KIND, OrderRecord
from sim.scenario import Scenario


def _executed(order_id: int, kind: str, *, submit: float, seen: float, block: int) -> OrderRecord:
    order = Order(order_id, order_id, 0, 1, MICRO, MICRO)
    record = OrderRecord(order_id, order, kind, node=order_id, t_submit=submit, wire_bytes=32)
    record.saw(99, seen)
    record.sequenced(submit + 0.5)
    record.finish(Fill(order, MICRO, MICRO // 2, 0), height=block, t=10.0)
    return record


def test_the_adversary_s_orders_are_left_out_of_every_user_metric() -> None:
    users = [
        _executed(0, "noise", submit=2.0, seen=3.0, block=1),
        _executed(1, "informed", submit=4.0, seen=6.0, block=1),
        _executed(2, "noise", submit=8.0, seen=9.0, block=2),
    ]
    adversary = [
        _executed(3, ADVERSARY_KIND, submit=9.9, seen=9.95, block=1),
        _executed(4, ADVERSARY_KIND, submit=9.8, seen=9.9, block=1),
    ]
    m = order_metrics(users + adversary, delivered=600)
    # by hand, over the three users' orders only
    assert m["cost.order_latency_s"] == pytest.approx((8.0 + 6.0 + 2.0) / 3)
    assert m["privacy.exposure_s"] == pytest.approx((7.0 + 4.0 + 1.0) / 3)
    assert m["privacy.propagation_delay_s"] == pytest.approx(0.5)
    assert m["privacy.anonymity_set"] == pytest.approx((2 + 2 + 1) / 3)  # users in its block
    assert m["cost.messages_per_order"] == 600 / 3  # every message, per user's order
    assert m == order_metrics(users, delivered=600)


def test_without_a_user_s_executed_order_the_metrics_are_nan() -> None:
    m = order_metrics([_executed(0, ADVERSARY_KIND, submit=1.0, seen=2.0, block=0)], delivered=5)
    assert all(math.isnan(v) for v in m.values())


# -- replicas against the canonical chain ----------------------------------------------------


def _lossy_host(lost_to: int) -> tuple[InstantHost, Exchange]:
    scenario = Scenario.model_validate(
        {
            "name": "unit",
            "seed": 3,
            "network": {"nodes": 6, "topology": "complete", "block_interval_s": 2.0},
            "market": {"count": 1, "close_s": 5.0, "resolve_s": 6.0},
            "traders": {"informed": 0, "noise": 1},
            "settlement": {"reporters": 4},
        }
    )
    world = tiny_world(scenario, reporters=(0, 1, 2, 3), trader_nodes=(5,))
    # the last block never reaches one replica (no catch-up runs on this host)
    host = InstantHost(
        scenario,
        world,
        latency=lambda kind, _s, dst: (
            None if kind == "block" and dst == lost_to and host.now > 1 else 0.1
        ),
    )
    host.start()
    start = host.exchange.copy()
    for t in (1.0, 3.0):
        host.run(until=t)
        host.commit(Block(len(host.blocks), host.now, 0, (OrderTx(_buy(t)),)))
    host.run(until=5.0)
    return host, start


def _buy(t: float) -> Order:
    return Order(0, int(t), 0, 1, MICRO, MICRO)


def _check(host: InstantHost, start: Exchange) -> ReplicaCheck:
    return check_replicas(
        list(host.replicas.values()),
        [b for b, _ in host.blocks],
        start=start,
        final=host.exchange,
        settlement_ok=host.settlement_ok,
        batch_ok=host.batch_ok,
    )


def test_a_replica_that_is_only_behind_lags_but_has_not_diverged() -> None:
    host, start = _lossy_host(lost_to=3)
    assert host.replicas[3].next_height == 1 and host.replicas[0].next_height == 2
    assert _check(host, start) == ReplicaCheck(diverged=0, lag_blocks=1)


def test_a_replica_whose_state_differs_at_its_height_has_diverged() -> None:
    host, start = _lossy_host(lost_to=3)
    host.replicas[3].exchange.ledger.mint(0, 1)  # one micro-unit from nowhere
    host.replicas[0].exchange.ledger.mint(0, 1)
    assert _check(host, start) == ReplicaCheck(diverged=2, lag_blocks=1)
