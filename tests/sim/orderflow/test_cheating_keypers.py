"""Cheating keypers in whole runs: named by their proofs, harmless below the margin."""

from __future__ import annotations

import copy
from typing import Any

import polars as pl
import pytest

import sim

pytestmark = pytest.mark.slow  # whole simulations


def _run(small: dict[str, Any], cheating: int) -> Any:
    scenario = copy.deepcopy(small)  # 5 keypers, threshold 3: a margin of 2
    scenario["privacy"] |= {"order_flow": "threshold"}
    scenario["adversary"] = {"cheating_keypers": cheating, "spy_fraction": 0.1}
    return sim.run(scenario)


def test_cheating_keypers_within_the_margin_are_named_and_every_batch_opens(
    small: dict[str, Any],
) -> None:
    honest = _run(small, 0)
    assert honest.metric("privacy.cheating_shares_detected") == 0
    for cheating in (1, 2):  # up to keypers − threshold
        run = _run(small, cheating)
        orders = run.tables["orders"]
        sealed = orders.filter(pl.col("batch_id") >= 0)
        executed = sealed.filter(pl.col("status") == "executed").height
        assert run.metric("privacy.failed_batch_fraction") == 0.0, cheating
        assert executed > 50
        # each cheater's DKG deal draws one complaint, and each of its decryption shares fails:
        # at least one per sealed order on chain, per cheater
        on_chain = sealed.filter(pl.col("reason").is_null() | (pl.col("reason") != "late"))
        assert run.metric("privacy.cheating_shares_detected") >= cheating * (1 + on_chain.height)
        assert run.metric("ledger.payout_error") == 0


def test_cheating_keypers_beyond_the_margin_fail_every_batch_visibly(
    small: dict[str, Any],
) -> None:
    run = _run(small, 3)  # 2 honest keypers, threshold 3
    orders = run.tables["orders"].filter(pl.col("batch_id") >= 0)
    assert run.metric("privacy.failed_batch_fraction") == 1.0
    assert orders.filter(pl.col("status") == "executed").height == 0
    assert set(orders["reason"].drop_nulls()) <= {"undecryptable", "late"}
    assert "undecryptable" in set(orders["reason"].drop_nulls())
