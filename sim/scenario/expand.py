"""From text to runs: problems, reading TOML, ``--set`` overrides, sweep checks, expansion.

This is the half of the scenario file that is not the schema; the schema (models, rules, the
capability gate) is :mod:`sim.scenario`, which re-exports everything public here. That module
imports this one, so the few functions here that need the schema import it when called.

Expansion: ``[sweep]`` maps dotted keys to lists of values; the runs are the Cartesian product
of those lists in the order the keys are written, with the replications innermost. Seeds (SPEC
section 2, :mod:`sim.rng`), where ``root`` is the CLI's ``--seed`` if given, else the
scenario's:

* ``world_seed = derive_seed(root, "world", replication)``: the same for every sweep point of
  one replication, so the points are compared on the same world;
* ``seed = derive_seed(root, "run", canonical_json(point), replication)``: distinct per run.

A run id is ``<slug>-r<replication>-<hash10>``: the slug is a short readable form of the point,
the hash the first 10 hex digits of SHA-256 over the canonical JSON of the resolved scenario and
the replication, so equal runs get equal ids and any change (``--set``, ``--seed``) a new one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.rng import derive_seed
from sim.scenario.problems import (
    Problem,
    ScenarioError,
    get_dotted,
    read_toml,
    set_dotted,
    show,
    toml_value,
)
from sim.scenario.schema import SETTINGS, Scenario, problems_from_validation, unknown_key
from sim.scenario.sections import MAX_SEED

MAX_REPORTED_POINTS = 3
"""Invalid sweep combinations reported one by one before the rest are only counted."""


_SLUG_CHARS = 40


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run: a resolved scenario (sweep point applied, sweep emptied), its seeds and id.

    Attributes:
        scenario: the resolved scenario; its ``seed`` is the root seed actually used.
        point: the sweep point (dotted key -> validated value), ``{}`` without a sweep.
        replication: 0-based.
        run_id: ``<slug>-r<replication>-<hash10>``, stable for equal runs.
        seed: the run seed (settings-dependent randomness).
        world_seed: the world seed (shared by every sweep point of the replication).
    """

    scenario: Scenario
    point: dict[str, Any]
    replication: int
    run_id: str
    seed: int
    world_seed: int


def canonical_json(obj: object) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text (and hashes)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def expand(scenario: Scenario, *, seed: int | None = None) -> list[RunSpec]:
    """Every run of ``scenario``: sweep points in Cartesian order, replications inside.

    Args:
        scenario: a validated scenario.
        seed: the root seed to use instead of ``scenario.seed`` (the CLI's ``--seed``).

    Raises:
        ScenarioError: ``seed`` is not an integer in [0, 2**63 - 1], or a sweep point is
            invalid (only possible for a scenario that did not come through the loader).
    """
    if seed is not None:
        _check_seed(seed)
    root = scenario.seed if seed is None else seed
    specs: list[RunSpec] = []
    for point in sweep_points(scenario):
        resolved = _resolve_or_raise(scenario, point, root)
        data = resolved.model_dump(mode="json")
        normal = {key: get_dotted(data, key) for key in point}
        specs += [_run_spec(resolved, data, normal, r, root) for r in range(resolved.replications)]
    return specs


def _run_spec(
    resolved: Scenario, data: dict[str, Any], point: dict[str, Any], replication: int, root: int
) -> RunSpec:
    identity = canonical_json({"replication": replication, "scenario": data})
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return RunSpec(
        scenario=resolved,
        point=dict(point),
        replication=replication,
        run_id=f"{point_slug(point)}-r{replication}-{digest}",
        seed=derive_seed(root, "run", canonical_json(point), replication),
        world_seed=derive_seed(root, "world", replication),
    )


def _check_seed(seed: object) -> None:
    if type(seed) is not int or not 0 <= seed <= MAX_SEED:
        message = f"must be an integer from 0 to 2**63 - 1, got {show(seed)}"
        raise ScenarioError([Problem("--seed", "seed", message)])


def _resolve_or_raise(scenario: Scenario, point: Mapping[str, Any], root: int) -> Scenario:

    try:
        return resolve_point(scenario, point, seed=root)
    except ValidationError as exc:
        found = problems_from_validation(exc, source="<scenario>")
        raise ScenarioError([_point_problem(p, point) for p in found]) from None


def point_slug(point: Mapping[str, Any]) -> str:
    """A short readable form of a sweep point: ``{"privacy.order_flow": "threshold"}`` ->
    ``threshold``, ``{"network.nodes": 50}`` -> ``nodes-50``; ``base`` without a sweep."""
    if not point:
        return "base"
    words = [
        value if isinstance(value, str) else f"{key.rpartition('.')[2]}-{json.dumps(value)}"
        for key, value in point.items()
    ]
    slug = re.sub(r"[^a-z0-9_.-]+", "-", "_".join(words).lower()).strip("-_.")
    return slug[:_SLUG_CHARS].rstrip("-_.") or "point"


def sweep_points(scenario: Scenario) -> list[dict[str, Any]]:
    """The sweep's points (dotted key -> raw value) in Cartesian order; ``[{}]`` without one."""
    keys = list(scenario.sweep)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*scenario.sweep.values())
    ]


def resolve_point(
    scenario: Scenario, point: Mapping[str, Any], *, seed: int | None = None
) -> Scenario:
    """``scenario`` with ``point`` applied, the sweep emptied and optionally a new root seed.

    Raises:
        ValidationError: the point makes the scenario invalid.
    """
    data = scenario.model_dump(mode="json")
    data["sweep"] = {}
    if seed is not None:
        data["seed"] = seed
    for key, value in point.items():
        data = set_dotted(data, key, value)
    return type(scenario).model_validate(data)


def sweep_problems(scenario: Scenario, *, source: str) -> list[Problem]:
    """Check every sweep value's type and range, then every point (combination) as a whole.

    Cross-field rules are judged on whole points only: a value that breaks a rule against
    the base scenario may be fine with the other swept values. Problems are keyed
    ``sweep.<dotted key>``; a value given twice (after validation: ``100`` and ``100.0`` for a
    float) is a problem too, as it would make two identical runs.
    """
    if not scenario.sweep:
        return []
    problems: list[Problem] = []
    for key, values in scenario.sweep.items():
        problems += _value_problems(scenario, key, values, source)
    return problems or _point_problems(scenario, source)


def _value_problems(scenario: Scenario, key: str, values: list[Any], source: str) -> list[Problem]:

    problems: list[Problem] = []
    for value in values:
        try:
            resolve_point(scenario, {key: value})
        except ValidationError as exc:
            if all(e["type"] == "cross_field" for e in exc.errors()):
                continue  # judged with the whole point
            found = problems_from_validation(exc, source=source)
            problems += [Problem(source, f"sweep.{key}", f"{show(value)}: {_relative(p, key)}")
                         for p in found]  # fmt: skip
    return problems


def _point_problems(scenario: Scenario, source: str) -> list[Problem]:

    keys = list(scenario.sweep)
    normal: dict[str, dict[int, str]] = {key: {} for key in keys}  # value index -> its JSON
    failures: list[tuple[dict[str, Any], Problem]] = []
    for combo in itertools.product(*(enumerate(v) for v in scenario.sweep.values())):
        point = {key: value for key, (_, value) in zip(keys, combo, strict=True)}
        try:
            data = resolve_point(scenario, point).model_dump(mode="json")
        except ValidationError as exc:
            failures.append((point, problems_from_validation(exc, source=source)[0]))
            continue
        for key, (index, _) in zip(keys, combo, strict=True):
            normal[key][index] = canonical_json(get_dotted(data, key))
    problems = [_point_problem(p, point) for point, p in failures[:MAX_REPORTED_POINTS]]
    if len(failures) > MAX_REPORTED_POINTS:
        more = len(failures) - MAX_REPORTED_POINTS
        problems.append(Problem(source, "sweep", f"and {more} more invalid points"))
    return problems + [
        Problem(source, f"sweep.{key}", f"{show(scenario.sweep[key][i])} is given twice")
        for key in keys
        for i in _repeats(normal[key])
    ]


def _repeats(values: Mapping[int, str]) -> list[int]:
    seen: set[str] = set()
    repeats = []
    for index in sorted(values):
        if values[index] in seen:
            repeats.append(index)
        seen.add(values[index])
    return repeats


def _relative(problem: Problem, key: str) -> str:
    return problem.message if problem.key == key else f"{problem.key}: {problem.message}"


def _point_problem(problem: Problem, point: Mapping[str, Any]) -> Problem:
    # Name the swept key the problem is about, else the first swept key of the point.
    key = problem.key if problem.key in point else next(iter(point), "")
    message = f"point {_show_point(point)}: {_relative(problem, key)}"
    return Problem(problem.source, f"sweep.{key}" if key else "sweep", message)


def _show_point(point: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{key}={show(value)}" for key, value in point.items()) + "}"


def parse_override(text: str) -> tuple[str, Any]:
    """``"privacy.order_flow=threshold"`` -> ``("privacy.order_flow", "threshold")``.

    VALUE is read as a TOML value (``12``, ``0.5``, ``true``, ``"text"``), else kept as a string.

    Raises:
        ScenarioError: no ``=``, an empty key, a key that is not a setting, or a sweep key.
    """
    parsed = _parse_override(text)
    if isinstance(parsed, Problem):
        raise ScenarioError([parsed])
    return parsed


def parse_overrides(texts: Sequence[str]) -> tuple[dict[str, Any], list[Problem]]:
    """The well-formed overrides (dotted key -> value; the last one wins) and the problems."""
    settings: dict[str, Any] = {}
    problems: list[Problem] = []
    for text in texts:
        parsed = _parse_override(text)
        if isinstance(parsed, Problem):
            problems.append(parsed)
        else:
            settings[parsed[0]] = parsed[1]
    return settings, problems


def _parse_override(text: str) -> tuple[str, Any] | Problem:

    key, equals, raw = text.partition("=")
    key = key.strip()
    if not equals:
        return Problem("--set", "", f"expected KEY=VALUE, got {show(text)}")
    if not key:
        return Problem("--set", "", f"empty key in {show(text)}; expected KEY=VALUE")
    if key == "sweep" or key.startswith("sweep."):
        return Problem("--set", key, "the sweep cannot be changed with --set; edit [sweep]")
    if key not in SETTINGS:
        inside = [k for k in SETTINGS if k.startswith(f"{key}.")]
        if inside:
            return Problem("--set", key, f"is a section; set one of its keys, such as {inside[0]}")
        return Problem("--set", key, unknown_key(key))
    return key, toml_value(raw.strip())


# --- loading ----------------------------------------------------------------------------------


def load_scenario(path: str | Path, *, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override, validate and gate a scenario file.

    Raises:
        ScenarioError: every problem found, one line each (unreadable file, bad TOML, bad
            ``--set``, bad values, unavailable capabilities, bad sweep points).
    """
    source = str(path)
    return parse_scenario(read_toml(Path(path), source=source), source=source, overrides=overrides)


def parse_scenario(
    data: Mapping[str, Any], *, source: str = "<scenario>", overrides: Sequence[str] = ()
) -> Scenario:
    """Validate an already-parsed scenario table, with ``--set`` overrides applied first.

    Raises:
        ScenarioError: as :func:`load_scenario`; a problem about an overridden key names
            ``--set`` as its source.
    """
    settings, problems = parse_overrides(overrides)
    table: Any = dict(data) if isinstance(data, Mapping) else data
    for key, value in settings.items():
        table = set_dotted(table, key, value) if isinstance(table, dict) else table
    try:
        scenario = Scenario.model_validate(table)
    except ValidationError as exc:
        found = problems_from_validation(exc, source=source)
        raise ScenarioError(problems + [_blame_set(p, settings) for p in found]) from None
    problems += [
        Problem("--set", key, "is swept in [sweep]; every sweep point would override it")
        for key in settings
        if key in scenario.sweep
    ]
    swept = sweep_problems(scenario, source=source)
    problems += swept
    if problems:
        raise ScenarioError([_blame_set(p, settings) for p in problems])
    return scenario


def _blame_set(problem: Problem, settings: Mapping[str, Any]) -> Problem:
    """A problem about an overridden key, or one a rule reports against another key because of
    an overridden value (``must be at most market.resolve_s`` after ``--set market.resolve_s``),
    names ``--set`` as its source, not the file."""
    named = problem.key in settings or any(
        re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", problem.message) for key in settings
    )
    return Problem("--set", problem.key, problem.message) if named else problem
