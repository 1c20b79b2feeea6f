"""Signed votes, certificates and the checks every node makes: the pure rules of BFT voting.

A vote is an ECDSA P-256 signature (:func:`market.crypto.sign`) by a reporter on one
``(market, round, outcome)``; it is valid only for that market and that round, so a vote cannot
be replayed into another market's count or a later round. With ``n`` reporters the protocol
tolerates ``f = ⌊(n − 1)/3⌋`` Byzantine ones, and a *certificate* is ``q = ⌊2n/3⌋ + 1`` valid
signatures from distinct reporters on the same ``(market, round, outcome)``: every replica
verifies it before it pays anything out. Two quorums then share ``2q − n > f`` reporters, so at
least one honest reporter is in both (``2f + 1`` equals ``q`` only when ``n = 3f + 1``: at
``n = 21`` two quorums of 13 share 5 reporters, fewer than the 6 Byzantine ones tolerated).

Verification is the expensive part (~270 µs against ~2 µs for the rest of a vote's handling),
and with ``n`` reporters every node sees every vote, ``n²`` checks per market. A signature check
is a pure function of ``(signer, message, signature)``, so :class:`Keyring` remembers every
answer: each distinct signed message is verified once per run, however many nodes check it (a
real node would verify it once too, its own cache; the simulation shares one). A tampered vote
is a different ``(message, signature)`` pair and is verified afresh.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from Crypto.PublicKey.ECC import EccPoint

from market.crypto import CryptoMeter, sign, verify
from market.errors import CryptoError
from market.oracle import Settlement

VOTE_DOMAIN = b"veilcast/settlement/vote/v1|"
LEADER_DOMAIN = b"veilcast/settlement/leader/v1|"
STEP_DOMAIN = b"veilcast/settlement/oracle/v1|"

VOTE_BYTES = 2 + 4 + 1 + 2 + 64
"""A vote on the wire: market, round, outcome, reporter id and the 64-byte signature."""

Reason = Literal["non_reporter", "wrong_market", "replayed_round", "bad_signature"]
"""Why a vote was rejected, in the order the checks run (cheapest first)."""

REASONS: tuple[Reason, ...] = ("non_reporter", "wrong_market", "replayed_round", "bad_signature")


def fault_tolerance(reporters: int) -> int:
    """``f = ⌊(n − 1)/3⌋``: the Byzantine reporters ``n`` reporters tolerate."""
    return (reporters - 1) // 3


def bft_quorum(reporters: int) -> int:
    """``⌊2n/3⌋ + 1``: the signatures a certificate needs (more than two thirds of ``n``).

    Any two quorums share more than ``f`` reporters (so an honest one) whatever ``n`` is, and
    the ``n − f`` honest reporters still make one; ``2f + 1`` has the first property only when
    ``n = 3f + 1``.
    """
    return 2 * reporters // 3 + 1


def observations(
    reporters: Sequence[int],
    truth: Sequence[int],
    *,
    outcomes: int,
    error: float,
    rng: random.Random,
) -> dict[tuple[int, int], int]:
    """What each reporter observes of each market's outcome, keyed ``(reporter, market)``.

    With chance ``error`` a reporter observes a wrong outcome (uniform among the others),
    independently of every other reporter and market, so honest reporters can disagree. Drawn
    reporter by reporter, market by market, in the order given (deterministic for a seed).
    """
    seen = {}
    for reporter in reporters:
        for market, true in enumerate(truth):
            wrong = outcomes > 1 and rng.random() < error
            other = rng.randrange(outcomes - 1) if wrong else -1
            seen[(reporter, market)] = other + (other >= true) if wrong else true
    return seen


def rota(order: Sequence[int], index: int) -> int:
    """The ``index``-th turn of a rota: ``order`` over and over.

    Consecutive turns fall to different reporters (while there are two or more), so a
    Byzantine or crashed leader holds the vote back one round only.
    """
    return order[index % len(order)]


def vote_message(market: int, round_: int, outcome: int, reporter: int) -> bytes:
    """The bytes a reporter signs to vote ``outcome`` for ``market`` in ``round_``."""
    return VOTE_DOMAIN + struct.pack(">QQQQ", market, round_, outcome, reporter)


def leader_message(round_: int, reporter: int, choices: Sequence[tuple[int, int]]) -> bytes:
    """The bytes a round's leader signs to propose an outcome for each open market."""
    flat = [value for pair in choices for value in pair]
    return LEADER_DOMAIN + struct.pack(f">QQQ{len(flat)}Q", round_, reporter, len(choices), *flat)


def step_message(step: Settlement) -> bytes:
    """The bytes a reporter signs for an optimistic step (its block time excluded)."""
    kinds = ("certificate", "propose", "dispute", "expire")
    fields = (kinds.index(step.kind), step.market, step.request, step.outcome, *step.voters)
    return STEP_DOMAIN + struct.pack(f">{len(fields)}Q", *fields)


@dataclass(frozen=True, slots=True)
class Vote:
    """One reporter's signed vote (its fields are what it signed)."""

    reporter: int
    market: int
    round: int
    outcome: int
    signature: bytes

    def message(self) -> bytes:
        """The signed bytes."""
        return vote_message(self.market, self.round, self.outcome, self.reporter)


class Keyring:
    """The reporters' public keys, and every signature check's answer so far.

    Args:
        public: each reporter node's public key; nodes without one are not reporters.
        meter: counts the verifications actually computed (not the cached answers).
    """

    __slots__ = ("_answers", "_public", "meter")

    def __init__(self, public: Mapping[int, EccPoint], *, meter: CryptoMeter | None = None) -> None:
        self._public = dict(public)
        self._answers: dict[tuple[int, bytes, bytes], bool] = {}
        self.meter = meter

    def __contains__(self, node: object) -> bool:
        return node in self._public

    def authentic(self, signer: int, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is ``signer``'s on ``message`` (False for a non-reporter)."""
        key = (signer, message, signature)
        answer = self._answers.get(key)
        if answer is None:
            public = self._public.get(signer)
            answer = public is not None and _verifies(public, message, signature, self.meter)
            self._answers[key] = answer
        return answer


def _verifies(
    public: EccPoint, message: bytes, signature: bytes, meter: CryptoMeter | None
) -> bool:
    try:
        verify(public, message, signature, meter=meter)
    except CryptoError:
        return False
    return True


def sign_vote(
    secret: int,
    *,
    reporter: int,
    market: int,
    round_: int,
    outcome: int,
    meter: CryptoMeter | None,
) -> Vote:
    """``reporter``'s vote for ``outcome``, signed with its ``secret`` key."""
    signature = sign(secret, vote_message(market, round_, outcome, reporter), meter=meter)
    return Vote(reporter, market, round_, outcome, signature)


def check_vote(vote: Vote, *, market: int, round_: int, keyring: Keyring) -> Reason | None:
    """Why a node counting ``market``'s votes in ``round_`` rejects ``vote``, or None.

    The cheap checks run first, so a replayed or misdirected vote costs no verification.
    """
    if vote.reporter not in keyring:
        return "non_reporter"
    if vote.market != market:
        return "wrong_market"
    if vote.round != round_:
        return "replayed_round"
    if not keyring.authentic(vote.reporter, vote.message(), vote.signature):
        return "bad_signature"
    return None


class Tally:
    """The valid votes one node holds for one market in one round.

    A reporter counts once: its first valid vote. A second, different one (equivocation) is
    ignored, so no reporter can appear twice in a certificate.
    """

    __slots__ = ("by_reporter", "counts", "round")

    def __init__(self, round_: int, outcomes: int) -> None:
        self.round = round_
        self.by_reporter: dict[int, Vote] = {}
        self.counts = [0] * outcomes

    def add(self, vote: Vote) -> bool:
        """Count an already checked vote; False if its reporter has been counted."""
        if vote.reporter in self.by_reporter or not 0 <= vote.outcome < len(self.counts):
            return False
        self.by_reporter[vote.reporter] = vote
        self.counts[vote.outcome] += 1
        return True

    def certificate(self, quorum: int) -> Settlement | None:
        """A certificate for the outcome with ``quorum`` votes, if one has them."""
        for outcome, count in enumerate(self.counts):
            if count >= quorum:
                votes = [v for v in self.by_reporter.values() if v.outcome == outcome]
                return certificate(votes)
        return None


def certificate(votes: Sequence[Vote]) -> Settlement:
    """The settlement a set of votes on one ``(market, round, outcome)`` justifies."""
    ordered = sorted(votes, key=lambda v: v.reporter)
    first = ordered[0]
    return Settlement(
        first.market,
        first.outcome,
        tuple(v.reporter for v in ordered),
        first.round,
        tuple(v.signature for v in ordered),
    )


def certificate_ok(settlement: Settlement, *, keyring: Keyring, quorum: int) -> bool:
    """Whether ``settlement`` carries ``quorum`` valid signatures of distinct reporters.

    Each signature must be on exactly the settlement's market, round and outcome: one taken
    from another market or round does not verify.
    """
    s = settlement
    voters, signatures = s.voters, s.signatures
    if len(voters) < quorum or len(set(voters)) != len(voters) or len(signatures) != len(voters):
        return False
    return all(
        keyring.authentic(v, vote_message(s.market, s.round, s.outcome, v), sig)
        for v, sig in zip(voters, signatures, strict=True)
    )


def step_ok(step: Settlement, *, keyring: Keyring) -> bool:
    """Whether an optimistic ``propose``/``dispute`` is signed by the reporter who bonds."""
    if len(step.voters) != 1 or len(step.signatures) != 1:
        return False
    return keyring.authentic(step.voters[0], step_message(step), step.signatures[0])


def settlement_ok(settlement: Settlement, *, keyring: Keyring, quorum: int) -> bool:
    """What every replica checks before it applies a settlement step (``sim.settlement_ok``).

    Certificates need a quorum of valid signatures; bonds, their poster's signature; an
    ``expire`` step carries no evidence (the state and its time decide).
    """
    match settlement.kind:
        case "certificate":
            return certificate_ok(settlement, keyring=keyring, quorum=quorum)
        case "propose" | "dispute":
            return step_ok(settlement, keyring=keyring)
        case "expire":
            return not settlement.voters and not settlement.signatures
    return False
