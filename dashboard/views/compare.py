"""Compare: two or more runs, or the settings of whole sweeps, metric by metric."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import charts, data, glossary, queries, ui
from resultkit import choice

MODES = {"settings": "settings (replications pooled)", "runs": "single runs"}
NUMERIC_COLS = (
    "metric",
    "group",
    "n",
    "mean",
    "low",
    "high",
    "diff",
    "diff_low",
    "diff_high",
)


def candidates(ctx: ui.Context) -> tuple[pl.DataFrame, str]:
    """The complete runs of the chosen sweeps with a ``group`` per the chosen mode."""
    complete = ctx.runs.filter(pl.col("loadable"))
    in_view = ctx.selected_runs()["scenario"].unique().to_list()
    scenarios = complete["scenario"].unique().sort().to_list()
    left, right = st.columns([1, 2])
    mode = left.radio("Compare", list(MODES), format_func=MODES.__getitem__, key="compare_mode")
    chosen = right.multiselect(
        "Sweeps (scenarios)",
        scenarios,
        default=[s for s in scenarios if s in in_view] or scenarios[:1],
        key="compare_scenarios",
    )
    runs = queries.with_groups(complete.filter(pl.col("scenario").is_in(chosen)))
    if mode == "runs":
        runs = runs.with_columns(
            group=pl.col("path").replace_strict(ctx.labels, default=pl.col("path"))
        )
    return runs, mode


FIRST = "first sweep value (as veilcast compare)"


def table(
    ctx: ui.Context, runs: pl.DataFrame, items: list[str], baseline: str
) -> pl.DataFrame | None:
    """Every metric of the chosen items with intervals and differences from the baseline.

    With :data:`FIRST` each item is compared with its scenario's first sweep setting, paired by
    world where replications share one: the numbers ``veilcast compare`` prints.
    """
    members = runs.filter(pl.col("group").is_in(items))
    metrics = data.tables(ctx.root, members["path"].to_list(), "metrics", ("metric", "value"))
    if not ui.have(metrics, "metrics", ("metric", "value", "path")):
        return None
    assert metrics is not None
    order = pl.DataFrame({"group": items}).join(
        members.select("path", "group", "world_seed"), on="group"
    )
    if baseline == FIRST:
        bases = queries.default_baselines(runs)
        bases = {g: b for g, b in bases.items() if g in items}
    else:
        bases = dict.fromkeys(items, baseline)
    return queries.compare(metrics, order, bases)


def recommend_form(result: pl.DataFrame) -> None:
    """``veilcast recommend`` as a form: limits on the upper end of the 95% interval and the
    metrics to minimise; the same :func:`resultkit.choice.recommend` answers."""
    known = sorted(result.filter(pl.col("n") > 0)["metric"].unique().to_list())
    with st.form("recommend"):
        st.markdown("**Recommend a setting** (as `veilcast recommend`)")
        text = st.text_area(
            "Limits, one per line: METRIC=VALUE (met when the 95% interval's upper end is "
            "at most VALUE)",
            placeholder="cost.order_latency_s=30\nmev.extracted=1",
            key="recommend_limits",
        )
        minimize = st.multiselect("Minimize", known, key="recommend_minimize")
        submitted = st.form_submit_button("Recommend")
    if not submitted:
        return
    limits, errors = queries.parse_limits(text, known)
    for error in errors:
        st.error(error)
    if errors:
        return
    if not limits and not minimize:
        st.info("Give at least one limit or a metric to minimise.")
        return
    rec = choice.recommend(queries.candidates(result), limits, minimize)
    named = list(dict.fromkeys([*(lim.metric for lim in limits), *rec.objectives]))
    if rec.feasible:
        front = {id(c) for c in rec.pareto}
        rows = [
            {"rank": i, "setting": c.point["setting"], "Pareto-optimal": id(c) in front}
            | {
                m: queries.fmt_interval(c.interval(m).mean, c.interval(m).low, c.interval(m).high)
                for m in named
            }
            for i, c in enumerate(rec.feasible, 1)
        ]
        st.dataframe(pl.DataFrame(rows), hide_index=True, width="stretch", key="recommend_table")
        return
    lines = [
        f"- `{b.limit.metric}` ≤ {b.limit.maximum:g}: failed by {b.failing} of {b.settings} "
        f"settings; best upper end {queries.fmt(b.best_high)}"
        + (f" ({b.best_point['setting']})" if b.best_point else "")
        for b in rec.binding
    ]
    closest = "" if rec.closest is None else f"\n\nClosest: {rec.closest.point['setting']}."
    st.warning("No setting meets every limit.\n" + "\n".join(lines) + closest)


def main() -> None:
    """Lay out the page."""
    ctx = ui.context()
    if ctx is None:
        return
    st.title("Compare")
    if ctx.runs.filter(pl.col("loadable")).is_empty():
        st.info("There is no complete run to compare yet.")
        return
    runs, mode = candidates(ctx)
    options = runs["group"].unique(maintain_order=True).to_list()
    items = st.multiselect(
        "Compare these " + ("settings" if mode == "settings" else "runs"),
        options,
        default=options[:6],
        key=f"compare_items_{mode}",  # per mode: switching modes changes the options
    )
    if len(items) < 2:
        st.info("Pick two or more runs or settings to compare.")
        return
    choices = [FIRST, *items] if mode == "settings" else items
    baseline = st.selectbox(
        "Baseline (differences are item minus baseline)", choices, key=f"compare_base_{mode}"
    )
    result = table(ctx, runs, items, baseline)
    if result is None:
        return
    families = sorted({m.split(".", 1)[0] for m in result["metric"].to_list()})
    chosen = st.multiselect("Metric families", families, default=families, key="compare_families")
    shown = result.filter(pl.col("metric").str.split(".").list.first().is_in(chosen))
    st.caption(
        "Mean [Student-t 95% CI] over replications; differences with a 95% CI, paired by "
        "world where replications share one (as `veilcast compare`), Welch's otherwise. "
        "n/a: not applicable, or fewer than two replications for an interval."
    )
    st.dataframe(queries.compare_display(shown), hide_index=True, width="stretch", height=520)
    st.download_button(
        "Download CSV",
        shown.select(NUMERIC_COLS).write_csv(),
        file_name="veilcast-compare.csv",
        mime="text/csv",
        icon=":material/download:",
    )
    if mode == "settings":
        with st.expander("Frontier of any two metrics", expanded=False):
            metrics = sorted(result.filter(pl.col("n") > 0)["metric"].unique().to_list())
            left, right = st.columns(2)
            x = left.selectbox("x", metrics, key="compare_fx")
            y = right.selectbox("y", metrics, index=min(1, len(metrics) - 1), key="compare_fy")
            if x is not None and y is not None:
                frame = charts.frontier_frame(
                    result, runs, x_metric=x, y_metric=y,
                    y_higher_is_better=y in glossary.HIGHER_IS_BETTER,
                )  # fmt: skip
                ui.chart(charts.frontier(frame, x_metric=x, y_metric=y))
        recommend_form(result)


main()
