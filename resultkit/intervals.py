"""Confidence intervals over replications: Student-t means, paired and Welch differences.

The one implementation behind ``veilcast compare``, ``veilcast recommend`` and the dashboard,
so that every view of the same runs shows the same numbers. Standard library only.

Sources:

- Student ("The probable error of a mean", *Biometrika* 6, 1908): the interval
  ``mean ± t_{(1+level)/2, n-1} · s / √n`` over ``n`` values with sample standard deviation ``s``.
- The Student-t tail as a regularized incomplete beta function, ``P(T > t) = ½ I_x(ν/2, ½)``
  with ``x = ν / (ν + t²)`` (Abramowitz & Stegun 26.7.1 and 26.5.27), evaluated by its continued
  fraction (A&S 26.5.8) with the modified Lentz method (Press et al., *Numerical Recipes*, §6.4).
- Large degrees of freedom: the Cornish–Fisher expansion of the t quantile in the normal one
  (A&S 26.7.5).
- Welch ("The generalization of 'Student's' problem when several different population variances
  are involved", *Biometrika* 34, 1947) and Satterthwaite (*Biometrics Bulletin* 2, 1946) for the
  unpaired difference of two means with unequal variances:
  ``ν = (v₁ + v₂)² / (v₁²/(n₁-1) + v₂²/(n₂-1))`` with ``vᵢ = sᵢ²/nᵢ``.

A value that is not a finite number (NaN: the metric does not apply to that run) is left out;
an interval needs two values and is NaN below that, never a made-up zero.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

LEVEL = 0.95
NAN = math.nan

_EPS = 1e-16
_TINY = 1e-300
_MAX_TERMS = 100_000
# Beyond this many degrees of freedom the Cornish–Fisher series is exact to double precision.
_SERIES_DOF = 1_000.0
# ln Γ(a+½) - ln Γ(a) by Stirling's series above this ``a``, where lgamma's own rounding grows.
_STIRLING_A = 15.0
_HALF_LOG_PI = 0.5 * math.log(math.pi)


@dataclass(frozen=True, slots=True)
class Interval:
    """A mean over ``n`` finite values with its two-sided Student-t interval.

    ``n = 0`` gives NaN everywhere; ``n = 1`` a mean with NaN ``std``, ``half_width``, ``low``
    and ``high``.
    """

    n: int
    mean: float
    std: float
    half_width: float

    @property
    def low(self) -> float:
        """Lower end of the interval (NaN without one)."""
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        """Upper end of the interval (NaN without one)."""
        return self.mean + self.half_width


@dataclass(frozen=True, slots=True)
class Difference:
    """A setting's mean minus its baseline's, with a two-sided t interval.

    ``paired`` says whether it came from per-world differences (``pairs`` shared worlds) or
    from Welch's unpaired interval; ``dof`` is the interval's degrees of freedom.
    """

    diff: float
    half_width: float
    dof: float
    paired: bool
    pairs: int

    @property
    def low(self) -> float:
        """Lower end of the interval (NaN without one)."""
        return self.diff - self.half_width

    @property
    def high(self) -> float:
        """Upper end of the interval (NaN without one)."""
        return self.diff + self.half_width


def is_finite(value: object) -> bool:
    """True for a finite int or float (not bool, None, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def finite(values: Iterable[object]) -> list[float]:
    """The finite numbers among ``values``, as floats, in their order."""
    return [float(v) for v in values if is_finite(v)]  # type: ignore[arg-type]


# --- the Student-t quantile ---------------------------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (A&S 26.5.8), modified Lentz."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            step = d * c
            h *= step
        if abs(step - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def _stirling_tail(z: float) -> float:
    """The remainder of Stirling's series for ln Γ(z) (A&S 6.1.41), five terms."""
    z2 = z * z
    inner = 1.0 / 1260.0 - (1.0 / 1680.0 - 1.0 / (1188.0 * z2)) / z2
    return (1.0 / 12.0 - (1.0 / 360.0 - inner / z2) / z2) / z


def _log_gamma_ratio(a: float) -> float:
    """``ln Γ(a+½) - ln Γ(a)``, accurate also where both terms are large.

    For large ``a`` the two log-gammas nearly cancel; Stirling's series (A&S 6.1.41) written as
    ``½ ln a + (a·ln(1 + 1/(2a)) - ½) + S(a+½) - S(a)`` keeps the absolute error near 1e-16.
    """
    if a < _STIRLING_A:
        return math.lgamma(a + 0.5) - math.lgamma(a)
    return (
        0.5 * math.log(a)
        + (a * math.log1p(0.5 / a) - 0.5)
        + _stirling_tail(a + 0.5)
        - _stirling_tail(a)
    )


def _upper_tail(t: float, dof: float) -> float:
    """``P(T > t)`` for ``t ≥ 0``: ``½ I_x(ν/2, ½)``, ``x = ν/(ν+t²)``, ``1 - x`` kept exact."""
    a, b = dof / 2.0, 0.5
    x, y = dof / (dof + t * t), t * t / (dof + t * t)
    if y == 0.0:
        return 0.5
    log_front = _log_gamma_ratio(a) - _HALF_LOG_PI + a * math.log(x) + b * math.log(y)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return 0.5 * front * _beta_fraction(a, b, x) / a
    return 0.5 * (1.0 - front * _beta_fraction(b, a, y) / b)


def _density(t: float, dof: float) -> float:
    """The Student-t density at ``t`` with ``dof`` degrees of freedom."""
    log_norm = _log_gamma_ratio(dof / 2.0) - 0.5 * math.log(dof * math.pi)
    return math.exp(log_norm - (dof + 1.0) / 2.0 * math.log1p(t * t / dof))


def _cornish_fisher(z: float, dof: float) -> float:
    """The t quantile from the normal quantile ``z`` (A&S 26.7.5, five terms)."""
    z2 = z * z
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
    g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3 + g4 / dof**4


@lru_cache(maxsize=4096)
def _quantile(dof: float, tail: float) -> float:
    """The ``t > 0`` with ``P(T > t) = tail`` (``0 < tail < ½``, ``dof ≥ 1``).

    Exact forms for one and two degrees of freedom; otherwise Newton's method on the tail,
    started from the Cornish–Fisher value and kept inside the bracket ``[z, t₁]`` (the quantile
    falls from the Cauchy's towards the normal's as the degrees of freedom grow).
    """
    p = 1.0 - tail
    cauchy = 1.0 / math.tan(math.pi * tail)  # tan(π(p - ½)), without rounding p near the pole
    if dof == 1.0:
        return cauchy
    if dof == 2.0:
        return (2.0 * p - 1.0) / math.sqrt(2.0 * p * (1.0 - p))
    z = NormalDist().inv_cdf(p)
    if math.isinf(dof):
        return z
    start = _cornish_fisher(z, dof)
    if dof >= _SERIES_DOF:
        return start
    low, high = z, cauchy
    t = start if low < start < high else (low + high) / 2.0
    for _ in range(200):
        gap = _upper_tail(t, dof) - tail  # decreasing in t
        if gap > 0:
            low = t
        else:
            high = t
        step = gap / _density(t, dof)
        nxt = t + step
        if not low < nxt < high:
            nxt = (low + high) / 2.0
        if abs(nxt - t) <= 4 * _EPS * t or high - low <= 4 * _EPS * t:
            return nxt
        t = nxt
    return t


def t_critical(dof: float, *, level: float = LEVEL) -> float:
    """The two-sided Student-t critical value ``t_{(1+level)/2, dof}``.

    ``dof`` may be fractional (Welch–Satterthwaite) or infinite (the normal quantile). NaN
    where there is no interval to make: ``dof`` below 1 or not a number. An interval of two or
    more values always has at least one degree of freedom.

    Raises:
        ValueError: If ``level`` is not strictly between 0 and 1.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    if isinstance(dof, bool) or not isinstance(dof, int | float) or math.isnan(dof) or dof < 1:
        return NAN
    return _quantile(float(dof), (1.0 - level) / 2.0)


# --- means and differences ----------------------------------------------------------------------


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof = 1``; NaN for one value).

    Sums are ``math.fsum`` (correctly rounded), so the result does not depend on the order of
    the values: the same runs read in any order give the same bits.
    """
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, NAN
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def mean_interval(values: Iterable[object], *, level: float = LEVEL) -> Interval:
    """The mean of the finite ``values`` with its Student-t interval (Student 1908).

    ``mean ± t_{(1+level)/2, n-1} · s / √n``; non-finite values (not applicable) are left out.
    """
    kept = finite(values)
    n = len(kept)
    if n == 0:
        return Interval(0, NAN, NAN, NAN)
    mean, std = _mean_std(kept)
    if n < 2:
        return Interval(1, mean, NAN, NAN)
    return Interval(n, mean, std, t_critical(n - 1, level=level) * std / math.sqrt(n))


def welch_difference(
    values: Iterable[object], base: Iterable[object], *, level: float = LEVEL
) -> Difference:
    """``mean(values) - mean(base)`` with Welch's interval (Welch 1947, Satterthwaite 1946).

    The half-width is ``t_{ν} · √(v₁ + v₂)`` with ``vᵢ = sᵢ²/nᵢ`` and the Welch–Satterthwaite
    ``ν``. Both sides constant (``v₁ + v₂ = 0``) give a zero half-width; fewer than two values on
    either side give NaN; an empty side gives a NaN difference.
    """
    a, b = mean_interval(values, level=level), mean_interval(base, level=level)
    diff = a.mean - b.mean
    if a.n < 2 or b.n < 2:
        return Difference(diff, NAN, NAN, paired=False, pairs=0)
    v1, v2 = a.std**2 / a.n, b.std**2 / b.n
    if v1 + v2 == 0.0:
        return Difference(diff, 0.0, NAN, paired=False, pairs=0)
    dof = (v1 + v2) ** 2 / (v1**2 / (a.n - 1) + v2**2 / (b.n - 1))
    half = t_critical(dof, level=level) * math.sqrt(v1 + v2)
    return Difference(diff, half, dof, paired=False, pairs=0)


def paired_deltas(
    values: Iterable[tuple[Hashable | None, object]],
    base: Iterable[tuple[Hashable | None, object]],
) -> list[float]:
    """Per-world differences ``value - base value`` over the worlds both sides have.

    Each argument lists ``(world, value)`` per run (``world`` None when unknown). Runs without a
    world or a finite value are left out; a world with several runs on a side pairs each of them
    with each run of the other side there (as a join on the world would).
    """
    by_world: dict[Hashable, list[float]] = {}
    for w, v in base:
        if w is not None and is_finite(v):
            by_world.setdefault(w, []).append(float(v))  # type: ignore[arg-type]
    return [
        float(v) - b  # type: ignore[arg-type]
        for w, v in values
        if w is not None and is_finite(v)
        for b in by_world.get(w, ())
    ]


def paired_difference(deltas: Iterable[object], *, level: float = LEVEL) -> Difference:
    """The mean of per-world differences with Student's interval over them (paired t).

    ``pairs`` counts the finite differences; one gives a difference without an interval, none
    a NaN difference.
    """
    iv = mean_interval(deltas, level=level)
    dof = float(iv.n - 1) if iv.n >= 2 else NAN
    return Difference(iv.mean, iv.half_width, dof, paired=True, pairs=iv.n)


def difference(
    values: Iterable[tuple[Hashable | None, object]],
    base: Iterable[tuple[Hashable | None, object]],
    *,
    level: float = LEVEL,
) -> Difference:
    """A setting against its baseline: paired by world where they share one, else Welch.

    Args:
        values: ``(world, value)`` per run of the setting; ``world`` None when unknown.
        base: the same for the baseline setting.
        level: confidence level.

    Runs of two settings of one replication share their simulated world (SPEC section 2), so
    their difference is free of world-to-world noise: when at least one world with finite
    values on both sides is shared, the interval is over per-world differences (with one shared
    world there is a difference but no interval). Otherwise the settings' runs are independent
    and Welch's interval applies.
    """
    own, other = list(values), list(base)
    deltas = paired_deltas(own, other)
    if deltas:
        return paired_difference(deltas, level=level)
    return welch_difference((v for _, v in own), (v for _, v in other), level=level)
