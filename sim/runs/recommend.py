"""``veilcast recommend``: the settings of a sweep that meet every limit, ranked, with their
Pareto front, or which limit binds when none does.

Reading is :mod:`sim.runs.compare`'s (complete runs only, the settings found from what varies);
the intervals, the limits and the Pareto logic are :mod:`resultkit`'s, which the dashboard's
recommendation form calls too, so both give the same answer for the same runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from io import StringIO
from pathlib import Path
from typing import Any, Literal

import polars as pl
from rich.console import Console
from rich.table import Table

from resultkit import tables
from resultkit.choice import Candidate, Limit, Recommendation, recommend
from resultkit.intervals import Interval
from sim.errors import InputError
from sim.runs.compare import find_runs, read_runs, scan_metrics, settings_of, varying_keys

Format = Literal["table", "json"]


def parse_limits(texts: Sequence[str], known: set[str]) -> list[Limit]:
    """``METRIC=VALUE`` texts as limits.

    Raises:
        InputError: malformed text, an unknown metric, a value that is not a finite number, or
            a metric limited twice.
    """
    limits: list[Limit] = []
    for text in texts:
        metric, equals, value = (part.strip() for part in text.partition("="))
        if not equals or not metric:
            raise InputError(f"--max: expected METRIC=VALUE, got {text!r}")
        _check_metric("--max", metric, known)
        try:
            maximum = float(value)
        except ValueError:
            raise InputError(f"--max {metric}: {value!r} is not a number") from None
        if not math.isfinite(maximum):
            raise InputError(f"--max {metric}: {value!r} is not a finite number")
        if any(limit.metric == metric for limit in limits):
            raise InputError(f"--max {metric}: given twice")
        limits.append(Limit(metric, maximum))
    return limits


def _check_metric(option: str, metric: str, known: set[str]) -> None:
    if metric not in known:
        close = sorted(k for k in known if k.split(".", 1)[0] == metric.split(".", 1)[0])
        hint = f" (metrics of that family: {', '.join(close)})" if close else ""
        raise InputError(f"{option}: unknown metric {metric!r}{hint}")


def _typed(text: str | None) -> Any:
    """A setting's stored text back as its TOML value where it reads as one (``0.1``)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) else text


def candidates(
    summary: pl.DataFrame, settings: pl.DataFrame, keys: Sequence[str]
) -> list[Candidate]:
    """One candidate per setting (in sweep order) with every metric's interval."""
    out = []
    for setting in settings.select(keys).iter_rows(named=True) if keys else [{}]:
        rows = summary
        for key, value in setting.items():
            rows = rows.filter(pl.col(key).eq_missing(value))
        metrics = {
            r["metric"]: Interval(r["n"], r["mean"], r["std"], r["half_width"])
            for r in rows.iter_rows(named=True)
        }
        out.append(Candidate({k: _typed(v) for k, v in setting.items()}, metrics))
    return out


def recommend_dirs(
    dirs: Sequence[Path], limits: Sequence[str], minimize: Sequence[str]
) -> tuple[Recommendation, list[Limit]]:
    """The recommendation for the complete runs of one sweep under ``dirs``, and its limits.

    Raises:
        InputError: a missing folder, no complete run, runs of several scenarios, nothing to
            judge by, or a bad ``--max``/``--minimize``.
    """
    for folder in dirs:
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder")
    if not limits and not minimize:
        raise InputError("recommend: give at least one --max METRIC=VALUE or --minimize METRIC")
    runs = read_runs(find_runs(dirs))
    if runs.is_empty():
        raise InputError(f"{', '.join(map(str, dirs))}: no complete run found")
    scenarios = runs["scenario"].unique().sort().to_list()
    if len(scenarios) > 1:
        raise InputError(f"recommend: runs of several scenarios ({', '.join(scenarios)}); "
                         "name one sweep's folder")  # fmt: skip
    keys = varying_keys(runs)
    metrics = scan_metrics(runs, keys).collect()
    known = set(metrics["metric"].unique().to_list())
    parsed = parse_limits(limits, known)
    for metric in minimize:
        _check_metric("--minimize", metric, known)
    summary = tables.summarize(metrics, [*keys, "metric"])
    cands = candidates(summary, settings_of(metrics, keys), keys)
    return recommend(cands, parsed, minimize), parsed


def _interval_json(iv: Interval) -> dict[str, Any]:
    def clean(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return {"n": iv.n, "mean": clean(iv.mean), "low": clean(iv.low), "high": clean(iv.high)}


def _entry(c: Candidate, named: Sequence[str], front: bool | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "point": dict(c.point),
        "metrics": {m: _interval_json(c.interval(m)) for m in named},
    }
    if front is not None:
        entry["pareto"] = front
    return entry


def render(rec: Recommendation, limits: Sequence[Limit], fmt: Format) -> str:
    """The recommendation as JSON (SPEC: ``feasible``, ``pareto``, ``binding``) or a table."""
    named = list(dict.fromkeys([*(lim.metric for lim in limits), *rec.objectives]))
    front = {id(c) for c in rec.pareto}
    if fmt == "json":
        doc = {
            "objectives": list(rec.objectives),
            "limits": {lim.metric: lim.maximum for lim in limits},
            "feasible": [_entry(c, named, id(c) in front) for c in rec.feasible],
            "pareto": [_entry(c, named) for c in rec.pareto],
            "binding": [
                {
                    "metric": b.limit.metric,
                    "max": b.limit.maximum,
                    "failing": b.failing,
                    "settings": b.settings,
                    "best_high": b.best_high if math.isfinite(b.best_high) else None,
                    "best_point": None if b.best_point is None else dict(b.best_point),
                }
                for b in rec.binding
            ],
            "closest": None if rec.closest is None else _entry(rec.closest, named),
        }
        return json.dumps(doc, indent=2, allow_nan=False)
    return _text(rec, limits, named, front)


def _cell(iv: Interval) -> str:
    if not math.isfinite(iv.mean):
        return "n/a"
    if not math.isfinite(iv.half_width):
        return f"{iv.mean:.4g}"
    return f"{iv.mean:.4g} [{iv.low:.4g}, {iv.high:.4g}]"


def _text(rec: Recommendation, limits: Sequence[Limit], named: list[str], front: set[int]) -> str:
    buffer = StringIO()
    console = Console(file=buffer, width=200)
    if rec.feasible:
        keys = list(rec.feasible[0].point)
        table = Table("rank", "front", *keys, *(f"{m} [95% CI]" for m in named))
        for i, c in enumerate(rec.feasible, 1):
            mark = "*" if id(c) in front else ""
            point = [str(c.point[k]) for k in keys]
            table.add_row(str(i), mark, *point, *(_cell(c.interval(m)) for m in named))
        console.print(table)
        console.print(f"* on the Pareto front of {', '.join(rec.objectives)} (means; lower is "
                      "better). Limits judged on the upper end of the 95% interval.")  # fmt: skip
        return buffer.getvalue()
    console.print("No setting meets every limit (judged on the upper end of the 95% interval).")
    for b in rec.binding:
        best = "no setting has an interval" if not math.isfinite(b.best_high) else (
            f"best upper end {b.best_high:.4g} ({_point(b.best_point)})"
        )  # fmt: skip
        console.print(f"  {b.limit.metric} <= {b.limit.maximum:g}: failed by {b.failing} of "
                      f"{b.settings} settings; {best}")  # fmt: skip
    if rec.closest is not None:
        failed = [lim for lim in limits if not _meets(rec.closest, lim)]
        misses = ", ".join(
            f"{lim.metric} {_cell(rec.closest.interval(lim.metric))} > {lim.maximum:g}"
            for lim in failed
        )
        console.print(f"Closest: {_point(rec.closest.point)}, missing {misses}")
    return buffer.getvalue()


def _meets(c: Candidate, limit: Limit) -> bool:
    high = c.interval(limit.metric).high
    return math.isfinite(high) and high <= limit.maximum


def _point(point: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in dict(point or {}).items()) or "the only setting"
