"""Behaviour is preserved: the golden worlds give the tables and metrics recorded in digests.json.

The host redesign moved code without changing what it computes; this test holds it to that.
A change meant to alter results re-records the digests (``python -m tests.golden.record``) in
the same commit and says why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.api import run
from tests.golden.worlds import VARIANTS, outputs, scenario

EXPECTED = json.loads((Path(__file__).parent / "digests.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_golden_world_is_unchanged(name: str) -> None:
    found = outputs(run(scenario(name)))
    want = EXPECTED[name]
    changed_tables = sorted(
        t
        for t in set(want["tables"]) | set(found["tables"])
        if want["tables"].get(t) != found["tables"].get(t)
    )
    changed_metrics = {
        m: (want["metrics"].get(m), found["metrics"].get(m))
        for m in sorted(set(want["metrics"]) | set(found["metrics"]))
        if want["metrics"].get(m) != found["metrics"].get(m)
    }
    assert not changed_tables and not changed_metrics, (changed_tables, changed_metrics)
