"""How settlement messages scale, as the README states it, recomputed from the topology.

On a loss-free ``d``-regular network of ``N`` nodes a flood delivers ``N(d − 1) + 1`` messages
(the origin sends to ``d`` neighbours, every other node forwards to ``d − 1``), every one of them
sent. A Tendermint round that decides is, per market, one prevote bundle and one precommit bundle
flooded by each of the ``r`` honest reporters, the proposer's proposal riding in its prevote
bundle (it prevotes its own proposal at once): ``2r`` floods. Markets have their own proposers
(the rota turns with market and round); a node gathers what it sends within a short window into
one bundle, so with ``M`` markets a round is still one prevote and one precommit bundle per
reporter, plus one bundle per proposer (its proposal and own prevote go out before the other
markets' proposals reach it): ``2r + p`` floods with ``p`` distinct proposers, shared by the
markets.
"""

from __future__ import annotations

import copy

import pytest

from sim.runs.runner import build, compute_metrics
from sim.scenario import expand, parse_scenario
from sim.settlement import SettlementProtocol
from tests.conftest import SMALL

pytestmark = pytest.mark.slow  # whole runs


def _messages(reporters: int, markets: int) -> tuple[dict[str, float], SettlementProtocol]:
    scenario = copy.deepcopy(SMALL)
    scenario["settlement"]["reporters"] = reporters
    scenario["market"]["count"] = markets
    run = build(expand(parse_scenario(scenario))[0])
    run.run()
    protocol = next(c for c in run.components if isinstance(c, SettlementProtocol))
    return compute_metrics(run), protocol


@pytest.mark.parametrize("reporters", [4, 7, 13])
def test_a_round_costs_two_bundles_per_reporter_and_one_per_proposer(reporters: int) -> None:
    network = SMALL["network"]
    per_flood = network["nodes"] * (network["degree"] - 1) + 1
    for markets in (1, 3):
        m, protocol = _messages(reporters, markets)
        rounds = {r.round for r in protocol.rows() if r.step == "vote"}
        assert m["settlement.finalized_fraction"] == 1.0 and rounds == {0}
        proposers = {protocol.voting.proposer(market, 0) for market in range(markets)}
        extra = len(proposers) if markets > 1 else 0
        assert m["settlement.messages"] == (2 * reporters + extra) * per_flood
        assert m["settlement.messages_per_market"] == m["settlement.messages"] / markets
