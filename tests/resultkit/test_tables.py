"""Frame-level summaries and differences equal the scalar functions, group by group."""

from __future__ import annotations

import math

import polars as pl
import pytest
from scipy import stats

from resultkit.intervals import difference, mean_interval
from resultkit.tables import differences, summarize

BASE = [4.0, 5.0, 8.0, 5.0]
MODE = [5.0, 7.0, 9.0, 6.0]


def _rows(setting: str, values: list[float], worlds: list[int | None]) -> list[dict[str, object]]:
    return [
        {"metric": "m", "mode": setting, "base": "base", "world_seed": w, "value": v}
        for w, v in zip(worlds, values, strict=True)
    ]


def test_summary_per_group_is_the_scalar_interval() -> None:
    frame = pl.DataFrame(
        _rows("base", BASE, [0, 1, 2, 3]) + _rows("x", [1.0, math.nan], [0, 1])
    ).with_columns(pl.col("world_seed").cast(pl.Int64))
    out = summarize(frame, ["metric", "mode"])
    assert out["mode"].to_list() == ["base", "x"]
    base = out.row(0, named=True)
    iv = mean_interval(BASE)
    assert (base["n"], base["mean"], base["half_width"]) == (iv.n, iv.mean, iv.half_width)
    low, high = stats.ttest_1samp(BASE, 0.0).confidence_interval(0.95)
    assert (base["low"], base["high"]) == pytest.approx((low, high), rel=1e-12)
    x = out.row(1, named=True)
    assert x["n"] == 1 and x["mean"] == 1.0 and math.isnan(x["high"])


def test_differences_pair_by_world_or_fall_back_to_welch() -> None:
    paired = pl.DataFrame(_rows("base", BASE, [0, 1, 2, 3]) + _rows("x", MODE, [0, 1, 2, 3]))
    apart = pl.DataFrame(_rows("base", BASE, [0, 1, 2, 3]) + _rows("x", MODE, [7, 8, 9, 10]))
    for frame, scipy_ci in (
        (paired, stats.ttest_rel(MODE, BASE).confidence_interval(0.95)),
        (apart, stats.ttest_ind(MODE, BASE, equal_var=False).confidence_interval(0.95)),
    ):
        out = differences(frame, keys=["mode"], base_keys=["base"])
        base, x = out.row(0, named=True), out.row(1, named=True)
        assert base["baseline"] and base["diff"] is None and base["paired"] is None
        assert not x["baseline"] and x["diff"] == pytest.approx(1.25)
        assert (x["diff_low"], x["diff_high"]) == pytest.approx(tuple(scipy_ci), rel=1e-12)
        worlds = frame["world_seed"].to_list()
        values = frame["value"].to_list()
        expect = difference(
            list(zip(worlds[4:], values[4:], strict=True)),
            list(zip(worlds[:4], values[:4], strict=True)),
        )
        assert x["diff_half_width"] == expect.half_width and x["paired"] == expect.paired
    assert differences(paired, keys=["mode"], base_keys=["base"])["pairs"].to_list() == [None, 4]


def test_a_missing_baseline_gives_no_difference_and_a_nan_one_gives_nan() -> None:
    frame = pl.DataFrame(_rows("x", MODE, [0, 1, 2, 3]))
    out = differences(frame, keys=["mode"], base_keys=["base"])
    assert out["diff"].to_list() == [None]  # no baseline rows at all: nothing to say
    nan_base = pl.DataFrame(
        _rows("base", [math.nan] * 4, [0, 1, 2, 3]) + _rows("x", MODE, [0, 1, 2, 3])
    )
    row = differences(nan_base, keys=["mode"], base_keys=["base"]).row(1, named=True)
    assert math.isnan(row["diff"]) and not row["paired"]
    with pytest.raises(ValueError, match="as many"):
        differences(frame, keys=["mode"], base_keys=[])
