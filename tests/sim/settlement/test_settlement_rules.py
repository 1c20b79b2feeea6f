"""The pure rules of BFT settlement: quorums, message checks, the signature cache, certificates,
equivocation evidence."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest

from market.crypto import CryptoMeter, base_mul, keypair, sign
from market.oracle import Settlement
from sim.settlement import majority_ok
from sim.settlement.rules import (
    NIL,
    Keyring,
    Vote,
    bft_quorum,
    certificate,
    certificate_ok,
    check_signed,
    equivocation,
    evidence_ok,
    fault_tolerance,
    observations,
    rota,
    settlement_ok,
    sign_proposal,
    sign_vote,
    step_message,
    vote_message,
)

REPORTERS = (3, 5, 8, 13)  # n = 4: f = 1, a certificate needs 3 signatures
OUTSIDER = 21


@pytest.fixture(scope="module")
def keys() -> dict[int, int]:
    randbytes = random.Random(7).randbytes
    return {node: keypair(randbytes)[0] for node in (*REPORTERS, OUTSIDER)}


@pytest.fixture
def ring(keys: dict[int, int]) -> Keyring:
    return Keyring({n: base_mul(keys[n]) for n in REPORTERS}, meter=CryptoMeter())


def _vote(
    keys: dict[int, int],
    reporter: int,
    *,
    market: int = 2,
    round_: int = 1,
    outcome: int = 0,
    step: str = "precommit",
) -> Vote:
    return sign_vote(
        keys[reporter],
        reporter=reporter,
        market=market,
        round_=round_,
        outcome=outcome,
        meter=None,
        step=step,  # type: ignore[arg-type]
    )


def _check(vote: Vote, ring: Keyring) -> str | None:
    return check_signed(vote, keyring=ring, outcomes=2)


@pytest.mark.parametrize(
    ("n", "f", "q"),
    [(1, 0, 1), (3, 0, 3), (4, 1, 3), (7, 2, 5), (10, 3, 7), (21, 6, 15), (100, 33, 67)],
)
def test_quorum_is_two_thirds_of_n_plus_one_with_f_a_third_of_n_minus_one(
    n: int, f: int, q: int
) -> None:
    assert fault_tolerance(n) == f and bft_quorum(n) == q
    # f Byzantine reporters cannot certify alone, and the n - f others can
    assert f < q <= n - f


def test_two_quorums_share_more_than_f_reporters_so_an_honest_one() -> None:
    """Safety's premise: any two quorums intersect in at least ``2q − n`` reporters, and that
    must exceed ``f``, or f Byzantine reporters in both could certify two outcomes."""
    n, f, q = 21, fault_tolerance(21), bft_quorum(21)
    first, second = set(range(q)), set(range(n - q, n))  # the smallest overlap two can have
    assert len(first & second) == 2 * q - n == 9 > f == 6
    assert 2 * (2 * f + 1) - n == 5 <= f  # the old 2f + 1 quorum: 13 and 13 share only 5
    for size in range(1, 301):
        q, f = bft_quorum(size), fault_tolerance(size)
        assert 2 * q - size > f and q <= size - f, size  # safe, and the honest are enough


def test_a_valid_vote_or_proposal_passes_every_check(keys: dict[int, int], ring: Keyring) -> None:
    assert _check(_vote(keys, 5), ring) is None
    assert _check(_vote(keys, 5, outcome=NIL, step="prevote"), ring) is None  # a nil vote
    proposal = sign_proposal(
        keys[8], reporter=8, market=2, round_=1, outcome=1, valid_round=0, meter=None
    )
    assert check_signed(proposal, keyring=ring, outcomes=2) is None
    assert check_signed(replace(proposal, valid_round=-1), keyring=ring, outcomes=2) == (
        "bad_signature"  # validRound is signed too: a lock's proof cannot be made up
    )


def test_each_bad_vote_is_rejected_for_its_own_reason(keys: dict[int, int], ring: Keyring) -> None:
    good = _vote(keys, 5)
    sybil = _vote(keys, OUTSIDER)  # validly signed, but not by a reporter
    forged = replace(good, signature=bytes(64))
    tampered = replace(good, outcome=1)  # the signature was on outcome 0
    impostor = replace(_vote(keys, 8), reporter=5)  # 8's signature claimed as 5's
    assert _check(sybil, ring) == "non_reporter"
    assert _check(_vote(keys, 5, outcome=2), ring) == "out_of_range"
    for bad in (forged, tampered, impostor):
        assert _check(bad, ring) == "bad_signature"


def test_a_vote_replayed_into_another_market_round_or_step_does_not_verify(
    keys: dict[int, int], ring: Keyring
) -> None:
    prevote = _vote(keys, 5, step="prevote")
    assert _check(prevote, ring) is None
    for replayed in (
        replace(prevote, market=3),
        replace(prevote, round=2),
        replace(prevote, step="precommit"),  # a prevote does not count as a precommit
    ):
        assert _check(replayed, ring) == "bad_signature"


def test_each_signed_message_is_verified_once_however_many_nodes_check_it(
    keys: dict[int, int], ring: Keyring
) -> None:
    vote = _vote(keys, 5)
    for _ in range(50):  # fifty nodes receive the same vote
        assert _check(vote, ring) is None
    assert ring.meter is not None and ring.meter.ops == {"verify": 1}
    forged = replace(vote, signature=bytes(64))
    for _ in range(3):
        assert _check(forged, ring) == "bad_signature"
    assert ring.meter.ops == {"verify": 2}  # the forgery is a new message: checked, then cached
    _check(_vote(keys, OUTSIDER), ring)  # a sybil's vote costs no verification
    assert ring.meter.ops == {"verify": 2}


def test_two_signed_values_of_one_step_are_evidence_the_chain_can_check(
    keys: dict[int, int], ring: Keyring
) -> None:
    a, b = _vote(keys, 5, outcome=0), _vote(keys, 5, outcome=1)
    evidence = equivocation(b, a)
    assert evidence is not None and evidence.kind == "evidence"
    assert (evidence.voters, evidence.market, evidence.round, evidence.step) == (
        (5,),
        2,
        1,
        "precommit",
    )
    assert evidence.values == (0, 1) and evidence_ok(evidence, keyring=ring)
    assert settlement_ok(evidence, keyring=ring, quorum=3)
    nil = _vote(keys, 5, outcome=NIL)
    assert equivocation(a, nil) is not None  # a value against nil counts too
    # not evidence: the same vote twice, or two different steps, rounds, markets or signers
    assert equivocation(a, a) is None
    assert equivocation(a, _vote(keys, 5, outcome=1, step="prevote")) is None
    assert equivocation(a, _vote(keys, 5, outcome=1, round_=2)) is None
    assert equivocation(a, _vote(keys, 5, outcome=1, market=3)) is None
    assert equivocation(a, _vote(keys, 8, outcome=1)) is None
    # forged evidence is refused: a made-up second signature, or one moved from another signer
    assert not evidence_ok(replace(evidence, signatures=(a.signature, bytes(64))), keyring=ring)
    other = _vote(keys, 8, outcome=1)
    assert not evidence_ok(
        replace(evidence, signatures=(a.signature, other.signature)), keyring=ring
    )
    assert not evidence_ok(replace(evidence, values=(0, 0)), keyring=ring)
    assert not evidence_ok(replace(evidence, step="prevote"), keyring=ring)


def test_a_certificate_needs_a_quorum_of_distinct_valid_signatures(
    keys: dict[int, int], ring: Keyring
) -> None:
    votes = [_vote(keys, r) for r in (3, 5, 8)]
    cert = certificate(votes)
    assert cert.voters == (3, 5, 8) and len(cert.signatures) == 3
    assert certificate_ok(cert, keyring=ring, quorum=3)
    assert not certificate_ok(certificate(votes[:2]), keyring=ring, quorum=3)
    doubled = replace(
        cert, voters=(3, 3, 5), signatures=(*cert.signatures[:1], *cert.signatures[:2])
    )
    assert not certificate_ok(doubled, keyring=ring, quorum=3)
    assert not certificate_ok(replace(cert, signatures=cert.signatures[:2]), keyring=ring, quorum=3)
    forged = replace(cert, signatures=(*cert.signatures[:2], bytes(64)))
    assert not certificate_ok(forged, keyring=ring, quorum=3)
    # the same signatures do not justify another outcome, market or round
    for moved in (replace(cert, outcome=1), replace(cert, market=3), replace(cert, round=2)):
        assert not certificate_ok(moved, keyring=ring, quorum=3)
    # prevotes are not precommits: a polka is not a certificate
    polka = certificate([_vote(keys, r, step="prevote") for r in (3, 5, 8)])
    assert not certificate_ok(polka, keyring=ring, quorum=3)
    sybils = certificate([*votes[:2], _vote(keys, OUTSIDER)])
    assert not certificate_ok(sybils, keyring=ring, quorum=3)


def test_replicas_check_bond_steps_by_their_posters_signature(
    keys: dict[int, int], ring: Keyring
) -> None:
    step = Settlement(2, 1, (5,), kind="propose", request=0)
    signed = replace(step, signatures=(sign(keys[5], step_message(step)),))
    assert settlement_ok(signed, keyring=ring, quorum=3)
    assert settlement_ok(replace(signed, t=99.0), keyring=ring, quorum=3)  # the time is the block's
    stolen = replace(signed, voters=(8,))  # spending someone else's bond
    assert not settlement_ok(stolen, keyring=ring, quorum=3)
    assert not settlement_ok(replace(signed, outcome=0), keyring=ring, quorum=3)
    assert not settlement_ok(replace(signed, kind="dispute"), keyring=ring, quorum=3)
    assert not settlement_ok(replace(step, signatures=()), keyring=ring, quorum=3)
    expiry = Settlement(2, 1, kind="expire", request=0, t=9.0)
    assert settlement_ok(expiry, keyring=ring, quorum=3)
    assert not settlement_ok(replace(expiry, voters=(5,)), keyring=ring, quorum=3)


def test_messages_are_domain_separated_and_injective() -> None:
    seen = {
        vote_message(m, r, s, o, rep)
        for m in range(3)
        for r in range(3)
        for s in ("prevote", "precommit")
        for o in (NIL, 0, 1)
        for rep in (1, 2)
    }
    assert len(seen) == 3 * 3 * 2 * 3 * 2
    step = Settlement(1, 1, (5,), kind="propose")
    assert step_message(step) != step_message(replace(step, kind="dispute"))
    assert step_message(step) != vote_message(1, 0, "precommit", 1, 5)


def test_the_leader_rota_changes_every_round_and_visits_everyone() -> None:
    order = [8, 3, 13, 5]
    leaders = [rota(order, r) for r in range(8)]
    assert all(a != b for a, b in itertools.pairwise(leaders))
    assert set(leaders[:4]) == set(order) and leaders[4:] == leaders[:4]


def test_the_unsigned_majority_check_of_the_first_version_still_holds() -> None:
    assert majority_ok(Settlement(0, 1, (3, 5)), reporters=frozenset(REPORTERS), needed=2)
    assert not majority_ok(Settlement(0, 1, (3, 3)), reporters=frozenset(REPORTERS), needed=2)
    assert not majority_ok(Settlement(0, 1, (3, 99)), reporters=frozenset(REPORTERS), needed=2)


def test_observations_are_the_truth_or_with_the_error_a_wrong_outcome() -> None:
    truth = [0, 1, 2] * 100
    exact = observations(range(7), truth, outcomes=3, error=0.0, rng=random.Random(1))
    assert all(seen == truth[m] for (_, m), seen in exact.items())
    wrong = observations(range(7), truth, outcomes=3, error=1.0, rng=random.Random(1))
    assert all(seen != truth[m] and 0 <= seen < 3 for (_, m), seen in wrong.items())
    assert {seen for (_, m), seen in wrong.items() if truth[m] == 0} == {1, 2}  # both others
    noisy = observations(range(7), truth, outcomes=3, error=0.3, rng=random.Random(2))
    share = sum(seen != truth[m] for (_, m), seen in noisy.items()) / len(noisy)
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / len(noisy))  # 2,100 draws, ±4 sd
    again = observations(range(7), truth, outcomes=3, error=0.3, rng=random.Random(2))
    assert again == noisy
