"""Market: prices against the truth, beliefs and the pooled posterior; fills, volumes, profit."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import charts, data, queries, shapes, ui

PRICE_COLS = ("t", "market", "outcome", "price", "true_prob")
ORDER_COLS = (
    "order_id",
    "trader",
    "kind",
    "market",
    "outcome",
    "shares",
    "status",
    "t_executed",
    "price",
    "frontrun",
)
TRADER_COLS = ("trader", "kind", "pnl")
MARKET_COLS = ("market", "outcome", "posterior")
WEALTH_COLS = ("t", "trader", "wealth")
BELIEF_COLS = ("trader", "market", "outcome", "belief")


def aggregation(ctx: ui.Context, rel: str, market: int) -> None:
    """The price beside informed traders' wealth-weighted belief and the pooled posterior."""
    prices = data.table(ctx.root, rel, "prices", PRICE_COLS)
    markets = data.table(ctx.root, rel, "markets", MARKET_COLS)
    wealth = data.table(ctx.root, rel, "wealth", WEALTH_COLS)
    beliefs = data.table(ctx.root, rel, "beliefs", BELIEF_COLS)
    wanted = [("markets", markets, MARKET_COLS), ("wealth", wealth, WEALTH_COLS)]
    wanted.append(("beliefs", beliefs, BELIEF_COLS))
    if prices is None or not all(ui.have(frame, name, cols) for name, frame, cols in wanted):
        return
    assert markets is not None and wealth is not None and beliefs is not None
    st.caption(
        "Solid: price per outcome. Dashed: informed traders' beliefs weighted by their wealth "
        "at that moment. Dotted: the full-information posterior (every trader's draws pooled)."
    )
    ui.chart(
        charts.aggregation_paths(shapes.aggregation_lines(prices, markets, wealth, beliefs, market))
    )


def prices_and_fills(ctx: ui.Context, rel: str) -> int | None:
    """Price paths of one market with the run's fills on top; the market chosen, if any."""
    prices = data.table(ctx.root, rel, "prices", PRICE_COLS)
    if not ui.have(prices, "prices", PRICE_COLS):
        return None
    assert prices is not None
    markets = prices["market"].unique().sort().to_list()
    market = st.segmented_control("Market", markets, default=markets[0], key="market_market")
    market = markets[0] if market is None else market
    orders = data.table(ctx.root, rel, "orders", ORDER_COLS)
    fills = None
    # ``frontrun`` is optional: without it no order is highlighted.
    if orders is not None and not queries.missing_columns(orders, ORDER_COLS[:-1]):
        fills = shapes.executed_fills(orders, market)
    st.caption(
        "Solid: price per outcome. Dashed: its true probability. Dots: executed orders by "
        "trader kind (shape: side). Red rings: front-run orders."
    )
    ui.chart(charts.price_paths(shapes.market_prices(prices, market), fills))
    if fills is None:
        st.info("This run has no usable `orders` table: fills are not shown.")
    elif fills.is_empty():
        st.info("No order executed in this market.")
    else:
        st.markdown("**Volume** (shares traded in this market)")
        ui.chart(charts.volume_bars(fills))
        frontrun = fills.filter(pl.col("frontrun")).height
        st.caption(f"{fills.height} fills, {frontrun} front-run.")
    return int(market)


def trader_profit(ctx: ui.Context, rel: str) -> None:
    """Profit of every trader, by kind, with a summary table."""
    traders = data.table(ctx.root, rel, "traders", TRADER_COLS)
    if not ui.have(traders, "traders", TRADER_COLS):
        return
    assert traders is not None
    left, right = st.columns(2)
    with left:
        ui.chart(charts.pnl_by_kind(traders))
    with right:
        st.dataframe(shapes.pnl_by_kind(traders), hide_index=True, width="stretch")


def main() -> None:
    """Lay out the page."""
    page = ui.run_page(
        "Market",
        key="market_run",
        tiles=[
            ("Brier score", "market.brier"),
            ("Abs. error", "market.abs_error"),
            ("Full-info error", "market.full_info_error"),
            ("Aggregation", "market.aggregation_efficiency"),
            ("Maker loss", "market.maker_loss"),
            ("Loss bound", "market.maker_loss_bound"),
            ("MEV extracted", "mev.extracted"),
        ],
    )
    if page is None:
        return
    ctx, rel = page.ctx, page.rel
    st.subheader("Prices")
    market = prices_and_fills(ctx, rel)
    if market is not None:
        st.subheader("Does the price aggregate what traders know?")
        aggregation(ctx, rel, market)
    st.subheader("Trader profit by kind")
    trader_profit(ctx, rel)


main()
