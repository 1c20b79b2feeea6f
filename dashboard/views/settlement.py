"""Settlement: per market (``settlement``), votes over rounds (``settlement_steps``), bonds."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data, shapes, ui

MARKET_COLS = (
    "market",
    "protocol",
    "finalized",
    "outcome",
    "true_outcome",
    "correct",
    "t_final",
    "rounds",
    "disputes",
    "rejected_votes",
    "bonds_moved",
    "bond_slashed",
)
STEP_COLS = ("market", "round", "votes")


def main() -> None:
    """Lay out the page."""
    page = ui.run_page(
        "Settlement",
        key="settlement_run",
        tiles=[
            ("Correct", "settlement.correct_fraction"),
            ("Finalized", "settlement.finalized_fraction"),
            ("Latency (s)", "settlement.latency_s"),
            ("Messages", "settlement.messages"),
        ],
    )
    if page is None:
        return
    ctx, rel = page.ctx, page.rel
    table = data.table(ctx.root, rel, "settlement", MARKET_COLS)
    if not ui.have(table, "settlement", MARKET_COLS, " (no market was settled)"):
        return
    assert table is not None
    st.subheader("Finality per market")
    st.caption("`outcome` is what the chain paid out; `rounds` counts voting rounds or requests.")
    st.dataframe(table.drop("path", strict=False), hide_index=True, width="stretch")
    st.subheader("Votes per round")
    steps = data.table(ctx.root, rel, "settlement_steps", STEP_COLS)
    if ui.have(steps, "settlement_steps", STEP_COLS):
        assert steps is not None
        votes = shapes.votes_long(steps)
        if votes.is_empty():
            st.info("No votes were recorded in this run.")
        else:
            st.caption("Bars: votes for each outcome in each round (one panel per market).")
            ui.chart(charts.votes_by_round(votes))
    st.subheader("Disputes and bonds")
    if table["disputes"].sum() == 0 and (table["bonds_moved"].fill_null(0) == 0).all():
        st.info("No dispute was raised and no bond moved in this run.")
    else:
        ui.chart(charts.bonds_by_market(table))


main()
