"""The fixture results folder every dashboard test reads.

It holds a sweep over ``privacy.order_flow`` (two settings, two replications each), one failed
run and one run still being written (a ``.<run-id>.tmp-*`` folder).

The sweep comes from a real small simulation (``sim.run_all``, the sweep-and-replications form
of ``sim.run``) with a front-runner, spies and a forecaster, so every page has data to show.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard import catalog

FLOWS = ("transparent", "commit_reveal")
SCENARIO = "dash-fixture"
APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"

# Small enough to run in seconds: the quickstart's shape, shorter.
REAL_SCENARIO: dict[str, Any] = {
    "name": SCENARIO,
    "seed": 11,
    "duration_s": 3600.0,
    "replications": 2,
    "network": {"nodes": 24, "degree": 4},
    "market": {"count": 2, "liquidity_b": 50.0, "close_s": 2400.0, "resolve_s": 3000.0},
    "traders": {"informed": 4, "noise": 6, "orders_per_hour": 12.0},
    "settlement": {"reporters": 7},
    "privacy": {"keypers": 5, "threshold": 3},
    "adversary": {"frontrunner": True, "spy_fraction": 0.2},
    "forecaster": {
        "enabled": True,
        "clients": 10,
        "features": 6,
        "samples_per_client": 60,
        "rounds": 3,
        "client_fraction": 0.8,
        "secure_aggregation": False,
        "dp_noise_multiplier": 1.0,  # so each client has a finite epsilon to draw
        "withdraw_fraction": 0.3,  # and the Learning page has withdrawals to mark
    },
    "sweep": {"privacy.order_flow": list(FLOWS)},
}


def _real_sweep(root: Path) -> None:
    """Run the real simulator into ``root``: two settings, two replications each."""
    from sim import run_all

    run_all(REAL_SCENARIO, out=root)
    runs = catalog.discover_runs(root)
    complete = runs.filter(runs["loadable"])
    assert complete.height == 4 and complete["setting"].n_unique() == 2


def _failed_and_partial(root: Path) -> None:
    """A failed run (manifest status failed) and a run still being written."""
    failed = root / SCENARIO / "threshold-r0-deadbeef00"
    failed.mkdir(parents=True)
    manifest = {
        "schema_version": 1,
        "status": "failed",
        "run_id": failed.name,
        "scenario": {"name": SCENARIO, "privacy": {"order_flow": "threshold"}},
        "point": {"privacy.order_flow": "threshold"},
        "replication": 0,
        "error": "KeyperError: 2 of 5 keypers answered, threshold is 3",
        "tables": {},
    }
    (failed / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    partial = root / SCENARIO / ".threshold-r1-feedface00.tmp-x1y2"
    (partial / "tables").mkdir(parents=True)
    (partial / "tables" / "metrics.parquet").write_bytes(b"not parquet yet")


@pytest.fixture(scope="session")
def results_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared fixture folder (read-only for tests: copy it to change it)."""
    root = tmp_path_factory.mktemp("results")
    _real_sweep(root)
    _failed_and_partial(root)
    return root


@pytest.fixture
def app_argv(results_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make the app see ``-- --results <fixture>`` as ``streamlit run`` would pass it."""
    monkeypatch.setattr(sys, "argv", [str(APP), "--results", str(results_root)])
    yield results_root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that read the shared folder need its real simulation: they are slow (not in unit)."""
    for item in items:
        if "results_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
