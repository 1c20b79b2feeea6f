"""The README's metric reference names every metric a run reports, and nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dashboard.glossary import MEANING

ROOT = Path(__file__).resolve().parent.parent
PERF = {"perf.events", "perf.messages", "perf.wall_s", "perf.events_per_s", "perf.peak_rss_mb",
        "perf.crypto_cpu_s"}  # fmt: skip


def _documented() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Metrics") :]
    section = section[: section.index("\n## ")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z]+\.[a-z_]+)`", row.split("|")[1])}


def test_every_metric_the_golden_worlds_report_is_documented_and_nothing_more() -> None:
    worlds = json.loads((ROOT / "tests" / "golden" / "digests.json").read_text())
    reported = {name for world in worlds.values() for name in world["metrics"]} | PERF
    assert reported == _documented()


def test_the_dashboard_explains_only_metrics_the_readme_defines() -> None:
    assert set(MEANING) <= _documented()
