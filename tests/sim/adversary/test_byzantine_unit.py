"""Byzantine reporters on the instant host: what the honest rules make of their proposals,
votes and certificates.

Four reporters, nodes 0-3, so ``f = 1`` and a certificate needs three votes; nodes 4 and 5 are
not reporters (4 is the sybil, 5 a trader). One market, whose true outcome is 1, closes at 5 s
and resolves at 10 s; with two outcomes the Byzantine reporters' wrong outcome is 0. A round's
timeouts add up to 5 s at first, messages take :data:`HOP` seconds.
"""

from __future__ import annotations

from typing import Any

import pytest

from market.oracle import Settlement
from sim.adversary.byzantine import ByzantineReporters
from sim.chain.blocks import SettleTx
from sim.host.faults import FaultPlan
from sim.host.instant import InstantHost, tiny_world
from sim.scenario import Scenario
from sim.settlement.bft import BFT
from sim.settlement.optimistic import Optimistic
from sim.settlement.protocol import SettlementProtocol

HOP = 0.05
TRUTH, WRONG = 1, 0
RESOLVE_S, ROUND_S = 10.0, 5.0
REPORTERS = (0, 1, 2, 3)


def _host(byzantine: frozenset[int]) -> tuple[InstantHost, BFT, ByzantineReporters]:
    host, bft, adversary = _plugged(byzantine, {"protocol": "bft"})
    assert isinstance(bft, BFT)
    return host, bft, adversary


def _plugged(
    byzantine: frozenset[int], settlement: dict[str, Any]
) -> tuple[InstantHost, SettlementProtocol, ByzantineReporters]:
    scenario = Scenario.model_validate(
        {
            "name": "unit",
            "seed": 9,
            "duration_s": 1000.0,
            "network": {"nodes": 6, "topology": "complete", "block_interval_s": 1.0},
            "market": {"count": 1, "close_s": 5.0, "resolve_s": RESOLVE_S},
            "traders": {"informed": 0, "noise": 1},
            "settlement": {"reporters": 4, "round_timeout_s": ROUND_S, **settlement},
        }
    )
    world = tiny_world(scenario, reporters=REPORTERS, trader_nodes=(5,), outcomes=(TRUTH,))
    host = InstantHost(scenario, world, latency=HOP)
    plan = FaultPlan(byzantine, frozenset(), (), ())
    cls = BFT if settlement["protocol"] == "bft" else Optimistic
    protocol = cls(host, plan, market=scenario.market, settlement=scenario.settlement)
    adversary = ByzantineReporters(host, protocol)
    host.plug(protocol)
    host.plug(adversary)
    return host, protocol, adversary


def _leader(round_: int) -> int:
    """Who proposes in ``round_`` (the rota depends on the run seed only, not on who is
    Byzantine)."""
    _, bft, _ = _host(frozenset())
    return bft.voting.proposer(0, round_)


def _certificates(host: InstantHost) -> list[Settlement]:
    return [s for s in host.exchange.applied if s.kind == "certificate"]


def test_a_byzantine_proposers_wrong_proposal_gathers_no_honest_prevote() -> None:
    lead = _leader(0)
    honest = [r for r in REPORTERS if r != lead]
    host, bft, adversary = _host(frozenset({lead}))
    assert adversary.wrong == (WRONG,)
    host.start(blocks=True)
    host.run(until=RESOLVE_S + 30.0)
    first = bft.records[(0, 0)]
    assert (first.leader, first.proposed) == (lead, WRONG)
    # every honest reporter got the proposal, found it invalid and prevoted nil
    assert first.prevotes == [1, 0] and first.nil_prevotes == len(honest)
    assert first.votes == [1, 0] and not first.finalized  # the Byzantine precommit, alone
    # the next round has an honest proposer: the honest reporters settle the truth
    second = bft.records[(0, 1)]
    assert second.leader in honest and second.votes[TRUTH] == len(honest)
    assert [s.outcome for s in _certificates(host)] == [TRUTH]
    assert second.finalized and sorted(bft.records) == [(0, 0), (0, 1)]


def test_replicas_refuse_a_byzantine_sequencers_forged_certificate() -> None:
    byzantine = 3
    host, bft, _ = _host(frozenset({byzantine}))
    host.start()
    host.run(until=6.0)
    host.close_block(proposer=0)  # the market closes
    host.run(until=RESOLVE_S + HOP / 2)  # round 0 began; no vote has reached anyone yet
    block = host.close_block(proposer=byzantine)
    assert block is not None
    [forged] = [tx.settlement for tx in block.txs if isinstance(tx, SettleTx)]
    assert (forged.kind, forged.outcome, len(forged.voters)) == ("certificate", WRONG, 3)
    assert byzantine in forged.voters  # one genuine signature, two forged in honest names
    host.run(until=RESOLVE_S + 3 * HOP)  # the block reached every replica
    assert not host.exchange.ledger.is_settled(0)
    assert len(host.replicas) == len(REPORTERS)
    assert not any(r.exchange.ledger.is_settled(0) for r in host.replicas.values())
    assert bft.records[(0, 0)].refused == 1
    assert host.close_block(proposer=byzantine) is None  # offered once per market and round
    # meanwhile the honest votes make a certificate at node 0: the truth settles everywhere
    host.run(until=RESOLVE_S + 30.0)
    host.close_block(proposer=0)
    host.run(until=host.now + 1.0)
    assert [s.outcome for s in _certificates(host)] == [TRUTH]
    assert all(r.exchange.ledger.is_settled(0) for r in host.replicas.values())


@pytest.mark.parametrize("byzantine", REPORTERS)
def test_with_fewer_than_a_third_byzantine_the_truth_settles(byzantine: int) -> None:
    """In the first round an honest reporter leads, despite the wrong votes and the junk."""
    first_honest = next(r for r in range(len(REPORTERS)) if _leader(r) != byzantine)
    host, bft, _ = _host(frozenset({byzantine}))
    host.start(blocks=True)
    host.run(until=RESOLVE_S + 30.0)
    assert sorted(bft.records)[-1] == (0, first_honest)  # the first honest proposer's round
    assert [s.outcome for s in _certificates(host)] == [TRUTH]
    for node, replica in host.replicas.items():
        if node != byzantine:
            final = [s.outcome for s in replica.exchange.applied if s.kind == "certificate"]
            assert final == [TRUTH]
    record = bft.records[(0, first_honest)]
    assert record.outcome == TRUTH and record.votes == [1, 3]
    # the junk was flooded, reached the counters and was caught by its check
    assert record.rejected["bad_signature"] >= 1 and record.rejected["non_reporter"] >= 1


def test_a_byzantine_reporter_posts_no_more_bonds_than_its_endowment_pays_for() -> None:
    """An endowment of one bond: it races to propose, then cannot dispute the true proposal."""
    terms = {"protocol": "optimistic", "bond": 10.0, "endowment": 15.0, "liveness_s": 20.0}
    host, _opt, adversary = _plugged(frozenset({3}), terms)
    host.start(blocks=True)
    host.run(until=RESOLVE_S + 60.0)
    own = [t for t, kind, origin, node in host.delivered if kind == "oracle" and origin == node]
    posted = [
        t for t, kind, origin, node in host.delivered if (kind, origin, node) == ("oracle", 3, 3)
    ]
    assert len(posted) == 1 and len(own) > 1  # one bond step from node 3, more from the others
    assert adversary.budget == {3: 0}
    requests = host.exchange.requests[0]
    assert (requests[0].proposer, requests[0].outcome) == (3, WRONG)  # it raced first
    assert all(r.disputer != 3 for r in requests)
    final = [s for s in host.exchange.applied if s.kind in ("certificate", "expire")]
    assert [(s.kind, s.outcome) for s in final] == [("expire", TRUTH)]
