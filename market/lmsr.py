"""Automated market makers as frozen values: Hanson's LMSR and the liquidity-sensitive LS-LMSR.

A market maker is its outstanding share vector ``q`` (in shares, floats) plus a liquidity
parameter. Trading never mutates a maker: :meth:`LMSR.trade` returns the new state and the
cost, so replicas, batch clearing and what-if pricing can share one value safely.

**LMSR** (Hanson 2003/2007). ``C(q) = b·ln Σ_i exp(q_i/b)``; prices are the gradient,
``p = softmax(q/b)``, so they lie in (0, 1) and sum to 1. A trade ``δ`` costs
``C(q+δ) − C(q)``. Started at ``q = 0`` the maker's worst-case loss is ``C(0) − 0 = b·ln n``.

**LS-LMSR** (Othman, Pennock, Reeves & Sandholm, *A practical liquidity-sensitive automated
market maker*, 2013). The liquidity grows with the volume: ``b(q) = α·Σ_i q_i`` and
``C(q) = b(q)·ln Σ_i exp(q_i/b(q))``. Differentiating (with ``s = Σ_j q_j``, ``Z = Σ_j e^{q_j/b}``,
``∂(q_j/b)/∂q_i = δ_ij/b − α·q_j/b²``) gives the paper's price::

    p_i = α·ln Z + (s·e^{q_i/b} − Σ_j q_j e^{q_j/b}) / (s·Z)
        = π_i + α·ln Z − Σ_j (q_j/s)·π_j        with π = softmax(q/b)

The common term ``α·ln Z − Σ_j (q_j/s)·π_j`` is non-negative (see :meth:`LSLMSR.prices`), so
prices sum to ``1 + n·(that term) ≥ 1``: the maker takes a spread that grows with α. ``C`` is
defined for ``q ≥ 0`` with ``Σ q > 0``, so the maker starts at ``q0 = (x, …, x)`` with
``x = b0/(α·n)``, making ``b(q0) = b0``.

*Loss bound of the LS-LMSR.* If outcome ``k`` wins, the maker has collected ``C(q) − C(q0)`` and
pays the traders' winning shares ``q_k − q0_k`` (the ``q0`` shares are fictitious, its own).
Because ``C(q) ≥ b·ln e^{q_k/b} = q_k`` for every ``q``, its loss is at most
``C(q0) − q0_k ≤ C(q0) − min_i q0_i``. For the uniform start, ``C(q0) = x + b0·ln n``, so the
bound is ``b0·ln n``, the same as an LMSR with ``b = b0``; it is not attained (``C(q) − q_k``
grows with the volume), which is where the LS-LMSR's profit comes from.

Per-trade pricing uses :mod:`math` on Python floats: for a handful of outcomes it is several
times faster than numpy, and every exponent is shifted by the maximum (log-sum-exp), so shares
of 1e9 and more neither overflow nor lose the small price differences.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from market.errors import InvalidTrade

Mechanism = Literal["lmsr", "ls_lmsr"]
"""The market-maker mechanisms :func:`make_market_maker` builds."""

_EXPM1_SAFE = 700.0
"""Largest ``shares/b`` the closed-form costs use; exp overflows near 709.8."""

_ROUNDING = 64 * sys.float_info.epsilon
"""Relative error allowance of :meth:`LMSR.cost_error`: generous, it only moves a rounding."""


def log_sum_exp(xs: Sequence[float]) -> float:
    """``ln Σ exp(x_i)`` without overflow or underflow, shifting by the maximum."""
    top = max(xs)
    total = 0.0
    for x in xs:
        total += math.exp(x - top)
    return top + math.log(total)


def _check_outcome(q: tuple[float, ...], outcome: int, shares: float) -> None:
    """Raise :class:`InvalidTrade` for an unknown outcome or non-finite shares."""
    if not 0 <= outcome < len(q):
        raise InvalidTrade(f"outcome {outcome} outside 0..{len(q) - 1}")
    if not math.isfinite(shares):
        raise InvalidTrade(f"shares must be finite, got {shares}")


def _shifted(q: tuple[float, ...], deltas: Sequence[float]) -> tuple[float, ...]:
    """``q + δ`` after checking that ``δ`` has one finite entry per outcome."""
    if len(deltas) != len(q):
        raise InvalidTrade(f"a trade needs {len(q)} deltas, got {len(deltas)}")
    if not all(math.isfinite(d) for d in deltas):
        raise InvalidTrade("deltas must be finite")
    return tuple(qi + di for qi, di in zip(q, deltas, strict=True))


def _bumped(q: tuple[float, ...], outcome: int, shares: float) -> tuple[float, ...]:
    """``q`` with ``shares`` added to one outcome."""
    return (*q[:outcome], q[outcome] + shares, *q[outcome + 1 :])


@dataclass(frozen=True, slots=True)
class LMSR:
    """Hanson's logarithmic market scoring rule market maker.

    Attributes:
        b: liquidity: the larger, the less a trade moves the prices (and the larger the loss bound).
        q: outstanding shares per outcome, in shares.
    """

    b: float
    q: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.b) and self.b > 0):
            raise ValueError(f"LMSR needs a finite b > 0, got {self.b}")
        if len(self.q) < 2 or not math.isfinite(sum(self.q)):
            raise ValueError(f"LMSR needs at least two finite outcomes, got {self.q}")

    @classmethod
    def create(cls, *, outcomes: int, b: float) -> LMSR:
        """A fresh market with no shares outstanding: uniform prices ``1/outcomes``."""
        return cls(b=float(b), q=(0.0,) * outcomes)

    def liquidity(self) -> float:
        """The liquidity ``b`` (constant for the LMSR; the LS-LMSR's grows with volume)."""
        return self.b

    def cost(self) -> float:
        """``C(q) = b·ln Σ exp(q_i/b)``, in units (never below ``max q``, even in floats)."""
        q, b = self.q, self.b
        top = max(q)
        return top + b * log_sum_exp([(qi - top) / b for qi in q])

    def prices(self) -> tuple[float, ...]:
        """Instantaneous prices ``softmax(q/b)``: each in (0, 1), summing to 1."""
        b, q = self.b, self.q
        top = max(q)
        weights = [math.exp((qi - top) / b) for qi in q]
        total = sum(weights)
        return tuple(w / total for w in weights)

    def trade_cost(self, outcome: int, shares: float) -> float:
        """``C(q + shares·e_outcome) − C(q)``: what buying (selling, if negative) costs, in units.

        Uses the closed form ``b·ln(1 + p_k·(e^{shares/b} − 1))``, exact to a few ulps even when
        ``C`` itself is huge; falls back to :meth:`vector_cost` where that form would overflow or
        cancel (very large trades, selling nearly the whole of a dominant outcome).
        """
        q, b = self.q, self.b
        _check_outcome(q, outcome, shares)
        x = shares / b
        if x <= _EXPM1_SAFE:
            top = max(q)
            total = 0.0
            for qi in q:
                total += math.exp((qi - top) / b)
            scaled = math.exp((q[outcome] - top) / b) / total * math.expm1(x)
            if scaled > -0.5:
                return b * math.log1p(scaled)
        return self.vector_cost(_bumped((0.0,) * len(q), outcome, shares))

    def vector_cost(self, deltas: Sequence[float]) -> float:
        """``C(q + δ) − C(q)`` for a trade in several outcomes at once, in units.

        Uses ``b·ln(1 + Σ_i p_i·(e^{δ_i/b} − 1))`` where that is safe, as :meth:`trade_cost`
        does; otherwise both log-sum-exps, shifted by the same ``max(q)``.
        """
        q, b = self.q, self.b
        moved = _shifted(q, deltas)
        top = max(q)
        if max(deltas) / b <= _EXPM1_SAFE:
            weights = [math.exp((qi - top) / b) for qi in q]
            change = sum(w * math.expm1(d / b) for w, d in zip(weights, deltas, strict=True))
            scaled = change / sum(weights)
            if scaled > -0.5:
                return b * math.log1p(scaled)
        before = log_sum_exp([(qi - top) / b for qi in q])
        after = log_sum_exp([(mi - top) / b for mi in moved])
        return b * (after - before)

    def cost_error(self, cost: float, volume: float) -> float:
        """A generous bound on the floating-point error of a trade cost this maker computed.

        Args:
            cost: the computed cost, in units.
            volume: the trade's size ``Σ_i |δ_i|``, in shares.

        The closed forms err by a few ulps of ``|cost| + b``; the log-sum-exp fallback by a few
        ulps of ``|cost| + b·ln n + volume``. Callers add it before rounding up, so money is
        rounded in the maker's favour even when the exact cost sits on a micro-unit boundary.
        """
        if volume == 0:
            return 0.0  # no trade costs exactly nothing
        return _ROUNDING * (abs(cost) + volume + self.b * (1.0 + math.log(len(self.q))))

    def trade(self, outcome: int, shares: float) -> tuple[LMSR, float]:
        """Buy (sell, if negative) ``shares`` of ``outcome``: the new maker and the cost."""
        cost = self.trade_cost(outcome, shares)
        return LMSR(self.b, _bumped(self.q, outcome, shares)), cost

    def apply(self, deltas: Sequence[float]) -> LMSR:
        """The maker after the trade ``δ`` (the cost is :meth:`vector_cost`)."""
        return LMSR(self.b, _shifted(self.q, deltas))

    def loss_bound(self) -> float:
        """Worst-case loss from the start :meth:`create` uses (no shares out): ``b·ln n``."""
        return self.b * math.log(len(self.q))

    def subsidy(self) -> float:
        """Units the maker must hold to always pay the winners: its loss bound."""
        return self.loss_bound()


def _ls_cost(alpha: float, q: tuple[float, ...]) -> float:
    """The LS-LMSR cost ``b(q)·ln Σ exp(q_i/b(q))`` with ``b(q) = α·Σ q``."""
    b = alpha * sum(q)
    top = max(q)
    return top + b * log_sum_exp([(qi - top) / b for qi in q])


def _check_ls_domain(q: tuple[float, ...]) -> None:
    """Raise :class:`InvalidTrade` unless ``q ≥ 0`` with a positive total (the LS-LMSR domain)."""
    if min(q) < 0 or not sum(q) > 0:
        raise InvalidTrade(f"LS-LMSR needs non-negative shares with a positive total, got {q}")


@dataclass(frozen=True, slots=True)
class LSLMSR:
    """The liquidity-sensitive LMSR of Othman et al. (2013).

    Attributes:
        alpha: the liquidity's sensitivity to volume, ``b(q) = α·Σ q``; the spread grows with it.
        q: outstanding shares per outcome, in shares, including the maker's initial ``q0``.
        q0: the start state (defaults to ``q``); the loss bound is measured from it, so it is
            carried along by every trade.
    """

    alpha: float
    q: tuple[float, ...]
    q0: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"LS-LMSR needs a finite alpha > 0, got {self.alpha}")
        if len(self.q) < 2 or not math.isfinite(sum(self.q)):
            raise ValueError(f"LS-LMSR needs at least two finite outcomes, got {self.q}")
        if not self.q0:
            object.__setattr__(self, "q0", self.q)
        if len(self.q0) != len(self.q):
            raise ValueError("q0 and q must have one entry per outcome")
        try:
            _check_ls_domain(self.q)
            _check_ls_domain(self.q0)
        except InvalidTrade as error:
            raise ValueError(str(error)) from None

    @classmethod
    def create(cls, *, outcomes: int, alpha: float, b0: float) -> LSLMSR:
        """A fresh market at ``q0 = (x, …, x)``, ``x = b0/(α·n)``, so that ``b(q0) = b0``."""
        if not (math.isfinite(b0) and b0 > 0):
            raise ValueError(f"LS-LMSR needs a finite b0 > 0, got {b0}")
        x = b0 / (alpha * outcomes)
        return cls(alpha=float(alpha), q=(x,) * outcomes)

    def liquidity(self) -> float:
        """The current liquidity ``b(q) = α·Σ q``."""
        return self.alpha * sum(self.q)

    def cost(self) -> float:
        """``C(q) = b(q)·ln Σ exp(q_i/b(q))``, in units."""
        return _ls_cost(self.alpha, self.q)

    def prices(self) -> tuple[float, ...]:
        """The gradient of ``C``: ``π_i + α·ln Z − Σ_j (q_j/s)·π_j``, summing to at least 1.

        With ``m`` the largest outcome, ``α·ln Z = q_m/s + α·ln Σ_j e^{(q_j − q_m)/b}`` and
        ``1 − π_m = Σ_{j≠m} π_j``, so the common term equals
        ``α·ln(1 + Σ_{j≠m} e^{(q_j − q_m)/b}) + Σ_j ((q_m − q_j)/s)·π_j``: a sum of non-negative
        terms, computed without the cancellation of the textbook form (which returns 0 or less
        for prices near 0).
        """
        q, alpha = self.q, self.alpha
        total = sum(q)
        b = alpha * total
        top = max(q)
        leader = q.index(top)
        weights = [math.exp((qi - top) / b) for qi in q]
        z = sum(weights)
        others = sum(w for j, w in enumerate(weights) if j != leader)
        gaps = sum((top - qj) * w for qj, w in zip(q, weights, strict=True))
        level = alpha * math.log1p(others) + gaps / (total * z)
        return tuple(w / z + level for w in weights)

    def trade_cost(self, outcome: int, shares: float) -> float:
        """``C(q + shares·e_outcome) − C(q)`` in units; :class:`InvalidTrade` outside ``q ≥ 0``."""
        _check_outcome(self.q, outcome, shares)
        moved = _bumped(self.q, outcome, shares)
        _check_ls_domain(moved)
        return _ls_cost(self.alpha, moved) - _ls_cost(self.alpha, self.q)

    def vector_cost(self, deltas: Sequence[float]) -> float:
        """``C(q + δ) − C(q)`` in units; :class:`InvalidTrade` outside ``q ≥ 0``."""
        moved = _shifted(self.q, deltas)
        _check_ls_domain(moved)
        return _ls_cost(self.alpha, moved) - _ls_cost(self.alpha, self.q)

    def cost_error(self, cost: float, volume: float) -> float:
        """A generous bound on the floating-point error of a trade cost this maker computed.

        Args:
            cost: the computed cost, in units.
            volume: the trade's size ``Σ_i |δ_i|``, in shares.

        The cost is a difference of two costs, each accurate to a few ulps of its size, and
        ``0 ≤ C(q) ≤ Σq·(1 + α·ln n)``; see :meth:`LMSR.cost_error` for the purpose.
        """
        if volume == 0:
            return 0.0  # no trade costs exactly nothing
        level = (2.0 * sum(self.q) + volume) * (1.0 + self.alpha * math.log(len(self.q)))
        return _ROUNDING * (abs(cost) + volume + level)

    def trade(self, outcome: int, shares: float) -> tuple[LSLMSR, float]:
        """Buy (sell, if negative) ``shares`` of ``outcome``: the new maker and the cost."""
        cost = self.trade_cost(outcome, shares)
        return LSLMSR(self.alpha, _bumped(self.q, outcome, shares), self.q0), cost

    def apply(self, deltas: Sequence[float]) -> LSLMSR:
        """The maker after the trade ``δ`` (the cost is :meth:`vector_cost`)."""
        moved = _shifted(self.q, deltas)
        _check_ls_domain(moved)
        return LSLMSR(self.alpha, moved, self.q0)

    def loss_bound(self) -> float:
        """Worst-case loss from ``q0``: ``C(q0) − min q0``, i.e. ``b(q0)·ln n`` for :meth:`create`.

        Computed as ``b0·ln Σ exp((q0_i − min q0)/b0)`` so the uniform start gives exactly
        ``b0·ln n``.
        """
        b0 = self.alpha * sum(self.q0)
        low = min(self.q0)
        return b0 * log_sum_exp([(x - low) / b0 for x in self.q0])

    def subsidy(self) -> float:
        """Units the maker must hold to always pay the winners: its loss bound."""
        return self.loss_bound()


MarketMaker: TypeAlias = LMSR | LSLMSR
"""Either market maker; both expose the same methods."""


def make_market_maker(
    *, mechanism: Mechanism, outcomes: int, liquidity_b: float, alpha: float
) -> MarketMaker:
    """A fresh market maker of the scenario's mechanism.

    Args:
        mechanism: ``"lmsr"`` or ``"ls_lmsr"``.
        outcomes: number of outcomes (at least 2).
        liquidity_b: the LMSR's ``b``, or the LS-LMSR's initial liquidity ``b(q0)``; either way
            the loss bound is ``liquidity_b·ln outcomes``.
        alpha: the LS-LMSR's volume sensitivity (ignored by the LMSR).
    """
    if mechanism == "lmsr":
        return LMSR.create(outcomes=outcomes, b=liquidity_b)
    if mechanism == "ls_lmsr":
        return LSLMSR.create(outcomes=outcomes, alpha=alpha, b0=liquidity_b)
    raise ValueError(f"unknown mechanism {mechanism!r}")
