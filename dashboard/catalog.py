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

import errno
import fcntl
import json
import math
import os
import stat
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


MAX_ERROR_CHARS = 300
"""Longest error shown for one run: a hostile manifest's 500 KB error is cut, not shown whole."""


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` on one line (control characters escaped), cut to ``limit`` characters."""
    flat = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return flat if len(flat) <= limit else f"{flat[: limit - 3]}..."


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``.

    Opened without blocking and checked on the open descriptor, so a FIFO never hangs the
    dashboard and a symlink to ``/dev/zero`` is never read until memory runs out.

    Raises:
        OSError: missing, unreadable, not a regular file, or too large.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        raw = os.read(fd, max_bytes + 1)
        while len(raw) <= max_bytes and (chunk := os.read(fd, max_bytes + 1 - len(raw))):
            raw += chunk
    finally:
        os.close(fd)
    if len(raw) > max_bytes:
        raise OSError(errno.EFBIG, "manifest too large")
    return raw


def read_manifest(path: Path) -> dict[str, Any]:
    """Parse one manifest file; JSON only, never anything executable.

    Raises:
        ManifestError: If the file is not a regular file, too large, not UTF-8 JSON (or nested
            too deeply), or not a JSON object.
    """
    try:
        data = json.loads(read_regular(path, MAX_MANIFEST_BYTES).decode("utf-8"))
    except OSError as exc:
        raise ManifestError(f"manifest unreadable: {exc.strerror or exc}") from None
    except RecursionError:
        raise ManifestError("manifest unreadable: JSON nested too deeply") from None
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, a 5000-digit integer
        raise ManifestError(one_line(f"manifest unreadable: {exc}")) from None
    if not isinstance(data, dict):
        raise ManifestError("manifest is not a JSON object")
    return data


def run_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of ``run_dir``, refused when it is a symlink leading out of the run folder.

    Raises:
        ManifestError: as :func:`read_manifest`, or the manifest leaves the run folder.
    """
    try:
        path = resolve_inside(run_dir, MANIFEST)
    except UnsafePathError as exc:
        raise ManifestError(f"manifest refused: {exc}") from None
    return read_manifest(path)


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
    if kind is int and isinstance(value, int) and not -(2**63) <= value < 2**63:
        return None  # beyond the table's 64-bit integers
    if kind is float and isinstance(value, int):
        return float(value) if abs(value) < 2**1023 else None
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        return None
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
        error = f"unknown manifest status {one_line(repr(status_raw), 60)}"
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
        "error": None if error is None else one_line(str(error)),
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


FOLDER = "(folder)"
"""The run id shown for a scenario folder that cannot be read at all."""


def _entries(folder: Path) -> list[Path]:
    """The entries of ``folder``, sorted; none when it cannot be listed."""
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _run_folders(root: Path) -> Iterator[tuple[str, Path, str | None]]:
    """``(scenario, run folder, problem)`` for every run folder under ``root``.

    ``problem`` is None for a folder that can be read, else one line of why not (a symlink
    loop, a symlink out of ``root``); such folders are listed, never read. Plain files and
    hidden entries of the root are not runs and are skipped.
    """
    for scenario_dir in _entries(root) if root.is_dir() else []:
        if scenario_dir.name.startswith("."):
            continue
        try:
            real = resolve_inside(root, scenario_dir.name)
        except UnsafePathError as exc:
            yield scenario_dir.name, scenario_dir, str(exc)
            continue
        if not real.is_dir():
            continue
        for run_dir in _entries(real):
            try:
                if resolve_inside(real, run_dir.name).is_dir():
                    yield scenario_dir.name, run_dir, None
            except UnsafePathError as exc:
                yield scenario_dir.name, run_dir, str(exc)


def writer_active(scenario_dir: Path) -> bool:
    """True while some writer holds the scenario folder's lock (a run is being written).

    The simulator's writers hold an exclusive ``flock`` on the scenario folder while a staging
    folder exists (``sim.results.io``); a staging folder nobody is writing was left by a
    writer that died.
    """
    try:
        fd = os.open(scenario_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the shared lock at once
    return False


def folder_record(scenario: str, run_dir: Path) -> dict[str, Any]:
    """The runs-table row of one run folder (complete, failed, being written or broken)."""
    name = run_dir.name
    if name.startswith("."):
        run_id = name[1:].split(".tmp-", 1)[0].split(".old-", 1)[0]
        if writer_active(run_dir.parent):
            return placeholder_record(scenario, run_id, "incomplete", "run still being written")
        why = "left half-written by a writer that stopped; the next run of it clears it"
        return placeholder_record(scenario, run_id, "incomplete", why)
    manifest_path = run_dir / MANIFEST
    if not os.path.lexists(manifest_path):
        return placeholder_record(scenario, name, "incomplete", "no manifest.json yet")
    try:
        return manifest_record(scenario, name, run_manifest(run_dir))
    except ManifestError as exc:
        return placeholder_record(scenario, name, "invalid", one_line(str(exc)))
    except Exception as exc:  # a manifest of odd values must not take the listing down
        why = one_line(f"manifest unusable: {type(exc).__name__}: {exc}")
        return placeholder_record(scenario, name, "invalid", why)


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
    for scenario, run_dir, problem in _run_folders(root):
        if problem is not None:
            run_id = run_dir.name if run_dir.name != scenario else FOLDER
            rows.append(placeholder_record(scenario, run_id, "invalid", one_line(problem)))
            continue
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
    for scenario, run_dir, _problem in _run_folders(root):
        mtime = 0
        for path in (run_dir / MANIFEST, run_dir):
            try:
                mtime = path.lstat().st_mtime_ns
                break
            except OSError:
                continue
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
        regular = stat.S_ISREG(path.stat().st_mode)
    except (UnsafePathError, OSError):
        return None
    return path if regular and path.suffix == ".parquet" else None
