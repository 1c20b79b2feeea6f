"""One reporter's Tendermint state machine for one market: the protocol's rules, without a clock.

Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus" (2018, arXiv:1807.04938),
Algorithm 1, with heights as markets: a market is decided in rounds of *propose*, *prevote* and
*precommit*. :class:`Tendermint` holds one reporter's state for one market (``round``,
``step``, ``lockedValue``/``lockedRound``, ``validValue``/``validRound``, the messages it has
received) and says what to do on receiving a checked message or a timeout, as
:data:`Action` values (sign and send a step, arm a timeout, decide). It never signs, sends
or reads a clock: the driver (:mod:`sim.settlement.rounds`) does, and the unit tests drive it
by hand.

The rules, in the paper's words with its ``2f+1`` written ``q`` (the two are equal only when
``n = 3f + 1``; the code always counts ``q``), by line of Algorithm 1:

* ``StartRound(r)`` (11-21): the proposer ``proposer(market, r)`` proposes ``validValue`` if it
  has one, else its own value, with ``validRound``; anyone else arms ``timeoutPropose(r)``;
* on the proposer's ``PROPOSAL(v, −1)`` in step propose (22-27): prevote ``v`` if ``valid(v)``
  and it is not locked on another value, else nil;
* on ``PROPOSAL(v, vr)`` with ``0 ≤ vr < r`` and ``q`` prevotes for ``v`` in ``vr`` (28-33):
  prevote ``v`` if ``valid(v)`` and (``lockedRound ≤ vr`` or ``lockedValue = v``), else nil;
* ``q`` prevotes of any value in the round, in step prevote, first time: arm
  ``timeoutPrevote`` (34-35);
* the proposal ``v`` and ``q`` prevotes for it (a *polka*), ``valid(v)``, step prevote or
  later, first time (36-43): in step prevote, lock ``v`` and precommit it; either way
  ``validValue = v``, ``validRound = r``;
* ``q`` nil prevotes in step prevote: precommit nil (44-46);
* ``q`` precommits of any value in the round, first time: arm ``timeoutPrecommit`` (47-48);
* ``q`` precommits for ``v`` in any round: decide ``v`` (49-54). Here a vote carries its
  value, not a hash of it, so the proposal is not needed to know ``v``, and the decision does
  not test ``valid(v)``: validity is each reporter's own observation (honest reporters may
  disagree), and ``q`` precommits include ``q − f ≥ f + 1`` honest reporters who found ``v``
  valid;
* ``f+1`` messages of a round above the current one: skip to that round (55-56);
* timeouts (57-65): propose → prevote nil; prevote → precommit nil; precommit → next round.

``f`` is ``n − q`` with ``q = ⌊2n/3⌋ + 1`` (:func:`.rules.bft_quorum`), which equals
``⌊(n − 1)/3⌋`` for every ``n``. Messages are counted per value by distinct signer; a signer's
two values in one step both count toward their own values (what an equivocator can make any
node see anyway) and only once toward "any value"; the driver turns the pair into evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sim.settlement.rules import NIL, Proposal, Vote, VoteStep, bft_quorum

Step = Literal["propose", "prevote", "precommit"]
STEP_ORDER: dict[Step, int] = {"propose": 0, "prevote": 1, "precommit": 2}


@dataclass(frozen=True, slots=True)
class Send:
    """Sign and send this step: a proposal (``step == "propose"``) or a vote."""

    step: Step
    round: int
    value: int
    valid_round: int = -1


@dataclass(frozen=True, slots=True)
class Arm:
    """Arm the ``step`` timeout of ``round`` (its length is the driver's: it grows with round)."""

    step: Step
    round: int


@dataclass(frozen=True, slots=True)
class Decide:
    """``q`` precommits for ``value`` in ``round``: the market's value, with its certificate."""

    round: int
    value: int


Action = Send | Arm | Decide


class Tendermint:
    """One reporter's consensus on one market (one Tendermint height).

    Args:
        me: this reporter.
        reporters: how many reporters vote (``n``).
        proposer: ``proposer(round)``: who proposes in each round of this market.
        own_value: what this reporter proposes when it has no ``validValue`` (its observation).
        valid: ``valid(v)``: whether this reporter accepts ``v`` (honest: it observed ``v``).
    """

    def __init__(
        self,
        *,
        me: int,
        reporters: int,
        proposer: Callable[[int], int],
        own_value: int,
        valid: Callable[[int], bool],
    ) -> None:
        self.me, self.proposer, self.own_value, self.valid = me, proposer, own_value, valid
        self.quorum = bft_quorum(reporters)
        self.f = reporters - self.quorum
        self.round = -1
        self.step: Step = "propose"
        self.locked_value, self.locked_round = NIL, -1
        self.valid_value, self.valid_round = NIL, -1
        self.decision: Decide | None = None
        self.proposals: dict[int, Proposal] = {}
        """The proposer's first proposal of each round."""
        self.votes: dict[tuple[int, VoteStep, int], dict[int, Vote]] = {}
        """Valid votes by ``(round, step, value)`` and signer."""
        self.signers: dict[tuple[int, VoteStep], set[int]] = {}
        """Who voted, any value, by ``(round, step)``."""
        self.heard: dict[int, set[int]] = {}
        """Who sent any message, by round (for the round skip)."""
        self._once: set[tuple[str, int]] = set()

    # -- inputs -------------------------------------------------------------------------------

    def start(self, round_: int = 0) -> list[Action]:
        """``StartRound(round_)``."""
        out: list[Action] = []
        self._start(round_, out)
        self._settle(out)
        return out

    def on_proposal(self, proposal: Proposal) -> list[Action]:
        """A checked proposal arrived (from anyone: only the round's proposer's is kept)."""
        out: list[Action] = []
        if self.decision is None and proposal.reporter == self.proposer(proposal.round):
            self.proposals.setdefault(proposal.round, proposal)
            self.heard.setdefault(proposal.round, set()).add(proposal.reporter)
            self._settle(out, proposal.round)
        return out

    def on_vote(self, vote: Vote) -> list[Action]:
        """A checked vote arrived."""
        out: list[Action] = []
        if self.decision is None:
            self._record(vote)
            self._settle(out, vote.round)
        return out

    def on_timeout(self, step: Step, round_: int) -> list[Action]:
        """The ``step`` timeout of ``round_`` expired (lines 57-65)."""
        out: list[Action] = []
        if self.decision is not None or round_ != self.round:
            return out
        if step == "propose" and self.step == "propose":
            self._vote("prevote", NIL, out)
        elif step == "prevote" and self.step == "prevote":
            self._vote("precommit", NIL, out)
        elif step == "precommit":
            self._start(round_ + 1, out)
        self._settle(out)
        return out

    # -- what it holds ------------------------------------------------------------------------

    def count(self, round_: int, step: VoteStep, value: int) -> int:
        """Distinct signers of ``step`` for ``value`` in ``round_``."""
        return len(self.votes.get((round_, step, value), ()))

    # -- the rules ----------------------------------------------------------------------------

    def _record(self, vote: Vote) -> None:
        self.votes.setdefault((vote.round, vote.step, vote.outcome), {}).setdefault(
            vote.reporter, vote
        )
        self.signers.setdefault((vote.round, vote.step), set()).add(vote.reporter)
        self.heard.setdefault(vote.round, set()).add(vote.reporter)

    def _start(self, round_: int, out: list[Action]) -> None:
        self.round, self.step = round_, "propose"
        if self.proposer(round_) == self.me:
            value = self.valid_value if self.valid_value != NIL else self.own_value
            out.append(Send("propose", round_, value, self.valid_round))
            proposal = Proposal(self.me, -1, round_, value, self.valid_round, b"")
            self.proposals.setdefault(round_, proposal)  # its own proposal, as received
        else:
            out.append(Arm("propose", round_))

    def _vote(self, step: VoteStep, value: int, out: list[Action]) -> None:
        """Send a vote and count it as received (every node hears its own messages)."""
        self.step = step
        out.append(Send(step, self.round, value))
        self._record(Vote(self.me, -1, self.round, value, b"", step))

    def _settle(self, out: list[Action], heard_round: int | None = None) -> None:
        """Apply every rule that holds, until none does (each changes the state or fires once)."""
        if heard_round is not None:
            if self._decide(heard_round, out):
                return
            skip = heard_round > self.round and len(self.heard.get(heard_round, ())) > self.f
            if skip:
                self._start(heard_round, out)
        while self.decision is None and self._step(out):
            pass
        if self.decision is None:
            self._decide(self.round, out)

    def _decide(self, round_: int, out: list[Action]) -> bool:
        """Lines 49-54: ``q`` precommits for a value in ``round_``."""
        for (r, step, value), signers in self.votes.items():
            if r == round_ and step == "precommit" and value != NIL and len(signers) >= self.quorum:
                self.decision = Decide(round_, value)
                out.append(self.decision)
                return True
        return False

    def _step(self, out: list[Action]) -> bool:
        """One rule of the current round that fires, if any; True if one did."""
        r, q = self.round, self.quorum
        proposal = self.proposals.get(r)
        if self.step == "propose" and proposal is not None:
            v, vr = proposal.outcome, proposal.valid_round
            if vr == -1:
                free = self.locked_round == -1 or self.locked_value == v
                self._vote("prevote", v if self.valid(v) and free else NIL, out)
                return True
            if 0 <= vr < r and self.count(vr, "prevote", v) >= q:
                free = self.locked_round <= vr or self.locked_value == v
                self._vote("prevote", v if self.valid(v) and free else NIL, out)
                return True
        if self.step == "prevote" and self._first("arm-prevote", r, "prevote"):
            out.append(Arm("prevote", r))
            return True
        if (
            proposal is not None
            and STEP_ORDER[self.step] >= STEP_ORDER["prevote"]
            and self.valid(proposal.outcome)
            and self.count(r, "prevote", proposal.outcome) >= q
            and ("polka", r) not in self._once
        ):
            self._once.add(("polka", r))
            v = proposal.outcome
            if self.step == "prevote":
                self.locked_value, self.locked_round = v, r
                self._vote("precommit", v, out)
            self.valid_value, self.valid_round = v, r
            return True
        if self.step == "prevote" and self.count(r, "prevote", NIL) >= q:
            self._vote("precommit", NIL, out)
            return True
        if self._first("arm-precommit", r, "precommit"):
            out.append(Arm("precommit", r))
            return True
        return False

    def _first(self, rule: str, round_: int, step: VoteStep) -> bool:
        """``q`` votes of any value in ``step`` of ``round_``, for the first time."""
        if (rule, round_) in self._once or len(self.signers.get((round_, step), ())) < self.quorum:
            return False
        self._once.add((rule, round_))
        return True
