"""Discovering runs: complete ones are loadable, everything else is listed but never loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl

from dashboard.catalog import (
    discover_runs,
    fingerprint,
    folder_record,
    manifest_record,
    setting_label,
)


def test_fixture_statuses(results_root: Path) -> None:
    runs = discover_runs(results_root)
    counts = dict(runs.group_by("status").len().iter_rows())
    assert counts == {"complete": 4, "failed": 1, "incomplete": 1}
    assert runs.filter(pl.col("loadable"))["status"].unique().to_list() == ["complete"]
    failed = runs.filter(pl.col("status") == "failed").row(0, named=True)
    assert "KeyperError" in failed["error"]
    assert not failed["loadable"]
    partial = runs.filter(pl.col("status") == "incomplete").row(0, named=True)
    assert partial["run_id"] == "threshold-r1-feedface00"  # from ".<run-id>.tmp-*"
    complete = runs.filter(pl.col("loadable"))
    assert complete.group_by("setting").len()["len"].to_list() == [2, 2]
    assert sorted(complete["replication"].to_list()) == [0, 0, 1, 1]


def test_sweep_summary_file_is_not_a_run(results_root: Path) -> None:
    paths = discover_runs(results_root)["path"].to_list()
    assert not any("sweep.json" in p for p in paths)


def test_unreadable_or_odd_manifests_are_invalid(tmp_path: Path) -> None:
    root = tmp_path / "r"
    cases = {
        "not-json": "{oops",
        "array": "[1, 2]",
        "status-odd": json.dumps({"status": "running"}),
        "binary": None,
    }
    for name, text in cases.items():
        run = root / "s" / name
        run.mkdir(parents=True)
        if text is None:
            (run / "manifest.json").write_bytes(bytes(range(256)))
        else:
            (run / "manifest.json").write_text(text, encoding="utf-8")
    (root / "s" / "no-manifest").mkdir()
    runs = discover_runs(root)
    status = dict(runs.select("run_id", "status").iter_rows())
    assert status == {
        "array": "invalid",
        "binary": "invalid",
        "no-manifest": "incomplete",
        "not-json": "invalid",
        "status-odd": "invalid",
    }
    assert not runs["loadable"].any()
    assert runs.filter(pl.col("run_id") == "status-odd")["error"].item() == (
        "unknown manifest status 'running'"
    )


def test_wrongly_typed_manifest_fields_become_missing(tmp_path: Path) -> None:
    record = manifest_record(
        "s",
        "r",
        {"status": "complete", "seed": True, "replication": "1", "wall_s": 3, "point": [1]},
    )
    assert record["seed"] is None  # a bool is not a seed
    assert record["replication"] is None
    assert record["wall_s"] == 3.0
    assert record["point"] == "{}"
    assert record["loadable"]


def test_setting_labels() -> None:
    assert setting_label({}, "threshold") == "order_flow=threshold"
    assert setting_label({}, None) == "default"
    point = {"privacy.order_flow": "operator", "network.loss": 0.1}
    assert setting_label(point, "ignored") == "loss=0.1, order_flow=operator"


def test_scenario_symlink_out_of_the_folder_is_listed_invalid_and_never_read(
    tmp_path: Path, results_root: Path
) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "elsewhere").symlink_to(results_root / "dash-fixture")
    [row] = discover_runs(root).to_dicts()
    assert (row["path"], row["status"], row["loadable"]) == ("elsewhere/(folder)", "invalid", False)
    assert "outside the results folder" in row["error"]


def test_fingerprint_changes_when_a_run_lands(tmp_path: Path, results_root: Path) -> None:
    root = tmp_path / "r"
    shutil.copytree(results_root, root)
    before = fingerprint(root)
    first = discover_runs(root).filter(pl.col("loadable"))["path"][0]
    src = root / first
    shutil.copytree(src, root / "dash-fixture" / "landed-r9-0000000000")
    after = fingerprint(root)
    assert before != after
    assert len(after) == len(before) + 1
    assert folder_record("dash-fixture", root / "dash-fixture" / "landed-r9-0000000000")["loadable"]


def test_sweep_position_and_world_seed_come_from_the_sweep_and_manifests(tmp_path: Path) -> None:
    from dashboard import queries

    root = tmp_path / "r"
    for run_id, flow in (("a-run", "commit_reveal"), ("b-run", "transparent")):
        run = root / "s" / run_id
        run.mkdir(parents=True)
        manifest = {
            "status": "complete",
            "run_id": run_id,
            "world_seed": 42,
            "replication": 0,
            "point": {"privacy.order_flow": flow},
        }
        (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    sweep = {"runs": [{"run_id": "b-run"}, {"run_id": "a-run"}]}  # transparent listed first
    (root / "s" / "sweep.json").write_text(json.dumps(sweep), encoding="utf-8")
    runs = discover_runs(root)
    assert dict(runs.select("run_id", "order").iter_rows()) == {"a-run": 1, "b-run": 0}
    assert runs["world_seed"].to_list() == [42, 42]
    groups = queries.with_groups(runs)
    assert set(queries.default_baselines(groups).values()) == {"transparent"}
    (root / "s" / "sweep.json").write_text("{broken", encoding="utf-8")
    assert discover_runs(root)["order"].to_list() == [None, None]  # unknown, not made up
