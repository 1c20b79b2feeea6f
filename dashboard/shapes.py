"""Pure reshaping of run tables into what the charts draw (one section per page).

Like ``queries``, nothing here knows Streamlit or files. Float NaN (not applicable) becomes null
before charting because Vega-Lite cannot read NaN from JSON; null marks are simply not drawn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import networkx as nx
import polars as pl

# The layout must not move between reruns or machines: a fixed seed for spring_layout.
LAYOUT_SEED = 7
BRIER_SOURCES = {
    "fl.model_brier": "federated model",
    "fl.centralized_brier": "centralized model",
    "fl.market_brier": "federated model on the live markets",
}


def nan_to_null(frame: pl.DataFrame) -> pl.DataFrame:
    """Float NaN replaced by null: charts and JSON then see "missing", not an invalid number."""
    floats = [name for name, dtype in frame.schema.items() if dtype.is_float()]
    return frame.with_columns(pl.col(floats).fill_nan(None)) if floats else frame


# --- Market -----------------------------------------------------------------------------------


def market_prices(prices: pl.DataFrame, market: int) -> pl.DataFrame:
    """Price and true probability of every outcome of one market over time."""
    return nan_to_null(
        prices.filter(pl.col("market") == market)
        .select("t", pl.col("outcome").cast(pl.String), "price", "true_prob")
        .sort("outcome", "t")
    )


PRICE_SERIES = "price"
BELIEF_SERIES = "wealth-weighted belief"
POSTERIOR_SERIES = "full-information posterior"


def aggregation_lines(
    prices: pl.DataFrame,
    markets: pl.DataFrame,
    wealth: pl.DataFrame,
    beliefs: pl.DataFrame,
    market: int,
) -> pl.DataFrame:
    """One market's price, informed traders' wealth-weighted mean belief, and the posterior.

    Long form ``t, outcome, series, value``: the price after each block; at every time of the
    ``wealth`` table, Σ wealth·belief / Σ wealth over informed traders (their own beliefs,
    weighted by their wealth at that moment); and the full-information posterior as a flat line
    over the run.
    """
    price = prices.filter(pl.col("market") == market).select(
        "t", "outcome", pl.lit(PRICE_SERIES).alias("series"), pl.col("price").alias("value")
    )
    weighted = (
        wealth.join(beliefs.filter(pl.col("market") == market), on="trader")
        .group_by("t", "outcome")
        .agg(((pl.col("wealth") * pl.col("belief")).sum() / pl.col("wealth").sum()).alias("value"))
        .select("t", "outcome", pl.lit(BELIEF_SERIES).alias("series"), "value")
    )
    end = max(price["t"].max() or 0.0, weighted["t"].max() or 0.0)
    posterior = (
        markets.filter(pl.col("market") == market)
        .join(pl.DataFrame({"t": [0.0, end]}), how="cross")
        .select(
            "t",
            "outcome",
            pl.lit(POSTERIOR_SERIES).alias("series"),
            pl.col("posterior").alias("value"),
        )
    )
    frames = [price, weighted, posterior]
    long = pl.concat([f.with_columns(pl.col("outcome").cast(pl.String)) for f in frames])
    return nan_to_null(long.sort("series", "outcome", "t"))


def executed_fills(orders: pl.DataFrame, market: int | None = None) -> pl.DataFrame:
    """Executed orders with their time, average price, side and traded volume.

    Columns: ``t, price, kind, side, volume, frontrun, outcome, market, trader, order_id``.
    """
    fills = orders.filter(
        (pl.col("status") == "executed")
        & pl.col("t_executed").is_not_null()
        & pl.col("price").is_not_null()
    )
    if market is not None:
        fills = fills.filter(pl.col("market") == market)
    frontrun = pl.col("frontrun") if "frontrun" in orders.columns else pl.lit(False)
    return nan_to_null(
        fills.select(
            t=pl.col("t_executed"),
            price=pl.col("price"),
            kind=pl.col("kind"),
            side=pl.when(pl.col("shares") < 0).then(pl.lit("sell")).otherwise(pl.lit("buy")),
            volume=pl.col("shares").abs(),
            frontrun=frontrun.fill_null(False),
            outcome=pl.col("outcome").cast(pl.String),
            market=pl.col("market"),
            trader=pl.col("trader"),
            order_id=pl.col("order_id"),
        ).sort("t")
    )


def pnl_by_kind(traders: pl.DataFrame) -> pl.DataFrame:
    """Profit per trader kind: count, mean, total, worst and best trader."""
    pnl = pl.col("pnl").filter(pl.col("pnl").is_finite())
    return nan_to_null(
        traders.group_by("kind")
        .agg(
            traders=pl.len(),
            mean_pnl=pnl.mean(),
            total_pnl=pnl.sum(),
            worst=pnl.min(),
            best=pnl.max(),
        )
        .sort("kind")
    )


# --- Privacy ----------------------------------------------------------------------------------


def exposure_rows(orders: pl.DataFrame, *, limit: int = 300) -> pl.DataFrame:
    """Orders seen in plaintext by another node before they executed, earliest submitted first.

    ``exposure_s = t_executed - t_first_seen`` is how long an observer knew the order before it
    took effect: the window a front-runner can use. Orders never seen, or never executed, are not
    exposed and do not appear.
    """
    seen = orders.filter(pl.col("t_first_seen").is_not_null() & pl.col("t_executed").is_not_null())
    return nan_to_null(
        seen.sort("t_submit", "order_id")
        .head(limit)
        .select(
            "order_id",
            "kind",
            "t_submit",
            "t_first_seen",
            "t_executed",
            exposure_s=pl.col("t_executed") - pl.col("t_first_seen"),
            seen_after_s=pl.col("t_first_seen") - pl.col("t_submit"),
            executed_after_s=pl.col("t_executed") - pl.col("t_submit"),
        )
        .with_row_index("rank", offset=1)
    )


# --- Network ----------------------------------------------------------------------------------


def layout_positions(
    nodes: Sequence[int], edges: Sequence[tuple[int, int]], *, seed: int = LAYOUT_SEED
) -> pl.DataFrame:
    """Deterministic 2-D positions of the topology (networkx spring layout, fixed seed).

    Nodes and edges are inserted in sorted order so the same graph always gets the same picture.
    """
    graph = nx.Graph()
    graph.add_nodes_from(sorted(nodes))
    graph.add_edges_from(sorted((min(a, b), max(a, b)) for a, b in edges))
    pos = nx.spring_layout(graph, seed=seed) if graph.number_of_nodes() else {}
    rows = [(int(n), float(xy[0]), float(xy[1])) for n, xy in sorted(pos.items())]
    return pl.DataFrame(
        rows, schema={"node": pl.Int64, "x": pl.Float64, "y": pl.Float64}, orient="row"
    )


def edge_segments(edges: pl.DataFrame, positions: pl.DataFrame) -> pl.DataFrame:
    """Each edge as a segment ``x, y → x2, y2`` with its latency."""
    src = positions.rename({"node": "src"})
    dst = positions.rename({"node": "dst", "x": "x2", "y": "y2"})
    latency = ["latency_s"] if "latency_s" in edges.columns else []
    return nan_to_null(
        edges.select("src", "dst", *latency)
        .join(src, on="src", how="inner")
        .join(dst, on="dst", how="inner")
    )


def node_points(nodes: pl.DataFrame, positions: pl.DataFrame) -> pl.DataFrame:
    """Nodes with position, role label (``relay`` when a node has no role) and spy flag."""
    roles = (
        pl.col("roles").fill_null("").replace("", "relay")
        if "roles" in nodes.columns
        else pl.lit("relay")
    )
    spy = pl.col("spy").fill_null(False) if "spy" in nodes.columns else pl.lit(False)
    degree = pl.col("degree") if "degree" in nodes.columns else pl.lit(None, dtype=pl.Int64)
    return nodes.select("node", role=roles, spy=spy, degree=degree).join(
        positions, on="node", how="inner"
    )


def message_counts(messages: pl.DataFrame) -> pl.DataFrame:
    """Delivered and lost messages per kind, long format, busiest kinds first."""
    totals = messages.group_by("kind").agg(pl.col("sent", "delivered", "lost").sum())
    order = totals.sort("sent", "kind", descending=[True, False])["kind"].to_list()
    rank = {k: i for i, k in enumerate(order)}
    return (
        totals.unpivot(index="kind", on=["delivered", "lost"], variable_name="fate")
        .rename({"value": "messages"})
        .with_columns(_rank=pl.col("kind").replace_strict(rank, return_dtype=pl.Int64))
        .sort("_rank", "fate")
        .drop("_rank")
    )


# --- Settlement -------------------------------------------------------------------------------


def _parse_votes(text: str | None) -> list[float]:
    """The per-outcome vote list of one round; a malformed entry counts as no votes (JSON only)."""
    try:
        votes = json.loads(text or "[]")
    except json.JSONDecodeError:
        return []
    if not isinstance(votes, list):
        return []
    return [float(v) for v in votes if isinstance(v, int | float) and not isinstance(v, bool)]


def step_votes_long(steps: pl.DataFrame) -> pl.DataFrame:
    """One row per (market, round, step, value): prevotes and precommits cast, nil included.

    ``votes`` holds the precommits per outcome, ``prevotes`` the prevotes (absent in runs made
    before consensus had steps: those give precommits only); ``nil_*`` the votes for no value.
    """
    cols = set(steps.columns)
    rows = []
    for row in steps.iter_rows(named=True):
        for step, per_outcome, nil in (
            ("prevote", row.get("prevotes"), row.get("nil_prevotes")),
            ("precommit", row.get("votes"), row.get("nil_precommits")),
        ):
            if step == "prevote" and "prevotes" not in cols:
                continue
            counts = _parse_votes(per_outcome) if per_outcome is not None else []
            values = [(str(i), v) for i, v in enumerate(counts)]
            if nil is not None:
                values.append(("nil", float(nil)))
            rows += [
                {"market": row["market"], "round": row["round"], "step": step, "value": value,
                 "votes": votes}
                for value, votes in values
            ]  # fmt: skip
    schema = {
        "market": pl.Int64,
        "round": pl.Int64,
        "step": pl.String,
        "value": pl.String,
        "votes": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


# --- Learning ---------------------------------------------------------------------------------


def fl_long(fl_rounds: pl.DataFrame) -> pl.DataFrame:
    """Loss, Brier and epsilon per round in long format (``round, status, measure, value``)."""
    measures = [m for m in ("loss", "brier", "epsilon") if m in fl_rounds.columns]
    status = ["status"] if "status" in fl_rounds.columns else []
    return nan_to_null(
        fl_rounds.select("round", *status, *measures)
        .unpivot(index=["round", *status], on=measures, variable_name="measure")
        .sort("measure", "round")
    )


def client_epsilon(history: pl.DataFrame, clients: pl.DataFrame | None) -> pl.DataFrame:
    """Each client's own epsilon against rounds run (``client, rounds, epsilon``).

    ``history`` is ``fl_client_epsilon`` (a client's cumulative epsilon after each round it took
    part in): the epsilon after round ``r`` is drawn at ``rounds = r + 1``, and every client of
    ``clients`` (``fl_clients``) starts at 0 before any round. Infinite epsilons (no DP) become
    null: there is nothing to plot.
    """
    rows = history.select(
        pl.col("client").cast(pl.Int64),
        rounds=pl.col("round").cast(pl.Int64) + 1,
        epsilon=pl.col("epsilon").cast(pl.Float64),
    )
    if clients is not None and "client" in clients.columns:
        starts = clients.select(
            pl.col("client").cast(pl.Int64), rounds=pl.lit(0, pl.Int64), epsilon=pl.lit(0.0)
        )
        rows = pl.concat([starts, rows])
    finite = pl.when(pl.col("epsilon").is_infinite()).then(None).otherwise(pl.col("epsilon"))
    return nan_to_null(rows.with_columns(epsilon=finite)).sort("client", "rounds")


def consent_events(clients: pl.DataFrame) -> pl.DataFrame:
    """Who left and when (``client, rounds, event``): withdrawn consent or an exhausted budget.

    ``rounds`` is the rounds run when the client was first out (its ``withdrawn_at`` or
    ``exhausted_at`` round), on the same axis as :func:`client_epsilon`.
    """
    parts = [
        clients.filter(pl.col(column).is_not_null()).select(
            pl.col("client").cast(pl.Int64),
            rounds=pl.col(column).cast(pl.Int64),
            event=pl.lit(event),
        )
        for column, event in (
            ("withdrawn_at", "withdrew consent"),
            ("exhausted_at", "budget spent"),
        )
        if column in clients.columns
    ]
    schema = {"client": pl.Int64, "rounds": pl.Int64, "event": pl.String}
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def brier_sources(metrics: pl.DataFrame) -> pl.DataFrame:
    """Brier score of the federated model, a centralized model and the market, where known."""
    rows = metrics.filter(pl.col("metric").is_in(list(BRIER_SOURCES)))
    return nan_to_null(
        rows.select(
            source=pl.col("metric").replace_strict(BRIER_SOURCES, return_dtype=pl.String),
            brier=pl.col("value").cast(pl.Float64),
        )
    ).filter(pl.col("brier").is_not_null())


def roc_points(roc: pl.DataFrame) -> pl.DataFrame:
    """ROC points sorted by false-positive rate, anchored at (0, 0) and (1, 1)."""
    pts = roc.select(pl.col("fpr").cast(pl.Float64), pl.col("tpr").cast(pl.Float64))
    anchors = pl.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]})
    return pl.concat([anchors, nan_to_null(pts).drop_nulls()]).unique().sort("fpr", "tpr")
