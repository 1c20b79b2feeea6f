"""Privacy: the privacy–cost frontier, harm, leakage and cost by question, order exposure."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import charts, data, glossary, queries, shapes, ui

EXPOSURE_COLS = ("order_id", "kind", "t_submit", "t_first_seen", "t_executed")
EXPOSURE_LIMIT = 150


def harm_tiles(summary: pl.DataFrame) -> None:
    """MEV and victim loss first, per setting, when a front-runner ran: the harm private order
    flow exists to prevent."""
    rows = summary.filter(pl.col("metric").is_in(["mev.extracted", "mev.victim_loss"]))
    if rows.is_empty() or rows["n"].max() == 0:  # type: ignore[operator]
        st.caption("No front-runner in these runs: MEV and victim loss do not apply (n/a).")
        return
    st.markdown("**Harm: what the front-runner took** (mean [95% CI] over replications)")
    st.dataframe(queries.summary_grid(rows), hide_index=True, width="stretch")


def leakage(summary: pl.DataFrame, runs: pl.DataFrame) -> None:
    """Small multiples with intervals, grouped by question, each metric explained in a line."""
    names = queries.leakage_metrics(summary["metric"].unique().to_list())
    present = summary.filter(pl.col("n") > 0)["metric"].unique().to_list()
    by_question: dict[str, list[str]] = {}
    for metric in [*names, *sorted(m for m in present if m.startswith("cost."))]:
        question = glossary.question_of(metric)
        if question is not None and metric in present:
            by_question.setdefault(question, []).append(metric)
    if not by_question:
        st.info("These runs report no privacy, MEV or cost metric.")
        return
    for question in glossary.QUESTIONS:
        shown = by_question.get(question)
        if not shown:
            continue
        st.markdown(f"**{question}**")
        ui.chart(charts.interval_bars(summary.filter(pl.col("metric").is_in(shown)), runs))
        st.caption("  \n".join(f"`{m}`: {glossary.meaning(m) or 'see SPEC §4'}" for m in shown))
    skipped = [m for m in names if m not in present]
    if skipped:
        st.caption("Not applicable to these runs (n/a): " + ", ".join(f"`{m}`" for m in skipped))
    with st.expander("Numbers: mean [95% CI] over replications", expanded=False):
        rows = summary.filter(pl.col("metric").is_in(names))
        st.dataframe(queries.summary_grid(rows, metrics=names), hide_index=True, width="stretch")


def trade_off(summary: pl.DataFrame, runs: pl.DataFrame, *, key: str = "privacy") -> None:
    """The privacy–cost frontier: one point per setting, axes among the metrics present."""
    present = set(summary.filter(pl.col("n") > 0)["metric"].to_list())
    xs = sorted(m for m in present if m.startswith("cost."))
    ys = queries.leakage_metrics(present)
    if not xs or not ys:
        st.info("A frontier needs a cost metric and a leakage or harm metric.")
        return
    left, right = st.columns(2)
    x = left.selectbox("Cost (x)", xs, key=f"{key}_x")
    y = right.selectbox("Leakage or harm (y)", ys, key=f"{key}_y")
    better = "higher" if y in glossary.HIGHER_IS_BETTER else "lower"
    frame = charts.frontier_frame(
        summary, runs, x_metric=x, y_metric=y, y_higher_is_better=better == "higher"
    )
    st.caption(
        f"One point per setting; lines are 95% intervals over replications; the dashed line "
        f"joins the Pareto-optimal settings (lower cost, {better} `{y}`). Hover for the numbers."
    )
    ui.chart(charts.frontier(frame, x_metric=x, y_metric=y))


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
    st.subheader("Privacy–cost frontier")
    trade_off(summary, runs)
    harm_tiles(summary)
    st.subheader("By question")
    leakage(summary, runs)
    st.subheader("Exposure of orders")
    exposure(ctx, runs)


main()
