"""A results folder damaged in every way the reliability suite knows, beside intact runs.

:func:`tamper` copies a folder of complete runs and adds one damaged run per entry of
:data:`DAMAGE` (each a run folder named after its damage, in scenario ``tampered``), plus a
symlink loop in place of a scenario folder. Readers (``veilcast compare``, every dashboard
page) must list or skip each damaged run with one line of why, and keep the intact runs usable.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCENARIO = "tampered"
OUTSIDE = "outside.json"
"""A manifest-looking file outside the results folder that symlinks point to."""


def _manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return data


def _write(folder: Path, manifest: Any) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _deep(folder: Path) -> None:
    depth = 100_000
    (folder / "manifest.json").write_text(
        '{"status": "complete", "x": ' + "[" * depth + "]" * depth + "}"
    )


def _huge_replication(folder: Path) -> None:
    _write(folder, _manifest(folder) | {"replication": 1e30, "world_seed": 10**30, "seed": 10**30})


def _string_scenario(folder: Path) -> None:
    _write(folder, _manifest(folder) | {"scenario": "not a table", "point": "nor this"})


def _nan_seed(folder: Path) -> None:
    text = json.dumps(_manifest(folder) | {"world_seed": 0, "replication": 0})
    (folder / "manifest.json").write_text(text.replace('"world_seed": 0', '"world_seed": NaN'))


def _not_json(folder: Path) -> None:
    (folder / "manifest.json").write_text('{"status": "complete", ')


def _manifest_fifo(folder: Path) -> None:
    (folder / "manifest.json").unlink()
    os.mkfifo(folder / "manifest.json")


def _manifest_dev_zero(folder: Path) -> None:
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").symlink_to("/dev/zero")


def _manifest_outside(folder: Path) -> None:
    outside = folder.parents[2] / OUTSIDE
    outside.write_text(json.dumps(_manifest(folder)))
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").symlink_to(outside)


def _truncated_metrics(folder: Path) -> None:
    path = folder / "tables" / "metrics.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_tables(folder: Path) -> None:
    for path in (folder / "tables").glob("*.parquet"):
        data = bytearray(path.read_bytes())
        middle = len(data) // 2
        data[8:middle] = bytes(middle - 8)  # keep the magic and the footer: the pages are wrong
        path.write_bytes(bytes(data))


def _missing_metrics(folder: Path) -> None:
    (folder / "tables" / "metrics.parquet").unlink()


def _wrong_schema_metrics(folder: Path) -> None:
    path = folder / "tables" / "metrics.parquet"
    shutil.copy(folder / "tables" / "prices.parquet", path)


def _metrics_fifo(folder: Path) -> None:
    (folder / "tables" / "metrics.parquet").unlink()
    os.mkfifo(folder / "tables" / "metrics.parquet")


def _metrics_outside(folder: Path) -> None:
    outside = folder.parents[2] / "outside-metrics.parquet"
    shutil.copy(folder / "tables" / "metrics.parquet", outside)
    (folder / "tables" / "metrics.parquet").unlink()
    (folder / "tables" / "metrics.parquet").symlink_to(outside)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "deep-json": _deep,
    "huge-replication": _huge_replication,
    "string-scenario": _string_scenario,
    "nan-seed": _nan_seed,
    "not-json": _not_json,
    "manifest-fifo": _manifest_fifo,
    "manifest-dev-zero": _manifest_dev_zero,
    "manifest-outside": _manifest_outside,
    "truncated-metrics": _truncated_metrics,
    "corrupt-tables": _corrupt_tables,
    "missing-metrics": _missing_metrics,
    "wrong-schema-metrics": _wrong_schema_metrics,
    "metrics-fifo": _metrics_fifo,
    "metrics-outside": _metrics_outside,
}
"""Each kind of damage, applied to a copy of a complete run folder."""

UNREADABLE_TABLES = ("truncated-metrics", "corrupt-tables", "metrics-fifo", "metrics-outside")
"""Damaged runs whose manifest is intact: listed complete, their damaged tables unreadable."""


def tamper(intact: Path, out: Path) -> Path:
    """A results folder at ``out/results``: ``intact``'s runs, and every damaged run.

    ``intact`` is a results folder of complete runs; the damaged runs are copies of its first
    run folder. Returns the results folder (its parent also holds the symlink targets).
    """
    root = out / "results"
    shutil.copytree(intact, root, symlinks=True)
    template = next(p.parent for p in sorted(root.glob("*/*/manifest.json")))
    for name, damage in DAMAGE.items():
        folder = root / SCENARIO / name
        shutil.copytree(template, folder)
        manifest = _manifest(folder) | {"run_id": name}
        _write(folder, manifest)
        damage(folder)
    (root / SCENARIO / "loop").symlink_to("loop")  # a run folder that is a symlink loop
    (root / "loop-scenario").symlink_to("loop-scenario")
    (root / "escape").symlink_to(out)  # a scenario folder that is a symlink out
    return root
