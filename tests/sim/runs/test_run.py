"""End-to-end runs: invariants, reproducibility, results layout."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import sim
from resultkit.intervals import paired_difference
from sim.runs.runner import RunResult

pytestmark = pytest.mark.slow  # every test here runs whole simulations, sweeps or the CLI

REQUIRED_TABLES = {"metrics", "orders", "prices", "messages", "settlement", "fl_rounds", "nodes"}


def _without_perf(result: RunResult) -> dict[str, pl.DataFrame]:
    tables = dict(result.tables)
    tables["metrics"] = tables["metrics"].filter(~pl.col("metric").str.starts_with("perf."))
    return tables


def _assert_same(a: RunResult, b: RunResult) -> None:
    left, right = _without_perf(a), _without_perf(b)
    assert sorted(left) == sorted(right)
    for name in left:
        assert_frame_equal(left[name], right[name], check_exact=True)


def test_a_run_conserves_money_and_replicas_agree(small: dict[str, Any]) -> None:
    m = sim.run(small).metrics()
    assert m["ledger.conservation_error"] == 0
    assert m["ledger.replica_divergence"] == 0
    assert m["ledger.replica_lag_blocks"] >= 0
    assert m["market.orders_executed"] > 20
    assert m["market.maker_loss"] <= m["market.maker_loss_bound"] + 1e-9
    assert m["settlement.correct_fraction"] == 1.0
    assert m["settlement.finalized_fraction"] == 1.0
    assert 0 < m["settlement.latency_s"] < 60
    assert m["cost.order_latency_s"] > 0 and m["privacy.exposure_s"] > 0


def test_a_replica_that_falls_behind_on_a_lossy_network_lags_but_does_not_diverge(
    small: dict[str, Any],
) -> None:
    # nine messages in ten lost: replicas fall far behind, yet each is the canonical chain at
    # its own height (the old majority-hash count called every laggard diverged)
    small["network"]["loss"] = 0.9
    m = sim.run(small).metrics()
    assert m["ledger.replica_lag_blocks"] > 0
    assert m["ledger.replica_divergence"] == 0
    assert m["ledger.conservation_error"] == 0


def test_money_is_conserved_across_traders_and_makers(small: dict[str, Any]) -> None:
    result = sim.run(small)
    traders = result.tables["traders"]
    # after settlement every trader's value is cash; makers hold the rest of what was minted
    m = result.metrics()
    total_pnl = traders["pnl"].sum()
    assert total_pnl == pytest.approx(m["market.maker_loss"], abs=1e-5)


def test_informed_traders_beat_noise_traders_on_average(small: dict[str, Any]) -> None:
    # one world's outcomes can go either way (Kelly bettors stake a lot): over eight worlds,
    # world by world, informed traders make more than noise traders
    small["traders"] |= {"informed": 10, "noise": 10, "signal_draws": 20}
    small["market"]["count"] = 4
    gaps = []
    for seed in range(1, 9):
        m = sim.run(small | {"seed": seed}).metrics()
        gaps.append(m["traders.informed_pnl"] - m["traders.noise_pnl"])
    assert paired_difference(gaps).low > 0, gaps


def test_every_required_table_exists_with_run_id_on_every_row(small: dict[str, Any]) -> None:
    result = sim.run(small)
    assert set(result.tables) >= REQUIRED_TABLES
    for name, frame in result.tables.items():
        assert frame.columns[0] == "run_id", name
        assert frame["run_id"].n_unique() <= 1
    assert result.tables["fl_rounds"].height == 0  # no forecaster: empty but typed
    assert result.tables["fl_rounds"].schema["round"] == pl.Int64


def test_inapplicable_metrics_are_absent_never_zero(small: dict[str, Any]) -> None:
    m = sim.run(small).metrics()
    for name in ("fl.model_brier", "traders.forecaster_pnl", "mev.extracted"):
        assert name not in m or math.isnan(m[name])


def test_same_seed_gives_identical_tables(small: dict[str, Any]) -> None:
    _assert_same(sim.run(small), sim.run(small))


def test_different_seeds_differ(small: dict[str, Any]) -> None:
    a = sim.run(small)
    b = sim.run(small, seed=12)
    assert not a.tables["orders"].drop("run_id").equals(b.tables["orders"].drop("run_id"))


def test_loss_delays_replicas_but_they_catch_up_and_agree(small: dict[str, Any]) -> None:
    small["network"] |= {"loss": 0.35, "degree": 3}
    result = sim.run(small)
    m = result.metrics()
    messages = result.tables["messages"]
    assert messages.filter(pl.col("kind") == "fetch")["sent"].sum() > 0
    assert m["ledger.replica_divergence"] == 0
    assert m["ledger.conservation_error"] == 0


def test_the_same_run_in_another_process_gives_identical_tables(
    small: dict[str, Any], tmp_path: Path
) -> None:
    here = sim.run(small, out=tmp_path / "a")
    code = f"import json, sys, sim; sim.run(json.loads(sys.argv[1]), out={str(tmp_path / 'b')!r})"
    subprocess.run([sys.executable, "-c", code, json.dumps(small)], check=True)
    folder = tmp_path / "b" / "small" / here.run_id
    for name, frame in _without_perf(here).items():
        other = pl.read_parquet(folder / "tables" / f"{name}.parquet")
        if name == "metrics":
            other = other.filter(~pl.col("metric").str.starts_with("perf."))
        assert_frame_equal(frame, other, check_exact=True)


def test_results_layout_and_manifest(small: dict[str, Any], tmp_path: Path) -> None:
    result = sim.run(small, out=tmp_path)
    folder = tmp_path / "small" / result.run_id
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["run_id"] == result.run_id
    for key in (
        "schema_version",
        "scenario",
        "point",
        "seed",
        "world_seed",
        "replication",
        "package_version",
        "git_commit",
        "python",
        "wall_s",
        "events",
        "tables",
    ):
        assert key in manifest, key
    assert manifest["scenario"]["network"]["topology"] == "random_regular"  # defaults filled in
    # one count of simulated events, in the manifest and the metrics alike
    assert manifest["events"] == result.metric("perf.events") > 0
    for name, entry in manifest["tables"].items():
        frame = pl.read_parquet(folder / entry["path"])
        assert frame.height == entry["rows"], name
        assert entry["columns"] == {c: str(t) for c, t in frame.schema.items()}
    assert not [p for p in (tmp_path / "small").iterdir() if p.name.startswith(".")]


def test_a_run_is_only_written_when_asked(
    small: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sim.run(small)
    assert list(tmp_path.iterdir()) == []


def test_a_rewrite_clears_what_a_killed_writer_left(small: dict[str, Any], tmp_path: Path) -> None:
    result = sim.run(small, out=tmp_path)
    folder = tmp_path / "small"
    stale = folder / f".{result.run_id}.tmp-killed"
    (stale / "tables").mkdir(parents=True)
    sim.run(small, out=tmp_path)
    assert not stale.exists()
    assert [p.name for p in folder.iterdir()] == [result.run_id]
