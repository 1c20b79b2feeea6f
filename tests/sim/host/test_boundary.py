"""Protocols, adversaries and the forecaster see the run only through the Host protocol.

Read from their source: none of them imports the whole scenario or the simpy simulation, and
none reaches for ``.scenario`` or ``.env`` on anything. Each gets its own ``[section]`` from
the composition root (:mod:`sim.runs.assembly`) instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sim

ROOT = Path(sim.__file__).parent
PACKAGES = ("orderflow", "settlement", "adversary", "federated")
FORBIDDEN_NAMES = {"Scenario", "Simulation", "Environment"}
FORBIDDEN_ATTRIBUTES = {"scenario", "env"}


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).glob("*.py"))


def reaches(source: str) -> list[str]:
    """What ``source`` reaches for that a component must not: imported names, attributes."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found += [f"import {a.name}" for a in node.names if a.name in FORBIDDEN_NAMES]
            if node.module is not None and node.module.startswith(("sim.runs", "simpy")):
                found.append(f"from {node.module}")
        elif isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.startswith("simpy")]
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f".{node.attr}")
    return found


def test_the_scan_finds_what_it_looks_for() -> None:
    planted = "from sim.scenario import Scenario\nx = self.sim.scenario.market\ny = host.env.now\n"
    assert sorted(reaches(planted)) == [".env", ".scenario", "import Scenario"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_component_module_sees_only_the_host(path: Path) -> None:
    assert reaches(path.read_text()) == []
