"""Settlement: per market, votes over rounds, disputes, finality and bonds."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data, shapes, ui

SETTLEMENT_COLS = (
    "market",
    "round",
    "protocol",
    "outcome",
    "true_outcome",
    "votes",
    "rejected_votes",
    "disputes",
    "bonds_moved",
    "t_final",
    "finalized",
    "correct",
)


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
    table = data.table(ctx.root, rel, "settlement", SETTLEMENT_COLS)
    if not ui.have(table, "settlement", SETTLEMENT_COLS, " (no market was settled)"):
        return
    assert table is not None
    summary = shapes.settlement_summary(table)
    st.subheader("Finality per market")
    st.dataframe(summary, hide_index=True, width="stretch")
    st.subheader("Votes per round")
    votes = shapes.votes_long(table)
    if votes.is_empty():
        st.info("No votes were recorded in this run.")
    else:
        st.caption("Bars: votes for each outcome in each round (one panel per market).")
        ui.chart(charts.votes_by_round(votes))
    st.subheader("Disputes and bonds")
    if summary["disputes"].sum() == 0 and (summary["bonds_moved"].fill_null(0) == 0).all():
        st.info("No dispute was raised and no bond moved in this run.")
    else:
        ui.chart(charts.bonds_by_market(summary))


main()
