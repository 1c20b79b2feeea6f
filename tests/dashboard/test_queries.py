"""Metric tables, Student-t intervals, grouping and differences on hand-made frames."""

from __future__ import annotations

import math

import polars as pl
import pytest

from dashboard import queries

# Two-sided 95% Student-t critical values from a printed table.
T_DF1 = 12.7062047
T_DF2 = 4.3026527
NAN = float("nan")


def _runs(rows: list[tuple[str, str, str, int | None, bool, str | None]]) -> pl.DataFrame:
    """path, scenario, setting, replication, loadable, created (other columns as discovered)."""
    cols = ["path", "scenario", "setting", "replication", "loadable", "created"]
    frame = pl.DataFrame(rows, schema=cols, orient="row")
    return frame.with_columns(point=pl.lit("{}"))


def test_interval_n2_by_hand() -> None:
    # mean 2, s = sqrt(2), se = s / sqrt(2) = 1, half width = t(1) * 1
    got = queries.t_interval([1.0, 3.0])
    assert got.n == 2
    assert got.mean == pytest.approx(2.0)
    assert got.half_width == pytest.approx(T_DF1, abs=1e-6)
    assert (got.low, got.high) == pytest.approx((2 - T_DF1, 2 + T_DF1), abs=1e-6)


def test_interval_n3_by_hand() -> None:
    # mean 2, s = 1, se = 1 / sqrt(3), half width = 4.3026527 / 1.7320508 = 2.4841377
    got = queries.t_interval([1.0, 2.0, 3.0])
    assert got.half_width == pytest.approx(2.4841377, abs=1e-6)
    assert (got.low, got.high) == pytest.approx((2 - 2.4841377, 2 + 2.4841377), abs=1e-6)


def test_interval_is_nan_with_one_value_and_ignores_non_finite() -> None:
    one = queries.t_interval([5.0])
    assert one.n == 1 and one.mean == 5.0
    assert math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.half_width)
    none = queries.t_interval([NAN, float("inf")])
    assert none.n == 0 and math.isnan(none.mean)
    assert queries.t_interval([1.0, NAN, 3.0]) == queries.t_interval([1.0, 3.0])


def test_summarize_groups_over_replications() -> None:
    metrics = pl.DataFrame(
        {
            "path": ["a0", "a1", "b0", "b1", "b2", "c0", "a0", "a1", "b0"],
            "metric": ["m", "m", "m", "m", "m", "m", "gone", "gone", "gone"],
            "value": [1.0, 3.0, 1.0, 2.0, 3.0, 7.0, NAN, NAN, NAN],
        }
    )
    groups = pl.DataFrame(
        {"path": ["b0", "b1", "b2", "a0", "a1", "c0"], "group": ["B", "B", "B", "A", "A", "C"]}
    )
    out = queries.summarize(metrics, groups)
    m = out.filter(pl.col("metric") == "m")
    assert m["group"].to_list() == ["B", "A", "C"]  # the order groups were given in
    rows = {r["group"]: r for r in m.iter_rows(named=True)}
    assert rows["A"]["n"] == 2 and rows["A"]["half_width"] == pytest.approx(T_DF1, abs=1e-6)
    assert rows["B"]["n"] == 3 and rows["B"]["half_width"] == pytest.approx(2.4841377, abs=1e-6)
    assert rows["C"]["n"] == 1 and rows["C"]["mean"] == 7.0
    assert math.isnan(rows["C"]["low"]) and math.isnan(rows["C"]["high"])
    gone = out.filter(pl.col("metric") == "gone")
    assert gone["n"].to_list() == [0, 0]  # NaN everywhere stays NaN, never 0
    assert all(math.isnan(v) for v in gone["mean"].to_list())


def test_differences_use_welch_by_hand() -> None:
    metrics = pl.DataFrame(
        {"path": ["a0", "a1", "b0", "b1", "b2"], "metric": "m", "value": [1.0, 3.0, 2.0, 4.0, 6.0]}
    )
    groups = pl.DataFrame({"path": ["a0", "a1", "b0", "b1", "b2"], "group": list("AABBB")})
    diff = queries.compare(metrics, groups, {"B": "A"})
    b = diff.filter(pl.col("group") == "B").row(0, named=True)
    # var A = 2 (n 2), var B = 4 (n 3): se^2 = 4/3 + 2/2 = 7/3 and the Welch degrees of
    # freedom are (7/3)^2 / ((4/3)^2 / 2 + 1^2 / 1) = 49/17 = 2.88, so the critical value lies
    # between the table's 3.1824 (3 df) and 4.3027 (2 df).
    se = math.sqrt(7 / 3)
    assert b["diff"] == pytest.approx(2.0)
    half = b["diff_high"] - b["diff"]
    assert half / se == pytest.approx(queries.t_critical(49 / 17), abs=1e-9)
    assert not b["paired"]  # no world seeds: the runs cannot be paired
    assert 3.1824 < half / se < T_DF2  # between the 3-df and 2-df table values
    a = diff.filter(pl.col("group") == "A").row(0, named=True)
    assert a["baseline"] and a["diff"] is None
    swapped = queries.compare(metrics, groups, {"A": "B"})
    swapped = swapped.filter(pl.col("group") == "A").row(0, named=True)
    assert swapped["diff"] == pytest.approx(-2.0)
    assert swapped["diff_high"] - swapped["diff"] == pytest.approx(half)


def test_differences_without_replications_have_no_interval() -> None:
    out = queries.compare(
        pl.DataFrame({"path": ["x", "y"], "metric": "m", "value": [1.0, 4.0]}),
        pl.DataFrame({"path": ["x", "y"], "group": ["X", "Y"]}),
        {"Y": "X"},
    )
    row = out.filter(pl.col("group") == "Y").row(0, named=True)
    assert row["diff"] == pytest.approx(3.0)
    assert math.isnan(row["diff_low"]) and math.isnan(row["diff_high"])


def test_identical_replications_give_an_exact_difference() -> None:
    out = queries.compare(
        pl.DataFrame({"path": list("abcd"), "metric": "m", "value": [1.0, 1.0, 3.0, 3.0]}),
        pl.DataFrame({"path": list("abcd"), "group": list("XXYY")}),
        {"Y": "X"},
    )
    row = out.filter(pl.col("group") == "Y").row(0, named=True)
    assert (row["diff_low"], row["diff"], row["diff_high"]) == (2.0, 2.0, 2.0)


def test_differences_are_paired_by_world_like_the_command_line() -> None:
    # differences 1, 2, 1, 1 on four shared worlds: mean 1.25, s = 0.5, t(0.975, 3) = 3.182
    base, mode = [4.0, 5.0, 8.0, 5.0], [5.0, 7.0, 9.0, 6.0]
    metrics = pl.DataFrame(
        {"path": [f"p{i}" for i in range(8)], "metric": "m", "value": base + mode}
    )
    groups = pl.DataFrame(
        {
            "path": [f"p{i}" for i in range(8)],
            "group": list("BBBBXXXX"),
            "world_seed": [0, 1, 2, 3] * 2,
        }
    )
    row = (
        queries.compare(metrics, groups, {"X": "B"})
        .filter(pl.col("group") == "X")
        .row(0, named=True)
    )
    assert row["paired"] and row["pairs"] == 4 and row["diff"] == pytest.approx(1.25)
    assert row["diff_high"] - row["diff"] == pytest.approx(3.182 * 0.5 / 2, abs=2e-4)


def test_the_default_baseline_is_the_first_sweep_setting_of_each_scenario() -> None:
    runs = pl.DataFrame(
        {
            "scenario": ["s", "s", "s", "t", "t"],
            "group": ["commit_reveal", "transparent", "threshold", "a", "b"],
            "order": [1, 0, 2, None, None],
        }
    )
    assert queries.default_baselines(runs) == {
        "commit_reveal": "transparent",
        "transparent": "transparent",
        "threshold": "transparent",
        "a": "a",
        "b": "a",
    }


def test_groups_are_settings_prefixed_by_scenario_only_when_needed() -> None:
    one = _runs(
        [("s/a", "s", "order_flow=x", 0, True, None), ("s/b", "s", "order_flow=y", 0, True, None)]
    )
    assert queries.with_groups(one)["group"].to_list() == ["order_flow=x", "order_flow=y"]
    two = _runs(
        [("s/a", "s", "order_flow=x", 0, True, None), ("t/a", "t", "order_flow=x", 0, True, None)]
    )
    assert queries.with_groups(two)["group"].to_list() == ["s · order_flow=x", "t · order_flow=x"]


def test_filter_by_scenario_sweep_key_and_value() -> None:
    runs = _runs(
        [
            ("s/a", "s", "x", 0, True, None),
            ("s/b", "s", "y", 0, True, None),
            ("t/c", "t", "x", 0, True, None),
        ]
    ).with_columns(
        point=pl.Series(['{"privacy.order_flow":"x"}', '{"privacy.order_flow":"y"}', "{}"])
    )
    assert queries.filter_runs(runs, scenarios=["t"])["path"].to_list() == ["t/c"]
    keyed = queries.filter_runs(runs, key="privacy.order_flow")
    assert keyed["path"].to_list() == ["s/a", "s/b"]
    valued = queries.filter_runs(runs, key="privacy.order_flow", value="y")
    assert valued["path"].to_list() == ["s/b"]
    assert queries.filter_runs(runs, key="network.loss").is_empty()


def test_default_selection_is_the_latest_scenarios_complete_runs() -> None:
    runs = _runs(
        [
            ("old/a", "old", "x", 0, True, "2025-01-01T00:00:00"),
            ("new/a", "new", "x", 0, True, "2025-02-01T00:00:00"),
            ("new/b", "new", "y", 0, True, "2025-01-15T00:00:00"),
            ("new/f", "new", "z", 0, False, "2025-03-01T00:00:00"),
        ]
    )
    assert queries.default_selection(runs) == ["new/a", "new/b"]
    assert queries.default_selection(runs.filter(~pl.col("loadable"))) == []


def test_formatting_never_turns_missing_into_zero() -> None:
    assert queries.fmt(NAN) == "n/a"
    assert queries.fmt(None) == "n/a"
    assert queries.fmt(float("inf")) == "∞"  # epsilon without DP: no guarantee, not missing
    assert queries.fmt(True) == "n/a"
    assert queries.fmt(0.0) == "0"  # a measured zero is a zero
    assert queries.fmt(0.123456) == "0.1235"
    assert queries.fmt_interval(2.0, NAN, NAN) == "2"
    assert queries.fmt_interval(2.0, 1.0, 3.0) == "2 [1, 3]"
    assert queries.fmt_interval(NAN, 1.0, 3.0) == "n/a"


def test_metric_table_and_value() -> None:
    metrics = pl.DataFrame({"metric": ["b", "a", "c"], "value": [NAN, 0.5, 0.0]})
    table = queries.metric_table(metrics)
    assert table["metric"].to_list() == ["a", "b", "c"]
    assert table["shown"].to_list() == ["0.5", "n/a", "0"]
    assert queries.metric_value(metrics, "a") == 0.5
    assert math.isnan(queries.metric_value(metrics, "b"))
    assert math.isnan(queries.metric_value(metrics, "absent"))
    assert math.isnan(queries.metric_value(None, "a"))


def test_summary_grid_layout() -> None:
    summary = queries.summarize(
        pl.DataFrame(
            {
                "path": ["a", "b", "c", "a"],
                "metric": ["m", "m", "m", "k"],
                "value": [1.0, 3.0, 5.0, NAN],
            }
        ),
        pl.DataFrame({"path": ["a", "b", "c"], "group": ["X", "X", "Y"]}),
    )
    grid = queries.summary_grid(summary, metrics=["m", "k"])
    assert grid.columns == ["metric", "X", "Y"]
    assert grid["metric"].to_list() == ["m", "k"]
    assert grid.row(0) == ("m", "2 [-10.7, 14.7]", "5")  # 2 ± 12.706 over (1, 3)
    assert grid.row(1) == ("k", "n/a", "n/a")


def test_compare_display_marks_the_baseline() -> None:
    shown = queries.compare_display(
        queries.compare(
            pl.DataFrame({"path": list("abcd"), "metric": "m", "value": [1.0, 3.0, 2.0, 4.0]}),
            pl.DataFrame({"path": list("abcd"), "group": list("XXYY")}),
            {"Y": "X"},
        )
    )
    column = "difference vs baseline [95% CI]"
    assert shown.filter(pl.col("group") == "X")[column].item() == "baseline"
    assert shown.filter(pl.col("group") == "Y")[column].item().startswith("1 [")


def test_run_labels_are_short_and_unique() -> None:
    runs = _runs(
        [
            ("s/a", "s", "order_flow=x", 0, True, None),
            ("s/b", "s", "order_flow=x", 1, True, None),
            ("s/c", "s", "order_flow=x", 1, True, None),
        ]
    )
    labels = queries.run_labels(runs)
    assert labels["s/a"] == "order_flow=x · r0"
    assert labels["s/b"] == "order_flow=x · r1 (b)"
    assert len(set(labels.values())) == 3
    both = pl.concat([runs, _runs([("t/a", "t", "order_flow=x", 0, True, None)])])
    assert queries.run_labels(both)["t/a"] == "t · order_flow=x · r0"


def test_leakage_metrics_known_first_then_new_ones() -> None:
    names = ["market.brier", "privacy.future_metric", "mev.extracted", "privacy.exposure_s"]
    assert queries.leakage_metrics(names) == [
        "mev.extracted",
        "privacy.exposure_s",
        "privacy.future_metric",
    ]


def test_missing_columns() -> None:
    frame = pl.DataFrame({"a": [1]})
    assert queries.missing_columns(frame, ["a", "b"]) == ["b"]
    assert queries.missing_columns(None, ["a"]) == ["a"]
