"""Limits, Pareto fronts and recommendations on hand-built tables: ties, NaN metrics, and a
sweep where nothing qualifies."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from resultkit.choice import (
    Candidate,
    Limit,
    dominates,
    meets,
    pareto_front,
    pareto_layers,
    recommend,
)
from resultkit.intervals import Interval

NAN = math.nan


def _iv(mean: float, half: float = 0.1, n: int = 3) -> Interval:
    return Interval(n, mean, 1.0, half)


def _cand(name: str, **metrics: tuple[float, float] | float) -> Candidate:
    shown = {
        k.replace("__", ".", 1): _iv(*v) if isinstance(v, tuple) else _iv(v)
        for k, v in metrics.items()
    }
    return Candidate({"privacy.order_flow": name}, shown)


def _names(cands: tuple[Candidate, ...]) -> list[str]:
    return [c.point["privacy.order_flow"] for c in cands]


def test_dominance_and_fronts_by_hand() -> None:
    assert dominates([1, 1], [1, 2]) and not dominates([1, 2], [1, 2])
    assert not dominates([1, 3], [2, 2]) and not dominates([NAN, 0], [1, 1])
    points = [[1, 5], [2, 2], [5, 1], [3, 3], [2, 2], [NAN, 0], [6, 6]]
    # [3, 3] is dominated by [2, 2]; the two [2, 2] tie and stay together; NaN backs no claim
    assert pareto_front(points) == [0, 1, 2, 4]
    assert pareto_layers(points) == [0, 0, 0, 1, 0, None, 2]
    assert pareto_front([]) == [] and pareto_layers([[NAN]]) == [None]


def test_front_matches_brute_force_on_random_tables() -> None:
    rng = random.Random(5)
    for _ in range(200):
        pts = [[rng.choice([0, 1, 2, 3, NAN]) for _ in range(3)] for _ in range(rng.randint(0, 8))]
        expected = []
        for i, p in enumerate(pts):
            if any(math.isnan(x) for x in p):
                continue
            beaten = any(
                all(a <= b for a, b in zip(q, p, strict=True)) and q != p
                for q in pts
                if not any(math.isnan(x) for x in q)
            )
            if not beaten:
                expected.append(i)
        assert pareto_front(pts) == expected, pts


def test_limits_are_judged_on_the_upper_end_of_the_interval() -> None:
    limit = Limit("cost.order_latency_s", 10.0)
    assert meets(_cand("a", cost__order_latency_s=(9.0, 1.0)), limit)  # high = 10: meets
    assert not meets(_cand("b", cost__order_latency_s=(9.5, 1.0)), limit)  # mean below, high not
    assert not meets(_cand("c", cost__order_latency_s=(5.0, NAN)), limit)  # no interval: no claim
    assert not meets(_cand("d"), limit)  # metric absent: not applicable, never taken as 0


def test_recommendation_ranks_the_front_first() -> None:
    cands = [
        _cand("transparent", mev__extracted=(9.0, 1.0), cost__order_latency_s=(2.0, 0.1)),
        _cand("operator", mev__extracted=(3.0, 1.0), cost__order_latency_s=(3.0, 0.1)),
        _cand("commit_reveal", mev__extracted=(1.0, 0.5), cost__order_latency_s=(40.0, 1.0)),
        _cand("threshold", mev__extracted=(1.0, 0.5), cost__order_latency_s=(20.0, 1.0)),
        _cand("slow", mev__extracted=(1.0, 0.5), cost__order_latency_s=(20.0, 1.0)),  # a tie
    ]
    rec = recommend(
        cands,
        [Limit("cost.order_latency_s", 30.0)],
        ["mev.extracted", "cost.order_latency_s"],
    )
    assert _names(rec.feasible) == ["threshold", "slow", "operator", "transparent"]
    assert _names(rec.pareto) == ["threshold", "slow", "operator", "transparent"]
    assert rec.binding == () and rec.closest is None
    only = recommend(cands, [Limit("mev.extracted", 2.0)], ["cost.order_latency_s"])
    assert _names(only.feasible) == ["threshold", "slow", "commit_reveal"]
    assert _names(only.pareto) == ["threshold", "slow"]  # ties share the front


def test_without_objectives_the_limited_metrics_rank() -> None:
    cands = [_cand("a", cost__crypto_ops=5.0), _cand("b", cost__crypto_ops=1.0)]
    rec = recommend(cands, [Limit("cost.crypto_ops", 9.0)])
    assert rec.objectives == ("cost.crypto_ops",) and _names(rec.feasible) == ["b", "a"]


def test_a_nan_objective_ranks_last_and_is_off_the_front() -> None:
    cands = [
        _cand("a", cost__crypto_ops=NAN, mev__extracted=1.0),
        _cand("b", cost__crypto_ops=4.0, mev__extracted=1.0),
    ]
    rec = recommend(cands, [Limit("mev.extracted", 5.0)], ["cost.crypto_ops"])
    assert _names(rec.feasible) == ["b", "a"] and _names(rec.pareto) == ["b"]


def test_when_nothing_qualifies_it_says_which_limit_binds_and_how_close() -> None:
    cands = [
        _cand("transparent", mev__extracted=(9.0, 1.0), cost__order_latency_s=(2.0, 0.1)),
        _cand("threshold", mev__extracted=(1.0, 0.5), cost__order_latency_s=(20.0, 1.0)),
        _cand("nan", mev__extracted=(NAN, NAN), cost__order_latency_s=(1.0, 0.1)),
    ]
    limits = [Limit("mev.extracted", 2.0), Limit("cost.order_latency_s", 15.0)]
    rec = recommend(cands, limits, ["mev.extracted"])
    assert rec.feasible == () and rec.pareto == ()
    by_metric = {b.limit.metric: b for b in rec.binding}
    mev, latency = by_metric["mev.extracted"], by_metric["cost.order_latency_s"]
    assert (mev.failing, mev.settings) == (2, 3) and mev.best_high == 1.5
    assert mev.best_point == {"privacy.order_flow": "threshold"}
    assert latency.failing == 1 and latency.best_high == pytest.approx(1.1)
    assert rec.binding[0] is mev  # failed by the most settings first
    # every setting fails one limit; threshold misses by 21/15 - 1, transparent by 8/2 - 1,
    # the NaN one cannot be judged at all
    assert rec.closest is not None and rec.closest.point == {"privacy.order_flow": "threshold"}


def test_no_candidates_and_every_combination_of_limits_is_consistent() -> None:
    assert recommend([], [Limit("m", 1.0)]).feasible == ()
    cands = [
        Candidate({"i": str(i)}, {"a": _iv(float(i)), "b": _iv(float(5 - i))}) for i in range(6)
    ]
    for amax, bmax in itertools.product(range(7), repeat=2):
        limits = [Limit("a", amax - 0.1), Limit("b", bmax - 0.1)]
        rec = recommend(cands, limits)
        expected = [c for c in cands if all(meets(c, lim) for lim in limits)]
        assert sorted(c.point["i"] for c in rec.feasible) == sorted(c.point["i"] for c in expected)
        assert bool(rec.binding) == (not expected)
