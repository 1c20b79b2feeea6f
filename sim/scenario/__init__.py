"""Scenarios: the TOML schema, its cross-field rules, and the expansion of a sweep into runs."""

from sim.scenario.schema import *  # noqa: F403
from sim.scenario.schema import __all__ as __all__
