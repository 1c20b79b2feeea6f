"""The aggregation metrics: how far prices got toward the full-information posterior, and when.

Each value is computed by hand from a few numbers, so a change in a definition (pooling, the
reference, the band) shows here before it reaches a result table.
"""

from __future__ import annotations

import math

import pytest

from sim.results.metrics import CONVERGENCE_BAND, aggregation_metrics, convergence_time


def test_aggregation_by_hand_is_pooled_over_markets() -> None:
    prior = (0.5, 0.5)
    posteriors = [(0.2, 0.8), (0.45, 0.55)]
    prices = [(0.3, 0.7), (0.5, 0.5)]
    history = [[(0.0, (0.5, 0.5)), (10.0, prices[0])], [(0.0, (0.5, 0.5))]]
    m = aggregation_metrics(prices, posteriors, prior, history)
    # |price − posterior| over the four outcomes: 0.1, 0.1, 0.05, 0.05 -> mean 0.075, sum 0.3
    assert m["market.full_info_error"] == pytest.approx(0.075)
    # |prior − posterior|: 0.3, 0.3, 0.05, 0.05 -> 0.7; pooled 1 − 0.3/0.7 = 4/7. (The mean of
    # the two markets' own ratios, (2/3 + 0)/2 = 1/3, would let the second one drag it down.)
    assert m["market.aggregation_efficiency"] == pytest.approx(4 / 7)
    # market 0 is within 5 cents of its final price from t = 10 on, market 1 never moved
    assert m["market.price_convergence_s"] == pytest.approx((10.0 + 0.0) / 2)


def test_without_evidence_efficiency_does_not_apply() -> None:
    m = aggregation_metrics([(0.4, 0.6)], [(0.5, 0.5)], (0.5, 0.5), [[(0.0, (0.5, 0.5))]])
    assert math.isnan(m["market.aggregation_efficiency"])  # nothing to aggregate: NaN, not 0
    assert m["market.full_info_error"] == pytest.approx(0.1)


def test_prices_that_reach_the_posterior_are_fully_efficient_and_the_prior_is_zero() -> None:
    posteriors, prior = [(0.3, 0.7)], (0.5, 0.5)
    history = [[(0.0, prior)]]
    assert aggregation_metrics(posteriors, posteriors, prior, history)[
        "market.aggregation_efficiency"
    ] == pytest.approx(1.0)
    assert aggregation_metrics([prior], posteriors, prior, history)[
        "market.aggregation_efficiency"
    ] == pytest.approx(0.0)


def test_convergence_is_the_last_entry_into_the_band_not_the_first() -> None:
    final = (0.2, 0.8)
    points = [
        (0.0, (0.5, 0.5)),
        (100.0, (0.22, 0.78)),  # inside the band ...
        (200.0, (0.4, 0.6)),  # ... out again
        (300.0, (0.21, 0.79)),  # inside for good from here
        (400.0, final),
    ]
    assert convergence_time(points) == 300.0
    assert CONVERGENCE_BAND == 0.05
    assert convergence_time([(0.0, final), (50.0, (0.24, 0.76))]) == 0.0  # never left it
    assert math.isnan(convergence_time([]))
