"""The copycat against sender proofs: whole runs, each world with and without proofs."""

from __future__ import annotations

import copy
from typing import Any

import polars as pl
import pytest

import sim

pytestmark = pytest.mark.slow  # whole simulations

WORLDS = (1, 2, 3)


def _scenario(small: dict[str, Any], seed: int, *, proofs: bool) -> dict[str, Any]:
    scenario = copy.deepcopy(small)
    scenario["seed"] = seed
    scenario["privacy"] |= {"order_flow": "threshold", "sender_proofs": proofs}
    scenario["adversary"] = {"copycat": True, "spy_fraction": 0.2}
    return scenario


def test_copies_execute_without_sender_proofs_and_never_with_them(small: dict[str, Any]) -> None:
    for seed in WORLDS:
        plain, proven = (sim.run(_scenario(small, seed, proofs=p)) for p in (False, True))
        copies = plain.tables["orders"].filter(pl.col("kind") == "copycat")
        assert copies.filter(pl.col("status") == "executed").height > 0, seed
        assert plain.metric("mev.copied_orders") == copies.height
        assert plain.metric("mev.copycat_pnl") != 0.0  # it holds what it copied
        refused = proven.tables["orders"].filter(pl.col("kind") == "copycat")
        # every copy refused for its proof, or too late for its epoch anyway
        assert refused.height > 0 and set(refused["status"]) == {"rejected"}, seed
        assert "proof" in set(refused["reason"]) and set(refused["reason"]) <= {"proof", "late"}
        assert proven.metric("mev.copied_orders") == refused.height
        assert proven.metric("mev.copycat_pnl") == 0.0  # it never held a share
        # the copies are the adversary's: users' figures are the same orders' either way
        users = proven.tables["orders"].filter(pl.col("kind").is_in(["informed", "noise"]))
        assert (
            proven.metric("market.orders_executed")
            == users.filter(pl.col("status") == "executed").height
        )


def test_without_a_copycat_its_metrics_are_absent(small: dict[str, Any]) -> None:
    scenario = _scenario(small, 1, proofs=False)
    scenario["adversary"]["copycat"] = False
    metrics = sim.run(scenario).metrics()
    assert "mev.copycat_pnl" not in metrics and "mev.copied_orders" not in metrics
