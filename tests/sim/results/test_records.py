"""An order's lifecycle is owned by its record: submitted, seen, sequenced, executed or rejected."""

from __future__ import annotations

import math

import pytest

from market.execute import Rejection
from market.types import MICRO, Fill, Order
from sim.results.records import IllegalTransition, OrderRecord

ORDER = Order(trader=3, nonce=0, market=1, outcome=0, shares=2 * MICRO, limit_price=MICRO // 2)


def _record() -> OrderRecord:
    return OrderRecord(0, ORDER, "informed", node=5, t_submit=1.0, wire_bytes=32)


def test_a_fill_records_price_cost_block_and_time() -> None:
    record = _record()
    record.saw(5, 1.0)  # its own sender does not count as a sighting
    record.saw(8, 1.2)
    record.saw(9, 1.1)  # later calls never move the first sighting
    record.sequenced(1.5)
    fill = Fill(ORDER, shares=2 * MICRO, cash=700_000, fee=0)
    record.finish(fill, height=4, t=2.0)
    assert (record.first_seen_by, record.t_first_seen) == (8, 1.2)
    assert (record.status, record.block, record.t_executed, record.t_sequencer) == (
        "executed",
        4,
        2.0,
        1.5,
    )
    assert record.cost == 0.7 and record.price == pytest.approx(0.35)  # by hand: 0.7 / 2 shares
    assert record.reason is None


def test_a_rejection_keeps_the_chain_s_reason_and_the_block() -> None:
    record = _record()
    record.finish(Rejection(ORDER, "limit"), height=2, t=3.0)
    assert (record.status, record.reason, record.block) == ("rejected", "limit", 2)
    assert math.isnan(record.price)


def test_off_chain_rejections_have_no_block() -> None:
    record = _record()
    record.reject("late")
    assert (record.status, record.reason, record.block) == ("rejected", "late", -1)
    assert math.isnan(record.t_executed)


def test_a_forfeit_is_a_rejection_in_a_block() -> None:
    record = _record()
    record.forfeit(height=7, t=9.0)
    assert (record.status, record.reason, record.block, record.t_executed) == (
        "rejected",
        "forfeited",
        7,
        9.0,
    )


@pytest.mark.parametrize(
    "end",
    [
        lambda r: r.finish(Fill(ORDER, shares=MICRO, cash=MICRO // 2, fee=0), height=1, t=1.0),
        lambda r: r.finish(Rejection(ORDER, "funds"), height=1, t=1.0),
        lambda r: r.reject("undecryptable"),
        lambda r: r.forfeit(height=1, t=1.0),
    ],
)
@pytest.mark.parametrize(
    "then",
    [
        lambda r: r.sequenced(5.0),
        lambda r: r.finish(Rejection(ORDER, "limit"), height=2, t=2.0),
        lambda r: r.reject("late"),
        lambda r: r.forfeit(height=2, t=2.0),
    ],
)
def test_nothing_moves_an_order_out_of_a_final_state(end, then) -> None:  # type: ignore[no-untyped-def]
    record = _record()
    end(record)
    before = (record.status, record.reason, record.block, record.t_executed, record.t_sequencer)
    with pytest.raises(IllegalTransition, match="order 0 is already"):
        then(record)
    after = (record.status, record.reason, record.block, record.t_executed, record.t_sequencer)
    assert repr(after) == repr(before)  # repr: NaN fields compare equal too
