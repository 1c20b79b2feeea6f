"""Sweeps: the same runs, seeds and metrics whatever the executor; faults lose only what was in
flight; resume redoes nothing that finished; a progress bar only on a terminal."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from rich.console import Console

from sim.errors import InputError
from sim.runs.cli import main
from sim.runs.sweep import LOST, run_sweep
from sim.scenario import ScenarioError, expand, load_scenario, parse_scenario

pytestmark = pytest.mark.slow  # every test here runs whole simulations, sweeps or the CLI

ROOT = Path(__file__).resolve().parents[3]
PRIVACY = ROOT / "scenarios" / "privacy-comparison.toml"


def _sweep(small: dict[str, Any], sweep: dict[str, list[Any]], reps: int) -> dict[str, Any]:
    data = copy.deepcopy(small)
    data["replications"] = reps
    data["sweep"] = sweep
    return data


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    """``data`` as a TOML file (flat sections; JSON scalars and arrays are TOML too)."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{section}]")
            lines += [f'"{k}" = {json.dumps(v)}' for k, v in table.items()]
    path = tmp_path / "s.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _manifests(scenario_dir: Path) -> dict[str, dict[str, Any]]:
    """Every run folder's manifest by run id (hidden, temporary folders excluded)."""
    return {
        p.parent.name: json.loads(p.read_text())
        for p in scenario_dir.glob("*/manifest.json")
        if not p.parent.name.startswith(".")
    }


def _complete(scenario_dir: Path) -> dict[str, int]:
    """Complete runs by id, with their manifest's modification time in nanoseconds."""
    return {
        run_id: (scenario_dir / run_id / "manifest.json").stat().st_mtime_ns
        for run_id, m in _manifests(scenario_dir).items()
        if m["status"] == "complete"
    }


def _metrics(scenario_dir: Path) -> dict[str, pl.DataFrame]:
    """Each complete run's metrics, without the perf.* timings (which differ run to run)."""
    return {
        run_id: pl.read_parquet(scenario_dir / run_id / "tables" / "metrics.parquet")
        .filter(~pl.col("metric").str.starts_with("perf."))
        .sort("metric")
        for run_id in _complete(scenario_dir)
    }


def _seeds(scenario_dir: Path) -> list[tuple[str, int, int, str]]:
    """(run id, seed, world seed, status) of every run in sweep.json, in its order."""
    runs = json.loads((scenario_dir / "sweep.json").read_text())["runs"]
    return [(r["run_id"], r["seed"], r["world_seed"], r["status"]) for r in runs]


# --- the same runs whatever the executor -------------------------------------------------------

POINTS = {"market.liquidity_b": [40.0, 80.0]}


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: a 2 points × 2 replications sweep run in this process."""
    from tests.conftest import SMALL

    out = tmp_path_factory.mktemp("serial")
    summary = run_sweep(parse_scenario(_sweep(SMALL, POINTS, 2)), out=out, workers=1)
    assert len(summary.complete) == 4 and not summary.failed
    return out / "small"


def test_seeds_are_distinct_per_run_and_one_world_per_replication(serial: Path) -> None:
    runs = _seeds(serial)
    assert len(runs) == 4 and all(status == "complete" for *_, status in runs)
    assert len({seed for _, seed, _, _ in runs}) == 4
    worlds = {m["replication"]: set() for m in _manifests(serial).values()}
    for manifest in _manifests(serial).values():
        worlds[manifest["replication"]].add(manifest["world_seed"])
    # every point of one replication shares its world; replications differ
    assert all(len(seeds) == 1 for seeds in worlds.values())
    assert len(set().union(*worlds.values())) == 2
    # manifests agree with sweep.json
    manifests = _manifests(serial)
    assert {(r, manifests[r]["seed"], manifests[r]["world_seed"]) for r, *_ in runs} == {
        (r, s, w) for r, s, w, _ in runs
    }


def test_the_process_pool_gives_the_same_runs_as_one_process(
    serial: Path, small: dict[str, Any], tmp_path: Path
) -> None:
    summary = run_sweep(parse_scenario(_sweep(small, POINTS, 2)), out=tmp_path, workers=2)
    assert len(summary.complete) == 4
    assert _seeds(tmp_path / "small") == _seeds(serial)
    pooled, reference = _metrics(tmp_path / "small"), _metrics(serial)
    assert sorted(pooled) == sorted(reference)
    for run_id, frame in reference.items():
        assert_frame_equal(pooled[run_id], frame, check_exact=True)


def test_ray_gives_the_same_runs_as_the_local_executor(
    serial: Path, small: dict[str, Any], tmp_path: Path
) -> None:
    pytest.importorskip("ray", reason="ray is the optional 'cluster' extra")
    summary = run_sweep(
        parse_scenario(_sweep(small, POINTS, 2)), out=tmp_path, executor="ray", workers=2
    )
    assert len(summary.complete) == 4, summary.failed
    assert _seeds(tmp_path / "small") == _seeds(serial)
    on_ray, reference = _metrics(tmp_path / "small"), _metrics(serial)
    assert sorted(on_ray) == sorted(reference)
    for run_id, frame in reference.items():
        assert_frame_equal(on_ray[run_id], frame, check_exact=True)
    assert all(o.wall_s is not None and o.wall_s > 0 for o in summary.complete)


def test_a_missing_ray_is_a_one_line_input_error(
    small: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when not installed
    with pytest.raises(InputError, match=r"veilcast\[cluster\]"):
        run_sweep(parse_scenario(small), out=tmp_path, executor="ray")
    with pytest.raises(InputError, match="--executor ray"):  # never silently ignored
        run_sweep(parse_scenario(small), out=tmp_path, address="auto")
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_workers_below_one_is_bad_input(
    small: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _sweep(small, POINTS, 1))
    assert main(["sweep", str(path), "--out", str(tmp_path), "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert not (tmp_path / "small").exists()


def test_a_stop_request_interrupts_the_sweep_even_if_no_exception_arrives(
    small: dict[str, Any], tmp_path: Path
) -> None:
    # a signal handler's KeyboardInterrupt can be swallowed (raised inside a __del__); the
    # request it also sets must stop the sweep at the next run
    scenario = parse_scenario(_sweep(small, POINTS, 1))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(scenario, out=tmp_path, workers=1, stop_requested=lambda: True)
    summary = json.loads((tmp_path / "small" / "sweep.json").read_text())
    assert summary["state"] == "interrupted"
    assert len(_complete(tmp_path / "small")) < len(expand(scenario))


# --- failures ------------------------------------------------------------------------------------

SPARSE = {"network.degree": [4, 1]}  # erdos_renyi with mean degree 1 on 30 nodes never connects


def test_a_failing_point_is_recorded_and_the_others_complete(
    small: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small["network"]["topology"] = "erdos_renyi"
    path = _write(tmp_path, _sweep(small, SPARSE, 2))
    assert main(["sweep", str(path), "--out", str(tmp_path), "--workers", "2"]) == 1
    err = capsys.readouterr().err
    manifests = _manifests(tmp_path / "small")
    failed = {r: m for r, m in manifests.items() if m["status"] == "failed"}
    assert len(manifests) == 4 and len(failed) == 2
    assert all(m["point"] == {"network.degree": 1} for m in failed.values())
    for run_id, manifest in failed.items():
        assert manifest["error"].startswith("TopologyError: network.degree")
        assert "Traceback" in manifest["traceback"] and "build_topology" in manifest["traceback"]
        assert not list((tmp_path / "small" / run_id).glob("tables/*"))  # no table written
        assert f"run {run_id} failed: TopologyError" in err
    assert "sweep small: 2 complete, 0 skipped (already complete), 2 failed" in err
    sweep = json.loads((tmp_path / "small" / "sweep.json").read_text())
    assert sweep["state"] == "finished" and sweep["counts"]["failed"] == 2
    assert {r["run_id"] for r in sweep["runs"] if r["status"] == "failed"} == set(failed)
    assert all("network.degree" in r["error"] for r in sweep["runs"] if r["status"] == "failed")

    # resume reruns only the failed runs (they fail again): the complete ones are untouched
    before = _complete(tmp_path / "small")
    summary = run_sweep(load_scenario(path), out=tmp_path, resume=True, workers=1)
    assert {o.run_id for o in summary.skipped} == set(before)
    assert {o.run_id for o in summary.failed} == set(failed)
    assert _complete(tmp_path / "small") == before


def test_a_sweep_whose_every_run_is_refused_is_bad_input(
    small: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small["network"] |= {"topology": "erdos_renyi", "degree": 1}
    path = _write(tmp_path, _sweep(small, {"market.liquidity_b": [40.0, 80.0]}, 1))
    assert main(["sweep", str(path), "--out", str(tmp_path), "--workers", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1  # one problem, said once, naming the file and the dotted key
    assert str(path) in lines[0] and "network.degree" in lines[0]
    assert "Traceback" not in lines[0]


# --- interruptions and resume -------------------------------------------------------------------


def _start(path: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    """A sweep in a process group of its own, like a terminal job, output not a terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out), *extra],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_complete(folder: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not folder.exists() or len(_complete(folder)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.02)


BIG = 12


def _big(small: dict[str, Any]) -> dict[str, Any]:
    """12 runs of about a third of a second each: long enough to interrupt midway."""
    return _sweep(small, POINTS, BIG // 2)


def test_ctrl_c_stops_promptly_and_leaves_nothing_half_written(
    small: dict[str, Any], tmp_path: Path
) -> None:
    path = _write(tmp_path, _big(small))
    folder = tmp_path / "small"
    proc = _start(path, tmp_path, "--workers", "2")
    _wait_for_complete(folder, 2, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert "━" not in err  # no progress bar when standard error is not a terminal
    done = _complete(folder)
    assert 2 <= len(done) < BIG
    assert all(m["status"] == "complete" for m in _manifests(folder).values())
    assert not list(folder.glob(".*tmp-*"))  # runs in flight cleaned up after themselves
    sweep = json.loads((folder / "sweep.json").read_text())
    assert sweep["state"] == "interrupted"
    assert {r["run_id"] for r in sweep["runs"] if r["status"] == "complete"} == set(done)


def _workers_of(pid: int) -> list[int]:
    """The pool's worker processes: children of the fork server, itself a child of ``pid``."""

    def children(p: int) -> list[int]:
        try:
            return [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            return []

    servers = [c for c in children(pid) if b"forkserver" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return [w for s in servers for w in children(s)]


def test_a_killed_worker_then_a_killed_sweep_lose_only_the_runs_in_flight(
    small: dict[str, Any], tmp_path: Path
) -> None:
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs /proc/<pid>/task/<pid>/children to find the pool's workers")
    path = _write(tmp_path, _big(small))
    folder = tmp_path / "small"
    proc = _start(path, tmp_path, "--workers", "2")
    _wait_for_complete(folder, 2, proc)
    workers = _workers_of(proc.pid)
    assert workers, "no worker process found"
    os.kill(workers[0], signal.SIGKILL)  # a worker dies (e.g. the out-of-memory killer) ...
    _wait_for_complete(folder, len(_complete(folder)) + 3, proc)  # ... and the sweep goes on
    os.killpg(proc.pid, signal.SIGKILL)  # then the whole sweep: driver, fork server, workers
    proc.communicate()

    manifests = _manifests(folder)
    lost = {r for r, m in manifests.items() if m["status"] == "failed"}
    assert 1 <= len(lost) <= 2  # at most the runs in flight on the two workers
    assert all(manifests[r]["error"].startswith(f"{LOST}: the worker process") for r in lost)
    before = _complete(folder)
    assert 5 <= len(before) < BIG - len(lost)
    created = {r: manifests[r]["created"] for r in before}

    summary = run_sweep(load_scenario(path), out=tmp_path, resume=True, workers=1)
    assert {o.run_id for o in summary.skipped} == set(before)
    assert lost <= {o.run_id for o in summary.complete}  # the lost runs are redone
    assert len(summary.complete) == BIG - len(before) and not summary.failed
    after = _complete(folder)
    assert len(after) == BIG
    assert {r: after[r] for r in before} == before  # finished runs were not rewritten
    assert all(_manifests(folder)[r]["created"] == c for r, c in created.items())
    statuses = [status for *_, status in _seeds(folder)]
    assert statuses.count("skipped") == len(before)
    assert statuses.count("complete") == BIG - len(before)


# --- progress -----------------------------------------------------------------------------------


def test_the_progress_bar_shows_done_failed_and_running_on_a_terminal(
    small: dict[str, Any], tmp_path: Path
) -> None:
    small["network"]["topology"] = "erdos_renyi"
    scenario = parse_scenario(_sweep(small, SPARSE, 1))
    screen = StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    run_sweep(scenario, out=tmp_path / "a", workers=1, console=terminal)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # without colours
    assert "2/2 done, failed 1, running 0" in shown and "running 1" in shown
    assert "0:00:0" in shown or "-:--:--" in shown  # the time-left column

    quiet = StringIO()
    run_sweep(scenario, out=tmp_path / "b", workers=1, console=Console(file=quiet))
    assert quiet.getvalue() == ""  # not a terminal: no bar at all


# --- the bundled privacy comparison -------------------------------------------------------------


def _privacy_or_skip(overrides: list[str] | None = None) -> Any:
    try:
        return load_scenario(PRIVACY, overrides=overrides or [])
    except ScenarioError as exc:
        refused = [p for p in exc.problems if "not available yet" in p.message]
        if refused and len(refused) == len(exc.problems):
            pytest.skip(f"the capability gate refuses it until the modes land: {refused[0]}")
        raise


def test_the_privacy_comparison_is_four_modes_by_two_propagations_by_five() -> None:
    scenario = _privacy_or_skip()
    specs = expand(scenario)
    assert len(specs) == 40
    points = {json.dumps(s.point, sort_keys=True) for s in specs}
    assert len(points) == 8
    modes = {s.point["privacy.order_flow"] for s in specs}
    assert modes == {"transparent", "operator", "commit_reveal", "threshold"}
    assert {s.point["network.propagation"] for s in specs} == {"diffusion", "dandelion"}
    for replication in range(5):
        worlds = {s.world_seed for s in specs if s.replication == replication}
        assert len(worlds) == 1  # the eight settings of a replication share one world


def test_one_short_replication_of_the_privacy_comparison_runs(tmp_path: Path) -> None:
    short = ["duration_s=1200", "market.close_s=900", "market.resolve_s=1000"]
    scenario = _privacy_or_skip(["replications=1", *short])
    summary = run_sweep(scenario, out=tmp_path, workers=2)
    assert len(summary.complete) == 8, [o.error for o in summary.failed]
