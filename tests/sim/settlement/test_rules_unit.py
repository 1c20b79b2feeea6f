"""Settlement rules on the instant host: BFT quorums and vote checks, optimistic disputes.

Four reporters, nodes 0-3, so ``f = 1`` and a certificate needs three votes. One market, whose
true outcome is 1, closes at 5 s and resolves at 10 s. Messages take :data:`HOP` seconds.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest

from market.accounts import reporter_account
from market.oracle import Settlement
from market.types import to_micro
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
    protocol: str,
    *,
    byzantine: frozenset[int] = frozenset(),
    latency: Any = HOP,
    strategy: str = "fixed",
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
        host.plug(ByzantineReporters(host, proto, strategy))
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
    assert all(m.round == 0 for m in bft.voting.machines.values())


def test_bft_honest_reporters_who_observed_different_outcomes_make_no_quorum() -> None:
    host, bft = _host("bft")
    for node in (0, 1):  # half the honest reporters saw the wrong outcome: 2 + 2 < 2 quorums
        bft.voting.observed[(node, 0)] = WRONG
    assert not bft.voting.machines  # consensus starts when the market resolves
    host.start(blocks=True)
    host.run(until=RESOLVE_S - 0.5)
    host.run(until=RESOLVE_S + 60.0)
    assert not host.exchange.ledger.is_settled(0)
    rows = [bft.records[key] for key in sorted(bft.records)]
    assert len(rows) >= 4 and all(max(r.prevotes) == 2 for r in rows)  # each side its own
    assert {r.proposed for r in rows} == {TRUTH, WRONG}  # the proposers propose what they saw
    # no polka in any round: nobody locks, all four precommit nil and time out to the next round
    assert all(r.votes == [0, 0] and r.nil_precommits == 4 for r in rows[:-1])
    starts = [r.t_start for r in rows]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps))  # timeouts grow


def test_bft_the_chain_takes_equivocation_evidence_and_slashes_the_signer() -> None:
    host, bft = _host("bft", byzantine=frozenset({3}), strategy="silent")  # the test acts for 3
    voting = bft.voting
    host.start(blocks=True)
    host.run(until=RESOLVE_S - 0.5)
    secret = bft.keys.secrets[3]
    votes = [
        sign_vote(secret, reporter=3, market=0, round_=0, outcome=o, meter=None, step="prevote")
        for o in (TRUTH, WRONG)
    ]
    host.run(until=RESOLVE_S + 0.01)
    voting.send(3, 0, votes[:1])  # each value to a different honest reporter, directly
    voting.send(3, 1, votes[1:])
    host.run(until=RESOLVE_S + 20.0)
    assert host.exchange.ledger.is_settled(0)  # one Byzantine of four: still live and safe
    assert host.exchange.evidence == {(3, 0, 0, "prevote")}
    assert host.exchange.ledger.cash(reporter_account(3)) == 0
    assert host.exchange.slashed == {3: to_micro(100.0)}  # its whole endowment
    assert all(r.exchange.evidence == host.exchange.evidence for r in host.replicas.values())
    assert bft.records[(0, 0)].equivocations == 1
    assert bft.metrics()["settlement.equivocations_detected"] == 1
    assert bft.metrics()["settlement.slashed"] == 100.0
    assert bft.metrics()["settlement.conflicting_certificates"] == 0


def test_bft_replicas_refuse_a_certificate_with_a_forged_signature_or_a_duplicate_signer() -> None:
    host, bft = _host("bft", latency=_lose_votes_of({2, 3}))
    host.start()
    host.run(until=RESOLVE_S + 1.0)
    assert not host.exchange.ledger.is_settled(0)
    secrets = bft.keys.secrets
    votes = [
        sign_vote(secrets[n], reporter=n, market=0, round_=0, outcome=TRUTH, meter=None)
        for n in (0, 1)
    ]
    forged = certificate([*votes, Vote(2, 0, 0, TRUTH, bytes(64))])
    doubled = replace(certificate([*votes, votes[0]]), voters=(0, 0, 1))  # one signer counted twice
    assert len(forged.voters) == len(doubled.voters) == 3
    host.commit(Block(len(host.blocks), host.now, 0, (SettleTx(forged), SettleTx(doubled))))
    host.run(until=host.now + 1.0)
    assert not host.exchange.ledger.is_settled(0)
    assert not any(r.exchange.ledger.is_settled(0) for r in host.replicas.values())
    assert bft.records[(0, 0)].refused == 2


def _lose_votes_of(lost: set[int]) -> Any:
    def latency(kind: str, src: int, _dst: int) -> float | None:
        return None if kind == "vote" and src in lost else HOP

    return latency


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
