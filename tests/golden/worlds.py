"""The fixed worlds whose every table and metric (but ``perf.*``) the golden test pins.

Together they cover every order-flow mode, both propagation modes, both settlement protocols,
scheduled faults and the forecaster plain, with secure aggregation, and with DP. Each is small
enough to run in a second or two; the digests live in ``digests.json`` beside this file.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import polars as pl

BASE: dict[str, Any] = {
    "name": "golden",
    "seed": 5,
    "duration_s": 5400.0,
    "network": {"nodes": 24, "degree": 4, "block_interval_s": 2.0},
    "market": {"count": 2, "liquidity_b": 40.0, "close_s": 3600.0, "resolve_s": 4000.0},
    "traders": {"informed": 4, "noise": 6, "orders_per_hour": 10.0, "budget": 200.0},
    "settlement": {"reporters": 7},
    "privacy": {"keypers": 5, "threshold": 3},
    "adversary": {"spy_fraction": 0.2},
}

FORECASTER: dict[str, Any] = {
    "enabled": True,
    "clients": 8,
    "features": 4,
    "samples_per_client": 30,
    "rounds": 3,
    "client_fraction": 0.6,
}

VARIANTS: dict[str, dict[str, Any]] = {
    "transparent": {"adversary": {"frontrunner": True}},
    "transparent-dandelion-loss": {
        "network": {"propagation": "dandelion", "loss": 0.05},
        "adversary": {"frontrunner": True},
    },
    "operator-frontruns": {
        "privacy": {"order_flow": "operator"},
        "adversary": {"operator_frontruns": True},
    },
    "commit-reveal": {"privacy": {"order_flow": "commit_reveal"}},
    "threshold-colluders": {
        "privacy": {"order_flow": "threshold"},
        "adversary": {
            "frontrunner": True,
            "colluding_keypers": 3,
            "copycat": True,
            "cheating_keypers": 1,
        },
    },
    "threshold-unlinkable-dandelion": {
        "privacy": {"order_flow": "threshold", "unlinkable_senders": True, "sender_proofs": True},
        "network": {"propagation": "dandelion"},
        "adversary": {"copycat": True},
    },
    "optimistic-byzantine": {
        "settlement": {"protocol": "optimistic", "byzantine_fraction": 0.3, "bond": 50.0},
    },
    "bft-faults": {
        "settlement": {"byzantine_fraction": 0.15, "crash_fraction": 0.15},
        "network": {"loss": 0.1},
        "faults": {
            "partitions": [{"reporters": [0, 1], "start_s": 4000.0, "end_s": 4300.0}],
            "crashes": [{"reporter": 2, "at_s": 3900.0, "restart_s": 4500.0}],
        },
    },
    "forecaster-plain": {
        "forecaster": {**FORECASTER, "secure_aggregation": False},
    },
    "forecaster-secagg-dp": {
        "forecaster": {**FORECASTER, "dp_noise_multiplier": 1.0},
    },
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def scenario(name: str) -> dict[str, Any]:
    """The golden world ``name`` as a scenario dict."""
    return _merge(BASE, {"name": f"golden-{name}"} | VARIANTS[name])


def digest(frame: pl.DataFrame) -> str:
    """A digest of a table's schema and values (floats in their shortest round-trip form)."""
    text = repr(frame.schema) + "\n" + frame.write_csv()
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def outputs(result: Any) -> dict[str, Any]:
    """What the golden test pins of one run: every table's digest and every non-perf metric."""
    tables = {
        name: digest(frame.drop("run_id") if "run_id" in frame.columns else frame)
        for name, frame in sorted(result.tables.items())
        if name != "metrics"
    }
    metrics = {
        name: value
        for name, value in sorted(result.metrics().items())
        if not name.startswith("perf.")
    }
    return {"tables": tables, "metrics": {k: repr(v) for k, v in metrics.items()}}
