"""The order metrics cover users' orders only: the adversary's own never inflate them."""

from __future__ import annotations

import math

import pytest

from market.types import MICRO, Fill, Order
from sim.results.metrics import order_metrics
from sim.results.records import ADVERSARY_KIND, OrderRecord


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
