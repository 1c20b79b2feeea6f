"""The single writer: concurrent writers of one results folder, failures, special files.

The concurrency tests race real processes (``fork`` would copy polars' threads, so
``forkserver``), each writing tiny tables, a bounded number of times; they need no simulation.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import threading
import time
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import polars as pl
import pytest

from sim.results import io

SCENARIO = "race"
RUN_ID = "base-r0-0123456789"
WRITERS = 3
ROUNDS = 5
DEADLINE_S = 60.0


def _manifest(status: str = "complete", writer: int = 0) -> dict[str, object]:
    return {"run_id": RUN_ID, "status": status, "writer": writer}


def _tables(rows: int = 2000) -> dict[str, pl.DataFrame]:
    # Big enough that writing takes a few milliseconds, so writers overlap.
    frame = pl.DataFrame({"run_id": [RUN_ID] * rows, "metric": ["m"] * rows, "value": [1.0] * rows})
    return {"metrics": frame, "prices": frame, "orders": frame}


def _writer(out: str, writer: int, start: float, failed: bool) -> str:
    """One writer process: wait for the common start, write, report what went wrong."""
    time.sleep(max(0.0, start - time.time()))
    try:
        if failed:
            io.write_failed(Path(out), SCENARIO, _manifest("failed", writer) | {"error": "boom"})
        else:
            io.write_run(Path(out), SCENARIO, _manifest(writer=writer), _tables())
    except Exception as exc:  # the test reports every writer's failure
        return f"{type(exc).__name__}: {exc}"
    return ""


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """Writer processes shared by the race tests (starting them is most of their cost)."""
    with multiprocessing.get_context("forkserver").Pool(WRITERS) as workers:
        yield workers


def _race(pool: Pool, out: Path, *, failures: int) -> list[str]:
    """Rounds of ``WRITERS`` processes writing one run id at once, ``failures`` of them
    writing a failure record; returns every writer's error (none expected)."""
    errors: list[str] = []
    started = time.monotonic()
    for _ in range(ROUNDS):
        assert time.monotonic() - started < DEADLINE_S
        start = time.time() + 0.1
        jobs = [(str(out), w, start, w < failures) for w in range(WRITERS)]
        errors += [e for e in pool.starmap(_writer, jobs) if e]
    return errors


def test_concurrent_writers_of_one_run_never_fail_nor_leave_staging(
    pool: Pool, tmp_path: Path
) -> None:
    errors = _race(pool, tmp_path, failures=0)
    assert errors == []
    folder = io.run_dir(tmp_path, SCENARIO, RUN_ID)
    assert io.is_complete(folder)
    assert pl.read_parquet(folder / "tables" / "metrics.parquet").height == 2000
    assert [p.name for p in folder.parent.iterdir()] == [RUN_ID]  # no staging, no lock file


def test_a_failure_record_never_replaces_a_complete_run(pool: Pool, tmp_path: Path) -> None:
    io.write_run(tmp_path, SCENARIO, _manifest(), _tables())
    errors = _race(pool, tmp_path, failures=WRITERS // 2)
    assert errors == []
    folder = io.run_dir(tmp_path, SCENARIO, RUN_ID)
    assert io.read_manifest(folder)["status"] == "complete"
    assert (folder / "tables" / "metrics.parquet").is_file()
    io.write_failed(tmp_path, SCENARIO, _manifest("failed") | {"error": "late"})
    assert io.read_manifest(folder)["status"] == "complete"


def test_a_failure_record_is_written_where_no_complete_run_is(tmp_path: Path) -> None:
    io.write_failed(tmp_path, SCENARIO, _manifest("failed") | {"error": "boom"})
    assert io.read_manifest(io.run_dir(tmp_path, SCENARIO, RUN_ID))["status"] == "failed"
    io.write_run(tmp_path, SCENARIO, _manifest(), _tables(10))  # a complete one replaces it
    assert io.is_complete(io.run_dir(tmp_path, SCENARIO, RUN_ID))


def _append(path: str, writer: int, start: float) -> None:
    time.sleep(max(0.0, start - time.time()))
    for i in range(5):

        def build(current: object, i: int = i) -> dict[str, object]:
            seen = current.get("seen", []) if isinstance(current, dict) else []
            time.sleep(0.005)  # widen the read-modify-write window
            return {"seen": [*seen, f"{writer}-{i}"]}

        io.update_json(Path(path), build)


def test_concurrent_summary_updates_lose_nothing(pool: Pool, tmp_path: Path) -> None:
    path = tmp_path / SCENARIO / "sweep.json"
    start = time.time() + 0.1
    pool.starmap(_append, [(str(path), w, start) for w in range(WRITERS)])
    seen = json.loads(path.read_text())["seen"]
    assert sorted(seen) == sorted(f"{w}-{i}" for w in range(WRITERS) for i in range(5))
    assert [p.name for p in path.parent.iterdir()] == ["sweep.json"]  # no staging file left


def test_run_folders_are_opened_like_the_rest(tmp_path: Path) -> None:
    folder = io.write_run(tmp_path, SCENARIO, _manifest(), _tables(10))
    assert stat.S_IMODE(folder.stat().st_mode) == io.FOLDER_MODE


def test_a_write_that_fails_midway_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: pl.DataFrame, path: object, **_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    with pytest.raises(OSError, match="No space"):
        io.write_run(tmp_path, SCENARIO, _manifest(), _tables(10))
    assert list((tmp_path / SCENARIO).iterdir()) == []


def test_ctrl_c_during_a_write_waits_for_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pl.DataFrame.write_parquet
    calls: list[int] = []

    def interrupted(self: pl.DataFrame, path: object, **kwargs: object) -> None:
        if not calls:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the write
            time.sleep(0.05)  # the handler would run here, between two tables
        calls.append(1)
        real(self, path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pl.DataFrame, "write_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        io.write_run(tmp_path, SCENARIO, _manifest(), _tables(10))
    assert len(calls) == 3  # every table was written before the interrupt was delivered
    assert [p.name for p in (tmp_path / SCENARIO).iterdir()] == [RUN_ID]
    assert io.is_complete(io.run_dir(tmp_path, SCENARIO, RUN_ID))


def _in_thread(target: object, timeout_s: float = 5.0) -> tuple[bool, BaseException | None]:
    """Run ``target()`` in a daemon thread; (finished in time, what it raised)."""
    raised: list[BaseException] = []

    def call() -> None:
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return not thread.is_alive(), raised[0] if raised else None


REASONS = {
    "fifo": "not a regular file (a FIFO)",
    "dev-zero": "not a regular file (a device)",
    "too-large": "larger than",
    "deep": "nested too deeply",
    "directory": "not a regular file (a directory)",
}


@pytest.mark.parametrize("kind", list(REASONS))
def test_reading_json_refuses_special_and_hostile_files(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "manifest.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "too-large":
        path.write_text(json.dumps({"pad": "x" * io.MAX_JSON_BYTES}))
    elif kind == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    else:
        path.mkdir()
    finished, raised = _in_thread(lambda: io.read_json(path))
    if not finished and kind == "fifo":
        with path.open("w"):  # release the blocked reader before failing
            pass
    assert finished, f"reading a {kind} hung"
    assert isinstance(raised, io.UnreadableError), raised
    assert REASONS[kind] in str(raised)
    assert "\n" not in str(raised) and len(str(raised)) < 200
