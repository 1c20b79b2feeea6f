"""Privacy: leakage side by side per setting, the privacy-utility trade-off, order exposure."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import charts, data, queries, shapes, ui

EXPOSURE_COLS = ("order_id", "kind", "t_submit", "t_first_seen", "t_executed")
EXPOSURE_LIMIT = 150


def leakage(summary: pl.DataFrame) -> None:
    """Leakage metrics per setting: small multiples with intervals, and the numbers."""
    names = queries.leakage_metrics(summary["metric"].unique().to_list())
    if not names:
        st.info("These runs report no privacy or MEV metric.")
        return
    rows = summary.filter(pl.col("metric").is_in(names))
    drawable = rows.group_by("metric").agg(pl.col("n").max()).filter(pl.col("n") > 0)
    shown = [m for m in names if m in drawable["metric"].to_list()]
    if shown:
        ui.chart(charts.interval_bars(rows.filter(pl.col("metric").is_in(shown))))
    skipped = [m for m in names if m not in shown]
    if skipped:
        st.caption("Not applicable to these runs (n/a): " + ", ".join(f"`{m}`" for m in skipped))
    with st.expander("Numbers: mean [95% CI] over replications", expanded=False):
        st.dataframe(queries.summary_grid(rows, metrics=names), hide_index=True, width="stretch")


def trade_off(summary: pl.DataFrame) -> None:
    """Privacy-utility chart: one point per setting, axes chosen among the present metrics."""
    present = set(summary.filter(pl.col("n") > 0)["metric"].to_list())
    xs = [m for m in queries.UTILITY_METRICS if m in present]
    ys = queries.leakage_metrics(present)
    if not xs or not ys:
        st.info("A privacy-utility chart needs a utility metric and a leakage metric.")
        return
    left, right = st.columns(2)
    x = left.selectbox("Utility / cost (x)", xs, key="privacy_x")
    y = right.selectbox("Leakage (y)", ys, key="privacy_y")
    st.caption("One point per setting; lines are 95% intervals over replications.")
    ui.chart(charts.privacy_utility(summary, x_metric=x, y_metric=y))


def _exposed(ctx: ui.Context, rel: str) -> pl.DataFrame | None:
    """Exposed orders of one run, or None when its orders table is absent or incomplete."""
    orders = data.table(ctx.root, rel, "orders", EXPOSURE_COLS)
    if orders is None or queries.missing_columns(orders, EXPOSURE_COLS):
        return None
    return shapes.exposure_rows(orders, limit=EXPOSURE_LIMIT)


def exposure(ctx: ui.Context, runs: pl.DataFrame) -> None:
    """When observers first saw orders in plaintext, until they executed: one chart per setting.

    The first replication of each setting is shown; settings of one replication share the
    simulated world, so the same orders appear in every chart and only their exposure differs.
    """
    relative = st.toggle("Align orders at their submission", value=True, key="privacy_relative")
    firsts = runs.sort("replication", nulls_last=True).group_by("group", maintain_order=True)
    quiet: list[str] = []
    for rel, group in firsts.first().select("path", "group").iter_rows():
        rows = _exposed(ctx, rel)
        if rows is None or rows.is_empty():
            quiet.append(group if rows is not None else f"{group} (no usable `orders` table)")
            continue
        st.markdown(
            f"**{group}**: {rows.height} exposed orders shown, median exposure "
            f"{queries.fmt(rows['exposure_s'].median())} s"
        )
        ui.chart(charts.exposure_timeline(rows, relative=relative))
    st.caption(
        "Grey: submission to execution. Coloured: first plaintext sighting by another node to "
        f"execution, the window a front-runner can use (first {EXPOSURE_LIMIT} per setting)."
    )
    if quiet:
        st.info(
            "No order was seen in plaintext by another node before it executed under: "
            + ", ".join(quiet),
            icon=":material/shield:",
        )


def main() -> None:
    """Lay out the page."""
    ctx = ui.context()
    if ctx is None:
        return
    st.title("Privacy")
    runs = ctx.selected_runs()
    if runs.is_empty():
        st.info("No complete run is in view. Choose runs in the sidebar.")
        return
    metrics = data.tables(ctx.root, runs["path"].to_list(), "metrics", ("metric", "value"))
    if not ui.have(metrics, "metrics", ("metric", "value", "path")):
        return
    assert metrics is not None
    summary = queries.summarize(metrics, runs.select("path", "group"))
    groups = runs["group"].n_unique()
    st.caption(
        f"{runs.height} runs in {groups} setting(s); intervals are Student-t 95% over "
        "replications (n/a with fewer than two)."
    )
    st.subheader("Leakage by setting")
    leakage(summary)
    st.subheader("Privacy vs utility")
    trade_off(summary)
    st.subheader("Exposure of orders")
    exposure(ctx, runs)


main()
