"""Cached loaders: the only module that reads the results folder for the pages.

Discovery is keyed by a fingerprint of the folder, so a run that lands while the dashboard is
open appears on the next rerun. Tables are scanned lazily with polars and only the requested
columns are read; results are cached per (run, manifest time, table, columns).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from dashboard import catalog, queries, shapes
from dashboard.paths import UnsafePathError, resolve_run


def runs(root: Path) -> pl.DataFrame:
    """All runs under ``root`` (see ``catalog.RUNS_SCHEMA``), refreshed when a run lands."""
    return _runs(str(root), catalog.fingerprint(root))


@st.cache_data(show_spinner=False, max_entries=16)
def _runs(root: str, stamp_key: tuple[tuple[str, int], ...]) -> pl.DataFrame:
    # The fingerprint is only part of the cache key (no leading underscore: Streamlit skips
    # hashing such parameters); discovery reads the folder itself.
    del stamp_key
    return catalog.discover_runs(Path(root))


def _stamp(run_dir: Path) -> int:
    """Modification time of the run's manifest: a rerun of the same id invalidates caches."""
    try:
        return (run_dir / catalog.MANIFEST).stat().st_mtime_ns
    except OSError:
        return 0


def manifest(root: Path, rel: str) -> dict[str, Any]:
    """The parsed manifest of run ``rel`` (``scenario/run-id``).

    Raises:
        UnsafePathError: If ``rel`` leaves the results folder.
        catalog.ManifestError: If the manifest is unreadable.
    """
    run_dir = resolve_run(root, rel)
    return _manifest(str(run_dir), _stamp(run_dir))


@st.cache_data(show_spinner=False, max_entries=256)
def _manifest(run_dir: str, stamp: int) -> dict[str, Any]:
    del stamp
    return catalog.run_manifest(Path(run_dir))


def table(
    root: Path, rel: str, name: str, columns: Sequence[str] | None = None
) -> pl.DataFrame | None:
    """Table ``name`` of one complete run with only ``columns`` (those that exist), or None.

    None means the run has no such table (or is not complete); a missing column is simply not
    in the result, so pages check with ``queries.missing_columns``. A ``path`` column naming the
    run (``scenario/run-id``) is added so frames of several runs can be told apart.

    A table that cannot be read (a truncated or corrupt Parquet file) is None too, and the
    page shows one line saying that run's table is unreadable: the page and the other runs
    stay usable.
    """
    try:
        run_dir = resolve_run(root, rel)
        meta = manifest(root, rel)
    except (UnsafePathError, catalog.ManifestError):
        return None
    if meta.get("status") != "complete":
        return None
    cols = None if columns is None else tuple(columns)
    try:
        return _table(str(run_dir), _stamp(run_dir), rel, name, cols)
    except Exception as exc:  # polars raises many kinds for a damaged file; any means unreadable
        unreadable(rel, name, exc)
        return None


def unreadable(rel: str, name: str, exc: BaseException) -> None:
    """Say once per page that table ``name`` of run ``rel`` cannot be read, and why (one line,
    no traceback, no server paths)."""
    shown: set[tuple[str, str]] = st.session_state.setdefault(UNREADABLE_KEY, set())
    if (rel, name) in shown:
        return
    shown.add((rel, name))
    st.error(
        f"Run `{rel}`: its `{name}` table is unreadable ({type(exc).__name__}); "
        "it is left out here.",
        icon=":material/broken_image:",
    )


UNREADABLE_KEY = "_veilcast_unreadable"
"""Session key of the (run, table) pairs already reported unreadable on this rerun."""


@st.cache_data(show_spinner=False, max_entries=512)
def _table(
    run_dir: str, stamp: int, rel: str, name: str, columns: tuple[str, ...] | None
) -> pl.DataFrame | None:
    del stamp
    meta = catalog.run_manifest(Path(run_dir))
    path = catalog.table_file(Path(run_dir), meta, name)
    if path is None:
        return None
    lazy = pl.scan_parquet(path)
    if columns is not None:
        present = lazy.collect_schema().names()
        lazy = lazy.select([c for c in columns if c in present])
    return lazy.collect().with_columns(path=pl.lit(rel))


def tables(
    root: Path, rels: Sequence[str], name: str, columns: Sequence[str] | None = None
) -> pl.DataFrame | None:
    """Table ``name`` of several runs stacked (columns unioned), or None if no run has it."""
    frames = [f for rel in rels if (f := table(root, rel, name, columns)) is not None]
    if not frames:
        return None
    return pl.concat(frames, how="diagonal_relaxed")


def positions(root: Path, rel: str) -> pl.DataFrame | None:
    """Node positions of a run's topology (deterministic layout), or None without the tables."""
    nodes = table(root, rel, "nodes", ("node",))
    edges = table(root, rel, "edges", ("src", "dst"))
    if nodes is None or edges is None or queries.missing_columns(nodes, ("node",)):
        return None
    if queries.missing_columns(edges, ("src", "dst")):
        return None
    return _positions(tuple(nodes["node"].to_list()), tuple(edges.select("src", "dst").rows()))


@st.cache_data(show_spinner=False, max_entries=64)
def _positions(nodes: tuple[int, ...], edges: tuple[tuple[int, int], ...]) -> pl.DataFrame:
    return shapes.layout_positions(nodes, edges)
