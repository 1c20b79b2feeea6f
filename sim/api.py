"""The Python API: run a scenario from a path, a dict or a model, get polars frames back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.results import io
from sim.runs.runner import RunResult, execute
from sim.scenario import RunSpec, Scenario, expand, load_scenario, parse_scenario

ScenarioLike = str | Path | Mapping[str, Any] | Scenario


def as_scenario(scenario: ScenarioLike, *, overrides: Sequence[str] = ()) -> Scenario:
    """Load a path, validate a dict, or pass a model through (with ``--set`` overrides)."""
    if isinstance(scenario, Scenario):
        if overrides:
            return parse_scenario(scenario.model_dump(), overrides=overrides)
        return scenario
    if isinstance(scenario, str | Path):
        return load_scenario(scenario, overrides=overrides)
    return parse_scenario(scenario, overrides=overrides)


def run_spec(spec: RunSpec, *, out: Path | None = None) -> RunResult:
    """Run one expanded run; write it under ``out`` when given."""
    result = execute(spec)
    if out is not None:
        io.write_run(out, spec.scenario.name, result.manifest, result.tables)
    return result


def run_all(
    scenario: ScenarioLike,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    overrides: Sequence[str] = (),
) -> list[RunResult]:
    """Run every replication of every sweep point, in order; write them when ``out`` is given."""
    model = as_scenario(scenario, overrides=overrides)
    target = Path(out) if out is not None else None
    return [run_spec(spec, out=target) for spec in expand(model, seed=seed)]


def run(
    scenario: ScenarioLike,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    overrides: Sequence[str] = (),
) -> RunResult:
    """Run the first run of ``scenario`` (replication 0 of its first sweep point).

    Returns its tables as polars frames and its manifest; writes nothing unless ``out`` is
    given. Use :func:`run_all` for every replication and sweep point.
    """
    model = as_scenario(scenario, overrides=overrides)
    target = Path(out) if out is not None else None
    return run_spec(expand(model, seed=seed)[0], out=target)
