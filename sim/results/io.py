"""The only writer of files, and the safe reader of what it wrote.

A run is written into a hidden staging folder beside its final place (``.<run-id>.tmp-<pid>-*``,
unique per writer), the manifest last, and then renamed into place in one step. A crash, a
full disk or Ctrl-C therefore never leaves a folder that looks complete: what exists under the
run id either has a manifest with ``"status": "complete"``, or a failed run's manifest with
``"status": "failed"`` and its error, or nothing.

Several writers may share one results folder (two ``veilcast run`` or ``sweep`` commands with the
same ``--out``, or the workers of one sweep). A writer holds an exclusive ``flock`` on the
scenario folder itself (``<out>/<scenario>/``, so no lock file appears among the runs) from
clearing stale staging to the final rename, and while it rewrites ``sweep.json``. So:

* no writer ever removes another's staging folder: under the lock, any staging folder of the
  run id is stale (its writer died, and the kernel released its lock);
* a failure record never replaces a complete run (a complete run may be rewritten by an equal
  one: the same run id means the same resolved scenario and seeds);
* SIGINT and SIGTERM that arrive while a run is being written are held until the rename is
  done (then delivered), so an interrupted write leaves the run either complete or absent.

Reading (:func:`read_json`) accepts only regular files, with a size cap, so a FIFO never hangs
a reader and ``/dev/zero`` is never read until memory runs out.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import polars as pl

from sim.scenario.problems import read_regular

MANIFEST = "manifest.json"

MAX_JSON_BYTES = 8 * 1024 * 1024
"""Largest manifest or ``sweep.json`` read: a manifest is a few kilobytes."""

FOLDER_MODE = 0o755
"""Mode of run folders (a staging folder is created 0700, then opened like the rest)."""


class UnreadableError(ValueError):
    """A results file that is missing, not a regular file, too large or not JSON."""


def run_dir(out: Path, scenario_name: str, run_id: str) -> Path:
    """Where a run's folder lives: ``<out>/<scenario-name>/<run-id>``."""
    return out / scenario_name / run_id


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in ``path``, a regular file of at most ``max_bytes``.

    Raises:
        UnreadableError: one line of why (missing, a FIFO or device, too large, not UTF-8,
            not JSON, nested too deeply).
    """
    try:
        raw = read_regular(path, max_bytes)
        return json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise UnreadableError(f"{path.name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UnreadableError(f"{path.name}: not UTF-8") from None
    except RecursionError:
        raise UnreadableError(f"{path.name}: JSON nested too deeply") from None
    except ValueError as exc:
        raise UnreadableError(f"{path.name}: not JSON ({exc})") from None


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the run in ``folder`` as a JSON object.

    Raises:
        UnreadableError: no readable manifest, or it is not a JSON object.
    """
    manifest = read_json(folder / MANIFEST)
    if not isinstance(manifest, dict):
        raise UnreadableError(f"{MANIFEST}: not a JSON object")
    return manifest


def is_complete(folder: Path) -> bool:
    """True when ``folder`` holds a readable manifest whose status is complete."""
    try:
        return read_manifest(folder).get("status") == "complete"
    except UnreadableError:
        return False


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


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the writers' lock of ``folder`` (created if missing) for the ``with`` block.

    An exclusive ``flock`` on the folder itself: the kernel releases it when its holder exits,
    however it exits, so a killed writer never leaves the folder locked. (On a network file
    system without ``flock`` the lock is only as good as the server's.)
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the ``with`` block, then deliver them as they would have been.

    Only the main thread can change handlers; elsewhere (a Ray worker's thread) this holds
    nothing. A handler installed outside Python is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    mine = [s for s, handler in saved.items() if handler is not None]
    for s in mine:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s in mine:
            signal.signal(s, saved[s])
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)


def _replace(target: Path, staging: Path) -> None:
    """Move ``staging`` to ``target``, replacing an older folder there (e.g. a failed run)."""
    if target.exists():
        trash = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(trash, ignore_errors=True)
        target.rename(trash)
        staging.rename(target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        staging.rename(target)


def write_run(
    out: Path, scenario_name: str, manifest: Mapping[str, Any], tables: Mapping[str, pl.DataFrame]
) -> Path:
    """Write a run's tables and manifest atomically; returns the run folder.

    A manifest whose status is not ``complete`` (a failure record) is not written when the
    folder already holds a complete run: that run stays as it is.
    """
    target = run_dir(out, scenario_name, str(manifest["run_id"]))
    with locked(target.parent), signals_held():
        if manifest.get("status") != "complete" and is_complete(target):
            return target
        clear_staging(target)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent)
        )
        try:
            staging.chmod(FOLDER_MODE)
            if tables:
                (staging / "tables").mkdir()
            entries = {}
            for name in sorted(tables):
                path = staging / "tables" / f"{name}.parquet"
                tables[name].write_parquet(path, compression="zstd")
                entries[name] = _table_entry(name, tables[name])
            full = dict(manifest) | {"tables": entries}
            (staging / MANIFEST).write_text(json.dumps(_json_safe(full), indent=2, sort_keys=True))
            _replace(target, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def clear_staging(target: Path) -> None:
    """Remove what a killed writer of ``target`` left behind (``.<run-id>.tmp-*`` folders).

    Call it holding the folder's lock (:func:`locked`): staging folders exist only while their
    writer holds that lock, so any found then is stale.
    """
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def write_failed(out: Path, scenario_name: str, manifest: Mapping[str, Any]) -> Path:
    """Record a run that raised: a folder with only a ``failed`` manifest and its error.

    Never replaces a complete run of the same id (see :func:`write_run`).
    """
    return write_run(out, scenario_name, dict(manifest) | {"status": "failed"}, {})


def _write_json_file(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to a staging file unique to this writer, then rename it over ``path``."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    staging = Path(name)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(_json_safe(dict(data)), indent=2, sort_keys=True))
        staging.chmod(0o644)
        staging.replace(path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write a JSON summary (e.g. ``sweep.json``) atomically, under its folder's lock."""
    with locked(path.parent), signals_held():
        _write_json_file(path, data)


def update_json(path: Path, build: Callable[[Any], Mapping[str, Any]]) -> None:
    """Rewrite the JSON summary at ``path`` from its current value, under its folder's lock.

    ``build`` gets the current value (None when the file is missing or unreadable) and returns
    the new one; no other writer can change the file in between.
    """
    with locked(path.parent), signals_held():
        try:
            current = read_json(path)
        except UnreadableError:
            current = None
        _write_json_file(path, build(current))
