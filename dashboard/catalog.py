"""Discovering runs in the results folder by reading their manifests (JSON only).

Layout written by the simulator::

    results/<scenario>/<run-id>/manifest.json       written last; "status" marks the outcome
    results/<scenario>/<run-id>/tables/<t>.parquet
    results/<scenario>/.<run-id>.tmp-*/              a run still being written
    results/<scenario>/sweep.json                    a sweep's own summary (optional)

Only runs whose manifest says ``"status": "complete"`` are loadable. Failed runs, folders
without a manifest, temporary folders and unreadable manifests are listed with their status so
the user sees them, but nothing ever reads their tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import polars as pl

from dashboard.paths import UnsafePathError, resolve_inside

Status = Literal["complete", "failed", "incomplete", "invalid"]

MANIFEST = "manifest.json"
# Manifests are a few kilobytes; refusing huge files keeps a hostile folder from exhausting memory.
MAX_MANIFEST_BYTES = 8 * 1024 * 1024

RUNS_SCHEMA: dict[str, Any] = {
    "path": pl.String,
    "scenario": pl.String,
    "run_id": pl.String,
    "status": pl.String,
    "loadable": pl.Boolean,
    "created": pl.String,
    "replication": pl.Int64,
    "seed": pl.Int64,
    "world_seed": pl.Int64,
    "order": pl.Int64,
    "point": pl.String,
    "setting": pl.String,
    "order_flow": pl.String,
    "wall_s": pl.Float64,
    "events": pl.Int64,
    "error": pl.String,
}


class ManifestError(ValueError):
    """A manifest that cannot be read as a JSON object."""


def read_manifest(path: Path) -> dict[str, Any]:
    """Parse one manifest file; JSON only, never anything executable.

    Raises:
        ManifestError: If the file is too large, not UTF-8 JSON, or not a JSON object.
    """
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError("manifest too large")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError("manifest is not a JSON object")
    return data


def canonical_point(point: Any) -> str:
    """The sweep point as canonical JSON (sorted keys, no spaces); ``{}`` when missing."""
    if not isinstance(point, Mapping):
        point = {}
    return json.dumps(point, sort_keys=True, separators=(",", ":"), default=str)


def setting_label(point: Mapping[str, Any], order_flow: str | None) -> str:
    """A short readable name for a run's setting: the sweep point, else its order-flow mode.

    ``{"privacy.order_flow": "threshold", "network.loss": 0.1}`` becomes
    ``"loss=0.1, order_flow=threshold"`` (last key segment, keys sorted).
    """
    if point:
        return ", ".join(f"{key.rsplit('.', 1)[-1]}={point[key]}" for key in sorted(point))
    return f"order_flow={order_flow}" if order_flow else "default"


def _get(mapping: Mapping[str, Any], *keys: str) -> Any:
    """A nested value or None, tolerating missing levels and wrong types."""
    value: Any = mapping
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _typed(value: Any, kind: type) -> Any:
    """``value`` if it has the expected JSON type (bool is not a number here), else None."""
    if isinstance(value, bool) and kind is not bool:
        return None
    if kind is float and isinstance(value, int):
        return float(value)
    return value if isinstance(value, kind) else None


def manifest_record(scenario: str, run_id: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the runs table from a parsed manifest."""
    status_raw = manifest.get("status")
    status: Status = status_raw if status_raw in ("complete", "failed") else "invalid"
    point = manifest.get("point")
    point = point if isinstance(point, Mapping) else {}
    order_flow = _typed(_get(manifest, "scenario", "privacy", "order_flow"), str)
    error = manifest.get("error")
    if status == "invalid":
        error = f"unknown manifest status {status_raw!r}"
    return {
        "path": f"{scenario}/{run_id}",
        "scenario": scenario,
        "run_id": run_id,
        "status": status,
        "loadable": status == "complete",
        "created": _typed(manifest.get("created"), str),
        "replication": _typed(manifest.get("replication"), int),
        "seed": _typed(manifest.get("seed"), int),
        "world_seed": _typed(manifest.get("world_seed"), int),
        "order": None,
        "point": canonical_point(point),
        "setting": setting_label(point, order_flow),
        "order_flow": order_flow,
        "wall_s": _typed(manifest.get("wall_s"), float),
        "events": _typed(manifest.get("events"), int),
        "error": None if error is None else str(error),
    }


def placeholder_record(scenario: str, run_id: str, status: Status, error: str) -> dict[str, Any]:
    """A row for a run that has no usable manifest (being written, or unreadable)."""
    record = dict.fromkeys(RUNS_SCHEMA)
    record.update(
        path=f"{scenario}/{run_id}",
        scenario=scenario,
        run_id=run_id,
        status=status,
        loadable=False,
        point="{}",
        setting="unknown",
        error=error,
    )
    return record


def _run_folders(root: Path) -> Iterator[tuple[str, Path]]:
    """``(scenario, run folder)`` pairs, skipping anything that resolves outside ``root``."""
    if not root.is_dir():
        return
    for scenario_dir in sorted(root.iterdir()):
        try:
            real = resolve_inside(root, scenario_dir.name)
        except UnsafePathError:
            continue
        if scenario_dir.name.startswith(".") or not real.is_dir():
            continue
        for run_dir in sorted(real.iterdir()):
            try:
                if resolve_inside(real, run_dir.name).is_dir():
                    yield scenario_dir.name, run_dir
            except UnsafePathError:
                continue


def folder_record(scenario: str, run_dir: Path) -> dict[str, Any]:
    """The runs-table row of one run folder (complete, failed, being written or broken)."""
    name = run_dir.name
    if name.startswith("."):
        run_id = name[1:].split(".tmp-", 1)[0]
        return placeholder_record(scenario, run_id, "incomplete", "run still being written")
    manifest_path = run_dir / MANIFEST
    if not manifest_path.is_file():
        return placeholder_record(scenario, name, "incomplete", "no manifest.json yet")
    try:
        manifest = read_manifest(manifest_path)
    except ManifestError as exc:
        return placeholder_record(scenario, name, "invalid", str(exc))
    return manifest_record(scenario, name, manifest)


def sweep_order(scenario_dir: Path) -> dict[str, int]:
    """Each run id's position in the scenario's ``sweep.json`` (expansion order: the first
    value of every swept key comes first); empty when the file is missing or unreadable."""
    try:
        runs = read_manifest(scenario_dir / "sweep.json").get("runs", [])
        return {str(run["run_id"]): i for i, run in enumerate(runs) if isinstance(run, dict)}
    except (ManifestError, KeyError, AttributeError, TypeError):
        return {}


def discover_runs(root: Path) -> pl.DataFrame:
    """Every run folder under ``root``, one row each (see ``RUNS_SCHEMA``).

    Sorted by scenario, setting, replication and run id so that tables and legends are stable.
    ``order`` is the run's position in its scenario's ``sweep.json``, which fixes the default
    baseline (the first sweep point), as in ``veilcast compare``.
    """
    orders: dict[str, dict[str, int]] = {}
    rows = []
    for scenario, run_dir in _run_folders(root):
        if scenario not in orders:
            orders[scenario] = sweep_order(run_dir.parent)
        record = folder_record(scenario, run_dir)
        record["order"] = orders[scenario].get(str(record["run_id"]))
        rows.append(record)
    frame = pl.DataFrame(rows, schema=RUNS_SCHEMA)
    return frame.sort(["scenario", "setting", "replication", "run_id"], nulls_last=True)


def fingerprint(root: Path) -> tuple[tuple[str, int], ...]:
    """Names and modification times of run folders and manifests: changes when a run lands.

    Used as part of the discovery cache key, so a finished run shows up without a restart.
    """
    stamps: list[tuple[str, int]] = []
    for scenario, run_dir in _run_folders(root):
        manifest = run_dir / MANIFEST
        mtime = manifest.stat().st_mtime_ns if manifest.is_file() else run_dir.stat().st_mtime_ns
        stamps.append((f"{scenario}/{run_dir.name}", mtime))
    return tuple(stamps)


def table_file(run_dir: Path, manifest: Mapping[str, Any], table: str) -> Path | None:
    """The parquet file of ``table`` in a run, or None when the run does not have it.

    The manifest's ``tables.<name>.path`` is followed only if it stays inside the run folder.
    """
    rel = _get(manifest, "tables", table, "path")
    if not isinstance(rel, str):
        rel = f"tables/{table}.parquet"
    try:
        path = resolve_inside(run_dir, rel)
    except UnsafePathError:
        return None
    return path if path.is_file() and path.suffix == ".parquet" else None
