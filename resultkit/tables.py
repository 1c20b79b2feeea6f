"""The intervals of :mod:`resultkit.intervals` over polars frames of metric rows.

A frame holds one row per (run, metric) with the run's setting in one or more columns, its
world seed and the metric's value. :func:`summarize` gives each group's mean and Student-t
interval; :func:`differences` each setting against its baseline setting, paired by world where
worlds are shared, Welch otherwise. The arithmetic is the scalar functions' own, called once
per group, so a frame and a hand computation can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from resultkit.intervals import LEVEL, difference, mean_interval

SUMMARY_COLUMNS = ("n", "mean", "std", "half_width", "low", "high")
DIFFERENCE_COLUMNS = ("baseline", "diff", "diff_half_width", "diff_low", "diff_high", "pairs")


def summarize(
    frame: pl.DataFrame, by: Sequence[str], *, value: str = "value", level: float = LEVEL
) -> pl.DataFrame:
    """Per group of ``by``: ``n`` (finite values), ``mean``, ``std``, ``half_width``, ``low``,
    ``high``; groups in order of first appearance.

    A group whose values are all NaN (the metric does not apply) has ``n = 0`` and NaN
    everywhere; one value gives a mean with NaN bounds.
    """
    groups = frame.group_by(list(by), maintain_order=True).agg(pl.col(value).cast(pl.Float64))
    rows: list[dict[str, Any]] = []
    for row in groups.iter_rows(named=True):
        iv = mean_interval(row.pop(value), level=level)
        rows.append(
            row
            | {
                "n": iv.n,
                "mean": iv.mean,
                "std": iv.std,
                "half_width": iv.half_width,
                "low": iv.low,
                "high": iv.high,
            }
        )
    schema = (
        {k: frame.schema[k] for k in by}
        | {"n": pl.Int64}
        | dict.fromkeys(SUMMARY_COLUMNS[1:], pl.Float64)
    )
    return pl.DataFrame(rows, schema=schema)


def differences(
    frame: pl.DataFrame,
    *,
    keys: Sequence[str],
    base_keys: Sequence[str],
    by: Sequence[str] = ("metric",),
    world: str = "world_seed",
    value: str = "value",
    level: float = LEVEL,
) -> pl.DataFrame:
    """Each setting's difference to its baseline setting, per group of ``by``.

    Args:
        frame: metric rows with ``by``, ``keys``, ``base_keys``, ``world`` and ``value``.
        keys: the columns naming a row's setting.
        base_keys: as many columns naming the row's baseline setting (the same for every row of
            a setting); a setting whose ``keys`` equal its ``base_keys`` is a baseline.
        by: what is compared separately (the metric, and the scenario where several are read).
        world: the world seed (null when unknown): settings' runs on one world are paired.
        value: the metric's value.
        level: confidence level.

    Returns:
        One row per group of ``by`` and ``keys`` (order of first appearance): ``baseline``,
        ``diff``, ``diff_half_width``, ``diff_low``, ``diff_high``, ``pairs`` and ``paired``
        (see :func:`resultkit.intervals.difference`). All null on baseline rows and where the
        baseline setting has no row of that group; NaN where it has rows but no finite value.

    Raises:
        ValueError: If ``keys`` and ``base_keys`` differ in length.
    """
    if len(keys) != len(base_keys):
        raise ValueError("keys and base_keys must name as many columns")
    by, keys, base_keys = list(by), list(keys), list(base_keys)
    grouped = frame.group_by([*by, *keys], maintain_order=True).agg(
        pl.col(world), pl.col(value).cast(pl.Float64), *(pl.col(b).first() for b in base_keys)
    )
    runs: dict[tuple[Any, ...], list[tuple[Any, Any]]] = {}
    for row in grouped.iter_rows(named=True):
        ident = tuple(row[c] for c in [*by, *keys])
        runs[ident] = list(zip(row[world], row[value], strict=True))
    rows: list[dict[str, Any]] = []
    for row in grouped.iter_rows(named=True):
        own = tuple(row[c] for c in keys)
        base = tuple(row[c] for c in base_keys)
        group = tuple(row[c] for c in by)
        out = {c: row[c] for c in [*by, *keys]} | dict.fromkeys((*DIFFERENCE_COLUMNS[1:], "paired"))
        out["baseline"] = own == base
        if own != base and (*group, *base) in runs:
            d = difference(runs[(*group, *own)], runs[(*group, *base)], level=level)
            out |= {
                "diff": d.diff,
                "diff_half_width": d.half_width,
                "diff_low": d.low,
                "diff_high": d.high,
                "pairs": d.pairs,
                "paired": d.paired,
            }
        rows.append(out)
    schema = (
        {c: frame.schema[c] for c in [*by, *keys]}
        | {"baseline": pl.Boolean}
        | dict.fromkeys(DIFFERENCE_COLUMNS[1:5], pl.Float64)
        | {"pairs": pl.Int64, "paired": pl.Boolean}
    )
    return pl.DataFrame(rows, schema=schema)
