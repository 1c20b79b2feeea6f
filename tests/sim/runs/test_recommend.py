"""``veilcast recommend`` on a real sweep: limits judged on the interval's upper end (recomputed
here from the runs' own tables), the JSON shape of SPEC section 5, and bad input."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import polars as pl
import pytest
from scipy import stats

from sim.runs.cli import main
from sim.runs.sweep import run_sweep
from sim.scenario import parse_scenario

FLOWS = ["transparent", "threshold"]
LATENCY = "cost.order_latency_s"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import SMALL

    out = tmp_path_factory.mktemp("results")
    data = copy.deepcopy(SMALL) | {"replications": 2, "sweep": {"privacy.order_flow": FLOWS}}
    assert not run_sweep(parse_scenario(data), out=out, workers=1).failed
    return out / "small"


def _upper_ends(sweep: Path, metric: str) -> dict[str, float]:
    """Per order-flow mode: mean + t(0.975, n-1)·s/√n of the metric, read from each run."""
    values: dict[str, list[float]] = {}
    for manifest in sweep.glob("*/manifest.json"):
        point = json.loads(manifest.read_text())["point"]
        table = pl.read_parquet(manifest.parent / "tables" / "metrics.parquet")
        value = table.filter(pl.col("metric") == metric)["value"].item()
        values.setdefault(point["privacy.order_flow"], []).append(value)
    out = {}
    for flow, vals in values.items():
        n = len(vals)
        mean = sum(vals) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
        out[flow] = mean + stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return out


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["recommend", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_limits_use_the_upper_end_and_json_has_the_spec_shape(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    highs = _upper_ends(sweep, LATENCY)
    # a limit between the two settings' upper ends admits exactly the lower one
    low_flow = min(highs, key=highs.__getitem__)
    limit = (highs["transparent"] + highs["threshold"]) / 2
    code, out, _ = _run(capsys, str(sweep), "--max", f"{LATENCY}={limit}", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert {"feasible", "pareto", "binding"} <= set(doc)
    assert [e["point"] for e in doc["feasible"]] == [{"privacy.order_flow": low_flow}]
    shown = doc["feasible"][0]["metrics"][LATENCY]["high"]
    assert shown == pytest.approx(highs[low_flow], rel=1e-9)
    assert doc["pareto"] == [{k: v for k, v in doc["feasible"][0].items() if k != "pareto"}]
    assert doc["binding"] == []
    # just below that upper end, though above the mean, the setting no longer qualifies
    mean = doc["feasible"][0]["metrics"][LATENCY]["mean"]
    if highs[low_flow] > mean:
        tight = (mean + highs[low_flow]) / 2
        code, out, _ = _run(capsys, str(sweep), "--max", f"{LATENCY}={tight}", "--format", "json")
        assert code == 0 and json.loads(out)["feasible"] == []


@pytest.mark.slow
def test_when_nothing_qualifies_the_binding_limit_is_named(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, str(sweep), "--max", f"{LATENCY}=-1", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["feasible"] == [] and doc["pareto"] == []
    (binding,) = doc["binding"]
    assert binding["metric"] == LATENCY and binding["failing"] == binding["settings"] == 2
    assert binding["best_high"] == pytest.approx(min(_upper_ends(sweep, LATENCY).values()))
    code, out, _ = _run(capsys, str(sweep), "--max", f"{LATENCY}=-1")
    assert code == 0 and "No setting meets every limit" in out and LATENCY in out


@pytest.mark.slow
def test_minimize_ranks_the_front_first(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, str(sweep), "--minimize", LATENCY, "--minimize", "cost.crypto_ops", "--format",
        "json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert len(doc["feasible"]) == 2 and doc["feasible"][0]["pareto"]
    code, out, _ = _run(capsys, str(sweep), "--minimize", LATENCY)
    assert code == 0 and "rank" in out and "transparent" in out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--max", "cost.nonsense=1"], "unknown metric"),
        (["--max", f"{LATENCY}=fast"], "is not a number"),
        (["--max", f"{LATENCY}"], "METRIC=VALUE"),
        (["--max", f"{LATENCY}=nan"], "finite"),
        (["--minimize", "nope"], "unknown metric"),
        ([], "at least one"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    sweep: Path, capsys: pytest.CaptureFixture[str], args: list[str], phrase: str
) -> None:
    code, _, err = _run(capsys, str(sweep), *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and phrase in lines[0] and "Traceback" not in err


def test_a_missing_folder_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, str(tmp_path / "nowhere"), "--minimize", LATENCY)
    assert code == 2 and "no such folder" in err
