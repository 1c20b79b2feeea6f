"""Runs: every run in the results folder, filters, and the selected run at a glance."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import charts, data, queries, shapes, ui
from dashboard.catalog import ManifestError
from dashboard.paths import UnsafePathError

STATUSES = ("complete", "failed", "incomplete", "invalid")


def filters(runs: pl.DataFrame) -> pl.DataFrame:
    """Scenario, sweep key and value filters; returns the matching runs."""
    c1, c2, c3 = st.columns(3)
    scenarios = c1.multiselect("Scenario", runs["scenario"].unique().sort().to_list())
    scoped = queries.filter_runs(runs, scenarios=scenarios)
    pairs = queries.sweep_pairs(scoped)
    keys = pairs["key"].unique().sort().to_list()
    key = c2.selectbox("Sweep key", keys, index=None, placeholder="any")
    values: list[str] = []
    if key is not None:
        values = pairs.filter(pl.col("key") == key)["value"].unique().sort().to_list()
    value = c3.selectbox("Value", values, index=None, placeholder="any", disabled=key is None)
    return queries.filter_runs(scoped, key=key, value=value)


def run_table(runs: pl.DataFrame) -> None:
    """The runs with their status; failed and incomplete runs are listed, never loaded."""
    shown = runs.select(
        "status",
        "scenario",
        "setting",
        "replication",
        "error",
        "run_id",
        "created",
        "wall_s",
        "events",
    )
    st.dataframe(shown, hide_index=True, width="stretch")


def use_runs(paths: list[str]) -> None:
    """Button callback: put the filtered complete runs in view (runs before widgets redraw)."""
    st.session_state[ui.SELECTION_KEY] = paths


def run_detail(ctx: ui.Context, rel: str) -> None:
    """Metrics, price paths and (on demand) the resolved scenario of one run."""
    metrics = data.table(ctx.root, rel, "metrics", ("metric", "value"))
    left, right = st.columns([2, 3])
    with left:
        st.markdown("**Metrics** (n/a: does not apply to this run)")
        if ui.have(metrics, "metrics", ("metric", "value")):
            assert metrics is not None
            st.dataframe(
                queries.metric_table(metrics).select("metric", pl.col("shown").alias("value")),
                hide_index=True,
                width="stretch",
                height=420,
            )
    with right:
        st.markdown("**Price paths** (dashed: true probability)")
        prices = data.table(
            ctx.root, rel, "prices", ("t", "market", "outcome", "price", "true_prob")
        )
        if ui.have(prices, "prices", ("t", "market", "outcome", "price", "true_prob")):
            assert prices is not None
            markets = prices["market"].unique().sort().to_list()
            market = st.selectbox("Market", markets, key="runs_market")
            ui.chart(charts.price_paths(shapes.market_prices(prices, market)))
    if st.toggle("Show the resolved scenario", key="runs_show_scenario"):
        try:
            st.json(data.manifest(ctx.root, rel).get("scenario", {}), expanded=2)
        except (UnsafePathError, ManifestError) as exc:
            st.error(str(exc))


def newest_sweep(paths: list[str]) -> None:
    """Button callback: put the newest scenario's complete runs in view."""
    st.session_state[ui.SELECTION_KEY] = paths
    st.session_state["runs_go_frontier"] = True


def orient(ctx: ui.Context) -> None:
    """The first screen: what the folder holds, and the way to the newest sweep's frontier."""
    table = queries.overview(ctx.runs)
    st.dataframe(table, hide_index=True, width="stretch", key="runs_overview")
    newest = queries.default_selection(ctx.runs)
    if newest:
        scenario = ctx.runs.filter(pl.col("path") == newest[0])["scenario"].item()
        st.button(
            f"Open the privacy–cost frontier of the newest sweep: {scenario}",
            on_click=newest_sweep,
            args=(newest,),
            icon=":material/scatter_plot:",
            type="primary",
        )
    if st.session_state.pop("runs_go_frontier", False):
        st.switch_page("views/privacy.py")


def main() -> None:
    """Lay out the page."""
    ctx = ui.context()
    if ctx is None:
        return
    st.title("Runs")
    if ctx.runs.is_empty():
        st.info(f"No runs in `{ctx.root}` yet. Run one: `veilcast run scenarios/quickstart.toml`.")
        return
    counts = dict(ctx.runs.group_by("status").len().iter_rows())
    st.caption(" · ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES))
    orient(ctx)
    st.subheader("Every run")
    matching = filters(ctx.runs)
    run_table(matching)
    complete = matching.filter(pl.col("loadable"))["path"].to_list()
    st.button(
        f"Put these {len(complete)} complete runs in view",
        on_click=use_runs,
        args=(complete,),
        disabled=not complete,
    )
    bad = matching.filter(pl.col("status") != "complete")
    if not bad.is_empty():
        lines = [
            f"- `{row['path']}` ({row['status']}): {row['error'] or 'no error recorded'}"
            for row in bad.iter_rows(named=True)
        ]
        st.warning(
            f"{bad.height} run(s) are failed or incomplete: they are listed but not loaded.\n"
            + "\n".join(lines),
            icon=":material/warning:",
        )
    st.subheader("Selected run")
    rel = ui.pick_run(ctx, key="runs_run")
    if rel is not None:
        run_detail(ctx, rel)


main()
