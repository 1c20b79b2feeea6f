"""Learning: the federated forecaster's rounds, clients' own privacy, attacks and accuracy."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import charts, data, queries, shapes, ui

ROUND_COLS = ("round", "status", "loss", "brier", "epsilon")
NO_FORECASTER = " (the federated forecaster is off in this run: forecaster.enabled = false)"
CLIENT_COLS = ("client", "rounds", "epsilon", "withdrawn_at", "exhausted_at")


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


def privacy_holds_against(ctx: ui.Context, rel: str) -> None:
    """Say whom the run's epsilons hold against (``fl_rounds.epsilon_against``)."""
    table = data.table(ctx.root, rel, "fl_rounds", ("epsilon_against",))
    if table is None or "epsilon_against" not in table.columns or table.is_empty():
        return
    against = table["epsilon_against"][0]
    if against == "nobody":
        st.caption("No differential privacy in this run: no epsilon holds against anyone.")
        return
    st.caption(
        f"The run's epsilon, amplified by sampling, holds against **{against}** "
        "(amplification hides nothing from the coordinator, which knows who took part; with "
        "server-side noise it also sees the exact sum). Each client's own epsilon below is "
        "unamplified, over the rounds it took part in."
    )


def clients(ctx: ui.Context, rel: str, metrics: pl.DataFrame | None) -> None:
    """Each client's own epsilon over rounds, and who withdrew or ran out of budget when."""
    history = data.table(ctx.root, rel, "fl_client_epsilon", ("client", "round", "epsilon"))
    roster = data.table(ctx.root, rel, "fl_clients", CLIENT_COLS)
    if not ui.have(roster, "fl_clients", ("client",), NO_FORECASTER):
        return
    assert roster is not None
    withdrawn = queries.metric_value(metrics, "fl.clients_withdrawn")
    exhausted = queries.metric_value(metrics, "fl.clients_exhausted")
    remembered = queries.fmt(queries.metric_value(metrics, "fl.withdrawn_mia_auc"))
    left = (
        f"{queries.fmt(withdrawn)} withdrew consent"
        if queries.is_number(withdrawn)
        else "no withdrawals in this run's settings"
    )
    spent = (
        f"{queries.fmt(exhausted)} spent their budget"
        if queries.is_number(exhausted)
        else "no per-client budget"
    )
    st.caption(
        f"{roster.height} clients; {left}, {spent}. "
        f"Withdrawal is not erasure: the membership attack on the final model against the "
        f"withdrawn clients' records alone has AUC {remembered} (0.5: nothing remembered; "
        "none when nobody withdrew). Each client's epsilon counts only the rounds it took "
        "part in, unamplified (an individual privacy filter)."
    )
    if history is None or "epsilon" not in history.columns:
        st.info("This run has no `fl_client_epsilon` table.", icon=":material/info:")
        return
    lines = shapes.client_epsilon(history, roster)
    events = shapes.consent_events(roster)
    if lines["epsilon"].is_null().all() and events.is_empty():
        st.info("No client epsilon to draw: without DP every round costs an infinite epsilon.")
        return
    ui.chart(charts.client_epsilon(lines, events))


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
            ("Max client epsilon", "fl.client_epsilon_max"),
            ("MIA advantage", "fl.mia_advantage"),
            ("MIA advantage bound", "fl.mia_advantage_bound"),
            ("Reconstruction rate", "fl.reconstruction_rate"),
        ],
    )
    if page is None:
        return
    ctx, rel, metrics = page.ctx, page.rel, page.metrics
    st.subheader("Rounds")
    privacy_holds_against(ctx, rel)
    rounds(ctx, rel)
    st.subheader("Clients: their own epsilon and consent")
    clients(ctx, rel, metrics)
    st.subheader("Attacks and accuracy")
    attacks(ctx, rel, metrics)


main()
