"""Helpers of the reliability suite: tiny scenarios, commands in their own process group, and
bounded waits. Every wait has a deadline; every folder is a pytest temporary folder."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from sim.results import io

ROOT = Path(__file__).resolve().parents[2]

TINY = """name = "tiny"
seed = 3
duration_s = 1800.0
replications = 2

[network]
nodes = 16
degree = 4

[market]
count = 1
close_s = 1200.0
resolve_s = 1500.0

[traders]
informed = 3
noise = 3
orders_per_hour = 12.0

[settlement]
reporters = 4

[sweep]
"network.loss" = [0.0, 0.05]
"""
"""Four runs of a fraction of a second each."""


def write_tiny(folder: Path, text: str = TINY) -> Path:
    """The tiny scenario as a file in ``folder``."""
    path = folder / "tiny.toml"
    path.write_text(text)
    return path


def start(*args: str) -> subprocess.Popen[str]:
    """``python -m sim ARGS`` in a process group of its own (like a terminal job)."""
    return subprocess.Popen(
        [sys.executable, "-m", "sim", *args],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``check`` every 20 ms until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def manifests(scenario_dir: Path) -> dict[str, dict[str, Any]]:
    """Run id -> manifest of every visible run folder.

    pathlib's glob also matches hidden folders, such as a writer's staging folder whose manifest
    may be half written: those are not run folders, and are left out.
    """
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted(scenario_dir.glob("*/manifest.json"))
        if not p.parent.name.startswith(".")
    }


def staging(scenario_dir: Path) -> list[str]:
    """Hidden entries a writer left (staging folders, temporary files)."""
    return sorted(p.name for p in scenario_dir.glob(".*")) if scenario_dir.exists() else []


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children...), from /proc."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            text = Path(f"/proc/{parent}/task/{parent}/children").read_text()
        except OSError:
            continue
        children = [int(c) for c in text.split()]
        found += children
        todo += children
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def in_thread(target: Callable[[], object], timeout_s: float = 10.0) -> tuple[bool, object]:
    """Run ``target`` in a daemon thread; (finished in time, its result or exception)."""
    out: list[object] = []

    def call() -> None:
        try:
            out.append(target())
        except BaseException as exc:  # reported to the test
            out.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return not thread.is_alive(), out[0] if out else None


def fake_run(out: Path, scenario: str, run_id: str, loss: float, replication: int) -> Path:
    """A complete run folder written by the real writer, with small made-up tables."""
    manifest = {
        "schema_version": 1,
        "status": "complete",
        "run_id": run_id,
        "scenario": {"name": scenario, "seed": 1, "network": {"loss": loss}},
        "point": {"network.loss": loss},
        "seed": 10 + replication,
        "world_seed": 100 + replication,
        "replication": replication,
        "created": "2026-12-03T00:00:00+00:00",
        "wall_s": 0.5,
        "events": 1000,
    }
    metrics = pl.DataFrame(
        {
            "run_id": [run_id] * 3,
            "metric": ["market.brier", "cost.order_latency_s", "privacy.sender_precision"],
            "value": [0.2 + loss + replication / 100, 1.5 + loss, 0.3],
        }
    )
    prices = pl.DataFrame(
        {
            "run_id": [run_id] * 4,
            "t": [0.0, 10.0, 0.0, 10.0],
            "market": [0, 0, 0, 0],
            "outcome": [0, 0, 1, 1],
            "price": [0.5, 0.6, 0.5, 0.4],
            "true_prob": [0.7, 0.7, 0.3, 0.3],
        }
    )
    return io.write_run(out, scenario, manifest, {"metrics": metrics, "prices": prices})


def fake_results(out: Path) -> Path:
    """A results folder of four complete made-up runs (two settings, two replications)."""
    for i, (loss, replication) in enumerate([(0.0, 0), (0.0, 1), (0.05, 0), (0.05, 1)]):
        fake_run(out, "intact", f"run{i}-r{replication}-000000000{i}", loss, replication)
    return out


def release_fifo(path: Path) -> None:
    """Unblock a reader stuck opening the FIFO ``path`` (a failing test must not hang)."""
    with contextlib.suppress(OSError):  # no reader waiting on it
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
