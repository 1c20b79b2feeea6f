"""The sweep driver against odd files, a full disk and several variants in one folder.

Runs are replaced by a stand-in that returns small tables at once (the driver's guarantees do
not depend on what a run computes), so these tests take milliseconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from sim.results import io
from sim.runs import sweep
from sim.runs.cli import main
from sim.runs.runner import RunResult, base_manifest
from sim.scenario import RunSpec, load_scenario

from .conftest import in_thread, manifests, release_fifo, staging, write_tiny


def _instant(spec: RunSpec) -> RunResult:
    metrics = pl.DataFrame({"run_id": [spec.run_id], "metric": ["market.brier"], "value": [0.2]})
    manifest = base_manifest(spec) | {"status": "complete"}
    return RunResult(spec.run_id, {"metrics": metrics}, manifest)


@pytest.fixture(autouse=True)
def instant_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep, "execute", _instant)


def test_resume_over_fifo_manifests_and_summary_does_not_hang(tmp_path: Path) -> None:
    path = write_tiny(tmp_path)
    scenario = load_scenario(path)
    specs = sweep.expand(scenario)
    folder = tmp_path / "out" / "tiny"
    (folder / specs[0].run_id).mkdir(parents=True)
    os.mkfifo(folder / specs[0].run_id / "manifest.json")
    os.mkfifo(folder / "sweep.json")
    finished, summary = in_thread(
        lambda: sweep.run_sweep(scenario, out=tmp_path / "out", resume=True, workers=1), 5.0
    )
    for fifo in (folder / specs[0].run_id / "manifest.json", folder / "sweep.json"):
        release_fifo(fifo)
    assert finished, "--resume hung on a FIFO"
    assert isinstance(summary, sweep.SweepSummary), summary
    assert len(summary.complete) == len(specs)  # the FIFO run is redone, not trusted
    assert all(m["status"] == "complete" for m in manifests(folder).values())
    assert json.loads((folder / "sweep.json").read_text())["state"] == "finished"


def test_a_disk_that_fills_up_mid_write_is_bad_input_and_leaves_nothing_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(self: pl.DataFrame, file: object, **_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    path = write_tiny(tmp_path)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines and "Traceback" not in err
    assert all(line.startswith(f"{path}: --out: cannot write ") for line in lines)
    assert all("No space left on device" in line for line in lines)
    folder = tmp_path / "out" / "tiny"
    assert not any(io.is_complete(p) for p in folder.iterdir())
    assert staging(folder) == []


def test_sweep_json_keeps_the_runs_of_every_variant(tmp_path: Path) -> None:
    path = write_tiny(tmp_path)
    out = tmp_path / "out"
    first = sweep.run_sweep(load_scenario(path), out=out, workers=1)
    second = sweep.run_sweep(
        load_scenario(path, overrides=["network.nodes=20"]), out=out, workers=1
    )
    summary = json.loads((out / "tiny" / "sweep.json").read_text())
    listed = [r["run_id"] for r in summary["runs"]]
    expected = [o.run_id for o in second.complete] + [o.run_id for o in first.complete]
    assert listed == expected and len(set(listed)) == 8
    assert summary["counts"]["complete"] == 8
    assert set(listed) == set(manifests(out / "tiny"))


def test_a_failure_after_another_writer_finished_the_run_reports_it_complete(
    tmp_path: Path,
) -> None:
    [spec, *_] = sweep.expand(load_scenario(write_tiny(tmp_path)))
    assert sweep.run_one(spec, tmp_path).status == "complete"
    outcome = sweep.record_failure(spec, tmp_path, "WorkerLost", "the worker died")
    assert outcome.status == "complete"
    assert io.is_complete(io.run_dir(tmp_path, "tiny", spec.run_id))
