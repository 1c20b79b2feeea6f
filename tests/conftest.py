"""Shared fixtures: one small scenario, small enough to run in about a second."""

from __future__ import annotations

import copy
from typing import Any

import pytest

SMALL: dict[str, Any] = {
    "name": "small",
    "seed": 11,
    "duration_s": 7200.0,
    "network": {"nodes": 30, "degree": 4, "block_interval_s": 2.0},
    "market": {"count": 2, "liquidity_b": 40.0, "close_s": 5400.0, "resolve_s": 6000.0},
    "traders": {"informed": 6, "noise": 8, "orders_per_hour": 10.0, "budget": 200.0},
    "settlement": {"reporters": 7},
    "privacy": {"keypers": 5, "threshold": 3},
}


@pytest.fixture
def small() -> dict[str, Any]:
    """A fresh copy of the small scenario as a dict (tests may change it)."""
    return copy.deepcopy(SMALL)
