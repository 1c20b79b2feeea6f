"""The settlement tables from hand-made records: one final row per market, the steps apart."""

from __future__ import annotations

import math

from market.types import MICRO
from sim.settlement.records import RoundRecord, settlement_table, steps_table


def _records() -> list[RoundRecord]:
    first = RoundRecord(0, 0, "vote", 1, [2, 3], 10.0, leader=4, proposed=1)
    first.rejected["bad_signature"] = 2
    final = RoundRecord(0, 1, "vote", 1, [0, 5], 40.0, leader=5, proposed=1, outcome=1)
    final.t_final, final.certificate_size = 41.0, 5
    disputed = RoundRecord(1, 0, "proposal", 0, [0, 0], 10.0, leader=3, proposed=1, disputes=1)
    disputed.bonds_moved, disputed.bond_slashed = 2 * 50 * MICRO, 50 * MICRO
    never = RoundRecord(2, 0, "vote", 0, [0, 0], math.nan)  # a market that never voted
    return [first, final, disputed, never]


def test_one_row_per_market_takes_the_step_that_made_it_final() -> None:
    table = settlement_table(_records(), protocol="bft", run_id="r")
    rows = {r["market"]: r for r in table.iter_rows(named=True)}
    assert sorted(rows) == [0, 1, 2]
    m0 = rows[0]
    assert (m0["finalized"], m0["outcome"], m0["correct"], m0["t_final"]) == (True, 1, True, 41.0)
    assert (m0["rounds"], m0["leader"], m0["certificate_size"]) == (2, 5, 5)
    assert m0["rejected_votes"] == 2
    m1 = rows[1]
    assert not m1["finalized"] and m1["outcome"] is m1["correct"] is m1["t_final"] is None
    assert (m1["disputes"], m1["bonds_moved"], m1["bond_slashed"]) == (1, 100.0, 50.0)
    assert rows[2]["rounds"] == 0 and rows[2]["bond_slashed"] is None


def test_the_steps_table_keeps_a_row_per_round_or_request() -> None:
    steps = steps_table(_records(), protocol="bft", run_id="r")
    assert steps.select("market", "round").rows() == [(0, 0), (0, 1), (1, 0), (2, 0)]
    assert steps["finalized"].to_list() == [False, True, False, False]
