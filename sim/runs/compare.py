"""``veilcast compare``: metrics of many runs, grouped by the swept keys, with 95% intervals.

Reading (:func:`find_runs`, :func:`read_runs`, :func:`scan_metrics`) opens only manifests and
one lazy polars scan over every run's metrics table, so thousands of runs never sit in memory
as frames. The statistics (:func:`summarize`, :func:`differences`, :func:`compare`) are pure:
polars in, polars out, nothing read or written; the intervals themselves are
:mod:`resultkit`'s, the one implementation the dashboard uses too.

The settings compared are the *varying keys*: the dotted settings whose value differs between
the runs of one scenario (the swept keys, and any ``--set`` that gave a scenario two variants),
so runs of different settings are never averaged together. Within each setting, a metric's
mean has a Student-t 95% interval over its runs. Against a baseline setting, the difference is
**paired by world**: runs that share a world seed (the same replication of the same root seed,
SPEC section 2) differ only by the setting, so the interval is over per-world differences, which
cancels the world-to-world noise. Where no world is shared (runs of different root seeds),
Welch's unpaired interval is used instead (``paired`` false). An interval needs two values (two
runs, or two shared worlds); below that it is NaN.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import polars as pl

from resultkit import tables
from sim.errors import InputError
from sim.results import io
from sim.scenario.problems import flatten_table

Format = Literal["table", "csv", "json"]

# fmt: off
RUN_SCHEMA: dict[str, Any] = {
    "path": pl.String, "run_id": pl.String, "scenario": pl.String, "replication": pl.Int64,
    "world_seed": pl.Int64, "order": pl.Int64, "swept": pl.List(pl.String),
}
"""Columns of :func:`read_runs` before the settings (one String column per dotted key);
``swept`` lists the keys of the run's sweep point."""
# fmt: on
RUN_COLUMNS = tuple(RUN_SCHEMA)

NOT_SETTINGS = frozenset({"name", "seed", "replications", "sweep"})
"""Scenario keys that never make two settings: identity, seeds and the sweep itself."""


# --- reading ------------------------------------------------------------------------------------


def find_runs(dirs: Sequence[Path], skipped: list[str] | None = None) -> list[Path]:
    """Complete run folders under each of ``dirs`` (a results root, a scenario or a run).

    Hidden folders (runs still being written, or left half-written by a kill) are skipped even
    when they hold a manifest. A run folder or manifest that is a symlink leading out of the
    folder given, or a manifest that cannot be read (not a regular file, too large, not a JSON
    object), is skipped with one line of why appended to ``skipped``; failed runs are left out
    silently, as they hold nothing to compare.
    """
    found: set[Path] = set()
    for root in dirs:
        try:
            real_root = root.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        for manifest in [
            root / io.MANIFEST,
            *root.glob(f"*/{io.MANIFEST}"),
            *root.glob(f"*/*/{io.MANIFEST}"),
        ]:
            folder = manifest.parent
            hidden = any(part.startswith(".") for part in folder.relative_to(root).parts)
            if hidden or not os.path.lexists(manifest):
                continue
            real, why = _inside(real_root, folder, manifest)
            if real is None:
                _note(skipped, folder, why)
                continue
            try:
                status = io.read_manifest(folder).get("status")
            except io.UnreadableError as exc:
                _note(skipped, folder, str(exc))
                continue
            if status == "complete":
                found.add(real)
    return sorted(found)


def _inside(root: Path, *paths: Path) -> tuple[Path | None, str]:
    """The real path of ``paths[0]`` if every one of ``paths`` resolves inside ``root``."""
    try:
        real = [p.resolve(strict=True) for p in paths]
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        return None, f"cannot resolve: {getattr(exc, 'strerror', None) or exc}"
    for path, resolved in zip(paths, real, strict=True):
        if not resolved.is_relative_to(root):
            return None, f"{path.name} is a symlink out of {root}"
    return real[0], ""


def _note(skipped: list[str] | None, folder: Path, why: str) -> None:
    if skipped is not None:
        skipped.append(f"{folder}: {why}")


def _manifest_row(folder: Path) -> dict[str, Any]:
    """The run's row of :func:`read_runs` without settings' text, from its manifest.

    Raises:
        io.UnreadableError: the manifest is unreadable or a field has the wrong type.
    """
    manifest = io.read_manifest(folder)
    scenario = manifest.get("scenario", {})
    if not isinstance(scenario, dict):
        raise io.UnreadableError(f"{io.MANIFEST}: scenario is not a table")
    run_id = manifest.get("run_id", folder.name)
    name = scenario.get("name", folder.parent.name)
    point = manifest.get("point") or {}
    replication, world_seed = manifest.get("replication"), manifest.get("world_seed")
    checks = {
        "run_id": isinstance(run_id, str) and run_id != "",
        "scenario.name": isinstance(name, str),
        "point": isinstance(point, dict),
        "replication": replication is None or _int64(replication),
        "world_seed": world_seed is None or _int64(world_seed),
    }
    wrong = [key for key, ok in checks.items() if not ok]
    if wrong:
        raise io.UnreadableError(f"{io.MANIFEST}: {', '.join(wrong)} of the wrong type")
    return {
        "run_id": run_id,
        "scenario_table": scenario,
        "scenario": name,
        "replication": replication,
        "world_seed": world_seed,
        "swept": sorted(str(k) for k in point),
    }


def _int64(value: object) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


METRICS_COLUMNS = {"run_id": pl.String, "metric": pl.String}
"""Columns a metrics table must have with these types (and a numeric ``value``)."""


def metrics_path(folder: Path) -> Path:
    """Where a run folder's metrics table is."""
    return folder / "tables" / "metrics.parquet"


def check_metrics(folder: Path) -> None:
    """Read the run's metrics table once, so a damaged one is found before the comparison.

    Raises:
        io.UnreadableError: missing, not a regular file inside the run folder, not Parquet
            (truncated, corrupt), or without the metrics columns.
    """
    path = metrics_path(folder)
    real, why = _inside(folder.resolve(), path)
    if real is None:
        raise io.UnreadableError(f"metrics.parquet: {why}")
    if not stat.S_ISREG(real.stat().st_mode):
        raise io.UnreadableError("metrics.parquet: not a regular file")
    try:
        frame = pl.read_parquet(real, columns=["run_id", "metric", "value"])
    except Exception as exc:  # polars raises many kinds for a damaged file; any means unusable
        raise io.UnreadableError(f"metrics.parquet: unreadable ({type(exc).__name__})") from None
    bad = [c for c, kind in METRICS_COLUMNS.items() if frame.schema[c] != kind]
    if bad or not frame.schema["value"].is_numeric():
        raise io.UnreadableError("metrics.parquet: columns of the wrong type")


def setting_text(value: object) -> str:
    """A setting's value as text: strings as they are, anything else as JSON (``0.05``)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def read_runs(folders: Sequence[Path], skipped: list[str] | None = None) -> pl.DataFrame:
    """One row per run (the first of equal run ids): :data:`RUN_COLUMNS`, then every setting.

    ``order`` is the run's position in its scenario's ``sweep.json`` (the order of the
    ``[sweep]`` values), null when the run is not listed there. A run whose manifest has
    fields of the wrong type, or whose metrics table is damaged, is left out with one line of
    why appended to ``skipped``.
    """
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    orders: dict[Path, dict[str, int]] = {}
    for folder in folders:
        try:
            row = _manifest_row(folder)
            check_metrics(folder)
        except (io.UnreadableError, OSError) as exc:
            _note(skipped, folder, str(exc))
            continue
        run_id = row["run_id"]
        if run_id in seen:
            continue
        seen.add(run_id)
        if folder.parent not in orders:
            orders[folder.parent] = _sweep_order(folder.parent / "sweep.json")
        settings, _ = flatten_table(row.pop("scenario_table"))
        rows.append(
            {"path": str(folder), "order": orders[folder.parent].get(run_id)}
            | row
            | {k: setting_text(v) for k, v in settings.items() if k not in NOT_SETTINGS}
        )
    settings = dict.fromkeys((k for row in rows for k in row if k not in RUN_SCHEMA), pl.String)
    return pl.DataFrame(rows, schema=RUN_SCHEMA | settings)


def _sweep_order(path: Path) -> dict[str, int]:
    try:
        runs = io.read_json(path).get("runs", [])
        return {str(run["run_id"]): index for index, run in enumerate(runs)}
    except (io.UnreadableError, AttributeError, TypeError, KeyError):
        return {}


def varying_keys(runs: pl.DataFrame) -> list[str]:
    """Settings whose value differs between runs of one scenario, in the scenario file's order."""
    settings = [c for c in runs.columns if c not in RUN_COLUMNS]
    if runs.is_empty() or not settings:
        return []
    counts = runs.group_by("scenario").agg(pl.col(settings).n_unique())
    return [key for key in settings if counts[key].max() > 1]  # type: ignore[operator]


def scan_metrics(
    runs: pl.DataFrame, keys: Sequence[str], prefixes: Sequence[str] = ()
) -> pl.LazyFrame:
    """Every metric of ``runs`` (at least one) with its scenario, world seed and ``keys``, as a
    lazy scan; ``prefixes`` keeps only the metrics whose name starts with one of them."""
    paths = [str(metrics_path(Path(p))) for p in runs["path"]]
    lazy = pl.scan_parquet(paths).select("run_id", "metric", pl.col("value").cast(pl.Float64))
    if prefixes:
        lazy = lazy.filter(pl.any_horizontal(pl.col("metric").str.starts_with(p) for p in prefixes))
    info = runs.lazy().select("run_id", "scenario", "world_seed", "order", *keys)
    return lazy.join(info, on="run_id", how="inner")


# --- statistics (pure) --------------------------------------------------------------------------


def summarize(metrics: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Per (scenario, setting, metric): ``runs`` (finite values), ``mean``, ``ci95`` (the
    Student-t half-width), ``low`` and ``high``; ``std`` is kept for :func:`differences`.

    The intervals are :func:`resultkit.tables.summarize`'s, the dashboard's own."""
    out = tables.summarize(metrics, ["scenario", *keys, "metric"])
    return out.rename({"n": "runs", "half_width": "ci95"}).select(
        "scenario", *keys, "metric", "runs", "mean", "std", "ci95", "low", "high"
    )


def differences(
    metrics: pl.DataFrame, keys: Sequence[str], baselines: pl.DataFrame
) -> pl.DataFrame:
    """Per (scenario, setting, metric): the difference to its baseline setting's mean.

    Args:
        metrics: rows ``scenario, world_seed, metric, value`` and the ``keys`` columns.
        keys: the setting columns.
        baselines: per ``scenario``, the baseline's value of each key as column ``b:<key>``
            (null: compare within the row's own value of that key).

    Returns:
        ``scenario, *keys, metric, baseline`` (the row is its own baseline), ``diff``,
        ``diff_ci95``, ``diff_low``, ``diff_high``, ``pairs`` (shared worlds) and ``paired``.
        Paired by world where any world is shared, else Welch (both from
        :func:`resultkit.tables.differences`); null on baseline rows and where the baseline
        has no such metric.
    """
    bcols = [f"b:{k}" for k in keys]
    rows = metrics.join(baselines, on="scenario", how="left").with_columns(
        pl.coalesce(pl.col(f"b:{k}"), pl.col(k)).alias(f"b:{k}") for k in keys
    )  # each row's baseline setting
    out = tables.differences(rows, keys=keys, base_keys=bcols, by=["scenario", "metric"])
    return out.rename({"diff_half_width": "diff_ci95"}).select(
        "scenario", *keys, "metric", *_DIFF_COLUMNS
    )


def baselines(
    settings: pl.DataFrame,
    keys: Sequence[str],
    spec: Mapping[str, str] | None = None,
    *,
    swept: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Per scenario, the baseline setting as columns ``b:<key>``.

    Without ``spec``: each scenario's first setting (``settings`` in order: the first value of
    every swept key) fixes the ``swept`` keys (default: all); a key that varies without being
    swept (a ``--set`` variant) is left null. With ``spec``
    (``{"privacy.order_flow": "transparent"}``): its keys are fixed, the others left null.
    A null key is compared within the row's own value of it: each propagation mode against
    the transparent run of the same propagation mode, say.

    Raises:
        InputError: a spec key is not a varying key, or no setting has the value asked for.
    """
    names = [f"b:{k}" for k in keys]
    schema = {"scenario": pl.String} | dict.fromkeys(names, pl.String)
    if not spec:
        first = set(keys if swept is None else swept)
        firsts = settings.group_by("scenario", maintain_order=True).first()
        none = pl.lit(None, dtype=pl.String)
        return firsts.select(
            "scenario", *[(pl.col(k) if k in first else none).alias(f"b:{k}") for k in keys]
        )
    fixed = {key: _match(settings, keys, key, text) for key, text in spec.items()}
    rows = [
        {"scenario": s} | {f"b:{k}": fixed.get(k) for k in keys}
        for s in settings["scenario"].unique(maintain_order=True)
    ]
    return pl.DataFrame(rows, schema=schema)


def _match(settings: pl.DataFrame, keys: Sequence[str], key: str, text: str) -> str:
    """The stored value of ``key`` equal to ``text`` (as text, or as a number: 0 = 0.0)."""
    if key not in keys:
        shown = ", ".join(keys) or "none: the runs have one setting"
        raise InputError(f"--baseline: {key} is not a compared key (compared keys: {shown})")
    values = settings[key].drop_nulls().unique(maintain_order=True).to_list()
    for value in values:
        if value == text or _number(value) == _number(text) is not None:
            return str(value)
    raise InputError(f"--baseline: no run has {key}={text} (values: {', '.join(values)})")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def settings_of(metrics: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """The distinct settings (``scenario`` and ``keys``) in order: sweep order, then by value."""
    order = pl.col("order") if "order" in metrics.columns else pl.lit(None, dtype=pl.Int64)
    return (
        metrics.group_by(["scenario", *keys])
        .agg(order.min().alias("order"))
        .sort(["scenario", "order", *keys], nulls_last=True)
    )


def compare(
    metrics: pl.DataFrame,
    keys: Sequence[str],
    spec: Mapping[str, str] | None = None,
    *,
    swept: Sequence[str] | None = None,
) -> pl.DataFrame:
    """The comparison table: :func:`summarize` joined with :func:`differences` against the
    baseline of :func:`baselines`, sorted by scenario, metric and setting order."""
    by = ["scenario", *keys, "metric"]
    settings = settings_of(metrics, keys)
    base = baselines(settings, keys, spec, swept=swept)
    table = summarize(metrics, keys).join(
        differences(metrics, keys, base), on=by, how="left", nulls_equal=True
    )
    rank = settings.with_row_index("_rank").drop("order")
    return (
        table.join(rank, on=["scenario", *keys], how="left", nulls_equal=True)
        .sort(["scenario", "metric", "_rank"])
        .select(*by, "runs", "mean", "ci95", "low", "high", *_DIFF_COLUMNS)
    )


_DIFF_COLUMNS = ("baseline", "diff", "diff_ci95", "diff_low", "diff_high", "pairs", "paired")


def compare_dirs(
    dirs: Sequence[Path],
    *,
    baseline: Mapping[str, str] | None = None,
    metrics: Sequence[str] = (),
    skipped: list[str] | None = None,
) -> pl.DataFrame:
    """The comparison table of every complete run under ``dirs``.

    Args:
        dirs: results roots, scenario folders or run folders.
        baseline: the baseline setting (see :func:`baselines`); default each scenario's first.
        metrics: metric name prefixes to keep (``("privacy.", "market.brier")``); all if empty.
        skipped: where to append one line per damaged run left out (see :func:`find_runs`
            and :func:`read_runs`); the rest are compared.

    Raises:
        InputError: a folder is missing, no complete run was found, a ``metrics`` prefix
            matches no metric, or a bad ``baseline``.
    """
    for folder in dirs:
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder")
    runs = read_runs(find_runs(dirs, skipped), skipped)
    if runs.is_empty():
        raise InputError(f"{', '.join(map(str, dirs))}: no complete run found")
    keys = varying_keys(runs)
    swept = [k for k in keys if k in set(runs["swept"].explode().drop_nulls())]
    frame = scan_metrics(runs, keys, metrics).collect()
    names = frame["metric"].unique()
    for prefix in metrics:
        if not names.str.starts_with(prefix).any():
            raise InputError(f"--metric: no metric starts with {prefix!r}")
    return compare(frame, keys, baseline, swept=swept)


# --- output -------------------------------------------------------------------------------------


def render(frame: pl.DataFrame, fmt: Format) -> str:
    """The table as text: ``table`` (rich, for people), ``csv`` or ``json`` (every column; NaN
    and not-applicable values as empty / null)."""
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "json":
        rows = [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dicts()]
        return json.dumps(rows, indent=2, allow_nan=False)
    return _rich_table(frame)


def _json_value(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _rich_table(frame: pl.DataFrame) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    first = frame.columns.index("metric")
    keys = frame.columns[1:first]
    scenarios = frame["scenario"].n_unique() > 1
    table = Table(*(["scenario"] if scenarios else []), *keys, "metric", "runs")
    table.add_column("mean ± 95% CI", justify="right")
    table.add_column("Δ vs baseline ± 95% CI", justify="right")
    for row in frame.iter_rows(named=True):
        cells = [row["scenario"]] if scenarios else []
        cells += [str(row[k]) for k in keys] + [row["metric"], str(row["runs"])]
        table.add_row(*cells, _pm(row["mean"], row["ci95"]), _difference(row))
    buffer = StringIO()
    Console(file=buffer, width=200).print(table)
    return buffer.getvalue()


def _difference(row: Mapping[str, Any]) -> str:
    if row["baseline"]:
        return "baseline"
    if row["diff"] is None or math.isnan(row["diff"]):
        return "n/a"
    return _pm(row["diff"], row["diff_ci95"]) + (
        f" (paired, {row['pairs']})" if row["paired"] else " (unpaired)"
    )


def _pm(mean: float | None, half: float | None) -> str:
    if mean is None or math.isnan(mean):
        return "n/a"
    if half is None or math.isnan(half):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {half:.2g}"
