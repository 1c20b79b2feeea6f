"""Signed consensus messages, certificates, evidence and the checks every node makes.

The pure rules of the ``bft`` settlement protocol (its state machine is
:mod:`sim.settlement.tendermint`). Every step a reporter takes is an ECDSA P-256 signature
(:func:`market.crypto.sign`): a :class:`Proposal` binds ``(market, round, value, validRound)``,
a :class:`Vote` binds ``(market, round, step, value)`` with step ``prevote`` or ``precommit``,
so a vote cannot be replayed into another market, round or step. With ``n`` reporters the
protocol tolerates ``f = ⌊(n − 1)/3⌋`` Byzantine ones, and a *certificate* is ``q = ⌊2n/3⌋ + 1``
valid precommits from distinct reporters on the same ``(market, round, value)``: every replica
verifies it before it pays anything out. Two quorums then share ``2q − n > f`` reporters, so at
least one honest reporter is in both (``2f + 1`` equals ``q`` only when ``n = 3f + 1``: at
``n = 21`` two quorums of 13 share 5 reporters, fewer than the 6 Byzantine ones tolerated).
Two votes of one signer in one ``(market, round, step)`` with different values are *evidence*
(:func:`equivocation`), which the chain checks (:func:`evidence_ok`) and slashes.

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
from typing import ClassVar, Literal

from Crypto.PublicKey.ECC import EccPoint

from market.crypto import CryptoMeter, sign, verify
from market.errors import CryptoError
from market.oracle import Settlement

VOTE_DOMAIN = b"veilcast/settlement/vote/v2|"
PROPOSAL_DOMAIN = b"veilcast/settlement/proposal/v2|"
STEP_DOMAIN = b"veilcast/settlement/oracle/v1|"

NIL = -1
"""The value of a vote for no value (Tendermint's ``nil``)."""

VoteStep = Literal["prevote", "precommit"]
"""The two voting steps of a Tendermint round (the third, ``propose``, is :class:`Proposal`)."""
STEP_CODES: dict[str, int] = {"propose": 0, "prevote": 1, "precommit": 2}
"""Each step's byte in the signed messages, so a vote cannot be replayed into another step."""

VOTE_BYTES = 2 + 4 + 1 + 2 + 2 + 64
"""A vote on the wire: market, round, step, value, reporter id and the 64-byte signature."""
PROPOSAL_BYTES = 2 + 4 + 2 + 4 + 2 + 64
"""A proposal on the wire: market, round, value, valid round, proposer, signature."""

Reason = Literal["non_reporter", "bad_signature", "out_of_range"]
"""Why a vote or proposal was rejected, in the order the checks run (cheapest first)."""

REASONS: tuple[Reason, ...] = ("non_reporter", "bad_signature", "out_of_range")


def fault_tolerance(reporters: int) -> int:
    """``f = ⌊(n − 1)/3⌋``: the Byzantine reporters ``n`` reporters tolerate."""
    return (reporters - 1) // 3


def bft_quorum(reporters: int) -> int:
    """``⌊2n/3⌋ + 1``: the signatures a certificate needs (more than two thirds of ``n``).

    Any two quorums share more than ``f`` reporters (so an honest one) whatever ``n`` is, and
    the ``n − f`` honest reporters still make one; ``2f + 1`` has the first property only when
    ``n = 3f + 1``. ``n − q = f`` for every ``n``.
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
    Byzantine or crashed proposer holds a market back one round only.
    """
    return order[index % len(order)]


def proposer(order: Sequence[int], market: int, round_: int) -> int:
    """Tendermint's ``proposer(h, r)`` with heights as markets: the rota at ``market + round``."""
    return rota(order, market + round_)


def vote_message(market: int, round_: int, step: VoteStep, value: int, reporter: int) -> bytes:
    """The bytes a reporter signs to ``step`` ``value`` (or nil) on ``market`` in ``round_``.

    Market, round, step and value are all bound: a signature taken into another market, round
    or step (or onto another value) does not verify.
    """
    return VOTE_DOMAIN + struct.pack(">QQBqQ", market, round_, STEP_CODES[step], value, reporter)


def proposal_message(
    market: int, round_: int, value: int, valid_round: int, reporter: int
) -> bytes:
    """The bytes a round's proposer signs to propose ``value`` (with its ``validRound``)."""
    code = STEP_CODES["propose"]
    return PROPOSAL_DOMAIN + struct.pack(
        ">QQBqqQ", market, round_, code, value, valid_round, reporter
    )


def step_message(step: Settlement) -> bytes:
    """The bytes a reporter signs for an optimistic step (its block time excluded)."""
    kinds = ("certificate", "propose", "dispute", "expire")
    fields = (kinds.index(step.kind), step.market, step.request, step.outcome, *step.voters)
    return STEP_DOMAIN + struct.pack(f">{len(fields)}Q", *fields)


@dataclass(frozen=True, slots=True)
class Vote:
    """One reporter's signed prevote or precommit (its fields are what it signed).

    ``outcome`` is the value voted for, :data:`NIL` for none.
    """

    reporter: int
    market: int
    round: int
    outcome: int
    signature: bytes
    step: VoteStep = "precommit"

    def message(self) -> bytes:
        """The signed bytes."""
        return vote_message(self.market, self.round, self.step, self.outcome, self.reporter)

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return VOTE_BYTES


@dataclass(frozen=True, slots=True)
class Proposal:
    """A round's proposer's signed ``PROPOSAL(h, r, v, validRound)``, heights being markets."""

    reporter: int
    market: int
    round: int
    outcome: int
    valid_round: int
    signature: bytes

    step: ClassVar[str] = "propose"

    def message(self) -> bytes:
        """The signed bytes."""
        return proposal_message(
            self.market, self.round, self.outcome, self.valid_round, self.reporter
        )

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return PROPOSAL_BYTES


Signed = Vote | Proposal
"""A signed consensus message."""


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
    step: VoteStep = "precommit",
) -> Vote:
    """``reporter``'s ``step`` vote for ``outcome`` (or :data:`NIL`), signed with its ``secret``."""
    message = vote_message(market, round_, step, outcome, reporter)
    return Vote(reporter, market, round_, outcome, sign(secret, message, meter=meter), step)


def sign_proposal(
    secret: int,
    *,
    reporter: int,
    market: int,
    round_: int,
    outcome: int,
    valid_round: int,
    meter: CryptoMeter | None,
) -> Proposal:
    """``reporter``'s proposal of ``outcome`` for ``market`` in ``round_``, signed."""
    message = proposal_message(market, round_, outcome, valid_round, reporter)
    signature = sign(secret, message, meter=meter)
    return Proposal(reporter, market, round_, outcome, valid_round, signature)


def check_signed(message: Signed, *, keyring: Keyring, outcomes: int) -> Reason | None:
    """Why a node rejects a vote or proposal, or None: the checks every node makes on arrival.

    The cheap checks run first, so a sybil's message costs no verification. A vote replayed
    into another market, round or step carries a signature over the original fields, so it
    fails the signature check (there is no other way to move it).
    """
    if message.reporter not in keyring:
        return "non_reporter"
    if not keyring.authentic(message.reporter, message.message(), message.signature):
        return "bad_signature"
    low = NIL if isinstance(message, Vote) else 0
    if not low <= message.outcome < outcomes:
        return "out_of_range"
    return None


def certificate(votes: Sequence[Vote]) -> Settlement:
    """The settlement a set of precommits on one ``(market, round, outcome)`` justifies."""
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
    """Whether ``settlement`` carries ``quorum`` valid precommits of distinct reporters.

    Each signature must be a precommit on exactly the settlement's market, round and outcome:
    one taken from another market, round or step (a prevote) does not verify.
    """
    s = settlement
    voters, signatures = s.voters, s.signatures
    if len(voters) < quorum or len(set(voters)) != len(voters) or len(signatures) != len(voters):
        return False
    return all(
        keyring.authentic(v, vote_message(s.market, s.round, "precommit", s.outcome, v), sig)
        for v, sig in zip(voters, signatures, strict=True)
    )


def equivocation(first: Vote, second: Vote) -> Settlement | None:
    """Evidence that one reporter signed two values in one step, or None if these are not it.

    The evidence is a ``Settlement`` of kind ``evidence``: the signer, the market and round,
    the step, both values and both signatures; any replica can check it alone
    (:func:`evidence_ok`). Two votes are conflicting when they share signer, market, round and
    step and differ in value (a vote for a value against a nil vote counts, as in Tendermint).
    """
    same = (first.reporter, first.market, first.round, first.step) == (
        second.reporter,
        second.market,
        second.round,
        second.step,
    )
    if not same or first.outcome == second.outcome:
        return None
    a, b = sorted((first, second), key=lambda v: v.outcome)
    return Settlement(
        a.market,
        0,
        (a.reporter,),
        a.round,
        (a.signature, b.signature),
        kind="evidence",
        step=a.step,
        values=(a.outcome, b.outcome),
    )


def evidence_ok(evidence: Settlement, *, keyring: Keyring) -> bool:
    """Whether ``evidence`` holds two valid signatures of its signer on two values of one step."""
    e = evidence
    if len(e.voters) != 1 or len(e.signatures) != 2 or len(e.values) != 2:
        return False
    if e.step not in ("prevote", "precommit") or e.values[0] == e.values[1]:
        return False
    signer = e.voters[0]
    return all(
        keyring.authentic(signer, vote_message(e.market, e.round, e.step, value, signer), sig)  # type: ignore[arg-type]
        for value, sig in zip(e.values, e.signatures, strict=True)
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
        case "evidence":
            return evidence_ok(settlement, keyring=keyring)
    return False
