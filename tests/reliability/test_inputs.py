"""Bad input from outside: special files, unusable --out, odd arguments. Exit 2, one line, no
traceback, and never a hang (every call runs in a thread with a deadline)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sim.runs import sweep
from sim.runs.cli import main
from sim.scenario.problems import MAX_LINE

from .conftest import in_thread, release_fifo, write_tiny


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals must come before any run: a run that starts fails the test at once."""

    def never(*_: object) -> None:
        raise AssertionError("a run started")

    monkeypatch.setattr(sweep, "execute", never)


def _one_line(capsys: pytest.CaptureFixture[str], code: object, *fragments: str) -> str:
    assert code == 2, code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert all(f in lines[0] for f in fragments), lines[0]
    return lines[0]


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_fifo_scenario_is_refused_without_hanging(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, no_runs: None
) -> None:
    fifo = tmp_path / "scenario.toml"
    os.mkfifo(fifo)
    args = [command, str(fifo), *(["--out", str(tmp_path)] if command == "run" else [])]
    finished, code = in_thread(lambda: main(args), timeout_s=5.0)
    release_fifo(fifo)
    assert finished, f"{command} hung on a FIFO"
    _one_line(capsys, code, str(fifo), "not a regular file (a FIFO)")


def test_a_scenario_symlinked_to_dev_zero_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    finished, code = in_thread(lambda: main(["validate", str(link)]))
    assert finished
    _one_line(capsys, code, "not a regular file (a device)")


@pytest.mark.parametrize("kind", ["a file", "/dev/null", "under a file"])
def test_an_unusable_out_is_one_line_of_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, no_runs: None
) -> None:
    scenario = write_tiny(tmp_path)
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    out = {"a file": taken, "/dev/null": Path("/dev/null"), "under a file": taken / "sub"}[kind]
    line = _one_line(capsys, main(["run", str(scenario), "--out", str(out)]), "--out: ")
    assert "cannot write results in" in line
    assert taken.read_text() == "not a folder"


def test_a_huge_error_line_is_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = "x" * 500_000
    line = _one_line(capsys, main(["validate", str(tmp_path / huge)]), "more characters")
    assert len(line) <= MAX_LINE


def test_a_port_out_of_range_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line(capsys, main(["dashboard", "--port", "99999"]), "--port: 99999 is not a TCP port")
