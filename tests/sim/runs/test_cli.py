"""The command line: exit codes, one line per problem, no tracebacks, end-to-end runs."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.runs.cli import main

pytestmark = pytest.mark.slow  # every test here runs whole simulations, sweeps or the CLI

ROOT = Path(__file__).resolve().parents[3]


def _toml(data: dict[str, Any]) -> str:
    """A tiny TOML writer for the flat-section scenarios these tests use."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, data: dict[str, Any], name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(_toml(data))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sim", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_validate_accepts_the_bundled_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    paths = sorted(str(p) for p in (ROOT / "scenarios").glob("*.toml"))
    assert paths
    assert main(["validate", *paths]) == 0
    assert "ok quickstart" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "key"),
    [
        (b"name = 'x'\nseed = 1\n[network\n", ""),
        (b"name = 'x'\nseed = 1\n[network]\nnodes = 'ten'\n", "network.nodes"),
        (b"name = 'x'\nseed = 1\n[network]\nnodes = -3\n", "network.nodes"),
        (b"name = 'x'\nseed = 1\n[network]\nnodez = 3\n", "network.nodez"),
        (b"name = 'x'\nseed = 1\n[privacy]\nkeypers = 3\nthreshold = 5\n", "privacy.threshold"),
        (b"", ""),
        (bytes(range(256)) * 4, ""),
    ],
)
def test_bad_files_exit_2_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, key: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(str(path) in line or "bad.toml" in line for line in err)
    assert all("Traceback" not in line for line in err)
    if key:
        assert any(key in line for line in err)


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope.toml"), "--out", str(tmp_path)]) == 2
    assert "nope.toml" in capsys.readouterr().err


def test_a_bad_set_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], small: dict[str, Any]
) -> None:
    path = _write(tmp_path, small)
    assert main(["run", str(path), "--out", str(tmp_path), "--set", "network.nodes=-1"]) == 2
    assert "network.nodes" in capsys.readouterr().err
    assert main(["run", str(path), "--out", str(tmp_path), "--set", "nonsense"]) == 2
    assert not (tmp_path / "small").exists()


def test_run_then_compare_end_to_end(tmp_path: Path, small: dict[str, Any]) -> None:
    small["replications"] = 2
    path = _write(tmp_path, small)
    out = tmp_path / "results"
    done = _cli("run", str(path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    runs = [p for p in (out / "small").iterdir() if (p / "manifest.json").exists()]
    assert len(runs) == 2
    compared = _cli("compare", str(out / "small"), "--format", "json")
    assert compared.returncode == 0, compared.stderr
    rows = json.loads(compared.stdout)
    brier = [r for r in rows if r["metric"] == "market.brier"]
    assert len(brier) == 1 and brier[0]["runs"] == 2


def test_the_quickstart_runs_through_the_cli(tmp_path: Path) -> None:
    done = _cli("run", "scenarios/quickstart.toml", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    manifests = list((tmp_path / "quickstart").glob("*/manifest.json"))
    assert len(manifests) >= 1
    assert all(json.loads(m.read_text())["status"] == "complete" for m in manifests)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "seed",
                    "network",
                    "market",
                    "traders",
                    "privacy",
                    "sweep",
                    "nodes",
                    "duration_s",
                ]
            ),
            st.one_of(
                st.integers(-5, 10**6),
                st.floats(allow_nan=True),
                st.text(max_size=8),
                st.booleans(),
                st.just({"nodes": -1}),
                st.just({"order_flow": "x"}),
            ),
            max_size=6,
        ).map(lambda d: _toml(d).encode()),
    )
)
def test_the_cli_meets_any_file_with_exit_2_or_ok_and_never_a_traceback(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(content)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["validate", str(path)])
    assert code in (0, 2)
    lines = err.getvalue().splitlines()
    assert "Traceback" not in err.getvalue()
    assert (code == 2) == bool(lines)
    assert all("fuzz.toml" in line for line in lines)
