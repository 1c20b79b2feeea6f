"""Learning: the federated forecaster's rounds, privacy attacks and accuracy."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import charts, data, queries, shapes, ui

ROUND_COLS = ("round", "status", "loss", "brier", "epsilon")
NO_FORECASTER = " (the federated forecaster is off in this run: forecaster.enabled = false)"


def rounds(ctx: ui.Context, rel: str) -> None:
    """Loss, Brier and epsilon per round; aborted rounds counted and marked."""
    table = data.table(ctx.root, rel, "fl_rounds", ROUND_COLS)
    if not ui.have(table, "fl_rounds", ("round",), NO_FORECASTER):
        return
    assert table is not None
    long = shapes.fl_long(table)
    if long.is_empty():
        st.info("The `fl_rounds` table has no loss, Brier or epsilon column.")
        return
    aborted = table.filter(pl.col("status") == "aborted").height if "status" in table.columns else 0
    st.caption(f"{table.height} rounds, {aborted} aborted (hollow red).")
    ui.chart(charts.fl_rounds(long))


def attacks(ctx: ui.Context, rel: str, metrics: pl.DataFrame | None) -> None:
    """Membership inference ROC (when recorded) next to the Brier comparison."""
    left, right = st.columns(2)
    with left:
        st.markdown("**Membership inference ROC**")
        roc = data.table(ctx.root, rel, "fl_roc", ("fpr", "tpr"))
        if ui.have(roc, "fl_roc", ("fpr", "tpr"), " (no ROC points were recorded)"):
            assert roc is not None
            auc = queries.fmt(queries.metric_value(metrics, "fl.mia_auc"))
            advantage = queries.fmt(queries.metric_value(metrics, "fl.mia_advantage"))
            bound = queries.fmt(queries.metric_value(metrics, "fl.mia_advantage_bound"))
            st.caption(
                f"AUC {auc}; the dashed diagonal is guessing. Measured advantage {advantage} "
                "(single records, training set against fresh records); the DP bound "
                f"{bound} holds for any membership test, over a whole client's data and so "
                "over any one record (none without DP)."
            )
            ui.chart(charts.roc_curve(shapes.roc_points(roc)))
    with right:
        st.markdown("**Federated vs centralized vs market (Brier)**")
        brier = shapes.brier_sources(metrics) if metrics is not None else None
        if brier is None or brier.is_empty():
            st.info("No Brier score of a forecaster is recorded for this run.")
        else:
            ui.chart(charts.brier_bars(brier))


def main() -> None:
    """Lay out the page."""
    page = ui.run_page(
        "Learning",
        key="learning_run",
        tiles=[
            ("Model Brier", "fl.model_brier"),
            ("DP epsilon", "fl.dp_epsilon"),
            ("MIA advantage", "fl.mia_advantage"),
            ("MIA advantage bound", "fl.mia_advantage_bound"),
            ("Reconstruction rate", "fl.reconstruction_rate"),
        ],
    )
    if page is None:
        return
    ctx, rel, metrics = page.ctx, page.rel, page.metrics
    st.subheader("Rounds")
    rounds(ctx, rel)
    st.subheader("Attacks and accuracy")
    attacks(ctx, rel, metrics)


main()
