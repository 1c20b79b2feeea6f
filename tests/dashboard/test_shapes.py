"""Reshaping run tables for the charts, on small hand-made frames."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from dashboard import shapes

NAN = float("nan")


def _orders() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "order_id": [1, 2, 3, 4, 5],
            "trader": [0, 1, 2, 3, 4],
            "kind": ["informed", "noise", "frontrunner", "noise", "informed"],
            "market": [0, 0, 0, 1, 0],
            "outcome": [0, 1, 0, 0, 1],
            "shares": [5.0, -3.0, 2.0, 1.0, 4.0],
            "status": ["executed", "executed", "executed", "executed", "rejected"],
            "t_submit": [10.0, 5.0, 11.0, 1.0, 2.0],
            "t_first_seen": [10.5, None, 11.2, 1.1, 2.2],
            "t_executed": [14.0, 9.0, 12.0, 3.0, None],
            "price": [0.6, 0.4, 0.61, 0.5, None],
            "frontrun": [False, False, True, False, False],
        }
    )


def test_fills_are_executed_orders_with_side_and_volume() -> None:
    fills = shapes.executed_fills(_orders(), market=0)
    assert fills["order_id"].to_list() == [2, 3, 1]  # by execution time, market 0 only
    assert fills["side"].to_list() == ["sell", "buy", "buy"]
    assert fills["volume"].to_list() == [3.0, 2.0, 5.0]
    assert fills["frontrun"].to_list() == [False, True, False]
    no_flag = shapes.executed_fills(_orders().drop("frontrun"))
    assert not no_flag["frontrun"].any()
    assert no_flag.height == 4


def test_exposure_is_first_sighting_to_execution() -> None:
    rows = shapes.exposure_rows(_orders())
    # order 2 never seen, order 5 never executed: neither was exposed
    assert rows["order_id"].to_list() == [4, 1, 3]  # by submission time
    assert rows["rank"].to_list() == [1, 2, 3]
    assert rows["exposure_s"].to_list() == pytest.approx([1.9, 3.5, 0.8])
    assert rows["seen_after_s"].to_list() == pytest.approx([0.1, 0.5, 0.2])
    assert rows["executed_after_s"].to_list() == pytest.approx([2.0, 4.0, 1.0])
    assert shapes.exposure_rows(_orders(), limit=2).height == 2


def test_layout_is_deterministic_and_covers_every_node() -> None:
    edges = [(0, 1), (1, 2), (2, 0), (2, 3)]
    first = shapes.layout_positions([0, 1, 2, 3, 4], edges)
    again = shapes.layout_positions([4, 3, 2, 1, 0], list(reversed([(b, a) for a, b in edges])))
    assert first.equals(again)
    assert first["node"].to_list() == [0, 1, 2, 3, 4]  # isolated node 4 included
    assert all(math.isfinite(v) for v in first["x"].to_list() + first["y"].to_list())
    other = shapes.layout_positions([0, 1, 2, 3, 4], edges, seed=8)
    assert not first.equals(other)  # the seed, not chance, fixes the picture


def test_edge_segments_and_node_points() -> None:
    pos = pl.DataFrame({"node": [0, 1, 2], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.0]})
    edges = pl.DataFrame({"src": [0, 1], "dst": [1, 2], "latency_s": [0.1, NAN]})
    seg = shapes.edge_segments(edges, pos)
    assert seg.select("x", "y", "x2", "y2").rows() == [(0.0, 0.0, 1.0, 1.0), (1.0, 1.0, 2.0, 0.0)]
    assert seg["latency_s"].to_list() == [0.1, None]
    nodes = pl.DataFrame(
        {"node": [0, 1, 2], "roles": ["", "reporter,trader", None], "spy": [True, False, None]}
    )
    pts = shapes.node_points(nodes, pos)
    assert pts["role"].to_list() == ["relay", "reporter,trader", "relay"]
    assert pts["spy"].to_list() == [True, False, False]


def test_message_counts_long_and_busiest_first() -> None:
    messages = pl.DataFrame(
        {
            "kind": ["vote", "order", "order"],
            "sent": [5, 10, 20],
            "delivered": [4, 9, 20],
            "lost": [1, 1, 0],
        }
    )
    counts = shapes.message_counts(messages)
    assert counts["kind"].unique(maintain_order=True).to_list() == ["order", "vote"]
    total = {(k, f): m for k, f, m in counts.select("kind", "fate", "messages").iter_rows()}
    assert total == {
        ("order", "delivered"): 29,
        ("order", "lost"): 1,
        ("vote", "delivered"): 4,
        ("vote", "lost"): 1,
    }


def _settlement() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "market": [0, 0, 1],
            "round": [0, 1, 0],
            "protocol": ["bft", "bft", "optimistic"],
            "outcome": [None, 1, None],
            "true_outcome": [1, 1, 0],
            "votes": [json.dumps([2, 3]), json.dumps([0, 5]), "__import__('os').system('x')"],
            "rejected_votes": [1, 0, 0],
            "disputes": [1, 0, 2],
            "bonds_moved": [100.0, 50.0, 0.0],
            "t_final": [None, 99.0, None],
            "finalized": [False, True, False],
            "correct": [False, True, False],
        },
        schema_overrides={"outcome": pl.Int64, "t_final": pl.Float64},
    )


def test_votes_are_parsed_as_json_only() -> None:
    votes = shapes.step_votes_long(_settlement())
    assert votes.rows() == [
        (0, 0, "precommit", "0", 2.0), (0, 0, "precommit", "1", 3.0),
        (0, 1, "precommit", "0", 0.0), (0, 1, "precommit", "1", 5.0),
    ]  # fmt: skip
    # the malformed (code-like) entry of market 1 yields no votes rather than being run


def test_step_votes_have_a_row_per_step_and_value_nil_included() -> None:
    steps = (
        _settlement()
        .head(2)
        .with_columns(
            prevotes=pl.Series([json.dumps([1, 4]), json.dumps([0, 5])]),
            nil_prevotes=pl.Series([2, 0]),
            nil_precommits=pl.Series([1, 0]),
        )
    )
    rows = shapes.step_votes_long(steps).rows()
    assert rows[:6] == [
        (0, 0, "prevote", "0", 1.0), (0, 0, "prevote", "1", 4.0), (0, 0, "prevote", "nil", 2.0),
        (0, 0, "precommit", "0", 2.0), (0, 0, "precommit", "1", 3.0),
        (0, 0, "precommit", "nil", 1.0),
    ]  # fmt: skip
    assert sum(v for *_, v in rows) == 1 + 4 + 2 + 2 + 3 + 1 + 0 + 5 + 0 + 0 + 5 + 0
    # a run from before the steps: precommits only, no nil
    old = shapes.step_votes_long(_settlement().head(1))
    assert old.rows() == [(0, 0, "precommit", "0", 2.0), (0, 0, "precommit", "1", 3.0)]


def test_pnl_by_kind_ignores_not_applicable_profit() -> None:
    traders = pl.DataFrame({"kind": ["a", "a", "b"], "pnl": [2.0, NAN, -1.0]})
    out = {r["kind"]: r for r in shapes.pnl_by_kind(traders).iter_rows(named=True)}
    assert out["a"]["traders"] == 2
    assert out["a"]["mean_pnl"] == 2.0  # the NaN trader is not averaged in as 0
    assert out["b"]["total_pnl"] == -1.0


def test_learning_shapes() -> None:
    rounds = pl.DataFrame(
        {
            "round": [0, 1],
            "status": ["completed", "aborted"],
            "loss": [0.7, NAN],
            "brier": [0.25, 0.24],
        }
    )
    long = shapes.fl_long(rounds)
    assert set(long["measure"].to_list()) == {"loss", "brier"}
    assert (
        long.filter((pl.col("measure") == "loss") & (pl.col("round") == 1))["value"].item() is None
    )
    metrics = pl.DataFrame(
        {
            "metric": ["fl.model_brier", "fl.centralized_brier", "fl.market_brier", "market.brier"],
            "value": [0.2, NAN, 0.18, 0.1],
        }
    )
    assert shapes.brier_sources(metrics).rows() == [
        ("federated model", 0.2),
        ("federated model on the live markets", 0.18),
    ]
    roc = shapes.roc_points(pl.DataFrame({"fpr": [0.5, 0.2, NAN], "tpr": [0.7, 0.4, 0.1]}))
    assert roc.rows() == [(0.0, 0.0), (0.2, 0.4), (0.5, 0.7), (1.0, 1.0)]


def test_nan_becomes_null_only_in_float_columns() -> None:
    frame = shapes.nan_to_null(pl.DataFrame({"f": [1.0, NAN], "i": [1, 2], "s": ["a", "NaN"]}))
    assert frame["f"].to_list() == [1.0, None]
    assert frame["s"].to_list() == ["a", "NaN"]


def test_aggregation_lines_weigh_beliefs_by_wealth_by_hand() -> None:
    prices = pl.DataFrame(
        {"t": [0.0, 10.0, 0.0], "market": [0, 0, 1], "outcome": [1, 1, 1], "price": [0.5, 0.6, 0.5]}
    )
    markets = pl.DataFrame({"market": [0, 1], "outcome": [1, 1], "posterior": [0.7, 0.4]})
    # trader 0 (belief 0.8) holds 300, trader 1 (belief 0.4) 100, noise trader 2 has no belief
    wealth = pl.DataFrame({"t": [20.0] * 3, "trader": [0, 1, 2], "wealth": [300.0, 100.0, 500.0]})
    beliefs = pl.DataFrame(
        {"trader": [0, 1, 0], "market": [0, 0, 1], "outcome": [1, 1, 1], "belief": [0.8, 0.4, 0.9]}
    )
    lines = shapes.aggregation_lines(prices, markets, wealth, beliefs, 0)
    by = {s: lines.filter(pl.col("series") == s) for s in lines["series"].unique()}
    assert by[shapes.PRICE_SERIES]["value"].to_list() == [0.5, 0.6]
    # (300·0.8 + 100·0.4) / 400 = 0.7: the noise trader and market 1 do not count
    assert by[shapes.BELIEF_SERIES]["value"].to_list() == pytest.approx([0.7])
    posterior = by[shapes.POSTERIOR_SERIES]
    assert posterior["value"].to_list() == [0.7, 0.7]
    assert posterior["t"].to_list() == [0.0, 20.0]  # across the whole run
    assert set(lines["outcome"].to_list()) == {"1"}


def test_client_epsilon_lines_start_at_zero_and_drop_infinite_values() -> None:
    history = pl.DataFrame(
        {"round": [0, 2, 1], "client": [4, 4, 5], "epsilon": [1.5, 2.5, math.inf]}
    )
    roster = pl.DataFrame(
        {"client": [4, 5, 6], "withdrawn_at": [3, None, None], "exhausted_at": [None, 2, None]}
    )
    lines = shapes.client_epsilon(history, roster)
    assert lines.rows() == [
        (4, 0, 0.0),
        (4, 1, 1.5),  # after round 0: one round run
        (4, 3, 2.5),
        (5, 0, 0.0),
        (5, 2, None),  # without DP a round costs an infinite epsilon: nothing to draw
        (6, 0, 0.0),  # never took part
    ]
    assert sorted(shapes.consent_events(roster).rows()) == [
        (4, 3, "withdrew consent"),
        (5, 2, "budget spent"),
    ]
    assert shapes.consent_events(roster.select("client")).is_empty()
