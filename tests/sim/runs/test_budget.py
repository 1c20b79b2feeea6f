"""The work estimate: pathological values refused, bundled scenarios accepted, honest figures."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from sim.runs import budget, sweep
from sim.runs.cli import main
from sim.runs.runner import execute
from sim.scenario import ScenarioError, expand, load_scenario, parse_scenario
from tests.golden.worlds import VARIANTS
from tests.golden.worlds import scenario as golden

ROOT = Path(__file__).resolve().parents[3]
BUNDLED = sorted((ROOT / "scenarios").glob("*.toml"))

# Each value the issue found hanging or exhausting memory, now refused by the schema.
HANGS = [
    "settlement.round_timeout_s=1e-300",
    "network.block_interval_s=1e-300",
    "privacy.batch_interval_s=1e-300",
    "forecaster.round_timeout_s=1e-300",
    "network.dandelion_epoch_s=1e-300",
    "traders.orders_per_hour=1e300",
    "duration_s=1e300",
    "market.close_s=1e300",
    "settlement.liveness_s=1e300",
]


@pytest.mark.parametrize("override", HANGS)
def test_values_that_would_hang_are_refused_by_the_schema(override: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"name": "x", "seed": 1}, overrides=[override])
    [problem] = info.value.problems
    assert problem.key == override.partition("=")[0]
    assert "less than or equal" in problem.message or "greater than or equal" in problem.message


def _work(table: dict[str, Any]) -> list[str]:
    scenario = parse_scenario({"name": "x", "seed": 1} | table)
    return budget.refusal(budget.check(expand(scenario), source="x", allow_large=True))


@pytest.mark.parametrize(
    ("table", "figure"),
    [
        ({"traders": {"noise": 100_000, "orders_per_hour": 3600.0}}, "events"),
        ({"network": {"nodes": 100_000, "degree": 8}}, "messages"),
        ({"duration_s": 31_000_000.0, "network": {"block_interval_s": 0.01}}, "events"),
        (
            {
                "forecaster": {
                    "enabled": True,
                    "features": 1_000_000,
                    "samples_per_client": 1_000_000,
                }
            },
            "memory",
        ),
        (
            {
                "duration_s": 200_000.0,
                "market": {"close_s": 190_000.0, "resolve_s": 195_000.0},
                "privacy": {"order_flow": "threshold", "batch_interval_s": 0.01},
            },
            "events",
        ),
    ],
)
def test_runs_beyond_the_limits_are_refused_with_the_estimate(
    table: dict[str, Any], figure: str
) -> None:
    over = _work(table)
    assert any(line.startswith(f"estimated {figure}") for line in over), over
    scenario = parse_scenario({"name": "x", "seed": 1} | table)
    with pytest.raises(budget.TooMuchWorkError) as info:
        budget.check(expand(scenario), source="big.toml")
    lines = info.value.lines()
    assert all(line.startswith("big.toml: work estimate: ") for line in lines)
    assert "--allow-large" in lines[-1] and "events" in lines[0] and "MB" in lines[0]


def test_the_default_scenario_is_well_within_the_limits() -> None:
    work = budget.estimate(parse_scenario({"name": "x", "seed": 1}))
    assert budget.refusal(work) == []
    assert work.events * 20 < budget.LIMITS.events  # room for scenarios far bigger


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_every_bundled_scenario_is_accepted(path: Path) -> None:
    budget.check(expand(load_scenario(path)), source=str(path))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_golden_world_is_accepted(name: str) -> None:
    budget.check(expand(parse_scenario(golden(name))), source=name)


def test_validate_refuses_a_large_scenario_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.toml"
    path.write_text('name = "big"\nseed = 1\n[traders]\nnoise = 100000\norders_per_hour = 3600.0\n')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{path}: work estimate: estimated events")
    assert "Traceback" not in "".join(err)
    assert main(["validate", str(path), "--allow-large"]) == 0
    assert capsys.readouterr().out.startswith("ok big (heaviest run: ")


def test_run_refuses_a_large_scenario_before_writing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_: object) -> None:
        raise AssertionError("the run started")  # fails at once instead of running for hours

    monkeypatch.setattr(sweep, "execute", never)
    path = tmp_path / "big.toml"
    path.write_text('name = "big"\nseed = 1\n[network]\nnodes = 100000\n')
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "work estimate" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _measured(table: dict[str, Any]) -> tuple[budget.Estimate, float, float]:
    [spec, *_] = expand(parse_scenario(table))
    result = execute(spec)
    return (
        budget.estimate(spec.scenario),
        result.metric("perf.events"),
        result.metric("perf.messages"),
    )


HONEST = {
    "quickstart": load_scenario(ROOT / "scenarios" / "quickstart.toml").model_dump(mode="json"),
    **{f"golden-{name}": golden(name) for name in ("transparent", "threshold-colluders",
                                                  "transparent-dandelion-loss", "bft-faults")},
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HONEST))
def test_the_estimate_is_within_its_stated_factor_of_the_actual_work(name: str) -> None:
    table = copy.deepcopy(HONEST[name])
    work, events, messages = _measured(table)
    factor = budget.HONEST_FACTOR
    assert work.events / factor <= events <= work.events * factor, (events, work)
    assert work.messages / factor <= messages <= work.messages * factor, (messages, work)
