"""Pure polars functions behind the pages: runs, metric tables, intervals, differences.

Nothing here touches Streamlit or the filesystem, so every function is tested on small
hand-made frames. A metric that does not apply is NaN (or absent) in the results; it stays NaN
here and is shown as "n/a", never turned into 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from resultkit import choice, intervals, settings, tables

NA = "n/a"

# Leakage and MEV metrics first in this order; any other privacy.* or mev.* metric follows.
LEAKAGE_METRICS: tuple[str, ...] = (
    "privacy.direction_inference_advantage",
    "privacy.direction_inference_acc",
    "mev.extracted",
    "mev.victim_loss",
    "privacy.exposure_s",
    "privacy.early_decrypt_fraction",
    "privacy.anonymity_set",
    "privacy.sender_precision",
    "privacy.sender_recall",
    "privacy.propagation_delay_s",
    "privacy.signal_mi_bits",
)
LEAKAGE_PREFIXES = ("privacy.", "mev.")
UTILITY_METRICS: tuple[str, ...] = (
    "market.brier",
    "market.abs_error",
    "cost.order_latency_s",
    "cost.messages_per_order",
    "cost.crypto_ops",
    "market.maker_loss",
)


@dataclass(frozen=True, slots=True)
class Interval:
    """A mean with its two-sided Student-t confidence interval over ``n`` finite values."""

    n: int
    mean: float
    low: float
    high: float
    half_width: float


def missing_columns(frame: pl.DataFrame | None, required: Iterable[str]) -> list[str]:
    """The required columns that ``frame`` lacks (all of them when there is no frame)."""
    present = set() if frame is None else set(frame.columns)
    return [column for column in required if column not in present]


def is_number(value: object) -> bool:
    """True for a finite int or float (not bool, None, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def fmt(value: object, *, digits: int = 4) -> str:
    """A number for display with ``digits`` significant digits, or "n/a" when not applicable.

    Infinity is a real value for some metrics (``fl.dp_epsilon`` without differential privacy
    is no privacy guarantee at all), so it shows as "∞", never as "n/a".
    """
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if not is_number(value):
        return NA
    assert isinstance(value, int | float)
    return f"{value:.{digits}g}"


def fmt_interval(mean: object, low: object, high: object, *, digits: int = 3) -> str:
    """``"mean [low, high]"``; without an interval just the mean; "n/a" without a mean."""
    if not is_number(mean):
        return NA
    if not (is_number(low) and is_number(high)):
        return fmt(mean, digits=digits)
    return f"{fmt(mean, digits=digits)} [{fmt(low, digits=digits)}, {fmt(high, digits=digits)}]"


def t_critical(dof: float, *, level: float = 0.95) -> float:
    """Two-sided Student-t critical value (:func:`resultkit.intervals.t_critical`)."""
    return intervals.t_critical(dof, level=level)


def t_interval(values: Sequence[float], *, level: float = 0.95) -> Interval:
    """Mean and Student-t interval of the finite values (NaN bounds with fewer than two), as
    :func:`resultkit.intervals.mean_interval` computes it for the command line too."""
    iv = intervals.mean_interval(values, level=level)
    return Interval(iv.n, iv.mean, iv.low, iv.high, iv.half_width)


def run_labels(runs: pl.DataFrame) -> dict[str, str]:
    """A short unique label per run path: ``[scenario ·] setting · r<replication>``.

    The scenario is named only when the folder holds several, to keep sidebar chips short;
    a label that would still repeat gets the run id appended.
    """
    several = runs["scenario"].n_unique() > 1
    labels: dict[str, str] = {}
    for row in runs.iter_rows(named=True):
        rep = "" if row["replication"] is None else f" · r{row['replication']}"
        prefix = f"{row['scenario']} · " if several else ""
        labels[row["path"]] = f"{prefix}{row['setting']}{rep}"
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return {
        path: (f"{label} ({path.rsplit('/', 1)[-1]})" if counts[label] > 1 else label)
        for path, label in labels.items()
    }


def setting_names(runs: pl.DataFrame) -> pl.Series:
    """Per run, its setting named by what differs between the runs' sweep points only
    (``threshold · dandelion``, not every key); a run without a sweep point keeps ``setting``."""
    points = runs["point"].fill_null("{}").to_list()
    distinct = list(dict.fromkeys(p for p in points if p != "{}"))
    parsed = []
    for text in distinct:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = {}
        parsed.append(value if isinstance(value, dict) else {})
    names = dict(zip(distinct, settings.short_names(parsed), strict=True))
    fallback = runs["setting"].to_list()
    return pl.Series(
        "setting_name",
        [names.get(p, f) for p, f in zip(points, fallback, strict=True)],
        dtype=pl.String,
    )


def with_groups(runs: pl.DataFrame) -> pl.DataFrame:
    """Add ``group``: the setting named by what differs (:func:`setting_names`), prefixed by
    the scenario when several scenarios are present.

    Runs of one group differ only by replication, so intervals over a group are intervals over
    replications.
    """
    named = runs.with_columns(setting_names(runs).alias("_name"))
    several = runs["scenario"].n_unique() > 1
    group = (
        pl.concat_str(pl.col("scenario"), pl.lit(" · "), pl.col("_name"))
        if several
        else pl.col("_name")
    )
    return named.with_columns(group=group).drop("_name")


def sweep_pairs(runs: pl.DataFrame) -> pl.DataFrame:
    """One row per (run, sweep key): columns ``path``, ``key``, ``value`` (value as text)."""
    rows: list[dict[str, str]] = []
    for path, point in runs.select("path", "point").iter_rows():
        try:
            parsed = json.loads(point or "{}")
        except json.JSONDecodeError:
            parsed = {}
        if isinstance(parsed, dict):
            rows.extend({"path": path, "key": k, "value": str(v)} for k, v in parsed.items())
    return pl.DataFrame(rows, schema={"path": pl.String, "key": pl.String, "value": pl.String})


def filter_runs(
    runs: pl.DataFrame,
    *,
    scenarios: Sequence[str] = (),
    key: str | None = None,
    value: str | None = None,
) -> pl.DataFrame:
    """Runs of the given scenarios (all if empty) whose sweep point has ``key`` (= ``value``)."""
    out = runs.filter(pl.col("scenario").is_in(list(scenarios))) if scenarios else runs
    if key is None:
        return out
    pairs = sweep_pairs(out).filter(pl.col("key") == key)
    if value is not None:
        pairs = pairs.filter(pl.col("value") == value)
    return out.filter(pl.col("path").is_in(pairs["path"].to_list()))


def default_selection(runs: pl.DataFrame) -> list[str]:
    """Complete runs of the scenario with the most recent complete run (the landing view)."""
    complete = runs.filter(pl.col("loadable"))
    if complete.is_empty():
        return []
    latest = complete.sort("created", nulls_last=False).row(-1, named=True)["scenario"]
    return complete.filter(pl.col("scenario") == latest)["path"].to_list()


def metric_table(metrics: pl.DataFrame) -> pl.DataFrame:
    """One run's metrics sorted by name with a display column ("n/a" for NaN)."""
    rows = metrics.select("metric", pl.col("value").cast(pl.Float64)).sort("metric")
    return rows.with_columns(
        shown=pl.col("value").map_elements(fmt, return_dtype=pl.String).fill_null(NA)
    )


def metric_value(metrics: pl.DataFrame | None, name: str) -> float:
    """The mean of metric ``name`` over the given rows, NaN when absent or not applicable."""
    if metrics is None or missing_columns(metrics, ("metric", "value")):
        return math.nan
    values = metrics.filter(pl.col("metric") == name)["value"].to_list()
    finite = [v for v in values if is_number(v)]
    return float(np.mean(finite)) if finite else math.nan


def leakage_metrics(names: Iterable[str]) -> list[str]:
    """Leakage/MEV metric names among ``names``: the known ones in order, then the rest."""
    present = set(names)
    known = [m for m in LEAKAGE_METRICS if m in present]
    extra = sorted(m for m in present if m.startswith(LEAKAGE_PREFIXES) and m not in known)
    return known + extra


def summarize(metrics: pl.DataFrame, groups: pl.DataFrame, *, level: float = 0.95) -> pl.DataFrame:
    """Mean and Student-t interval per (group, metric) over the runs of each group.

    Args:
        metrics: Rows ``path``, ``metric``, ``value`` (several runs).
        groups: Rows ``path``, ``group``; the order of first appearance orders the output.
        level: Confidence level of the intervals.

    Returns:
        Columns ``group, metric, n, mean, std, half_width, low, high``; ``n`` counts finite
        values, so a metric NaN in every run has ``n = 0`` and NaN everywhere, and one value
        gives NaN bounds. The intervals are :func:`resultkit.tables.summarize`'s.
    """
    order = groups["group"].unique(maintain_order=True).to_list()
    joined = metrics.join(groups.select("path", "group"), on="path", how="inner")
    out = tables.summarize(joined, ["group", "metric"], level=level)
    rank = {g: i for i, g in enumerate(order)}
    return (
        out.with_columns(_rank=pl.col("group").replace_strict(rank, return_dtype=pl.Int64))
        .sort("metric", "_rank")
        .drop("_rank")
    )


def default_baselines(runs: pl.DataFrame) -> dict[str, str]:
    """Each group's default baseline: the first setting of its scenario in sweep order.

    ``runs`` has ``scenario``, ``group`` and (optionally) ``order``, the run's position in
    ``sweep.json``: the baseline of ``veilcast compare`` too (the first value of every swept
    key), so the two views of the same runs take differences against the same setting.
    """
    order = runs["order"] if "order" in runs.columns else pl.Series([None] * runs.height)
    firsts = settings.first_settings(
        zip(runs["scenario"].to_list(), runs["group"].to_list(), order.to_list(), strict=True)
    )
    return {g: str(firsts[s]) for s, g in runs.select("scenario", "group").unique().iter_rows()}


def compare(
    metrics: pl.DataFrame,
    groups: pl.DataFrame,
    baselines: Mapping[str, str],
    *,
    level: float = 0.95,
) -> pl.DataFrame:
    """:func:`summarize` plus each group's difference to its baseline group.

    Args:
        metrics: Rows ``path``, ``metric``, ``value``.
        groups: Rows ``path``, ``group`` and, where known, ``world_seed``: runs of two groups on
            one world are paired (the same replication shares the simulated world).
        baselines: ``group → baseline group``; a group missing here is its own baseline.
        level: Confidence level.

    Returns:
        The summary's columns plus ``baseline`` and ``diff, diff_low, diff_high`` (null on a
        baseline's rows and where the baseline lacks the metric; NaN without an interval),
        ``pairs`` and ``paired``: paired by world where worlds are shared, else Welch, exactly
        as ``veilcast compare`` (both call :func:`resultkit.tables.differences`).
    """
    summary = summarize(metrics, groups, level=level)
    world = (
        pl.col("world_seed").cast(pl.Int64)
        if "world_seed" in groups.columns
        else pl.lit(None, dtype=pl.Int64)
    )
    rows = metrics.join(
        groups.select("path", "group", world_seed=world), on="path", how="inner"
    ).with_columns(base=pl.col("group").replace_strict(dict(baselines), default=pl.col("group")))
    diffs = tables.differences(rows, keys=["group"], base_keys=["base"], by=["metric"], level=level)
    return summary.join(
        diffs.select(
            "metric", "group", "baseline", "diff", "diff_low", "diff_high", "pairs", "paired"
        ),
        on=["metric", "group"],
        how="left",
    )


def summary_grid(summary: pl.DataFrame, *, metrics: Sequence[str] | None = None) -> pl.DataFrame:
    """A display grid: one row per metric, one column per group, "mean [low, high]" cells."""
    rows = summary if metrics is None else summary.filter(pl.col("metric").is_in(list(metrics)))
    shown = rows.with_columns(
        cell=pl.struct("mean", "low", "high").map_elements(
            lambda r: fmt_interval(r["mean"], r["low"], r["high"]), return_dtype=pl.String
        )
    )
    groups = rows["group"].unique(maintain_order=True).to_list()
    grid = shown.pivot(on="group", index="metric", values="cell").fill_null(NA)
    if metrics is not None:
        rank = {m: i for i, m in enumerate(metrics)}
        grid = grid.sort(pl.col("metric").replace_strict(rank, default=len(rank)))
    return grid.select("metric", *[g for g in groups if g in grid.columns])


def compare_display(table: pl.DataFrame) -> pl.DataFrame:
    """Text columns for the Compare table (numbers stay in the CSV download)."""

    def cell(row: dict[str, object]) -> str:
        if row["baseline"]:
            return "baseline"
        return fmt_interval(row["diff"], row["diff_low"], row["diff_high"])

    return table.select(
        "metric",
        "group",
        "n",
        pl.struct("mean", "low", "high")
        .map_elements(
            lambda r: fmt_interval(r["mean"], r["low"], r["high"]), return_dtype=pl.String
        )
        .alias("mean [95% CI]"),
        pl.struct("diff", "diff_low", "diff_high", "baseline")
        .map_elements(cell, return_dtype=pl.String)
        .alias("difference vs baseline [95% CI]"),
    )


def parse_limits(text: str, known: Iterable[str]) -> tuple[list[choice.Limit], list[str]]:
    """``METRIC=VALUE`` lines (as ``veilcast recommend --max`` takes them) as limits, and one
    message per bad line (unknown metric, not a finite number, a metric limited twice)."""
    names = set(known)
    limits: list[choice.Limit] = []
    errors: list[str] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        metric, equals, value = (part.strip() for part in line.partition("="))
        try:
            maximum = float(value) if equals else math.nan
        except ValueError:
            maximum = math.nan
        if not equals or not metric:
            errors.append(f"expected METRIC=VALUE, got {line!r}")
        elif metric not in names:
            errors.append(f"unknown metric {metric!r}")
        elif not math.isfinite(maximum):
            errors.append(f"{metric}: {value!r} is not a finite number")
        elif any(limit.metric == metric for limit in limits):
            errors.append(f"{metric}: given twice")
        else:
            limits.append(choice.Limit(metric, maximum))
    return limits, errors


def candidates(summary: pl.DataFrame) -> list[choice.Candidate]:
    """One recommendation candidate per group of a :func:`summarize` table, in its order."""
    out: dict[str, dict[str, intervals.Interval]] = {}
    order = summary["group"].unique(maintain_order=True).to_list()
    for row in summary.iter_rows(named=True):
        out.setdefault(row["group"], {})[row["metric"]] = intervals.Interval(
            row["n"], row["mean"], row["std"], row["half_width"]
        )
    return [choice.Candidate({"setting": g}, out.get(g, {})) for g in order]


def overview(runs: pl.DataFrame) -> pl.DataFrame:
    """What the results folder holds, one row per scenario, newest first: its settings, its
    replications per setting, complete runs and the others (failed or being written)."""
    done = pl.col("loadable")
    return (
        runs.group_by("scenario")
        .agg(
            settings=pl.col("point").filter(done).n_unique(),
            replications=pl.col("replication").filter(done).n_unique(),
            complete=done.sum().cast(pl.Int64),
            not_complete=(~done).sum().cast(pl.Int64),
            newest=pl.col("created").max(),
        )
        .sort("newest", "scenario", descending=[True, False], nulls_last=True)
    )
