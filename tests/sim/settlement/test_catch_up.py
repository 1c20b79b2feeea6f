"""Finality on lossy networks: no voting after a certificate, and replicas catching up fast.

The small world with room after ``resolve_s``, over five seeds. Polls alone (no pushed tip) took
12–142 s at 20 % loss for the worst catch-up of these seeds; the pushed tip keeps it under two
poll intervals.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from sim.host.catchup import SYNC_INTERVAL_S
from sim.runs.runner import build, compute_metrics
from sim.scenario import expand, parse_scenario
from sim.settlement import SettlementProtocol
from tests.conftest import SMALL

pytestmark = pytest.mark.slow  # whole runs

SEEDS = (11, 12, 13, 14, 15)


def _lossy(loss: float, seed: int) -> dict[str, Any]:
    scenario = copy.deepcopy(SMALL)
    scenario["duration_s"], scenario["seed"] = 7800.0, seed
    scenario["network"]["loss"] = loss
    scenario["settlement"]["round_timeout_s"] = 30.0
    return scenario


def _run(scenario: dict[str, Any]) -> tuple[dict[str, float], SettlementProtocol]:
    run = build(expand(parse_scenario(scenario))[0])
    run.run()
    protocol = next(c for c in run.components if isinstance(c, SettlementProtocol))
    return compute_metrics(run), protocol


@pytest.mark.parametrize("loss", [0.2, 0.6])
def test_no_round_is_voted_after_the_certificate_is_in_the_chain(loss: float) -> None:
    for seed in SEEDS[:3]:
        m, protocol = _run(_lossy(loss, seed))
        final = {r.market: r.t_final for r in protocol.rows() if r.finalized}
        assert len(final) == 2 and m["settlement.finalized_fraction"] == 1.0
        late = [r for r in protocol.rows() if r.t_start > final[r.market]]
        assert not late, (seed, [(r.market, r.round) for r in late])


def test_at_a_fifth_of_messages_lost_every_replica_catches_up_within_two_polls() -> None:
    worst = []
    for seed in SEEDS:
        m, _ = _run(_lossy(0.2, seed))
        assert m["ledger.replica_divergence"] == 0 and m["ledger.replica_lag_blocks"] == 0
        assert m["ledger.payout_error"] == 0
        if not math.isnan(m["ledger.catch_up_max_s"]):
            assert m["ledger.catch_up_s"] <= m["ledger.catch_up_max_s"]
            worst.append(m["ledger.catch_up_max_s"])
    assert len(worst) >= 3  # most of these runs had a replica to catch up
    assert max(worst) < 2 * SYNC_INTERVAL_S
