"""Streamlit pieces shared by the pages: the runs in view, run pickers and "no data" messages.

``app.py`` calls :func:`setup` on every rerun before the page runs; it draws the sidebar
selection and stores a :class:`Context` that the pages read with :func:`context`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import streamlit as st

from dashboard import data, queries
from dashboard.charts import ChartLike
from dashboard.paths import UnsafePathError, resolve_run

SELECTION_KEY = "runs_in_view"
CONTEXT_KEY = "_veilcast_context"
NOTICES_KEY = "_veilcast_notices"
QUERY_RUN = "run"


@dataclass(frozen=True, slots=True)
class Context:
    """What every page needs: the results folder, every run in it, and the runs in view."""

    root: Path
    runs: pl.DataFrame
    selected: tuple[str, ...]
    labels: dict[str, str]

    def selected_runs(self) -> pl.DataFrame:
        """Rows of the runs in view, in selection order, with their ``group``."""
        rows = self.runs.filter(pl.col("path").is_in(list(self.selected)))
        order = {p: i for i, p in enumerate(self.selected)}
        ranked = rows.with_columns(_o=pl.col("path").replace_strict(order, return_dtype=pl.Int64))
        return queries.with_groups(ranked.sort("_o").drop("_o"))


def requested_runs(
    root: Path, runs: pl.DataFrame, requested: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Validate run paths asked for in the URL (``?run=scenario/run-id``).

    Returns:
        The complete runs among them, and one message per refused or unusable request (outside
        the results folder, not a run, failed or still being written).
    """
    complete = set(runs.filter(pl.col("loadable"))["path"].to_list())
    chosen: list[str] = []
    notices: list[str] = []
    for rel in requested:
        try:
            resolve_run(root, rel)
        except UnsafePathError as exc:
            notices.append(str(exc))
            continue
        if rel in complete:
            chosen.append(rel)
        else:
            notices.append(f"run {rel!r} is not a complete run; it is not loaded")
    return chosen, notices


def _initial_selection(root: Path, runs: pl.DataFrame) -> None:
    """On a session's first run: the runs named in the URL, else the latest scenario's runs."""
    requested = st.query_params.get_all(QUERY_RUN)
    chosen, notices = requested_runs(root, runs, requested)
    st.session_state[NOTICES_KEY] = notices
    st.session_state[SELECTION_KEY] = chosen if requested else queries.default_selection(runs)


def setup(root: Path) -> Context:
    """Draw the sidebar selection and remember the context for the page about to run."""
    st.session_state[data.UNREADABLE_KEY] = set()  # each rerun reports unreadable tables anew
    runs = data.runs(root)
    options = runs.filter(pl.col("loadable"))["path"].to_list()
    labels = queries.run_labels(runs)
    if SELECTION_KEY not in st.session_state:
        _initial_selection(root, runs)
    # Runs can disappear between reruns (folder cleaned); a stale value would break the widget.
    st.session_state[SELECTION_KEY] = [p for p in st.session_state[SELECTION_KEY] if p in options]
    with st.sidebar:
        for notice in st.session_state.get(NOTICES_KEY, []):
            st.error(notice, icon=":material/block:")
        selected = st.multiselect(
            "Runs in view",
            options,
            key=SELECTION_KEY,
            format_func=lambda p: labels.get(p, p),
            help="Complete runs the pages show. Pick runs by filter on the Runs page.",
        )
        st.caption(f"Results folder: `{root}`")
    st.query_params[QUERY_RUN] = selected
    ctx = Context(root=root, runs=runs, selected=tuple(selected), labels=labels)
    st.session_state[CONTEXT_KEY] = ctx
    return ctx


def context() -> Context | None:
    """The context ``app.py`` stored for this rerun, or None (with a message) without one."""
    ctx = st.session_state.get(CONTEXT_KEY)
    if not isinstance(ctx, Context):
        st.error("Start the dashboard through dashboard/app.py (veilcast dashboard).")
        return None
    return ctx


def pick_run(ctx: Context, *, key: str) -> str | None:
    """A run chooser among the runs in view; None (with a message) when none is in view."""
    if not ctx.selected:
        st.info("No complete run is in view. Choose runs in the sidebar (or run a scenario first).")
        return None
    return st.selectbox(
        "Run", list(ctx.selected), key=key, format_func=lambda p: ctx.labels.get(p, p)
    )


def have(frame: pl.DataFrame | None, table: str, columns: Sequence[str], why: str = "") -> bool:
    """True when ``frame`` exists and has ``columns``; otherwise show why there is nothing here."""
    if frame is None:
        st.info(f"This run has no `{table}` table{why}.", icon=":material/info:")
        return False
    missing = queries.missing_columns(frame, columns)
    if missing:
        cols = ", ".join(f"`{c}`" for c in missing)
        st.info(f"The `{table}` table of this run lacks {cols}.", icon=":material/info:")
        return False
    if frame.is_empty():
        st.info(f"The `{table}` table of this run is empty{why}.", icon=":material/info:")
        return False
    return True


def chart(spec: ChartLike) -> None:
    """Draw an altair chart across the page width."""
    st.altair_chart(spec, width="stretch")


def metric_tiles(metrics: pl.DataFrame | None, names: Sequence[tuple[str, str]]) -> None:
    """A row of ``st.metric`` tiles (label, metric name); "n/a" where a metric does not apply."""
    cols = st.columns(len(names))
    for col, (label, name) in zip(cols, names, strict=True):
        col.metric(label, queries.fmt(queries.metric_value(metrics, name)), border=True)


@dataclass(frozen=True, slots=True)
class RunPage:
    """What a single-run page has once its header is drawn: the folder, the run and its metrics."""

    ctx: Context
    rel: str
    metrics: pl.DataFrame | None


def run_page(title: str, *, key: str, tiles: Sequence[tuple[str, str]]) -> RunPage | None:
    """Draw a run page's header: title, run picker, metric tiles (None: nothing to show)."""
    ctx = context()
    if ctx is None:
        return None
    st.title(title)
    rel = pick_run(ctx, key=key)
    if rel is None:
        return None
    metrics = data.table(ctx.root, rel, "metrics", ("metric", "value"))
    metric_tiles(metrics, tiles)
    return RunPage(ctx, rel, metrics)
