"""How settlement messages scale, as the README states it, recomputed from the topology.

On a loss-free ``d``-regular network of ``N`` nodes a flood delivers ``N(d − 1) + 1`` messages
(the origin sends to ``d`` neighbours, every other node forwards to ``d − 1``). A BFT round is one
flood by the leader and one bundle flooded by every honest reporter that votes: ``(r + 1)``
floods with ``r`` honest reporters, whatever the number of markets open in the round.
"""

from __future__ import annotations

import copy

import pytest

from sim.runs.runner import build, compute_metrics
from sim.scenario import expand, parse_scenario
from sim.settlement import SettlementProtocol
from tests.conftest import SMALL

pytestmark = pytest.mark.slow  # whole runs


def _messages(reporters: int, markets: int) -> tuple[dict[str, float], int]:
    scenario = copy.deepcopy(SMALL)
    scenario["settlement"]["reporters"] = reporters
    scenario["market"]["count"] = markets
    run = build(expand(parse_scenario(scenario))[0])
    run.run()
    protocol = next(c for c in run.components if isinstance(c, SettlementProtocol))
    rounds = len({r.round for r in protocol.rows() if r.step == "vote"})
    return compute_metrics(run), rounds


@pytest.mark.parametrize("reporters", [4, 7, 13])
def test_a_round_costs_reporters_plus_one_floods_shared_by_every_open_market(
    reporters: int,
) -> None:
    network = SMALL["network"]
    per_flood = network["nodes"] * (network["degree"] - 1) + 1
    by_markets = {}
    for markets in (1, 3):
        m, rounds = _messages(reporters, markets)
        assert m["settlement.finalized_fraction"] == 1.0 and rounds == 1
        assert m["settlement.messages"] == rounds * (reporters + 1) * per_flood
        assert m["settlement.messages_per_market"] == m["settlement.messages"] / markets
        by_markets[markets] = m["settlement.messages"]
    assert by_markets[1] == by_markets[3]  # one bundle per reporter carries every market
