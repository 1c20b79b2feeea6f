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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from sim.scenario.expand import (
    MAX_RUNS,
    Problem,
    RunSpec,
    ScenarioError,
    canonical_json,
    expand,
    flatten_table,
    one_line,
    parse_override,
    parse_overrides,
    read_toml,
    set_dotted,
    show,
    sweep_problems,
)
from sim.scenario.rules import MIN_PAD_BYTES, cross_field_rules

# fmt: off
__all__ = [
    "MAX_COUNT",
    "MAX_RUNS",
    "MIN_PAD_BYTES",
    "SETTINGS",
    "Adversary",
    "Crash",
    "Faults",
    "Forecaster",
    "Latency",
    "MarketConfig",
    "Network",
    "Partition",
    "Privacy",
    "Problem",
    "RunSpec",
    "Scenario",
    "ScenarioError",
    "Settlement",
    "Traders",
    "canonical_json",
    "expand",
    "load_scenario",
    "parse_override",
    "parse_scenario",
    "problems_from_validation",
    "resolved_dict",
]
# fmt: on


_MAX_SEED = 2**63 - 1  # seeds are TOML integers (signed 64-bit), never negative

MAX_COUNT = 1_000_000
"""Ceiling of every count (nodes, traders, rounds, bytes...): far beyond what one run can
simulate, so a bigger number is a typo, refused before it turns into a hang."""


# --- the models -------------------------------------------------------------------------------

_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)
UnitInterval = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(le=MAX_COUNT)]


class _Section(BaseModel):
    model_config = _CONFIG


class Latency(_Section):
    """Per-link latency in milliseconds, lognormal, drawn once per link."""

    median: float = Field(default=50.0, gt=0.0)
    sigma: float = Field(default=0.5, ge=0.0)


class Network(_Section):
    """The peer-to-peer network; ``degree`` means d, k, m or the mean degree by topology."""

    nodes: Count = Field(default=100, ge=2)
    topology: Literal[
        "random_regular", "watts_strogatz", "barabasi_albert", "erdos_renyi", "complete"
    ] = "random_regular"
    degree: Count = Field(default=8, ge=1)
    latency_ms: Latency = Latency()
    loss: float = Field(default=0.0, ge=0.0, lt=1.0)  # per message per link
    propagation: Literal["diffusion", "dandelion"] = "diffusion"
    fluff_probability: float = Field(default=0.1, gt=0.0, le=1.0)  # dandelion: stem -> fluff
    dandelion_epoch_s: float = Field(default=600.0, gt=0.0)
    block_interval_s: float = Field(default=2.0, gt=0.0)


class MarketConfig(_Section):
    """The markets; the wire format holds a 16-bit market and an 8-bit outcome index."""

    mechanism: Literal["lmsr", "ls_lmsr"] = "lmsr"
    count: int = Field(default=4, ge=1, le=2**16)
    outcomes: int = Field(default=2, ge=2, le=2**8)
    liquidity_b: float = Field(default=100.0, gt=0.0)  # lmsr b
    alpha: float = Field(default=0.05, gt=0.0)  # ls_lmsr
    fee: float = Field(default=0.0, ge=0.0)  # per share traded, paid to the market maker
    close_s: float = Field(default=36000.0, gt=0.0)  # trading stops
    resolve_s: float = Field(default=39600.0, gt=0.0)  # the truth becomes observable


class Traders(_Section):
    """The trading population."""

    informed: Count = Field(default=20, ge=0)
    noise: Count = Field(default=40, ge=0)
    signal_accuracy: UnitInterval = 0.7
    budget: float = Field(default=1000.0, gt=0.0)
    orders_per_hour: float = Field(default=4.0, gt=0.0)
    order_size: float = Field(default=10.0, gt=0.0)  # mean shares per order


class Privacy(_Section):
    """How order flow is hidden before execution."""

    order_flow: Literal["transparent", "operator", "commit_reveal", "threshold"] = "transparent"
    batch_interval_s: float = Field(default=30.0, gt=0.0)
    pad_to_bytes: Count = Field(default=256, ge=0)  # 0 = no padding
    keypers: Count = Field(default=10, ge=1)
    threshold: Count = Field(default=7, ge=1)
    reveal_deadline_s: float = Field(default=60.0, gt=0.0)
    deposit: float = Field(default=5.0, ge=0.0)
    unlinkable_senders: bool = False


class Adversary(_Section):
    """Who attacks and how."""

    spy_fraction: UnitInterval = 0.1
    frontrunner: bool = False
    colluding_keypers: Count = Field(default=0, ge=0)
    operator_frontruns: bool = False
    priority_fee: float = Field(default=0.01, ge=0.0)


class Settlement(_Section):
    """How the markets' outcomes are agreed on."""

    protocol: Literal["bft", "optimistic"] = "bft"
    reporters: Count = Field(default=21, ge=1)
    byzantine_fraction: UnitInterval = 0.0
    crash_fraction: UnitInterval = 0.0
    round_timeout_s: float = Field(default=30.0, gt=0.0)
    bond: float = Field(default=750.0, ge=0.0)
    liveness_s: float = Field(default=7200.0, gt=0.0)
    endowment: float = Field(default=2000.0, ge=0.0)


NodeId = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class Partition(_Section):
    """Nodes cut off from the rest of the network from ``start_s`` until ``end_s``.

    ``nodes`` are node ids; ``reporters`` are positions in the sorted list of reporter nodes
    (0 = the reporter with the smallest node id), so a schedule can target reporters without
    knowing where the seed put them.
    """

    nodes: list[NodeId] = Field(default_factory=list)
    reporters: list[NodeId] = Field(default_factory=list)
    start_s: float = Field(ge=0.0)
    end_s: float = Field(gt=0.0)


class Crash(_Section):
    """One node (``node``, or the reporter at position ``reporter``) that stops at ``at_s``.

    It runs again at ``restart_s`` when given, and catches up by height like any replica.
    """

    node: NodeId | None = None
    reporter: NodeId | None = None
    at_s: float = Field(ge=0.0)
    restart_s: float | None = Field(default=None, gt=0.0)


class Faults(_Section):
    """Scheduled network faults, on top of ``network.loss`` and the settlement fractions."""

    partitions: list[Partition] = Field(default_factory=list)
    crashes: list[Crash] = Field(default_factory=list)


class Forecaster(_Section):
    """The federated forecaster (optional)."""

    enabled: bool = False
    clients: Count = Field(default=40, ge=1)
    features: Count = Field(default=16, ge=1)
    samples_per_client: Count = Field(default=200, ge=1)
    non_iid: UnitInterval = 0.5
    rounds: Count = Field(default=20, ge=1)
    client_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    local_steps: Count = Field(default=5, ge=1)
    learning_rate: float = Field(default=0.1, gt=0.0)
    batch_size: Count = Field(default=32, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    secure_aggregation: bool = True
    dp_noise_multiplier: float = Field(default=0.0, ge=0.0)  # 0 = no differential privacy
    dp_clip: float = Field(default=1.0, gt=0.0)
    dp_delta: float = Field(default=1e-5, gt=0.0, lt=1.0)
    round_timeout_s: float = Field(default=60.0, gt=0.0)


class Scenario(_Section):
    """A whole scenario file. ``sweep`` maps dotted keys to the values to run (Cartesian)."""

    name: str = Field(pattern=r"^[a-z0-9-]+$", max_length=64)
    seed: int = Field(ge=0, le=_MAX_SEED)
    duration_s: float = Field(default=43200.0, gt=0.0)
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
            message = "is a section" + hint if sections else "unknown key" + did_you_mean(key)
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
        return "unknown key" + did_you_mean(dotted(loc))
    if kind == "missing":
        return "required key is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a table, got {show(value)}" if loc else "a scenario must be a table"
    if kind == "string_pattern_mismatch":
        return f"use lowercase letters, digits and '-' only, got {show(value)}"
    text = one_line(item["msg"])
    return f"{text[:1].lower()}{text[1:]}, got {show(value)}"


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
    return Problem("--set", problem.key, problem.message) if problem.key in settings else problem
