"""``veilcast compare``: metrics of many runs, grouped by the swept keys, with 95% intervals.

Reads run folders lazily (a polars scan over their metrics tables) and only complete runs.
Intervals are Student-t 95% over replications, NaN with fewer than two.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import polars as pl
from scipy import stats

from sim import io


def find_runs(dirs: Sequence[Path]) -> list[Path]:
    """Complete run folders under each of ``dirs`` (a results root, a scenario or a run)."""
    found: set[Path] = set()
    for root in dirs:
        for manifest in [
            root / io.MANIFEST,
            *root.glob(f"*/{io.MANIFEST}"),
            *root.glob(f"*/*/{io.MANIFEST}"),
        ]:
            if io.is_complete(manifest.parent):
                found.add(manifest.parent.resolve())
    return sorted(found)


def setting_label(point: dict[str, object]) -> str:
    """A sweep point as ``key=value, ...`` (``base`` without a sweep)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(point.items())) or "base"


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and Student-t 95% half-width over ``values`` (half-width NaN below two values)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    mean = math.fsum(finite) / len(finite)
    if len(finite) < 2:
        return mean, math.nan
    var = math.fsum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return mean, float(stats.t.ppf(0.975, len(finite) - 1)) * math.sqrt(var / len(finite))


def load_metrics(runs: Sequence[Path]) -> pl.DataFrame:
    """Every metric of every run, with its scenario, setting and replication."""
    frames = []
    for run in runs:
        manifest = json.loads((run / io.MANIFEST).read_text())
        frames.append(
            pl.scan_parquet(run / "tables" / "metrics.parquet")
            .select("run_id", "metric", "value")
            .with_columns(
                scenario=pl.lit(manifest["scenario"]["name"]),
                setting=pl.lit(setting_label(manifest.get("point", {}))),
                replication=pl.lit(manifest.get("replication", 0)),
            )
        )
    if not frames:
        return pl.DataFrame(
            schema={
                "run_id": pl.String,
                "metric": pl.String,
                "value": pl.Float64,
                "scenario": pl.String,
                "setting": pl.String,
                "replication": pl.Int64,
            }
        )
    return pl.concat(frames).collect()


def summarize(metrics: pl.DataFrame) -> pl.DataFrame:
    """Mean, 95% half-width and run count per (scenario, setting, metric)."""
    rows = []
    groups = metrics.group_by(["scenario", "setting", "metric"], maintain_order=True)
    for (scenario, setting, metric), group in groups:
        mean, half = t_interval(group["value"].to_list())
        rows.append(
            {
                "scenario": scenario,
                "setting": setting,
                "metric": metric,
                "mean": mean,
                "ci95": half,
                "runs": group.height,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "scenario": pl.String,
            "setting": pl.String,
            "metric": pl.String,
            "mean": pl.Float64,
            "ci95": pl.Float64,
            "runs": pl.Int64,
        },
    ).sort(["scenario", "metric", "setting"])


def compare_dirs(dirs: Sequence[Path]) -> pl.DataFrame:
    """The comparison table of every complete run under ``dirs``."""
    return summarize(load_metrics(find_runs(dirs)))


def render(frame: pl.DataFrame, fmt: str) -> str:
    """The table as text: ``table`` (rich), ``csv`` or ``json``."""
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "json":
        return json.dumps(frame.to_dicts(), indent=2, default=str)
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(*frame.columns)
    for row in frame.iter_rows():
        table.add_row(*(_cell(v) for v in row))
    buffer = StringIO()
    Console(file=buffer, width=160).print(table)
    return buffer.getvalue()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    return str(value)
