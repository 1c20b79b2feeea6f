"""Chart builders: the right marks and encodings, and valid JSON even with NaN inputs."""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl
import pytest

from dashboard import charts, queries, shapes

NAN = float("nan")


def _spec(chart: Any) -> dict[str, Any]:
    """The Vega-Lite spec; strict JSON (NaN is not JSON and breaks the browser)."""
    spec = chart.to_dict()
    json.dumps(spec, allow_nan=False)
    return spec


def _rows(spec: dict[str, Any], layer: dict[str, Any]) -> list[dict[str, Any]]:
    """The data rows a layer draws (inline datasets, as altair writes them)."""
    name = layer.get("data", spec.get("data", {})).get("name")
    return spec["datasets"][name]


def _prices() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "t": [0.0, 1.0, 0.0, 1.0],
            "market": 0,
            "outcome": [0, 0, 1, 1],
            "price": [0.5, 0.6, 0.5, NAN],
            "true_prob": [0.7, 0.7, 0.3, 0.3],
        }
    )


def _fills(frontrun: list[bool]) -> pl.DataFrame:
    n = len(frontrun)
    return pl.DataFrame(
        {
            "t": [float(i) for i in range(n)],
            "price": [0.5] * n,
            "kind": ["informed"] * n,
            "side": ["buy"] * n,
            "volume": [1.0] * n,
            "frontrun": frontrun,
            "outcome": ["0"] * n,
            "order_id": list(range(n)),
        }
    )


def test_price_paths_dash_the_truth_and_ring_front_runs() -> None:
    spec = _spec(charts.price_paths(shapes.market_prices(_prices(), 0), _fills([False, True])))
    layers = spec["layer"]
    dashed = [layer for layer in layers if layer["mark"].get("strokeDash")]
    assert len(dashed) == 1 and dashed[0]["encoding"]["y"]["field"] == "true_prob"
    assert layers[0]["encoding"]["y"]["field"] == "price"
    fills = [layer for layer in layers if "fill" in layer.get("encoding", {})]
    assert fills[0]["encoding"]["fill"]["field"] == "kind"
    ring = layers[-1]
    assert ring["mark"]["filled"] is False
    assert [r["order_id"] for r in _rows(spec, ring)] == [1]  # only the front-run order
    assert None in [r["price"] for r in _rows(spec, layers[0])]  # NaN price left undrawn


def test_price_paths_without_front_runs_or_fills() -> None:
    spec = _spec(charts.price_paths(shapes.market_prices(_prices(), 0), _fills([False])))
    assert len(spec["layer"]) == 3
    assert len(_spec(charts.price_paths(shapes.market_prices(_prices(), 0)))["layer"]) == 2


def test_interval_bars_facet_by_metric_with_whiskers() -> None:
    summary = queries.summarize(
        pl.DataFrame(
            {"path": list("abcd"), "metric": ["m", "m", "k", "k"], "value": [1.0, 2.0, NAN, 4.0]}
        ),
        pl.DataFrame({"path": list("abcd"), "group": list("XXXX")}),
    )
    spec = _spec(charts.interval_bars(summary))
    assert spec["facet"]["field"] == "metric"
    assert spec["resolve"]["scale"]["y"] == "independent"
    whisker = spec["spec"]["layer"][1]
    assert whisker["mark"]["type"] == "errorbar"
    assert (whisker["encoding"]["y"]["field"], whisker["encoding"]["y2"]["field"]) == (
        "low",
        "high",
    )
    rows = spec["datasets"][spec["data"]["name"]]
    k = next(r for r in rows if r["metric"] == "k")
    assert (k["n"], k["low"], k["high"]) == (1, None, None)  # one value: no interval drawn


def _frontier_summary() -> pl.DataFrame:
    metrics = pl.DataFrame(
        {
            "path": ["a", "b", "c", "d", "e", "f"] * 2,
            "metric": ["cost.crypto_ops"] * 6 + ["mev.extracted"] * 6,
            "value": [10.0, 12.0, 50.0, 52.0, 60.0, 64.0, 9.0, 11.0, 1.0, 2.0, 3.0, NAN],
        }
    )
    groups = pl.DataFrame(
        {"path": list("abcdef"), "group": ["open"] * 2 + ["sealed"] * 2 + ["slow"] * 2}
    )
    return queries.summarize(metrics, groups)


FLOWS = pl.DataFrame(
    {"group": ["open", "sealed", "slow"], "order_flow": ["transparent", "threshold", "operator"]}
)


def test_frontier_has_one_point_per_setting_and_marks_the_front() -> None:
    frame = charts.frontier_frame(
        _frontier_summary(), FLOWS, x_metric="cost.crypto_ops", y_metric="mev.extracted"
    )
    rows = {r["group"]: r for r in frame.iter_rows(named=True)}
    assert set(rows) == {"open", "sealed", "slow"}
    assert (rows["sealed"]["x"], rows["sealed"]["y"]) == pytest.approx((51.0, 1.5))
    # open is cheapest, sealed leaks least; slow costs more and leaks more than sealed
    assert rows["open"]["pareto"] and rows["sealed"]["pareto"] and not rows["slow"]["pareto"]
    assert rows["slow"]["y_low"] is None or math.isnan(rows["slow"]["y_low"])  # one value
    turned = charts.frontier_frame(
        _frontier_summary(), FLOWS, x_metric="cost.crypto_ops", y_metric="mev.extracted",
        y_higher_is_better=True,
    )  # fmt: skip
    assert turned.filter(pl.col("pareto"))["group"].to_list() == ["open"]  # cheapest and highest


def test_frontier_chart_labels_every_point_with_fixed_colours_and_full_legends() -> None:
    frame = charts.frontier_frame(
        _frontier_summary(), FLOWS, x_metric="cost.crypto_ops", y_metric="mev.extracted"
    )
    spec = _spec(charts.frontier(frame, x_metric="cost.crypto_ops", y_metric="mev.extracted"))
    marks = {
        layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]: layer
        for layer in spec["layer"]
    }
    assert marks["text"]["encoding"]["text"]["field"] == "group"
    color = marks["point"]["encoding"]["color"]
    assert color["legend"]["labelLimit"] == 0
    assert color["scale"]["domain"][:4] == list(charts.ORDER_FLOW_COLORS)
    assert color["scale"]["range"][:4] == list(charts.ORDER_FLOW_COLORS.values())
    line = _rows(spec, marks["line"])
    assert sorted(r["group"] for r in line) == ["open", "sealed"]


def test_exposure_timeline_relative_and_absolute() -> None:
    orders = pl.DataFrame(
        {
            "order_id": [1],
            "kind": ["noise"],
            "t_submit": [100.0],
            "t_first_seen": [100.5],
            "t_executed": [103.0],
        }
    )
    rows = shapes.exposure_rows(orders)
    rel = _spec(charts.exposure_timeline(rows))["layer"][1]["encoding"]
    assert (rel["x"]["field"], rel["x2"]["field"]) == ("seen_after_s", "executed_after_s")
    absolute = _spec(charts.exposure_timeline(rows, relative=False))["layer"][1]["encoding"]
    assert (absolute["x"]["field"], absolute["x2"]["field"]) == ("t_first_seen", "t_executed")


def test_topology_rings_exactly_the_spies() -> None:
    pos = pl.DataFrame({"node": [0, 1, 2], "x": [0.0, 1.0, 0.5], "y": [0.0, 0.0, 1.0]})
    nodes = shapes.node_points(
        pl.DataFrame(
            {"node": [0, 1, 2], "roles": ["trader", "", "reporter"], "spy": [False, True, False]}
        ),
        pos,
    )
    edges = shapes.edge_segments(pl.DataFrame({"src": [0, 1], "dst": [1, 2]}), pos)
    spec = _spec(charts.topology(edges, nodes))
    lines, dots, spies = spec["layer"]
    assert len(_rows(spec, lines)) == 2
    assert {r["role"] for r in _rows(spec, dots)} == {"trader", "relay", "reporter"}
    assert [r["node"] for r in _rows(spec, spies)] == [1]


def test_other_builders_produce_valid_specs() -> None:
    counts = shapes.message_counts(
        pl.DataFrame({"kind": ["order"], "sent": [3], "delivered": [2], "lost": [1]})
    )
    assert _spec(charts.message_bars(counts))["encoding"]["color"]["field"] == "fate"
    votes = pl.DataFrame(
        {"market": [0], "round": [0], "step": ["prevote"], "value": ["1"], "votes": [3.0]}
    )
    facet = _spec(charts.step_votes_by_round(votes))["facet"]
    assert (facet["row"]["field"], facet["column"]["field"]) == ("step", "market")
    long = shapes.fl_long(
        pl.DataFrame({"round": [0, 1], "status": ["completed", "aborted"], "loss": [0.7, NAN]})
    )
    fl = _spec(charts.fl_rounds(long))
    assert fl["facet"]["column"]["field"] == "measure"
    assert len(fl["spec"]["layer"]) == 2  # the line and the aborted-round marker
    lines = pl.DataFrame({"client": [1, 1], "rounds": [0, 1], "epsilon": [0.0, 2.0]})
    events = pl.DataFrame({"client": [1], "rounds": [1], "event": ["withdrew consent"]})
    consent = _spec(charts.client_epsilon(lines, events))
    assert [layer["mark"]["type"] for layer in consent["layer"]] == ["line", "tick"]
    assert consent["layer"][0]["mark"]["interpolate"] == "step-after"
    empty = pl.DataFrame(schema={"client": pl.Int64, "rounds": pl.Int64, "event": pl.String})
    assert len(_spec(charts.client_epsilon(lines, empty))["layer"]) == 1
    roc = _spec(charts.roc_curve(shapes.roc_points(pl.DataFrame({"fpr": [0.5], "tpr": [0.8]}))))
    assert roc["layer"][0]["mark"]["strokeDash"]  # the chance diagonal
    brier = pl.DataFrame({"source": ["market price"], "brier": [0.2]})
    assert _spec(charts.brier_bars(brier))["encoding"]["x"]["field"] == "brier"
    traders = pl.DataFrame({"kind": ["noise"], "trader": [1], "pnl": [NAN]})
    assert _spec(charts.pnl_by_kind(traders))
    assert _spec(charts.volume_bars(_fills([False])))["encoding"]["y"]["aggregate"] == "sum"
    summary = pl.DataFrame(
        {
            "market": [0],
            "bonds_moved": [1.0],
            "disputes": [1],
            "finalized": [True],
            "correct": [True],
        }
    )
    assert _spec(charts.bonds_by_market(summary))["mark"]["type"] == "bar"
