"""Whole commands as processes: concurrent writers into one --out, and signals by pid.

Each test starts ``python -m sim`` in its own process group on the tiny scenario, waits with a
deadline and kills whatever is left in its ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.results import io

from .conftest import TINY, alive, descendants, manifests, staging, start, wait_until, write_tiny

pytestmark = pytest.mark.slow

TRIALS = 2
LONGER = TINY.replace("replications = 2", "replications = 6")  # 12 runs: time to interrupt


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still running at its end are killed with their group."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)


def _consistent(folder: Path) -> dict[str, str]:
    """Every visible run folder is complete or failed as its manifest says, sweep.json agrees
    with the disk about every run it calls complete, and no staging is left."""
    on_disk = {run_id: m["status"] for run_id, m in manifests(folder).items()}
    for run_id, status in on_disk.items():
        if status == "complete":
            assert io.is_complete(folder / run_id)
            assert (folder / run_id / "tables" / "metrics.parquet").is_file()
    summary = json.loads((folder / "sweep.json").read_text())
    for run in summary["runs"]:
        if run["status"] in ("complete", "skipped"):
            assert on_disk.get(run["run_id"]) == "complete", run
    assert staging(folder) == []
    return on_disk


def test_concurrent_runs_and_sweeps_into_one_folder_never_clash(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    path = write_tiny(tmp_path)
    for trial in range(TRIALS):
        out = tmp_path / f"out{trial}"
        commands = [
            ("run", str(path), "--out", str(out)),
            ("run", str(path), "--out", str(out)),
            ("sweep", str(path), "--out", str(out), "--workers", "2"),
        ]
        procs[:] = [start(*command) for command in commands]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0 and "Traceback" not in err, err
        on_disk = _consistent(out / "tiny")
        assert sorted(on_disk.values()) == ["complete"] * 4


def _interrupt(
    tmp_path: Path, procs: list[subprocess.Popen[str]], command: str, signum: int
) -> tuple[subprocess.Popen[str], list[int]]:
    """Start ``command`` on the longer scenario, send ``signum`` to its pid (not its group)
    once two runs are complete; returns the process and the processes below it then."""
    path = write_tiny(tmp_path, LONGER)
    folder = tmp_path / "tiny"
    extra = ["--workers", "2"] if command == "sweep" else []
    proc = start(command, str(path), "--out", str(tmp_path), *extra)
    procs.append(proc)

    def two_done() -> bool:
        assert proc.poll() is None, proc.communicate()
        done = [m for m in manifests(folder).values() if m["status"] == "complete"]
        return folder.exists() and len(done) >= 2

    wait_until(two_done, 120, "two complete runs")
    below = descendants(proc.pid)
    os.kill(proc.pid, signum)
    return proc, below


@pytest.mark.parametrize(
    ("command", "signum"),
    [("sweep", signal.SIGTERM), ("run", signal.SIGTERM), ("run", signal.SIGINT)],
)
def test_a_signal_by_pid_stops_cleanly(
    tmp_path: Path, procs: list[subprocess.Popen[str]], command: str, signum: int
) -> None:
    proc, below = _interrupt(tmp_path, procs, command, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    wait_until(lambda: not any(alive(p) for p in below), 10, "the workers to exit")
    folder = tmp_path / "tiny"
    on_disk = _consistent(folder)
    summary = json.loads((folder / "sweep.json").read_text())
    assert summary["state"] == "interrupted"
    assert 2 <= sum(s == "complete" for s in on_disk.values()) < 12


def test_a_killed_sweep_driver_leaves_no_worker_behind(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    proc, below = _interrupt(tmp_path, procs, "sweep", signal.SIGKILL)
    workers = [p for p in below if _is_worker(p)]
    assert workers, "no worker process found"
    # Before the dead driver is reaped (a zombie, as under a shell that has not waited yet)
    # its workers, each holding a whole simulation, notice and exit...
    wait_until(lambda: not any(alive(p) for p in workers), 10, "the orphaned workers to exit")
    # ... and once it is reaped, the fork server and resource tracker follow.
    proc.communicate(timeout=30)
    wait_until(lambda: not any(alive(p) for p in below), 10, "every helper process to exit")
    folder = tmp_path / "tiny"
    assert all(m["status"] == "complete" for m in manifests(folder).values())


def _is_worker(pid: int) -> bool:
    """A pool worker: forked by the fork server, so its parent runs the fork server's main."""
    try:
        parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        return b"forkserver" in Path(f"/proc/{parent}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
