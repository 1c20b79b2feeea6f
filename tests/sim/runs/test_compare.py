"""``veilcast compare``: Student-t intervals, differences paired by world, the settings found
from the runs themselves, lazy reading that skips what is not complete, and the output formats."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from scipy import stats

from sim.errors import InputError
from sim.runs.cli import main
from sim.runs.compare import (
    compare,
    compare_dirs,
    find_runs,
    read_runs,
    render,
    scan_metrics,
    summarize,
    varying_keys,
)
from sim.runs.sweep import run_sweep
from sim.scenario import parse_scenario

# Student-t, 97.5th percentile. With 2 degrees of freedom it has a closed form,
# t = (2p - 1) * sqrt(2 / (4p(1 - p))) = 4.3027 (tables: 4.303); with 3, tables give 3.182.
T_975_2 = 0.95 * math.sqrt(2 / (4 * 0.975 * 0.025))
T_975_3 = 3.182


def _frame(rows: list[tuple[str, int, float]], key: str = "mode") -> pl.DataFrame:
    """Metric rows ``(setting, world_seed, value)`` of one scenario and one metric ``m``."""
    return pl.DataFrame(
        {
            "scenario": ["s"] * len(rows),
            key: [r[0] for r in rows],
            "world_seed": [r[1] for r in rows],
            "metric": ["m"] * len(rows),
            "value": [r[2] for r in rows],
        },
        schema={
            "scenario": pl.String,
            key: pl.String,
            "world_seed": pl.Int64,
            "metric": pl.String,
            "value": pl.Float64,
        },
    )


def _row(table: pl.DataFrame, **where: str) -> dict[str, Any]:
    rows = table.filter(pl.all_horizontal(pl.col(k) == v for k, v in where.items())).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


BASE = [4.0, 5.0, 8.0, 5.0]  # the baseline on four worlds
MODE = [5.0, 7.0, 9.0, 6.0]  # the other setting on the same worlds: differences 1, 2, 1, 1


# --- the statistics -----------------------------------------------------------------------------


def test_mean_and_interval_match_the_t_table() -> None:
    metrics = _frame([("a", w, v) for w, v in enumerate([1.0, 2.0, 3.0])])
    row = _row(summarize(metrics, ["mode"]), mode="a")
    assert row["runs"] == 3 and row["mean"] == pytest.approx(2.0)
    # s = 1, so the half-width is t(0.975, 2) / sqrt(3)
    assert row["ci95"] == pytest.approx(T_975_2 / math.sqrt(3), rel=1e-12)
    assert (row["low"], row["high"]) == pytest.approx((2.0 - row["ci95"], 2.0 + row["ci95"]))
    low, high = stats.ttest_1samp([1.0, 2.0, 3.0], 0.0).confidence_interval(0.95)
    assert (row["low"], row["high"]) == pytest.approx((low, high), rel=1e-12)


def test_nan_values_are_left_out_and_one_value_has_no_interval() -> None:
    metrics = _frame(
        [("a", 0, 1.0), ("a", 1, math.nan), ("b", 0, 7.0), ("c", 0, math.nan), ("c", 1, math.nan)]
    )
    table = summarize(metrics, ["mode"])
    a, b, c = (_row(table, mode=m) for m in "abc")
    assert a["runs"] == 1 and a["mean"] == 1.0 and math.isnan(a["ci95"])
    assert b["runs"] == 1 and math.isnan(b["ci95"])
    assert c["runs"] == 0 and math.isnan(c["mean"])  # not applicable: NaN, never 0


def test_differences_are_paired_by_world() -> None:
    metrics = _frame(
        [("base", w, v) for w, v in enumerate(BASE)] + [("x", w, v) for w, v in enumerate(MODE)]
    )
    table = compare(metrics, ["mode"], {"mode": "base"})
    base, x = _row(table, mode="base"), _row(table, mode="x")
    assert base["baseline"] and base["diff"] is None and base["paired"] is None
    assert not x["baseline"] and x["paired"] and x["pairs"] == 4
    # differences 1, 2, 1, 1: mean 1.25, s = 0.5, half-width t(0.975, 3) * 0.5 / 2
    assert x["diff"] == pytest.approx(1.25)
    assert x["diff_ci95"] == pytest.approx(T_975_3 * 0.5 / 2, rel=2e-4)
    low, high = stats.ttest_rel(MODE, BASE).confidence_interval(0.95)
    assert (x["diff_low"], x["diff_high"]) == pytest.approx((low, high), rel=1e-12)


def test_welch_is_used_when_no_world_is_shared() -> None:
    metrics = _frame(
        [("base", w, v) for w, v in enumerate(BASE)]
        + [("x", 100 + w, v) for w, v in enumerate(MODE)]
    )
    x = _row(compare(metrics, ["mode"], {"mode": "base"}), mode="x")
    assert not x["paired"] and x["pairs"] == 0
    assert x["diff"] == pytest.approx(1.25)
    low, high = stats.ttest_ind(MODE, BASE, equal_var=False).confidence_interval(0.95)
    assert (x["diff_low"], x["diff_high"]) == pytest.approx((low, high), rel=1e-9)


def test_pairing_cancels_the_world_to_world_spread() -> None:
    worlds = [0.0, 10.0, 20.0, 30.0, 40.0]  # large differences between worlds
    noise = [0.1, -0.1, 0.2, 0.0, -0.2]
    base = [w + n for w, n in zip(worlds, noise, strict=True)]
    better = [b + 1.0 + 0.05 * i for i, b in enumerate(base)]  # a small, real effect
    shared = _frame(
        [("base", i, v) for i, v in enumerate(base)] + [("x", i, v) for i, v in enumerate(better)]
    )
    apart = _frame(
        [("base", i, v) for i, v in enumerate(base)]
        + [("x", 9 + i, v) for i, v in enumerate(better)]
    )
    paired = _row(compare(shared, ["mode"], {"mode": "base"}), mode="x")
    unpaired = _row(compare(apart, ["mode"], {"mode": "base"}), mode="x")
    assert paired["diff"] == pytest.approx(unpaired["diff"])  # the same estimate ...
    assert paired["diff_low"] > 0  # ... found significant only when paired by world
    assert unpaired["diff_low"] < 0 < unpaired["diff_high"]


def test_the_same_runs_in_any_order_give_the_same_bits() -> None:
    values = [0.1 * i + 1e-9 * i * i for i in range(40)]  # sums that depend on the order
    metrics = _frame([("base" if i % 2 else "x", i // 2, v) for i, v in enumerate(values)])
    shuffled = metrics.sample(fraction=1.0, shuffle=True, seed=7)
    assert not shuffled.equals(metrics)
    one = compare(metrics, ["mode"], {"mode": "base"})
    assert one.equals(compare(shuffled, ["mode"], {"mode": "base"}))


def test_a_metric_the_baseline_lacks_gets_no_made_up_difference() -> None:
    metrics = _frame([("base", w, math.nan) for w in range(3)] + [("x", w, 1.0) for w in range(3)])
    x = _row(compare(metrics, ["mode"], {"mode": "base"}), mode="x")
    assert x["mean"] == 1.0 and math.isnan(x["diff"])
    assert "n/a" in render(compare(metrics, ["mode"], {"mode": "base"}), "table")


def test_a_partial_baseline_compares_within_each_other_key() -> None:
    # two keys; the effect of "threshold" is +1 under diffusion and +5 under dandelion
    rows = []
    for w in range(3):
        for flow, prop, value in [
            ("transparent", "diffusion", 10.0),
            ("threshold", "diffusion", 11.0),
            ("transparent", "dandelion", 20.0),
            ("threshold", "dandelion", 25.0),
        ]:
            rows.append({"flow": flow, "prop": prop, "world_seed": w, "value": value + w})
    metrics = pl.DataFrame(rows).with_columns(scenario=pl.lit("s"), metric=pl.lit("m"))
    table = compare(metrics, ["flow", "prop"], {"flow": "transparent"})
    assert _row(table, flow="threshold", prop="diffusion")["diff"] == pytest.approx(1.0)
    assert _row(table, flow="threshold", prop="dandelion")["diff"] == pytest.approx(5.0)
    assert all(table.filter(pl.col("flow") == "transparent")["baseline"])
    # the default baseline is the first setting in order: one baseline for all
    default = compare(metrics.with_columns(order=pl.lit(0)), ["flow", "prop"])
    assert default["baseline"].sum() == 1


def test_runs_of_one_setting_are_their_own_baseline() -> None:
    metrics = _frame([("a", w, float(w)) for w in range(3)]).drop("mode")
    table = compare(metrics, [])
    assert table.height == 1 and table["baseline"].to_list() == [True]
    assert table["runs"].to_list() == [3] and table["diff"].to_list() == [None]


def test_a_bad_baseline_is_an_input_error() -> None:
    metrics = _frame([("0.0", 0, 1.0), ("0.5", 0, 2.0)], key="network.loss")
    with pytest.raises(InputError, match="not a compared key"):
        compare(metrics, ["network.loss"], {"privacy.order_flow": "threshold"})
    with pytest.raises(InputError, match=r"no run has network.loss=0.7 \(values: 0.0, 0.5\)"):
        compare(metrics, ["network.loss"], {"network.loss": "0.7"})
    table = compare(metrics, ["network.loss"], {"network.loss": "0"})  # 0 means 0.0
    assert _row(table, **{"network.loss": "0.0"})["baseline"]


def test_csv_and_json_carry_every_column_and_no_nan_token() -> None:
    metrics = _frame([("base", 0, 1.0), ("x", 0, 2.0), ("x", 1, math.nan)])
    table = compare(metrics, ["mode"], {"mode": "base"})
    rows = json.loads(render(table, "json"), parse_constant=pytest.fail)
    assert len(rows) == 2 and set(rows[0]) == set(table.columns)
    assert _row(table, mode="base")["ci95"] is not None  # NaN in the frame ...
    assert next(r for r in rows if r["mode"] == "base")["ci95"] is None  # ... null in JSON
    back = pl.read_csv(render(table, "csv").encode())
    assert back.columns == table.columns and back.height == 2


# --- real runs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 liquidity settings × 3 replications, plus a --set variant of one replication."""
    from tests.conftest import SMALL

    out = tmp_path_factory.mktemp("results")
    data = copy.deepcopy(SMALL) | {"replications": 3, "sweep": {"market.liquidity_b": [80.0, 40.0]}}
    assert not run_sweep(parse_scenario(data), out=out, workers=1).failed
    variant = copy.deepcopy(data) | {"replications": 1}
    variant["traders"]["noise"] = 4  # what `--set traders.noise=4` would make
    assert not run_sweep(parse_scenario(variant), out=out, workers=1).failed
    return out


def _direct(results: Path) -> pl.DataFrame:
    """Every metric of every run, read eagerly with its manifest: the reference."""
    frames = []
    for manifest in (results / "small").glob("*/manifest.json"):
        m = json.loads(manifest.read_text())
        frames.append(
            pl.read_parquet(manifest.parent / "tables" / "metrics.parquet").with_columns(
                b=pl.lit(m["point"]["market.liquidity_b"]),
                noise=pl.lit(m["scenario"]["traders"]["noise"]),
                world_seed=pl.lit(m["world_seed"]),
            )
        )
    return pl.concat(frames)


@pytest.mark.slow
def test_runs_are_grouped_by_what_varies_and_variants_are_not_averaged(results: Path) -> None:
    runs = read_runs(find_runs([results]))
    assert runs.height == 8
    assert varying_keys(runs) == ["market.liquidity_b", "traders.noise"]
    assert isinstance(scan_metrics(runs, ["market.liquidity_b"]), pl.LazyFrame)
    table = compare_dirs([results], metrics=["market.brier"])
    assert table.height == 4  # 2 liquidities × (noise 8, noise 4)
    direct = _direct(results).filter(pl.col("metric") == "market.brier")
    for row in table.iter_rows(named=True):
        b, noise = float(row["market.liquidity_b"]), int(row["traders.noise"])
        values = direct.filter((pl.col("b") == b) & (pl.col("noise") == noise))["value"]
        assert row["runs"] == values.len() == (3 if noise == 8 else 1)
        assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)


@pytest.mark.slow
def test_the_default_baseline_is_the_first_sweep_value_paired_by_replication(
    results: Path,
) -> None:
    table = compare_dirs([results], metrics=["market.brier"]).filter(pl.col("traders.noise") == "8")
    base = _row(table, **{"market.liquidity_b": "80.0"})  # listed first in [sweep]
    other = _row(table, **{"market.liquidity_b": "40.0"})
    assert base["baseline"] and other["paired"] and other["pairs"] == 3
    direct = _direct(results).filter((pl.col("metric") == "market.brier") & (pl.col("noise") == 8))
    by_world = direct.pivot(on="b", index="world_seed", values="value")
    differences = (by_world["40.0"] - by_world["80.0"]).to_list()
    mean = sum(differences) / 3
    assert other["diff"] == pytest.approx(mean, rel=1e-12, abs=1e-15)
    low, high = stats.ttest_rel(by_world["40.0"], by_world["80.0"]).confidence_interval(0.95)
    if math.isfinite(low):  # equal differences in every world give a zero-width interval
        assert (other["diff_low"], other["diff_high"]) == pytest.approx((low, high), rel=1e-9)


@pytest.mark.slow
def test_only_complete_visible_runs_are_read_once(results: Path, tmp_path: Path) -> None:
    copy_root = tmp_path / "r"
    shutil.copytree(results, copy_root)
    scenario = copy_root / "small"
    a_run = next(p for p in scenario.iterdir() if p.is_dir())
    shutil.copytree(a_run, scenario / f".{a_run.name}.tmp-x1y2")  # killed before its rename
    failed = scenario / "failed-run"
    failed.mkdir()
    (failed / "manifest.json").write_text(json.dumps({"status": "failed", "run_id": "f"}))
    (scenario / "no-manifest").mkdir()
    found = find_runs([copy_root, scenario, a_run])  # overlapping folders count once
    assert len(found) == 8 and all(not p.name.startswith(".") for p in found)
    assert compare_dirs([copy_root]).equals(compare_dirs([scenario]))


@pytest.mark.slow
def test_the_compare_command(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compare", str(results), "--metric", "market.brier", "--format", "json"]
    assert main([*args, "--baseline", "market.liquidity_b=40"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and all(r["metric"] == "market.brier" for r in rows)
    assert {r["market.liquidity_b"] for r in rows if r["baseline"]} == {"40.0"}
    assert main(["compare", str(results), "--metric", "market.brier"]) == 0
    shown = capsys.readouterr().out
    assert "baseline" in shown and "paired, 3" in shown and "market.brier" in shown
    for bad in (
        ["compare", str(tmp_path / "missing")],
        ["compare", str(tmp_path)],  # exists, but holds no complete run
        [*args, "--baseline", "market.liquidity_b=1"],
        [*args, "--baseline", "nonsense"],
    ):
        assert main(bad) == 2, bad
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0]
