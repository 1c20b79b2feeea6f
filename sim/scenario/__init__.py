"""Scenarios: the TOML schema, its cross-field rules, and the expansion of a sweep into runs.

Layered so that no module imports one above it: ``problems`` (one-line problems, TOML, dotted
keys) < ``sections`` (the models of each ``[section]``) < ``rules`` (what keys may hold
together) < ``schema`` (the whole ``Scenario``, and pydantic's errors as problems) < ``expand``
(loading a file with ``--set`` overrides, sweep checks, the runs of a sweep).
"""

from sim.scenario.expand import (
    RunSpec,
    canonical_json,
    expand,
    load_scenario,
    parse_override,
    parse_scenario,
)
from sim.scenario.problems import Problem, ScenarioError
from sim.scenario.rules import MAX_RUNS, MIN_PAD_BYTES
from sim.scenario.schema import SETTINGS, Scenario, problems_from_validation, resolved_dict
from sim.scenario.sections import (
    MAX_COUNT,
    Adversary,
    Crash,
    Faults,
    Forecaster,
    Latency,
    MarketConfig,
    Network,
    Partition,
    Prior,
    Privacy,
    Settlement,
    Traders,
)

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
    "Prior",
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
