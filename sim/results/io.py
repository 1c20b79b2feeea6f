"""The only writer of files.

A run is written into a hidden temporary sibling folder, the manifest last, and then renamed
into place in one step. A crash or Ctrl-C therefore never leaves a folder that looks complete:
what exists under the run id either has a manifest with ``"status": "complete"``, or a failed
run's manifest with ``"status": "failed"`` and its error, or nothing.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

MANIFEST = "manifest.json"


def run_dir(out: Path, scenario_name: str, run_id: str) -> Path:
    """Where a run's folder lives: ``<out>/<scenario-name>/<run-id>``."""
    return out / scenario_name / run_id


def is_complete(folder: Path) -> bool:
    """True when ``folder`` holds a manifest whose status is complete."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("status") == "complete"


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats (JSON cannot hold them) by strings polars and people read."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _table_entry(name: str, frame: pl.DataFrame) -> dict[str, Any]:
    return {
        "path": f"tables/{name}.parquet",
        "rows": frame.height,
        "columns": {col: str(dtype) for col, dtype in frame.schema.items()},
    }


def _replace(target: Path, staging: Path) -> None:
    """Move ``staging`` to ``target``, replacing an older folder there (e.g. a failed run)."""
    if target.exists():
        trash = target.with_name(f".{target.name}.old")
        shutil.rmtree(trash, ignore_errors=True)
        target.rename(trash)
        staging.rename(target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        staging.rename(target)


def write_run(
    out: Path, scenario_name: str, manifest: Mapping[str, Any], tables: Mapping[str, pl.DataFrame]
) -> Path:
    """Write a run's tables and manifest atomically; returns the run folder."""
    target = run_dir(out, scenario_name, str(manifest["run_id"]))
    target.parent.mkdir(parents=True, exist_ok=True)
    clear_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        if tables:
            (staging / "tables").mkdir()
        entries = {}
        for name in sorted(tables):
            tables[name].write_parquet(staging / "tables" / f"{name}.parquet", compression="zstd")
            entries[name] = _table_entry(name, tables[name])
        full = dict(manifest) | {"tables": entries}
        (staging / MANIFEST).write_text(json.dumps(_json_safe(full), indent=2, sort_keys=True))
        _replace(target, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def clear_staging(target: Path) -> None:
    """Remove what a killed writer of ``target`` left behind (hidden ``.<run-id>.tmp-*`` folders).

    A run id has one writer at a time, so any staging folder of it found before writing is
    stale: its writer died before the rename.
    """
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def write_failed(out: Path, scenario_name: str, manifest: Mapping[str, Any]) -> Path:
    """Record a run that raised: a folder with only a ``failed`` manifest and its error."""
    return write_run(out, scenario_name, dict(manifest) | {"status": "failed"}, {})


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write a JSON summary (e.g. ``sweep.json``) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(_json_safe(dict(data)), indent=2, sort_keys=True))
    staging.replace(path)
