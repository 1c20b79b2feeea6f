"""The scenario file's schema: frozen pydantic models, and its cross-field rules.

A scenario is a TOML file (see ``scenarios/quickstart.toml``); everything has a default except
``name`` and ``seed``. Loading checks, in this order, and reports every problem found at each
step as one line ``<file>: <dotted.key>: <message>`` (:class:`ScenarioError`):

1. the file can be read and is TOML;
2. ``--set KEY=VALUE`` overrides are well formed and name real settings (applied before 3);
3. every value has the right type and range, no key is unknown, the cross-field rules hold;
4. every sweep point is valid.

Reading, overrides, sweep checks and the expansion into runs are in :mod:`sim.scenario.expand`;
everything public there is re-exported here, so callers import from ``sim.scenario`` only.
Money keys (``budget``, ``fee``, ``deposit``, ``bond``, ``endowment``, ``priority_fee``) stay
in units here; the simulator converts them to micro-units.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Self

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from sim.scenario.problems import Problem, flatten_table, one_line, show
from sim.scenario.rules import MAX_RUNS, cross_field_rules
from sim.scenario.sections import (
    MAX_SEED,
    RETIRED,
    Adversary,
    Duration,
    Faults,
    Forecaster,
    MarketConfig,
    Network,
    Privacy,
    Section,
    Settlement,
    Traders,
)


class Scenario(Section):
    """A whole scenario file. ``sweep`` maps dotted keys to the values to run (Cartesian)."""

    name: str = Field(pattern=r"^[a-z0-9-]+$", max_length=64)
    seed: int = Field(ge=0, le=MAX_SEED)
    duration_s: Duration = 43200.0
    replications: int = Field(default=1, ge=1, le=MAX_RUNS)
    network: Network = Network()
    market: MarketConfig = MarketConfig()
    traders: Traders = Traders()
    privacy: Privacy = Privacy()
    adversary: Adversary = Adversary()
    settlement: Settlement = Settlement()
    forecaster: Forecaster = Forecaster()
    faults: Faults = Faults()
    sweep: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)

    @field_validator("sweep", mode="before")
    @classmethod
    def _flatten_sweep(cls, value: object) -> object:
        # `[sweep.privacy] order_flow = [...]` and `"privacy.order_flow" = [...]` mean the same.
        if not isinstance(value, dict):
            return value
        flat, twice = flatten_table(value)
        if twice:
            raise _cross_field_error([(f"sweep.{key}", "given twice") for key in twice])
        return flat

    @model_validator(mode="after")
    def _cross_fields(self) -> Self:
        problems = cross_field_rules(self) + _sweep_key_rules(self)
        if problems:
            raise _cross_field_error(problems)
        return self


def _cross_field_error(problems: list[tuple[str, str]]) -> PydanticCustomError:
    # Carries every (dotted key, message) pair; problems_from_validation unpacks them.
    return PydanticCustomError(
        "cross_field", "{summary}", {"summary": problems[0][1], "problems": tuple(problems)}
    )


def _sweep_key_rules(s: Scenario) -> list[tuple[str, str]]:
    out = []
    for key in s.sweep:
        if key in ("name", "seed", "replications", "sweep") or key.startswith("sweep."):
            out.append((f"sweep.{key}", "cannot be swept (name, seed, replications, sweep)"))
        elif key not in SETTINGS:
            sections = [k for k in SETTINGS if k.startswith(f"{key}.")]
            hint = f"; sweep one setting such as '{sections[0]}'" if sections else ""
            message = "is a section" + hint if sections else unknown_key(key)
            out.append((f"sweep.{key}", message))
    return out


def _leaves(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            yield from _leaves(sub, f"{prefix}{name}.")
        elif name != "sweep":
            yield f"{prefix}{name}"


SETTINGS: tuple[str, ...] = tuple(_leaves(Scenario))
"""Every setting's dotted key, in file order (what ``--set`` and ``[sweep]`` may name)."""


# --- errors -----------------------------------------------------------------------------------


def problems_from_validation(error: ValidationError, *, source: str) -> list[Problem]:
    """Translate pydantic's errors into one-line problems keyed by dotted keys."""
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        if item["type"] == "cross_field":
            problems += [Problem(source, k, m) for k, m in item.get("ctx", {})["problems"]]
        else:
            problems.append(Problem(source, dotted(item["loc"]), _message(item)))
    return problems


def dotted(loc: Sequence[int | str]) -> str:
    """``("network", "latency_ms", "median")`` -> ``network.latency_ms.median``; odd keys quoted."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        shown = part if re.fullmatch(r"[A-Za-z0-9_.-]+", part) else json.dumps(part)
        text += f".{shown}" if text else shown
    return text


def _message(item: ErrorDetails) -> str:
    kind, loc, value = item["type"], item["loc"], item.get("input")
    if kind == "extra_forbidden":
        return unknown_key(dotted(loc))
    if kind == "missing":
        return "required key is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a table, got {show(value)}" if loc else "a scenario must be a table"
    if kind == "string_pattern_mismatch":
        return f"use lowercase letters, digits and '-' only, got {show(value)}"
    text = one_line(item["msg"])
    return f"{text[:1].lower()}{text[1:]}, got {show(value)}"


def unknown_key(key: str) -> str:
    """Why ``key`` is refused: what replaces it when it was retired, else a near miss if any."""
    return RETIRED.get(key) or "unknown key" + did_you_mean(key)


def did_you_mean(key: str) -> str:
    """`` (did you mean 'network.nodes'?)`` for a misspelt or misplaced key, else ``""``."""
    parent, _, leaf = key.rpartition(".")
    siblings = [k.rpartition(".")[2] for k in SETTINGS if k.rpartition(".")[0] == parent]
    siblings += [*[k.split(".")[0] for k in SETTINGS if "." in k], "sweep"] if not parent else []
    close = difflib.get_close_matches(leaf, list(dict.fromkeys(siblings)), n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{f'{parent}.{close[0]}' if parent else close[0]}'?)"
    elsewhere = [k for k in SETTINGS if k.rpartition(".")[2] == leaf] or difflib.get_close_matches(
        key, SETTINGS, n=1, cutoff=0.75
    )
    return f" (did you mean {' or '.join(repr(k) for k in elsewhere[:2])}?)" if elsewhere else ""


def resolved_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario with every default filled in, JSON-ready (for manifests and hashing)."""
    return scenario.model_dump(mode="json")
