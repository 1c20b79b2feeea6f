"""Pure altair chart builders: frames in, charts out (no Streamlit, no files).

Builders expect frames shaped by ``shapes``/``queries`` (NaN already turned into null, which
Vega-Lite leaves undrawn) and return charts that the pages pass to ``st.altair_chart``.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from dashboard.shapes import nan_to_null
from resultkit import choice

KIND_COLORS = {
    "informed": "#1f77b4",
    "noise": "#9e9e9e",
    "forecaster": "#2ca02c",
    "frontrunner": "#d62728",
    "copycat": "#ff7f0e",
}
FATE_COLORS = {"delivered": "#4c78a8", "lost": "#e45756"}
# One colour per order-flow mode on every page: red for plaintext order flow, cooler hues as
# orders are hidden from more of the network.
ORDER_FLOW_COLORS = {
    "transparent": "#d62728",
    "operator": "#ff7f0e",
    "commit_reveal": "#1f77b4",
    "threshold": "#2ca02c",
}
# Legends show every label in full (Vega-Lite cuts them at 160 px by default).
FULL_LABELS = {"labelLimit": 0, "titleLimit": 0}
HEIGHT = 280
# What the builders return (altair's own annotations widen layered charts to this union).
ChartLike = alt.Chart | alt.LayerChart | alt.FacetChart
# Distinct hues for settings and outcomes (the Streamlit theme's default is shades of one blue).
CATEGORIES = alt.Scale(scheme="tableau10")


def _kind_scale() -> alt.Scale:
    return alt.Scale(domain=list(KIND_COLORS), range=list(KIND_COLORS.values()))


# --- Market -----------------------------------------------------------------------------------


def price_paths(prices: pl.DataFrame, fills: pl.DataFrame | None = None) -> ChartLike:
    """Price per outcome (solid) against its true probability (dashed), with fills on top.

    Fills are coloured by trader kind and shaped by side; front-run orders get a thick red ring.
    """
    base = alt.Chart(prices).encode(
        x=alt.X("t:Q", title="simulated time (s)"),
        color=alt.Color("outcome:N", title="outcome", scale=CATEGORIES),
    )
    price = base.mark_line(strokeWidth=2).encode(
        y=alt.Y("price:Q", title="price / probability", scale=alt.Scale(domain=[0, 1])),
        tooltip=["t:Q", "outcome:N", alt.Tooltip("price:Q", format=".3f")],
    )
    truth = base.mark_line(strokeDash=[6, 4], strokeWidth=1.5, opacity=0.8).encode(
        y="true_prob:Q", tooltip=["outcome:N", alt.Tooltip("true_prob:Q", format=".3f")]
    )
    layers: list[alt.Chart] = [price, truth]
    if fills is not None and not fills.is_empty():
        points = alt.Chart(fills).encode(x="t:Q", y="price:Q")
        layers.append(
            points.mark_point(filled=True, size=45, opacity=0.75).encode(
                fill=alt.Fill("kind:N", title="trader kind", scale=_kind_scale()),
                shape=alt.Shape("side:N", title="side"),
                tooltip=["order_id:Q", "kind:N", "side:N", "outcome:N", "volume:Q", "price:Q"],
            )
        )
        ring = fills.filter(pl.col("frontrun"))
        if not ring.is_empty():
            layers.append(
                alt.Chart(ring)
                .mark_point(size=180, strokeWidth=2.5, color="#d62728", filled=False)
                .encode(x="t:Q", y="price:Q", tooltip=["order_id:Q", "kind:N"])
            )
    return alt.layer(*layers).properties(height=HEIGHT)


def aggregation_paths(lines: pl.DataFrame) -> ChartLike:
    """Price (solid), wealth-weighted belief (dashed) and full-information posterior (dotted).

    ``lines`` is :func:`dashboard.shapes.aggregation_lines`: one colour per outcome, one stroke
    per series, so a reader sees whether the price follows the beliefs and both the posterior.
    """
    return (
        alt.Chart(lines)
        .mark_line(strokeWidth=2)
        .encode(
            x=alt.X("t:Q", title="simulated time (s)"),
            y=alt.Y("value:Q", title="probability", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("outcome:N", title="outcome", scale=CATEGORIES),
            strokeDash=alt.StrokeDash(
                "series:N",
                title="series",
                scale=alt.Scale(
                    domain=["price", "wealth-weighted belief", "full-information posterior"],
                    range=[[1, 0], [6, 4], [2, 2]],
                ),
                legend=alt.Legend(**FULL_LABELS),
            ),
            tooltip=["series:N", "outcome:N", "t:Q", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(height=HEIGHT)
    )


def volume_bars(fills: pl.DataFrame) -> ChartLike:
    """Traded volume (shares, both sides) over time, stacked by trader kind."""
    return (
        alt.Chart(fills)
        .mark_bar()
        .encode(
            x=alt.X("t:Q", bin=alt.Bin(maxbins=40), title="simulated time (s)"),
            y=alt.Y("sum(volume):Q", title="shares traded"),
            color=alt.Color("kind:N", title="trader kind", scale=_kind_scale()),
            tooltip=["kind:N", alt.Tooltip("sum(volume):Q", format=".1f")],
        )
        .properties(height=200)
    )


def pnl_by_kind(traders: pl.DataFrame) -> ChartLike:
    """Profit of every trader as a dot, by kind, with a zero line."""
    dots = (
        alt.Chart(nan_to_null(traders.select("kind", "trader", "pnl")))
        .mark_circle(size=70, opacity=0.7)
        .encode(
            x=alt.X("pnl:Q", title="profit"),
            y=alt.Y("kind:N", title=None),
            color=alt.Color("kind:N", scale=_kind_scale(), legend=None),
            tooltip=["trader:Q", "kind:N", alt.Tooltip("pnl:Q", format=".2f")],
        )
    )
    zero = alt.Chart(pl.DataFrame({"x": [0.0]})).mark_rule(color="#888").encode(x="x:Q")
    return alt.layer(zero, dots).properties(height=160)


# --- Privacy ----------------------------------------------------------------------------------


def interval_bars(
    summary: pl.DataFrame, flows: pl.DataFrame | None = None, *, columns: int = 3
) -> ChartLike:
    """Mean per setting with its 95% interval, one small panel per metric (own y scale).

    Bars are named on the x axis (in full) and coloured by order-flow mode with the colours of
    every other page when ``flows`` (``group``, ``order_flow``) is given.
    """
    frame = summary.select("group", "metric", "n", "mean", "low", "high")
    if flows is not None:
        frame = frame.join(
            flows.select("group", "order_flow").unique("group", keep="first"),
            on="group",
            how="left",
        ).with_columns(pl.col("order_flow").fill_null("unknown"))
        modes = frame["order_flow"].unique().to_list()
        color = alt.Color(
            "order_flow:N", title="order flow", scale=order_flow_scale(modes),
            legend=alt.Legend(orient="bottom", **FULL_LABELS),
        )  # fmt: skip
    else:
        color = alt.Color(
            "group:N", title="setting", scale=CATEGORIES,
            legend=alt.Legend(orient="bottom", columns=2, **FULL_LABELS),
        )  # fmt: skip
    axis = alt.Axis(title=None, labelAngle=-30, labelLimit=0)
    bars = (
        alt.Chart()
        .mark_bar(opacity=0.85)
        .encode(
            x=alt.X("group:N", axis=axis, sort=None),
            y=alt.Y("mean:Q", title=None, axis=alt.Axis(format=".4~r")),
            color=color,
            tooltip=["group:N", "metric:N", "n:Q", "mean:Q", "low:Q", "high:Q"],
        )
    )
    whiskers = (
        alt.Chart()
        .mark_errorbar(ticks=True, color="black")
        .encode(x=alt.X("group:N", sort=None), y=alt.Y("low:Q", title=None), y2="high:Q")
    )
    return (
        alt.layer(bars, whiskers, data=nan_to_null(frame))
        .properties(width=200, height=150)
        .facet(facet=alt.Facet("metric:N", title=None), columns=columns)
        .resolve_scale(y="independent")
    )


def order_flow_scale(modes: list[str] | None = None) -> alt.Scale:
    """The fixed order-flow colours; a mode this table does not know gets a neutral grey."""
    domain = list(ORDER_FLOW_COLORS)
    extra = [m for m in (modes or []) if m not in ORDER_FLOW_COLORS]
    return alt.Scale(
        domain=domain + extra, range=[*ORDER_FLOW_COLORS.values()] + ["#7f7f7f"] * len(extra)
    )


def frontier_frame(
    summary: pl.DataFrame,
    flows: pl.DataFrame,
    *,
    x_metric: str,
    y_metric: str,
    y_higher_is_better: bool = False,
) -> pl.DataFrame:
    """One row per setting with both metrics (mean and 95% bounds), its order-flow mode, and
    whether it is Pareto-optimal (lower x and lower y, or higher y where that is better).

    Settings lacking either mean are left out (they cannot be placed); the front is
    :func:`resultkit.choice.pareto_front` over the means.
    """
    cols = ["group", "mean", "low", "high"]
    xs = summary.filter(pl.col("metric") == x_metric).select(cols)
    ys = summary.filter(pl.col("metric") == y_metric).select(cols)
    joined = (
        xs.rename({"mean": "x", "low": "x_low", "high": "x_high"})
        .join(ys.rename({"mean": "y", "low": "y_low", "high": "y_high"}), on="group", how="inner")
        .filter(pl.col("x").is_finite() & pl.col("y").is_finite())
        .join(
            flows.select("group", "order_flow").unique("group", keep="first"),
            on="group",
            how="left",
        )
        .with_columns(pl.col("order_flow").fill_null("unknown"))
    )
    sign = -1.0 if y_higher_is_better else 1.0
    points = [[x, sign * y] for x, y in joined.select("x", "y").iter_rows()]
    front = set(choice.pareto_front(points))
    return joined.with_columns(pareto=pl.Series([i in front for i in range(joined.height)]))


def frontier(frame: pl.DataFrame, *, x_metric: str, y_metric: str) -> ChartLike:
    """The privacy–cost frontier: one labelled point per setting with 95% intervals on both
    axes, coloured by order-flow mode, the Pareto-optimal settings joined by a line."""
    data = nan_to_null(frame)
    modes = data["order_flow"].unique().to_list()
    base = alt.Chart(data).encode(
        x=alt.X("x:Q", title=x_metric, scale=alt.Scale(zero=False)),
        y=alt.Y("y:Q", title=y_metric, scale=alt.Scale(zero=False)),
    )
    color = alt.Color(
        "order_flow:N", title="order flow", scale=order_flow_scale(modes),
        legend=alt.Legend(orient="bottom", **FULL_LABELS),
    )  # fmt: skip
    tooltip = [
        alt.Tooltip("group:N", title="setting"),
        alt.Tooltip("x:Q", title=x_metric, format=".4~g"),
        alt.Tooltip("x_low:Q", title="low", format=".4~g"),
        alt.Tooltip("x_high:Q", title="high", format=".4~g"),
        alt.Tooltip("y:Q", title=y_metric, format=".4~g"),
        alt.Tooltip("y_low:Q", title="low", format=".4~g"),
        alt.Tooltip("y_high:Q", title="high", format=".4~g"),
        alt.Tooltip("pareto:N", title="Pareto-optimal"),
    ]
    front = (
        alt.Chart(data.filter(pl.col("pareto")).sort("x", "y"))
        .mark_line(color="#555555", strokeDash=[5, 3], point=False)
        .encode(x="x:Q", y="y:Q", order="x:Q")
    )
    x_err = base.mark_rule(opacity=0.6).encode(x="x_low:Q", x2="x_high:Q", color=color)
    y_err = base.mark_rule(opacity=0.6).encode(y="y_low:Q", y2="y_high:Q", color=color)
    shape = alt.Shape("pareto:N", title="Pareto-optimal", legend=alt.Legend(orient="bottom"))
    points = base.mark_point(filled=True, size=160, opacity=0.9).encode(
        color=color, shape=shape, tooltip=tooltip
    )
    labels = base.mark_text(align="left", dx=9, dy=-9, fontSize=12).encode(
        text="group:N", color=alt.value("#222222")
    )
    return alt.layer(front, x_err, y_err, points, labels).properties(height=380)


def exposure_timeline(rows: pl.DataFrame, *, relative: bool = True) -> ChartLike:
    """Per order: waiting since submission (grey) and exposure from first sighting to execution.

    With ``relative`` every order starts at its own submission (x = seconds since submitting),
    which keeps windows of a few seconds visible on a run of many hours; otherwise x is the
    simulated time.
    """
    if relative:
        start, seen, end, title = (
            "zero",
            "seen_after_s",
            "executed_after_s",
            "seconds since submission",
        )
        data = rows.with_columns(zero=pl.lit(0.0))
    else:
        start, seen, end, title = "t_submit", "t_first_seen", "t_executed", "simulated time (s)"
        data = rows
    y = alt.Y("rank:Q", title="orders, by submission", axis=alt.Axis(labels=False, ticks=False))
    waiting = (
        alt.Chart(data)
        .mark_rule(color="#d0d0d0", strokeWidth=2)
        .encode(x=alt.X(f"{start}:Q", title=title), x2=f"{end}:Q", y=y)
    )
    exposed = (
        alt.Chart(data)
        .mark_rule(strokeWidth=2.5)
        .encode(
            x=f"{seen}:Q",
            x2=f"{end}:Q",
            y="rank:Q",
            color=alt.Color("kind:N", title="trader kind", scale=_kind_scale()),
            tooltip=[
                "order_id:Q",
                "kind:N",
                "t_submit:Q",
                "t_first_seen:Q",
                "t_executed:Q",
                alt.Tooltip("exposure_s:Q", format=".3f"),
            ],
        )
    )
    # Streamlit fits axes and titles inside this height, hence the allowance above the rows.
    return alt.layer(waiting, exposed).properties(height=max(240, min(400, 3 * rows.height + 90)))


# --- Network ----------------------------------------------------------------------------------


def topology(segments: pl.DataFrame, nodes: pl.DataFrame) -> ChartLike:
    """The network drawn from fixed positions: edges as lines, nodes by role, spies ringed."""
    hidden = alt.Axis(labels=False, ticks=False, grid=False, domain=False, title=None)
    lines = (
        alt.Chart(segments)
        .mark_rule(color="#bbbbbb", opacity=0.7)
        .encode(x=alt.X("x:Q", axis=hidden), y=alt.Y("y:Q", axis=hidden), x2="x2:Q", y2="y2:Q")
    )
    dots = (
        alt.Chart(nodes)
        .mark_circle(size=110, opacity=0.95)
        .encode(
            x="x:Q",
            y="y:Q",
            color=alt.Color("role:N", title="roles", scale=CATEGORIES),
            tooltip=["node:Q", "role:N", "degree:Q", "spy:N"],
        )
    )
    spies = (
        alt.Chart(nodes.filter(pl.col("spy")))
        .mark_point(size=340, strokeWidth=2, color="#222222", shape="diamond")
        .encode(x="x:Q", y="y:Q", tooltip=["node:Q", "role:N"])
    )
    return alt.layer(lines, dots, spies).properties(height=460)


def message_bars(counts: pl.DataFrame) -> ChartLike:
    """Messages per kind, delivered and lost stacked."""
    order = counts["kind"].unique(maintain_order=True).to_list()
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("messages:Q", title="messages"),
            y=alt.Y("kind:N", sort=order, title=None),
            color=alt.Color(
                "fate:N",
                scale=alt.Scale(domain=list(FATE_COLORS), range=list(FATE_COLORS.values())),
            ),
            tooltip=["kind:N", "fate:N", "messages:Q"],
        )
        .properties(height=40 * len(order) + 20)
    )


# --- Settlement -------------------------------------------------------------------------------


def _round_bars(votes: pl.DataFrame, value: str, tooltip: list[str], height: int) -> alt.Chart:
    """Bars of ``votes`` per ``value`` side by side in each round."""
    return (
        alt.Chart(votes)
        .mark_bar()
        .encode(
            x=alt.X("round:O", title="round", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("votes:Q", title="votes"),
            color=alt.Color(f"{value}:N", title=value, scale=CATEGORIES),
            xOffset=f"{value}:N",
            tooltip=tooltip,
        )
        .properties(width=220, height=height)
    )


def step_votes_by_round(votes: pl.DataFrame) -> ChartLike:
    """Prevotes and precommits per value (nil included) in each round: a row per step, a
    column per market."""
    tooltip = ["market:Q", "round:Q", "step:N", "value:N", "votes:Q"]
    return _round_bars(votes, "value", tooltip, 140).facet(
        row=alt.Row("step:N", title="step", sort=["prevote", "precommit"]),
        column=alt.Column("market:N", title="market"),
    )


def bonds_by_market(summary: pl.DataFrame) -> ChartLike:
    """Bonds moved (slashed or paid out) per market, with disputes in the tooltip."""
    return (
        alt.Chart(summary)
        .mark_bar(color="#b279a2")
        .encode(
            x=alt.X("market:N", title="market", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("bonds_moved:Q", title="bonds moved"),
            tooltip=["market:N", "disputes:Q", "bonds_moved:Q", "finalized:N", "correct:N"],
        )
        .properties(height=200)
    )


# --- Learning ---------------------------------------------------------------------------------


def fl_rounds(long: pl.DataFrame) -> ChartLike:
    """Loss, Brier and epsilon per federated round; aborted rounds drawn as hollow red points."""
    line = (
        alt.Chart()
        .mark_line(point=True)
        .encode(x=alt.X("round:Q", title="round"), y=alt.Y("value:Q", title=None))
    )
    layers = [line]
    if "status" in long.columns:
        layers.append(
            alt.Chart()
            .mark_point(size=120, color="#d62728", filled=False)
            .encode(x="round:Q", y="value:Q")
            .transform_filter(alt.datum.status == "aborted")
        )
    return (
        alt.layer(*layers, data=long)
        .properties(width=260, height=180)
        .facet(column=alt.Column("measure:N", title=None))
        .resolve_scale(y="independent")
    )


def client_epsilon(lines: pl.DataFrame, events: pl.DataFrame) -> ChartLike:
    """Each client's own epsilon over rounds (a step line per client), and who left when.

    Withdrawals and exhausted budgets are vertical ticks at the rounds run when the client was
    first out, coloured by why.
    """
    base = alt.Chart(lines).encode(
        x=alt.X("rounds:Q", title="rounds run"),
        y=alt.Y("epsilon:Q", title="client's own epsilon"),
        detail="client:N",
        tooltip=["client:N", "rounds:Q", "epsilon:Q"],
    )
    layers = [base.mark_line(interpolate="step-after", opacity=0.5, color="#4c78a8")]
    if not events.is_empty():
        layers.append(
            alt.Chart(events)
            .mark_tick(thickness=2, size=18)
            .encode(
                x="rounds:Q",
                color=alt.Color("event:N", title=None),
                tooltip=["client:N", "rounds:Q", "event:N"],
            )
        )
    return alt.layer(*layers).properties(height=240)


def roc_curve(points: pl.DataFrame) -> ChartLike:
    """Membership-inference ROC with the chance diagonal."""
    diagonal = pl.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]})
    chance = (
        alt.Chart(diagonal).mark_line(strokeDash=[4, 4], color="#888").encode(x="fpr:Q", y="tpr:Q")
    )
    curve = (
        alt.Chart(points)
        .mark_line(point=True, color="#e45756")
        .encode(
            x=alt.X("fpr:Q", title="false-positive rate", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("tpr:Q", title="true-positive rate", scale=alt.Scale(domain=[0, 1])),
            tooltip=["fpr:Q", "tpr:Q"],
        )
    )
    return alt.layer(chance, curve).properties(height=300)


def brier_bars(frame: pl.DataFrame) -> ChartLike:
    """Brier score (lower is better) of the federated model, a centralized model and the market."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("brier:Q", title="Brier score (lower is better)"),
            y=alt.Y("source:N", title=None),
            color=alt.Color("source:N", legend=None, scale=CATEGORIES),
            tooltip=["source:N", alt.Tooltip("brier:Q", format=".4f")],
        )
        .properties(height=40 * frame.height + 20)
    )
