"""Settlement rules on the instant host: BFT quorums and vote checks, optimistic disputes.

Four reporters, nodes 0-3, so ``f = 1`` and a certificate needs three votes. One market, whose
true outcome is 1, closes at 5 s and resolves at 10 s. Messages take :data:`HOP` seconds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from market.oracle import Settlement
from sim.adversary.byzantine import ByzantineReporters
from sim.chain.blocks import Block, SettleTx
from sim.host.faults import FaultPlan
from sim.host.instant import InstantHost, tiny_world
from sim.scenario import Scenario
from sim.settlement.bft import BFT
from sim.settlement.optimistic import Optimistic
from sim.settlement.rules import Vote, certificate, sign_vote

HOP = 0.05
TRUTH, WRONG = 1, 0
RESOLVE_S = 10.0


def _host(
    protocol: str, *, byzantine: frozenset[int] = frozenset(), latency: Any = HOP
) -> tuple[InstantHost, Any]:
    scenario = Scenario.model_validate(
        {
            "name": "unit",
            "seed": 9,
            "duration_s": 1000.0,
            "network": {"nodes": 6, "topology": "complete", "block_interval_s": 1.0},
            "market": {"count": 1, "close_s": 5.0, "resolve_s": RESOLVE_S},
            "traders": {"informed": 0, "noise": 1},
            "settlement": {
                "protocol": protocol,
                "reporters": 4,
                "round_timeout_s": 5.0,
                "bond": 10.0,
                "endowment": 100.0,
                "liveness_s": 20.0,
            },
        }
    )
    world = tiny_world(scenario, reporters=(0, 1, 2, 3), trader_nodes=(5,), outcomes=(TRUTH,))
    host = InstantHost(scenario, world, latency=latency)
    plan = FaultPlan(byzantine, frozenset(), (), ())
    cls = BFT if protocol == "bft" else Optimistic
    proto = cls(host, plan, market=scenario.market, settlement=scenario.settlement)
    host.plug(proto)
    if byzantine:
        host.plug(ByzantineReporters(host, proto))
    return host, proto


def _settled(host: InstantHost) -> Settlement | None:
    final = [s for s in host.exchange.applied if s.kind in ("certificate", "expire")]
    return final[-1] if final else None


# -- BFT ---------------------------------------------------------------------------------------


def test_bft_a_quorum_of_votes_settles_the_truth() -> None:
    host, bft = _host("bft")
    host.start(blocks=True)
    host.run(until=RESOLVE_S + 2.0)
    settled = _settled(host)
    assert settled is not None and settled.kind == "certificate"
    assert settled.outcome == TRUTH and len(settled.voters) >= 3
    assert host.exchange.ledger.is_settled(0)
    record = bft.records[(0, 0)]
    assert record.outcome == TRUTH and record.t_final <= RESOLVE_S + 2.0
    assert all(r.exchange.ledger.is_settled(0) for r in host.replicas.values())


def test_bft_no_round_follows_the_certificate_even_while_a_replica_lags() -> None:
    def latency(kind: str, _src: int, dst: int) -> float | None:
        return None if kind == "block" and dst == 3 else HOP  # reporter 3 never gets a block

    host, bft = _host("bft", latency=latency)
    host.start(blocks=True)  # no catch-up either: its replica stays behind for good
    host.run(until=RESOLVE_S + 10 * 5.0)
    assert host.exchange.ledger.is_settled(0) and not host.replicas[3].exchange.ledger.is_settled(0)
    assert sorted(bft.records) == [(0, 0)]  # round 0 made it final, and was the last
    assert not bft.voting.running


def test_bft_honest_reporters_who_observed_different_outcomes_make_no_quorum() -> None:
    host, bft = _host("bft")
    for node in (0, 1):  # half the honest reporters saw the wrong outcome: 2 + 2 < 2 quorums
        bft.voting.observed[(node, 0)] = WRONG
    host.start(blocks=True)
    host.run(until=RESOLVE_S + 6 * 5.0)
    assert not host.exchange.ledger.is_settled(0)
    rows = [bft.records[key] for key in sorted(bft.records)]
    assert len(rows) >= 6 and all(max(r.votes) <= 2 for r in rows)  # each side signs its own
    assert {WRONG, TRUTH} == {o for r in rows for o, n in enumerate(r.votes) if n == 2}
    assert {r.proposed for r in rows} == {TRUTH, WRONG}  # the leaders propose what they saw
    bft.voting.observed[(1, 0)] = TRUTH  # one of them corrects itself: three agree
    host.run(until=host.now + 3 * 5.0)
    settled = _settled(host)
    assert settled is not None and settled.outcome == TRUTH


def _two_votes_at_node_0(host: InstantHost, bft: BFT) -> None:
    """Round 0 runs; the votes of reporters 2 and 3 are lost, so node 0 holds two votes."""
    host.start()
    host.run(until=6.0)
    host.close_block(proposer=0)  # the market closes
    host.run(until=RESOLVE_S + 1.0)
    voting = bft.voting
    assert voting.round == 0
    assert voting.tallies[(0, 0)].counts[TRUTH] == 2
    assert 0 not in voting.certificates


def _lose_votes_of(lost: set[int]) -> Any:
    def latency(kind: str, src: int, _dst: int) -> float | None:
        return None if kind == "vote" and src in lost else HOP

    return latency


def test_bft_a_forged_vote_does_not_count() -> None:
    host, bft = _host("bft", latency=_lose_votes_of({2, 3}))
    _two_votes_at_node_0(host, bft)
    voting = bft.voting
    forged = Vote(2, 0, 0, TRUTH, bytes(64))  # in reporter 2's name, not its signature
    voting._count(0, [(0, forged)])
    assert voting.tallies[(0, 0)].counts[TRUTH] == 2
    assert 0 not in voting.certificates
    assert bft.records[(0, 0)].rejected["bad_signature"] == 1
    assert host.close_block(proposer=0) is None
    # the genuine vote of reporter 2 makes the quorum: the count above really was one short
    genuine = sign_vote(
        bft.keys.secrets[2], reporter=2, market=0, round_=0, outcome=TRUTH, meter=None
    )
    voting._count(0, [(0, genuine)])
    assert 0 in voting.certificates
    host.close_block(proposer=0)
    settled = _settled(host)
    assert settled is not None and settled.outcome == TRUTH


def test_bft_a_duplicate_vote_does_not_count() -> None:
    host, bft = _host("bft", latency=_lose_votes_of({2, 3}))
    _two_votes_at_node_0(host, bft)
    voting = bft.voting
    again = voting.tallies[(0, 0)].by_reporter[1]
    voting._count(0, [(0, again), (0, again)])
    assert voting.tallies[(0, 0)].counts[TRUTH] == 2
    assert 0 not in voting.certificates
    assert host.close_block(proposer=0) is None
    assert not host.exchange.ledger.is_settled(0)


def test_bft_a_vote_from_another_round_does_not_count() -> None:
    host, bft = _host("bft", latency=_lose_votes_of({2, 3}))
    _two_votes_at_node_0(host, bft)
    voting = bft.voting
    stale = sign_vote(
        bft.keys.secrets[2], reporter=2, market=0, round_=1, outcome=TRUTH, meter=None
    )
    voting._count(0, [(0, stale)])
    assert voting.tallies[(0, 0)].counts[TRUTH] == 2
    assert bft.records[(0, 0)].rejected["replayed_round"] == 1


def test_bft_replicas_refuse_a_certificate_with_a_forged_signature() -> None:
    host, bft = _host("bft", latency=_lose_votes_of({2, 3}))
    _two_votes_at_node_0(host, bft)
    votes = list(bft.voting.tallies[(0, 0)].by_reporter.values())
    forged = certificate([*votes, Vote(2, 0, 0, TRUTH, bytes(64))])
    assert len(forged.voters) == 3
    host.commit(Block(len(host.blocks), host.now, 0, (SettleTx(forged),)))
    host.run(until=host.now + 1.0)
    assert not host.exchange.ledger.is_settled(0)
    assert not any(r.exchange.ledger.is_settled(0) for r in host.replicas.values())
    assert bft.records[(0, 0)].refused == 1


# -- optimistic ----------------------------------------------------------------------------------


def test_optimistic_an_undisputed_proposal_settles_when_its_liveness_ends() -> None:
    host, opt = _host("optimistic")
    host.start(blocks=True)
    host.run(until=RESOLVE_S + 19.0)
    assert not host.exchange.ledger.is_settled(0)  # the proposal is still in its liveness
    host.run(until=RESOLVE_S + 25.0)
    settled = _settled(host)
    assert settled is not None and settled.kind == "expire" and settled.outcome == TRUTH
    assert opt.records[(0, 0)].disputes == 0


def test_optimistic_disputes_within_the_liveness_escalate_to_a_vote() -> None:
    # reporter 3 is Byzantine: it proposes the wrong outcome and disputes the true one
    host, opt = _host("optimistic", byzantine=frozenset({3}))
    host.start(blocks=True)
    host.run(until=RESOLVE_S + 60.0)
    first, second = opt.records[(0, 0)], opt.records[(0, 1)]
    assert first.disputes == 1 and second.disputes == 1  # each request was disputed once
    assert [r.disputed for r in host.exchange.requests[0]] == [True, True]
    assert (0, 2) in opt.records and opt.records[(0, 2)].step == "vote"
    settled = _settled(host)
    assert settled is not None and settled.kind == "certificate" and settled.outcome == TRUTH
    for proposal in host.exchange.requests[0]:
        assert proposal.t <= RESOLVE_S + 60.0


def test_optimistic_a_wrong_proposal_nobody_disputes_in_time_stands() -> None:
    # blocks reach the honest reporters only after the liveness: nobody can dispute in time
    def latency(kind: str, _src: int, dst: int) -> float | None:
        return 30.0 if kind == "block" and dst != 3 else HOP

    host, _opt = _host("optimistic", byzantine=frozenset({3}), latency=latency)
    host.start(blocks=True)
    host.run(until=RESOLVE_S + 80.0)
    assert [(r.proposer, r.outcome, r.disputer) for r in host.exchange.requests[0]] == [
        (3, WRONG, -1)
    ]
    settled = _settled(host)
    assert settled is not None and settled.kind == "expire" and settled.outcome == WRONG


@pytest.mark.parametrize("late", [False, True])
def test_optimistic_a_dispute_is_taken_only_within_the_liveness(late: bool) -> None:
    """The wrong proposal goes on chain at once; the honest dispute waits for the next block."""
    host, opt = _host("optimistic", byzantine=frozenset({3}))
    host.start()
    host.run(until=6.0)
    host.close_block(proposer=0)  # the market closes
    host.run(until=RESOLVE_S + 0.5)  # both proposals reached node 0: it takes the wrong one
    wrong = next(s for s in opt.pools[0] if s.kind == "propose" and s.outcome == WRONG)
    host.commit(Block(len(host.blocks), host.now, 0, (SettleTx(replace(wrong, t=host.now)),)))
    del opt.pools[0][wrong]
    host.run(until=host.now + 1.0)  # the block reached the honest reporters, who disputed
    assert any(s.kind == "dispute" for s in opt.pools[0])
    host.run(until=host.now + (opt.liveness if late else 1.0))
    host.close_block(proposer=0)
    [request, *rest] = host.exchange.requests[0]
    if late:
        assert request.disputer == -1 and rest == []
        settled = _settled(host)
        assert settled is not None and settled.kind == "expire" and settled.outcome == WRONG
    else:
        assert request.disputer in (0, 1, 2)
        assert (0, 1) in opt.records  # the dispute reset the request
        assert not host.exchange.ledger.is_settled(0)
