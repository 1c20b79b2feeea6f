"""The optimistic oracle on the exchange: bonds, disputes, liveness, resets and payouts by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from market.accounts import BOND_ESCROW, TREASURY, maker_account, reporter_account
from market.exchange import Exchange, maker_funding
from market.ledger import Ledger
from market.lmsr import make_market_maker
from market.oracle import OracleTerms, Request, Settlement, bond_release
from market.types import MICRO

BOND = 750 * MICRO
LIVENESS = 100.0
ENDOWMENT = 2000 * MICRO
A, B, C = 4, 9, 12  # reporter nodes
TERMS = OracleTerms(BOND, LIVENESS)


def _exchange(*, terms: OracleTerms | None = TERMS) -> Exchange:
    makers = [make_market_maker(mechanism="lmsr", outcomes=3, liquidity_b=10.0, alpha=0.05)] * 2
    ledger = Ledger()
    for m, maker in enumerate(makers):
        ledger.mint(maker_account(m), maker_funding(maker))
    for node in (A, B, C):
        ledger.mint(reporter_account(node), ENDOWMENT)
    exchange = Exchange(makers, ledger, fee_per_share=0)
    exchange.terms = terms
    return exchange


def _propose(who: int, outcome: int, t: float, *, request: int = 0, market: int = 0) -> Settlement:
    return Settlement(market, outcome, (who,), kind="propose", request=request, t=t)


def _dispute(who: int, t: float, *, request: int = 0, market: int = 0) -> Settlement:
    return Settlement(market, 0, (who,), kind="dispute", request=request, t=t)


def _expire(t: float, *, request: int = 0, market: int = 0, outcome: int = 0) -> Settlement:
    return Settlement(market, outcome, kind="expire", request=request, t=t)


def _cash(exchange: Exchange, node: int) -> int:
    return exchange.ledger.cash(reporter_account(node))


def _refused(exchange: Exchange, step: Settlement) -> bool:
    before, log = exchange.state_hash(), len(exchange.applied)
    paid = exchange.settle(step)
    return paid == {} and exchange.state_hash() == before and len(exchange.applied) == log


def test_an_undisputed_proposal_settles_when_its_liveness_ends() -> None:
    ex = _exchange()
    assert ex.settle(_propose(A, 2, t=10.0)) == {}
    assert _cash(ex, A) == ENDOWMENT - BOND and ex.ledger.cash(BOND_ESCROW) == BOND
    assert ex.requests[0] == (Request(A, 2, BOND, 10.0),)
    assert _refused(ex, _expire(t=109.9))  # liveness not over
    paid = ex.settle(_expire(t=110.0))
    assert paid == {reporter_account(A): BOND}  # no shares were held: only the bond comes back
    assert ex.ledger.is_settled(0) and 0 in ex.closed
    assert _cash(ex, A) == ENDOWMENT and ex.ledger.cash(BOND_ESCROW) == 0
    assert ex.ledger.conservation_error() == 0
    assert [s.kind for s in ex.applied] == ["propose", "expire"]


def test_a_dispute_must_come_in_time_from_another_reporter_for_the_current_request() -> None:
    ex = _exchange()
    ex.settle(_propose(A, 2, t=10.0))
    assert _refused(ex, _dispute(A, t=20.0))  # its own proposer
    assert _refused(ex, _dispute(B, t=110.0))  # after the liveness window
    assert _refused(ex, _dispute(B, t=20.0, request=1))  # a request that does not exist
    assert _refused(ex, _propose(B, 1, t=20.0))  # a rival proposal while one stands
    ex.settle(_dispute(B, t=20.0))
    assert ex.requests[0][0].disputer == B and _cash(ex, B) == ENDOWMENT - BOND
    assert _refused(ex, _dispute(C, t=21.0))  # already disputed
    assert _refused(ex, _expire(t=500.0))  # a disputed proposal never expires


def test_the_first_dispute_resets_the_request_and_the_second_sends_it_to_a_vote() -> None:
    ex = _exchange()
    ex.settle(_propose(A, 2, t=10.0))
    vote = Settlement(0, 1, (A, B, C), round=0)
    assert _refused(ex, vote)  # the oracle is open: no vote yet
    ex.settle(_dispute(B, t=20.0))
    assert _refused(ex, _propose(C, 1, t=21.0))  # request 0 is done: a new proposal is request 1
    ex.settle(_propose(C, 1, t=21.0, request=1))
    assert _refused(ex, vote)  # request 1 stands undisputed
    ex.settle(_dispute(A, t=30.0, request=1))
    assert _refused(ex, _propose(B, 1, t=31.0, request=2))  # no third request
    assert ex.ledger.cash(BOND_ESCROW) == 4 * BOND
    paid = ex.settle(vote)
    # request 0: A proposed 2, the vote says 1: disputer B was right. Request 1: C was right.
    assert paid == {reporter_account(B): BOND + BOND // 2, reporter_account(C): BOND + BOND // 2,
                    TREASURY: BOND}  # fmt: skip
    assert _cash(ex, A) == ENDOWMENT - 2 * BOND  # the liar lost both bonds
    assert _cash(ex, B) == _cash(ex, C) == ENDOWMENT + BOND // 2
    assert ex.ledger.cash(TREASURY) == 2 * (BOND - BOND // 2)
    assert ex.ledger.cash(BOND_ESCROW) == 0 and ex.ledger.conservation_error() == 0
    assert _refused(ex, vote)  # settled once: never again


def test_bonds_split_exactly_even_when_odd() -> None:
    right, wrong = Request(A, 1, 3, 0.0, disputer=B), Request(A, 0, 3, 0.0, disputer=B)
    assert bond_release(right, 1) == [(reporter_account(A), 4), (TREASURY, 2)]
    assert bond_release(wrong, 1) == [(reporter_account(B), 4), (TREASURY, 2)]
    assert bond_release(Request(C, 0, 3, 0.0), 0) == [(reporter_account(C), 3)]
    for request in (right, wrong):
        assert sum(micro for _, micro in bond_release(request, 1)) == 2 * request.bond


def test_an_unpaid_bond_changes_nothing() -> None:
    ex = _exchange(terms=OracleTerms(ENDOWMENT + 1, LIVENESS))
    assert _refused(ex, _propose(A, 1, t=0.0))
    ex = _exchange(terms=OracleTerms(BOND, LIVENESS))
    ex.ledger.transfer(reporter_account(B), TREASURY, ENDOWMENT - BOND + 1)
    ex.settle(_propose(A, 1, t=0.0))
    assert _refused(ex, _dispute(B, t=1.0))


def test_proposals_need_the_oracle_and_outcomes_in_range() -> None:
    assert _refused(_exchange(terms=None), _propose(A, 1, t=0.0))
    ex = _exchange()
    assert _refused(ex, _propose(A, 3, t=0.0))  # three outcomes: 0, 1, 2
    assert _refused(ex, _propose(A, 1, t=0.0, market=2))  # two markets
    assert _refused(ex, replace(_propose(A, 1, t=0.0), voters=(A, B)))
    # without the oracle, a certificate settles at once (BFT)
    bft = _exchange(terms=None)
    assert bft.settle(Settlement(1, 0, (A, B, C))) == {} and bft.ledger.is_settled(1)
    assert [s.kind for s in bft.applied] == ["certificate"]


def test_replicas_applying_the_same_steps_agree_and_the_hash_covers_requests() -> None:
    ex = _exchange()
    steps = [_propose(A, 2, t=1.0), _dispute(B, t=2.0), _propose(C, 1, t=3.0, request=1)]
    replica = ex.copy()
    hashes = []
    for step in steps:
        ex.settle(step)
        hashes.append(ex.state_hash())
    assert len(set(hashes)) == 3 and replica.requests == {} and replica.applied == []
    for step in steps:
        replica.settle(step)
    assert replica.state_hash() == ex.state_hash()
    other = replica.copy()
    other.settle(_dispute(A, t=4.0, request=1))
    assert other.state_hash() != replica.state_hash()


HALF = BOND // 2


@pytest.mark.parametrize(
    ("winner", "gains"),
    [
        # request 0: A proposes 0, B disputes; request 1: C proposes 2, A disputes
        (0, {A: BOND, B: -BOND, C: -BOND}),  # A right twice
        (1, {A: -BOND + HALF, B: HALF, C: -BOND}),  # B right, then A right
        (2, {A: -2 * BOND, B: HALF, C: HALF}),  # B right, then C right
    ],
)
def test_each_dispute_pays_its_right_side_half_the_loser_bond(
    winner: int, gains: dict[int, int]
) -> None:
    ex = _exchange()
    total = ex.ledger.total_cash()
    ex.settle(_propose(A, 0, t=0.0))
    ex.settle(_dispute(B, t=1.0))
    ex.settle(_propose(C, 2, t=2.0, request=1))
    ex.settle(_dispute(A, t=3.0, request=1))
    ex.settle(Settlement(0, winner, (A, B, C)))
    assert {n: _cash(ex, n) - ENDOWMENT for n in (A, B, C)} == gains
    assert ex.ledger.cash(TREASURY) == 2 * (BOND - HALF)
    assert ex.ledger.total_cash() == total and ex.ledger.cash(BOND_ESCROW) == 0
