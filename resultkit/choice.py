"""Which settings to use: limits judged on the upper end of an interval, and Pareto fronts.

Pure logic over :class:`Candidate` values (a setting and its metrics' intervals), behind
``veilcast recommend`` and the dashboard's recommendation form, so both give the same answer.

- A setting **meets** a limit ``metric ≤ maximum`` when the upper end of the metric's 95%
  interval is at most the maximum: the claim "this setting keeps the metric below the limit" is
  then backed by the interval, so the recommendation is conservative. A metric with no interval
  (NaN: not applicable, or fewer than two replications) cannot back the claim and fails.
- A setting **dominates** another when it is no worse on every objective and strictly better on
  one (smaller is better; negate a metric where larger is better). The **Pareto front** is the
  settings no other dominates (Pareto 1896; the standard multi-objective definition, e.g. Deb,
  *Multi-Objective Optimization Using Evolutionary Algorithms*, 2001, §2.4). Settings with equal
  objectives do not dominate each other, so ties stay on the front together. A setting with a
  NaN objective is neither on the front nor dominating anything: nothing can be claimed for it.
- Settings are **ranked** by non-dominated sorting (the front, then the front of the rest, ...),
  then by the objectives' means in the order they were named, then in the given order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from resultkit.intervals import Interval


@dataclass(frozen=True, slots=True)
class Limit:
    """``metric ≤ maximum``, judged on the upper end of the metric's interval."""

    metric: str
    maximum: float


@dataclass(frozen=True, slots=True)
class Candidate:
    """One setting: its swept keys' values and the intervals of its metrics over replications."""

    point: Mapping[str, Any]
    metrics: Mapping[str, Interval]

    def interval(self, metric: str) -> Interval:
        """The metric's interval; an all-NaN one when the setting does not report it."""
        return self.metrics.get(metric, Interval(0, math.nan, math.nan, math.nan))


@dataclass(frozen=True, slots=True)
class Binding:
    """A limit that settings fail, and how close the best of them came.

    ``best_high`` is the smallest upper end of the metric's interval over every setting (NaN
    when none has an interval), reached by ``best_point``; ``failing`` of ``settings`` fail it.
    """

    limit: Limit
    failing: int
    settings: int
    best_high: float
    best_point: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The settings that meet every limit, ranked; their Pareto front; and what binds.

    ``binding`` and ``closest`` are filled only when no setting meets every limit: the limits
    some setting fails (those failed by the most settings first), and the setting that fails
    the fewest limits by the least.
    """

    objectives: tuple[str, ...]
    feasible: tuple[Candidate, ...]
    pareto: tuple[Candidate, ...]
    binding: tuple[Binding, ...]
    closest: Candidate | None


def meets(candidate: Candidate, limit: Limit) -> bool:
    """Whether the upper end of the candidate's interval is at most the limit (NaN fails)."""
    high = candidate.interval(limit.metric).high
    return math.isfinite(high) and high <= limit.maximum


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` no worse than ``b`` everywhere and better somewhere (smaller is better).

    False whenever either has a NaN coordinate: an unknown value backs no claim.
    """
    if any(math.isnan(x) for x in (*a, *b)):
        return False
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices, in order, of the points no other point dominates (NaN points excluded)."""
    known = [i for i, p in enumerate(points) if not any(math.isnan(x) for x in p)]
    return [i for i in known if not any(dominates(points[j], points[i]) for j in known if j != i)]


def pareto_layers(points: Sequence[Sequence[float]]) -> list[int | None]:
    """Each point's layer of non-dominated sorting: 0 for the front, 1 for the front of the
    rest, and so on; None for points with a NaN coordinate."""
    layers: list[int | None] = [None] * len(points)
    left = [i for i, p in enumerate(points) if not any(math.isnan(x) for x in p)]
    layer = 0
    while left:
        front = [left[k] for k in pareto_front([points[i] for i in left])]
        for i in front:
            layers[i] = layer
        left = [i for i in left if i not in front]
        layer += 1
    return layers


def _excess(candidate: Candidate, limit: Limit) -> float:
    """How far the upper end is above the limit, relative to the limit's size (inf: unknown)."""
    high = candidate.interval(limit.metric).high
    if not math.isfinite(high):
        return math.inf
    return max(0.0, high - limit.maximum) / (abs(limit.maximum) or 1.0)


def _binding(candidates: Sequence[Candidate], limits: Sequence[Limit]) -> tuple[Binding, ...]:
    found: list[Binding] = []
    for limit in limits:
        failing = sum(not meets(c, limit) for c in candidates)
        if not failing:
            continue
        known = [c for c in candidates if math.isfinite(c.interval(limit.metric).high)]
        best = min(known, key=lambda c: c.interval(limit.metric).high, default=None)
        high = math.nan if best is None else best.interval(limit.metric).high
        point = None if best is None else best.point
        found.append(Binding(limit, failing, len(candidates), high, point))
    found.sort(key=lambda b: -b.failing)
    return tuple(found)


def recommend(
    candidates: Sequence[Candidate], limits: Sequence[Limit], minimize: Sequence[str] = ()
) -> Recommendation:
    """The settings that meet every limit, ranked, with their Pareto front.

    Args:
        candidates: the settings of one sweep, in sweep order.
        limits: ``metric ≤ maximum`` each, judged on the interval's upper end.
        minimize: the objectives of the Pareto front and the ranking (their means); without
            any, the limited metrics are the objectives.
    """
    objectives = tuple(minimize) or tuple(dict.fromkeys(limit.metric for limit in limits))
    feasible = [c for c in candidates if all(meets(c, limit) for limit in limits)]
    points = [[c.interval(m).mean for m in objectives] for c in feasible]
    layers = pareto_layers(points)

    def rank(i: int) -> tuple[float, ...]:
        layer = math.inf if layers[i] is None else float(layers[i])  # type: ignore[arg-type]
        means = [math.inf if math.isnan(x) else x for x in points[i]]
        return (layer, *means, float(i))

    order = sorted(range(len(feasible)), key=rank)
    ranked = tuple(feasible[i] for i in order)
    front = tuple(feasible[i] for i in order if layers[i] == 0)
    if feasible or not candidates:
        return Recommendation(objectives, ranked, front, (), None)
    closest = min(
        candidates,
        key=lambda c: (
            sum(not meets(c, limit) for limit in limits),
            sum(_excess(c, limit) for limit in limits),
        ),
    )
    return Recommendation(objectives, (), (), _binding(candidates, limits), closest)
