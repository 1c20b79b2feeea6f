"""Settlement: per market (``settlement``), rounds and steps (``settlement_steps``),
certificates, equivocation evidence and slashing, bonds."""

from __future__ import annotations

import polars as pl
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
ROUND_COLS = (
    "market",
    "round",
    "step",
    "leader",
    "proposed",
    "prevotes",
    "nil_prevotes",
    "votes",
    "nil_precommits",
    "rejected_votes",
    "equivocations",
    "finalized",
    "outcome",
    "certificate_size",
    "t_start",
    "t_final",
)
"""What the rounds table shows, of what the run has (older runs lack the Tendermint steps)."""


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
            ("Conflicting certificates", "settlement.conflicting_certificates"),
            ("Equivocations detected", "settlement.equivocations_detected"),
            ("Slashed", "settlement.slashed"),
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
    st.subheader("Rounds and steps")
    steps = data.table(ctx.root, rel, "settlement_steps", ROUND_COLS)
    if ui.have(steps, "settlement_steps", STEP_COLS):
        assert steps is not None
        votes = shapes.step_votes_long(steps)
        if votes.is_empty():
            st.info("No votes were recorded in this run.")
        else:
            st.caption(
                "Bars: prevotes and precommits for each value (nil: for no value) in each round "
                "of Tendermint consensus (one column per market). A round with a quorum of "
                "precommits for one value made a certificate."
            )
            ui.chart(charts.step_votes_by_round(votes))
        st.caption(
            "Each round: its proposer (`leader`) and what it `proposed`, votes cast per outcome "
            "(JSON), rejected messages, equivocation evidence the chain took, and the "
            "certificate (`certificate_size` precommits) where the round made the market final."
        )
        st.dataframe(steps.drop("path", strict=False), hide_index=True, width="stretch")
        certs = steps.filter(steps["finalized"]) if "finalized" in steps.columns else steps[:0]
        st.subheader("Certificates on chain")
        if certs.is_empty():
            st.info("No certificate made a market final in this run.")
        else:
            keep = [c for c in ("market", "round", "outcome", "certificate_size", "t_final")
                    if c in certs.columns]  # fmt: skip
            st.dataframe(certs.select(keep), hide_index=True, width="stretch")
    st.subheader("Equivocation evidence and slashing")
    evidence = int(steps["equivocations"].sum()) if _has(steps, "equivocations") else 0
    if evidence == 0:
        st.info(
            "No reporter was caught signing two values in one step (no evidence on chain, "
            "nothing slashed)."
        )
    else:
        st.caption(
            "Evidence: two valid signatures of one reporter on different values of one "
            "(market, round, step). The chain takes each piece once and slashes the signer's "
            "whole endowment at its first (see the tiles above)."
        )
        assert steps is not None
        caught = steps.filter(steps["equivocations"] > 0).select("market", "round", "equivocations")
        st.dataframe(caught, hide_index=True, width="stretch")
    st.subheader("Disputes and bonds")
    if table["disputes"].sum() == 0 and (table["bonds_moved"].fill_null(0) == 0).all():
        st.info("No dispute was raised and no bond moved in this run.")
    else:
        ui.chart(charts.bonds_by_market(table))


def _has(frame: pl.DataFrame | None, column: str) -> bool:
    return frame is not None and column in frame.columns


main()
