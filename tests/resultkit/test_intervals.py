"""Intervals recomputed by independent routes: a printed t table, closed forms, hand sums,
scipy's own implementation, and the coverage a 95% interval must have."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from scipy import stats

from resultkit import intervals
from resultkit.intervals import (
    difference,
    mean_interval,
    paired_deltas,
    paired_difference,
    t_critical,
    welch_difference,
)

# Two-sided 95% critical values t_{0.975, ν} as printed in every statistics table
# (e.g. NIST/SEMATECH e-Handbook of Statistical Methods, table 1.4.2.3, three decimals).
T_TABLE_975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 100: 1.984,
}  # fmt: skip
# The same table's 90% and 99% columns.
T_TABLE_950 = {1: 6.314, 2: 2.920, 5: 2.015, 10: 1.812, 30: 1.697}
T_TABLE_995 = {1: 63.657, 2: 9.925, 5: 4.032, 10: 3.169, 30: 2.750}


def _table_errors(critical: Callable[..., float]) -> list[str]:
    """Where ``critical`` disagrees with the printed table beyond its rounding (half a unit in
    the third decimal)."""
    bad = []
    for level, table in ((0.95, T_TABLE_975), (0.90, T_TABLE_950), (0.99, T_TABLE_995)):
        for dof, printed in table.items():
            got = critical(dof, level=level)
            if not abs(got - printed) <= 0.0005 + 1e-12:
                bad.append(f"level {level}, dof {dof}: {got} vs {printed}")
    return bad


def test_critical_values_match_the_printed_t_table() -> None:
    assert _table_errors(t_critical) == []


def test_the_table_catches_a_normal_quantile_in_place_of_students() -> None:
    # The planted bug this table guards against: z = 1.96 for every sample size.
    def normal(dof: float, *, level: float = 0.95) -> float:
        return stats.norm.ppf(0.5 + level / 2)

    assert len(_table_errors(normal)) > 10
    # ... and one degree of freedom too many (n instead of n - 1).
    assert _table_errors(lambda dof, level=0.95: t_critical(dof + 1, level=level))


def test_closed_forms_for_one_two_and_four_degrees_of_freedom() -> None:
    for level in (0.5, 0.8, 0.95, 0.99, 0.999):
        p = 0.5 + level / 2
        assert t_critical(1, level=level) == pytest.approx(math.tan(math.pi * (p - 0.5)), 1e-12)
        assert t_critical(2, level=level) == pytest.approx(
            (2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-12
        )
        # ν = 4: t = 2·√(q - 1), q = cos(arccos(√α)/3)/√α, α = 4p(1 - p) (Hill 1970)
        alpha = 4 * p * (1 - p)
        q = math.cos(math.acos(math.sqrt(alpha)) / 3) / math.sqrt(alpha)
        assert t_critical(4, level=level) == pytest.approx(2 * math.sqrt(q - 1), rel=1e-12)


@pytest.mark.parametrize("level", [0.5, 0.9, 0.95, 0.99, 0.999])
def test_critical_values_agree_with_scipy_also_fractional_and_large(level: float) -> None:
    dofs = [1, 1.0001, 1.5, 2.7, 3, 7, 14.9, 15.1, 33.3, 150, 999, 1000, 1001, 5e4, 1e8]
    for dof in dofs:
        assert t_critical(dof, level=level) == pytest.approx(
            stats.t.ppf(0.5 + level / 2, dof), rel=2e-13
        ), dof
    assert t_critical(math.inf, level=level) == pytest.approx(stats.norm.ppf(0.5 + level / 2))


def test_no_degrees_of_freedom_gives_nan_and_a_bad_level_is_refused() -> None:
    for dof in (0, 0.5, -3, math.nan):
        assert math.isnan(t_critical(dof))
    with pytest.raises(ValueError, match="level"):
        t_critical(3, level=1.0)


def test_mean_interval_by_hand() -> None:
    # 1, 2, 3: mean 2, s = 1, half-width t(0.975, 2) / √3 with t(0.975, 2) = 4.3027 (closed form)
    iv = mean_interval([1.0, 2.0, 3.0])
    assert (iv.n, iv.mean, iv.std) == (3, 2.0, 1.0)
    assert iv.half_width == pytest.approx(0.95 * math.sqrt(2 / (4 * 0.975 * 0.025)) / math.sqrt(3))
    assert (iv.low, iv.high) == pytest.approx((2.0 - 2.4841, 2.0 + 2.4841), abs=1e-4)
    low, high = stats.ttest_1samp([1.0, 2.0, 3.0], 0.0).confidence_interval(0.95)
    assert (iv.low, iv.high) == pytest.approx((low, high), rel=1e-12)


def test_not_applicable_values_are_left_out_never_zero() -> None:
    iv = mean_interval([math.nan, 4.0, None, math.inf, 6.0, True])  # type: ignore[list-item]
    assert iv.n == 2 and iv.mean == 5.0
    one = mean_interval([7.0, math.nan])
    assert one.n == 1 and one.mean == 7.0 and math.isnan(one.half_width) and math.isnan(one.low)
    none = mean_interval([math.nan])
    assert none.n == 0 and math.isnan(none.mean) and math.isnan(none.high)


def test_the_order_of_the_values_does_not_change_a_bit() -> None:
    values = [0.1 * i + 1e-9 * i * i for i in range(41)]
    shuffled = values[:]
    random.Random(3).shuffle(shuffled)
    assert mean_interval(values) == mean_interval(shuffled)


def test_95_percent_intervals_cover_the_true_mean_95_percent_of_the_time() -> None:
    rng = random.Random(20261203)
    trials, covered = 4000, 0
    for _ in range(trials):
        iv = mean_interval([rng.gauss(10.0, 3.0) for _ in range(4)])
        covered += iv.low <= 10.0 <= iv.high
    # binomial sd at 4000 trials is 0.34 percentage points: 4 sd either side
    assert abs(covered / trials - 0.95) < 0.014


def test_welch_by_hand_and_against_scipy() -> None:
    a, b = [5.0, 7.0, 9.0, 6.0], [4.0, 5.0, 8.0, 5.0, 3.0]
    d = welch_difference(a, b)
    # by hand: means 6.75 and 5; variances 2.9167 and 3.5; v = s²/n
    v1, v2 = (35 / 12) / 4, 3.5 / 5
    dof = (v1 + v2) ** 2 / (v1**2 / 3 + v2**2 / 4)
    assert d.diff == pytest.approx(1.75) and d.dof == pytest.approx(dof) and not d.paired
    assert d.half_width == pytest.approx(stats.t.ppf(0.975, dof) * math.sqrt(v1 + v2), 1e-12)
    low, high = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((low, high), rel=1e-12)


def test_welch_edge_cases() -> None:
    constant = welch_difference([2.0, 2.0], [1.0, 1.0, 1.0])
    assert constant.diff == 1.0 and constant.half_width == 0.0  # exact: no spread anywhere
    short = welch_difference([2.0], [1.0, 3.0])
    assert short.diff == 0.0 and math.isnan(short.half_width)
    empty = welch_difference([math.nan], [1.0, 3.0])
    assert math.isnan(empty.diff)


def test_paired_differences_by_hand_and_against_scipy() -> None:
    base, mode = [4.0, 5.0, 8.0, 5.0], [5.0, 7.0, 9.0, 6.0]
    d = difference(list(enumerate(mode)), list(enumerate(base)))
    # differences 1, 2, 1, 1: mean 1.25, s = 0.5, half-width t(0.975, 3) · 0.5 / 2
    assert d.paired and d.pairs == 4 and d.dof == 3 and d.diff == pytest.approx(1.25)
    assert d.half_width == pytest.approx(T_TABLE_975[3] * 0.25, abs=2e-4)
    low, high = stats.ttest_rel(mode, base).confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((low, high), rel=1e-12)


def test_pairing_is_by_world_and_falls_back_to_welch() -> None:
    base = [(10, 1.0), (11, 2.0), (12, math.nan)]
    mine = [(12, 5.0), (11, 2.5), (10, 1.5), (None, 9.0)]
    assert sorted(paired_deltas(mine, base)) == [0.5, 0.5]  # world 12 lacks a base value
    d = difference(mine, base)
    assert d.paired and d.pairs == 2 and d.diff == 0.5 and d.half_width == 0.0
    apart = difference([(1, 3.0), (2, 5.0)], [(7, 1.0), (8, 2.0)])
    assert not apart.paired and apart.pairs == 0
    assert apart == welch_difference([3.0, 5.0], [1.0, 2.0])
    one = difference([(1, 3.0), (2, 5.0)], [(1, 1.0), (8, 2.0)])
    assert one.paired and one.pairs == 1 and one.diff == 2.0 and math.isnan(one.half_width)
    assert paired_difference([]).pairs == 0 and math.isnan(paired_difference([]).diff)


def test_pairing_narrows_the_interval_when_worlds_differ_a_lot() -> None:
    worlds = [0.0, 10.0, 20.0, 30.0, 40.0]
    base = [w + n for w, n in zip(worlds, [0.1, -0.1, 0.2, 0.0, -0.2], strict=True)]
    better = [b + 1.0 + 0.05 * i for i, b in enumerate(base)]
    paired = difference(list(enumerate(better)), list(enumerate(base)))
    unpaired = difference([(9 + i, v) for i, v in enumerate(better)], list(enumerate(base)))
    assert paired.diff == pytest.approx(unpaired.diff)
    assert paired.low > 0 and unpaired.low < 0 < unpaired.high


def test_the_quantile_cache_returns_what_it_computes() -> None:
    intervals._quantile.cache_clear()
    first = t_critical(7.25)
    assert t_critical(7.25) == first == pytest.approx(stats.t.ppf(0.975, 7.25), rel=1e-13)
