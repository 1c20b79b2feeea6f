"""The result tables of SPEC section 3: their fixed schemas and how a frame is made.

The tables of a finished run are built in :mod:`sim.runs.frames` (and by the components that
own them, e.g. the settlement protocol).

Every table has ``run_id`` on every row; empty tables keep their schema, so a reader never has
to guess a column's type.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

F64, I64, STR, BOOL = pl.Float64, pl.Int64, pl.String, pl.Boolean

SCHEMAS: dict[str, dict[str, Any]] = {
    "metrics": {"run_id": STR, "metric": STR, "value": F64},
    "orders": {
        "run_id": STR,
        "order_id": I64,
        "trader": I64,
        "kind": STR,
        "node": I64,
        "market": I64,
        "outcome": I64,
        "shares": F64,
        "limit_price": F64,
        "t_submit": F64,
        "status": STR,
        "reason": STR,
        "t_executed": F64,
        "price": F64,
        "cost": F64,
        "block": I64,
        "mode": STR,
        "first_seen_by": I64,
        "t_first_seen": F64,
        "batch_id": I64,
        "frontrun": BOOL,
        "wire_bytes": I64,
    },
    "prices": {
        "run_id": STR,
        "t": F64,
        "block": I64,
        "market": I64,
        "outcome": I64,
        "price": F64,
        "true_prob": F64,
    },
    "markets": {
        "run_id": STR,
        "market": I64,
        "outcome": I64,
        "true_prob": F64,
        "won": BOOL,
        "last_price": F64,
        "prior": F64,
        "posterior": F64,
    },
    "traders": {
        "run_id": STR,
        "trader": I64,
        "node": I64,
        "kind": STR,
        "budget": F64,
        "final_value": F64,
        "pnl": F64,
        "orders": I64,
    },
    "beliefs": {
        "run_id": STR,
        "trader": I64,
        "market": I64,
        "outcome": I64,
        "draws": I64,
        "belief": F64,
    },
    "wealth": {
        "run_id": STR,
        "t": F64,
        "trader": I64,
        "kind": STR,
        "cash": F64,
        "wealth": F64,
    },
    "messages": {
        "run_id": STR,
        "kind": STR,
        "sent": I64,
        "delivered": I64,
        "lost": I64,
        "bytes": I64,
    },
    "settlement": {
        "run_id": STR,
        "market": I64,
        "protocol": STR,
        "finalized": BOOL,
        "outcome": I64,
        "true_outcome": I64,
        "correct": BOOL,
        "t_final": F64,
        "rounds": I64,
        "leader": I64,
        "certificate_size": I64,
        "disputes": I64,
        "rejected_votes": I64,
        "equivocations": I64,
        "refused_settlements": I64,
        "bonds_moved": F64,
        "bond_slashed": F64,
    },
    "settlement_steps": {
        "run_id": STR,
        "market": I64,
        "round": I64,
        "protocol": STR,
        "step": STR,
        "leader": I64,
        "proposed": I64,
        "outcome": I64,
        "true_outcome": I64,
        "votes": STR,
        "rejected_votes": I64,
        "rejected_non_reporter": I64,
        "rejected_bad_signature": I64,
        "rejected_out_of_range": I64,
        "prevotes": STR,
        "nil_prevotes": I64,
        "nil_precommits": I64,
        "equivocations": I64,
        "refused_settlements": I64,
        "disputes": I64,
        "bonds_moved": F64,
        "bond_slashed": F64,
        "t_start": F64,
        "t_final": F64,
        "finalized": BOOL,
        "correct": BOOL,
        "certificate_size": I64,
    },
    "fl_rounds": {
        "run_id": STR,
        "round": I64,
        "status": STR,
        "reason": STR,
        "t_start": F64,
        "t_end": F64,
        "sampled": I64,
        "survivors": I64,
        "loss": F64,
        "brier": F64,
        "epsilon": F64,
        "records_reconstructed": I64,
        "clamped": I64,
        "noise_multiplier": F64,
        "epsilon_against": STR,
    },
    "fl_roc": {"run_id": STR, "fpr": F64, "tpr": F64},
    "fl_clients": {
        "run_id": STR,
        "client": I64,
        "node": I64,
        "records": I64,
        "rounds": I64,
        "epsilon": F64,
        "withdrawn_at": I64,
        "exhausted_at": I64,
    },
    "fl_client_epsilon": {"run_id": STR, "round": I64, "client": I64, "epsilon": F64},
    "nodes": {"run_id": STR, "node": I64, "roles": STR, "degree": I64, "spy": BOOL},
    "edges": {"run_id": STR, "src": I64, "dst": I64, "latency_s": F64},
}


def frame(name: str, rows: dict[str, list[Any]], run_id: str) -> pl.DataFrame:
    """A table from column lists, with ``run_id`` added and the schema enforced."""
    schema = SCHEMAS[name]
    length = len(next(iter(rows.values()))) if rows else 0
    columns = {name: [] for name in schema} | {"run_id": [run_id] * length, **rows}
    return pl.DataFrame(columns, schema=schema, strict=False)


def nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def none_if(value: int, missing: int = -1) -> int | None:
    return None if value == missing else value
