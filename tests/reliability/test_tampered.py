"""A tampered results folder, read by ``veilcast compare``, the dashboard's catalog and every
dashboard page: no exception, the damaged runs listed or skipped with why, the rest usable."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import catalog
from sim.results import io
from sim.runs.cli import main
from sim.runs.compare import compare_dirs

from .conftest import fake_results, in_thread
from .tamper import DAMAGE, SCENARIO, UNREADABLE_TABLES, tamper

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAGES = ("market", "privacy", "network", "settlement", "learning", "compare")
INTACT = {"intact/run0-r0-0000000000", "intact/run1-r1-0000000001",
          "intact/run2-r0-0000000002", "intact/run3-r1-0000000003"}  # fmt: skip


@pytest.fixture(scope="module")
def tampered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tampered")
    return tamper(fake_results(base / "intact"), base)


def test_compare_skips_every_damaged_run_and_compares_the_rest(tampered: Path) -> None:
    skipped: list[str] = []
    finished, frame = in_thread(lambda: compare_dirs([tampered], skipped=skipped))
    assert finished, "compare hung"
    assert isinstance(frame, pl.DataFrame), frame
    assert set(frame["scenario"]) == {"intact"}
    assert frame.filter(pl.col("metric") == "market.brier")["runs"].to_list() == [2, 2]
    named = {Path(line.split(":", 1)[0]).name for line in skipped}
    assert named == set(DAMAGE), skipped
    assert all("\n" not in line and len(line) < 400 for line in skipped)


def test_the_compare_command_names_the_damaged_runs_on_stderr(
    tampered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    finished, code = in_thread(lambda: main(["compare", str(tampered), "--format", "csv"]))
    assert finished and code == 0, code
    out, err = capsys.readouterr()
    assert "intact" in out and SCENARIO not in out
    lines = err.splitlines()
    assert len(lines) == len(DAMAGE) and "Traceback" not in err
    assert all(line.startswith("veilcast: compare: skipped ") for line in lines)


def test_a_metric_prefix_that_matches_nothing_is_an_error(
    tampered: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", str(tampered / "intact"), "--metric", "nothing."]) == 2
    assert capsys.readouterr().err.strip() == "--metric: no metric starts with 'nothing.'"


def test_the_catalog_lists_every_damaged_folder_with_one_line_of_why(tampered: Path) -> None:
    finished, runs = in_thread(lambda: catalog.discover_runs(tampered))
    assert finished, "discovery hung"
    assert isinstance(runs, pl.DataFrame), runs
    loadable = set(runs.filter(pl.col("loadable"))["path"])
    assert loadable >= INTACT
    # A damaged manifest is listed invalid; damaged tables leave the manifest loadable (the
    # pages say the table is unreadable); odd values are shown as missing.
    invalid = set(runs.filter(pl.col("status") == "invalid")["path"])
    expected = {
        f"{SCENARIO}/{n}"
        for n in (
            "deep-json",
            "not-json",
            "manifest-fifo",
            "manifest-dev-zero",
            "manifest-outside",
            "loop",
        )
    }
    assert expected | {"loop-scenario/(folder)", "escape/(folder)"} == invalid  # fmt: skip
    errors = runs.filter(pl.col("status") == "invalid")["error"].to_list()
    assert all(e and "\n" not in e and len(e) <= catalog.MAX_ERROR_CHARS for e in errors)
    assert not any(str(tampered.parent) in e for e in errors)  # no server paths shown
    huge = runs.filter(pl.col("path") == f"{SCENARIO}/huge-replication").row(0, named=True)
    assert huge["replication"] is None and huge["world_seed"] is None


def test_the_catalog_refuses_a_manifest_symlinked_out_of_its_run(tampered: Path) -> None:
    row = catalog.folder_record(SCENARIO, tampered / SCENARIO / "manifest-outside")
    assert row["status"] == "invalid" and "outside the results folder" in row["error"]


@pytest.mark.slow
def test_every_dashboard_page_survives_the_tampered_folder(
    tampered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [str(APP), "--results", str(tampered)])
    runs = AppTest.from_file(str(APP), default_timeout=30)
    runs.query_params["run"] = [f"{SCENARIO}/{name}" for name in UNREADABLE_TABLES]
    runs.run()
    assert not runs.exception, [e.message for e in runs.exception]
    warning = " ".join(str(w.value) for w in runs.warning)
    for name in ("deep-json", "manifest-fifo", "manifest-outside", "loop"):
        assert f"{SCENARIO}/{name}" in warning
    errors: list[str] = []
    for page in PAGES:
        runs.switch_page(f"views/{page}.py").run()
        assert not runs.exception, (page, [e.message for e in runs.exception])
        errors += [str(e.value) for e in runs.error]
    shown = " ".join(errors)
    for name in ("truncated-metrics", "corrupt-tables"):
        assert f"Run `{SCENARIO}/{name}`: its `metrics` table is unreadable" in shown
    assert "Traceback" not in shown and str(tampered) not in shown


def test_a_staging_folder_is_told_apart_from_one_being_written(tmp_path: Path) -> None:
    scenario = tmp_path / "s"
    (scenario / ".base-r0-0000000000.tmp-123-abc").mkdir(parents=True)
    stale = catalog.folder_record("s", scenario / ".base-r0-0000000000.tmp-123-abc")
    assert stale["status"] == "incomplete" and "writer that stopped" in stale["error"]
    with io.locked(scenario):  # what a writer holds while its staging folder exists
        live = catalog.folder_record("s", scenario / ".base-r0-0000000000.tmp-123-abc")
    assert live["error"] == "run still being written"
