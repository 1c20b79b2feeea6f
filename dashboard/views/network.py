"""Network: the topology with node roles and spies, and message counts by kind."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import charts, data, shapes, ui

MESSAGE_COLS = ("kind", "sent", "delivered", "lost")


def topology(ctx: ui.Context, rel: str) -> None:
    """The graph drawn from a deterministic layout of the run's own edges."""
    nodes = data.table(ctx.root, rel, "nodes", ("node", "roles", "degree", "spy"))
    edges = data.table(ctx.root, rel, "edges", ("src", "dst", "latency_s"))
    if not (ui.have(nodes, "nodes", ("node",)) and ui.have(edges, "edges", ("src", "dst"))):
        return
    assert nodes is not None and edges is not None
    positions = data.positions(ctx.root, rel)
    if positions is None:
        st.info("The topology of this run cannot be laid out.")
        return
    points = shapes.node_points(nodes, positions)
    spies = points.filter(pl.col("spy")).height
    st.caption(
        f"{nodes.height} nodes, {edges.height} links, {spies} spies (black diamonds). "
        "Colour: the roles a node plays; relays only forward messages."
    )
    ui.chart(charts.topology(shapes.edge_segments(edges, positions), points))
    if spies == 0:
        st.info("This run has no spy nodes: nothing observes the network on the adversary's side.")


def messages(ctx: ui.Context, rel: str) -> None:
    """Messages sent per kind (delivered and lost) and the bytes they carried."""
    table = data.table(ctx.root, rel, "messages", (*MESSAGE_COLS, "bytes"))
    if not ui.have(table, "messages", MESSAGE_COLS):
        return
    assert table is not None
    ui.chart(charts.message_bars(shapes.message_counts(table)))
    if "bytes" in table.columns:
        totals = table.group_by("kind").agg(pl.col("sent", "lost", "bytes").sum()).sort("kind")
        st.dataframe(totals, hide_index=True, width="stretch")


def main() -> None:
    """Lay out the page."""
    page = ui.run_page(
        "Network",
        key="network_run",
        tiles=[
            ("Messages", "perf.messages"),
            ("Messages / order", "cost.messages_per_order"),
            ("Propagation delay (s)", "privacy.propagation_delay_s"),
            ("Order latency (s)", "cost.order_latency_s"),
        ],
    )
    if page is None:
        return
    ctx, rel = page.ctx, page.rel
    st.subheader("Topology")
    topology(ctx, rel)
    st.subheader("Messages by kind")
    messages(ctx, rel)


main()
