"""One reporter's Tendermint state machine, driven by hand: no host, no network, no clock.

Four reporters, nodes 0-3 (``f = 1``, ``q = 3``); the proposer of round ``r`` is node ``r % 4``.
The machine under test is node 3, which accepts both outcomes (``valid`` is always true) unless
a test says otherwise, so that only the locking rules decide what it prevotes. Messages carry
no signatures here: checking them is the driver's job (:func:`sim.settlement.rules.check_signed`).
"""

from __future__ import annotations

from collections.abc import Callable

from sim.settlement.rules import NIL, Proposal, Vote, VoteStep
from sim.settlement.tendermint import Action, Arm, Decide, Send, Tendermint

ME = 3


def _machine(valid: Callable[[int], bool] = lambda _v: True, own: int = 1) -> Tendermint:
    return Tendermint(me=ME, reporters=4, proposer=lambda r: r % 4, own_value=own, valid=valid)


def _proposal(round_: int, value: int, valid_round: int = -1) -> Proposal:
    return Proposal(round_ % 4, 0, round_, value, valid_round, b"")


def _vote(node: int, round_: int, step: VoteStep, value: int) -> Vote:
    return Vote(node, 0, round_, value, b"", step)


def _feed(machine: Tendermint, *votes: Vote) -> list[Action]:
    out: list[Action] = []
    for vote in votes:
        out += machine.on_vote(vote)
    return out


def _sends(actions: list[Action]) -> list[tuple[str, int, int]]:
    return [(a.step, a.round, a.value) for a in actions if isinstance(a, Send)]


def _lock_on_one_in_round_0(machine: Tendermint) -> None:
    """Round 0: node 0 proposes 1, a polka for 1 forms, node 3 locks on 1; then no decision."""
    assert machine.start(0) == [Arm("propose", 0)]
    assert _sends(machine.on_proposal(_proposal(0, 1))) == [("prevote", 0, 1)]
    out = _feed(machine, _vote(0, 0, "prevote", 1), _vote(1, 0, "prevote", 1))
    assert ("precommit", 0, 1) in _sends(out)
    assert (machine.locked_value, machine.locked_round) == (1, 0)
    assert (machine.valid_value, machine.valid_round) == (1, 0)
    # the other precommits are nil (they saw no polka): 2f+1 precommits, no decision, a timeout
    out = _feed(machine, _vote(0, 0, "precommit", NIL), _vote(1, 0, "precommit", NIL))
    assert Arm("precommit", 0) in out and machine.decision is None
    assert machine.on_timeout("precommit", 0) == [Arm("propose", 1)]
    assert machine.round == 1


def test_a_locked_reporter_prevotes_nil_for_another_value_without_a_newer_polka() -> None:
    machine = _machine()
    _lock_on_one_in_round_0(machine)
    # round 1: node 1 proposes 0 as a fresh value: node 3 is locked on 1, so nil
    assert _sends(machine.on_proposal(_proposal(1, 0))) == [("prevote", 1, NIL)]
    assert machine.locked_value == 1


def test_a_proposal_of_the_locked_value_gets_its_prevote() -> None:
    machine = _machine()
    _lock_on_one_in_round_0(machine)
    assert _sends(machine.on_proposal(_proposal(1, 1))) == [("prevote", 1, 1)]


def test_a_polka_at_or_after_the_lock_round_frees_the_lock() -> None:
    machine = _machine()
    _lock_on_one_in_round_0(machine)
    machine.on_timeout("propose", 1)  # round 1: node 3 missed the proposal, prevotes nil
    # ... while the others prevoted 0 in round 1: a polka for 0 newer than node 3's lock
    _feed(machine, *(_vote(n, 1, "prevote", 0) for n in (0, 1, 2)))
    _feed(machine, *(_vote(n, 1, "precommit", NIL) for n in (0, 1, 2)))
    machine.on_timeout("prevote", 1)
    machine.on_timeout("precommit", 1)
    assert machine.round == 2 and machine.locked_value == 1
    # round 2: node 2 re-proposes 0 with validRound 1: lockedRound 0 <= 1, so prevote 0
    assert _sends(machine.on_proposal(_proposal(2, 0, valid_round=1))) == [("prevote", 2, 0)]


def test_a_claimed_valid_round_without_its_polka_gets_no_prevote_until_the_timeout() -> None:
    machine = _machine()
    _lock_on_one_in_round_0(machine)
    # node 1 claims a polka for 0 in round 0 that node 3 never saw: no prevote yet
    assert _sends(machine.on_proposal(_proposal(1, 0, valid_round=0))) == []
    assert _sends(machine.on_timeout("propose", 1)) == [("prevote", 1, NIL)]


def test_a_polka_before_the_lock_round_does_not_free_it() -> None:
    machine = _machine()
    machine.start(0)
    machine.on_timeout("propose", 0)  # node 3 missed round 0's proposal: nil
    _feed(machine, *(_vote(n, 0, "prevote", 0) for n in (0, 1, 2)))  # a polka for 0 in round 0
    machine.on_timeout("prevote", 0)
    _feed(machine, *(_vote(n, 0, "precommit", NIL) for n in (0, 1)))
    machine.on_timeout("precommit", 0)
    # round 1: node 1 proposes 1, a polka for 1: node 3 locks on 1 in round 1
    assert _sends(machine.on_proposal(_proposal(1, 1))) == [("prevote", 1, 1)]
    _feed(machine, _vote(0, 1, "prevote", 1), _vote(1, 1, "prevote", 1))
    assert (machine.locked_value, machine.locked_round) == (1, 1)
    _feed(machine, *(_vote(n, 1, "precommit", NIL) for n in (0, 1)))
    machine.on_timeout("precommit", 1)
    # round 2: node 2 proposes 0 with validRound 0, whose polka node 3 holds: 0 < lockedRound 1
    assert machine.count(0, "prevote", 0) == 3
    assert _sends(machine.on_proposal(_proposal(2, 0, valid_round=0))) == [("prevote", 2, NIL)]


def test_an_invalid_proposal_gets_a_nil_prevote() -> None:
    machine = _machine(valid=lambda v: v == 1)
    machine.start(0)
    assert _sends(machine.on_proposal(_proposal(0, 0))) == [("prevote", 0, NIL)]


def test_only_the_rounds_proposer_is_heard() -> None:
    machine = _machine()
    machine.start(0)
    assert machine.on_proposal(Proposal(2, 0, 0, 1, -1, b"")) == []  # node 2 is not round 0's
    assert 0 not in machine.proposals


def test_timeouts_lead_to_nil_votes_and_a_new_round() -> None:
    machine = _machine()
    assert machine.start(0) == [Arm("propose", 0)]
    assert _sends(machine.on_timeout("propose", 0)) == [("prevote", 0, NIL)]
    out = _feed(machine, _vote(0, 0, "prevote", 1), _vote(1, 0, "prevote", NIL))
    assert Arm("prevote", 0) in out  # 2f+1 prevotes of any value: the prevote timeout
    assert _sends(machine.on_timeout("prevote", 0)) == [("precommit", 0, NIL)]
    out = _feed(machine, _vote(0, 0, "precommit", NIL), _vote(1, 0, "precommit", 1))
    assert Arm("precommit", 0) in out and machine.decision is None
    # a stale timeout of an earlier step or round changes nothing
    assert machine.on_timeout("propose", 0) == [] and machine.on_timeout("prevote", 0) == []
    out = machine.on_timeout("precommit", 0)
    assert out == [Arm("propose", 1)] and (machine.round, machine.step) == (1, "propose")
    # round 3 is node 3's: it proposes its own value (no validValue), then prevotes it
    machine.on_timeout("propose", 1)
    _feed(machine, *(_vote(n, 1, "prevote", NIL) for n in (0, 1)))
    _feed(machine, *(_vote(n, 1, "precommit", NIL) for n in (0, 1)))
    machine.on_timeout("precommit", 1)
    machine.on_timeout("propose", 2)
    _feed(machine, *(_vote(n, 2, "prevote", NIL) for n in (0, 1)))
    _feed(machine, *(_vote(n, 2, "precommit", NIL) for n in (0, 1)))
    out = machine.on_timeout("precommit", 2)
    assert _sends(out) == [("propose", 3, 1), ("prevote", 3, 1)]


def test_a_quorum_of_precommits_decides_and_the_machine_stops() -> None:
    machine = _machine(valid=lambda v: v == 1)
    machine.start(0)
    out = _feed(machine, *(_vote(n, 0, "precommit", 0) for n in (0, 1)))
    assert machine.decision is None
    out = _feed(machine, _vote(2, 0, "precommit", 0))
    # decided on 0 though node 3 observed 1: 2f+1 precommits include f+1 honest who found it valid
    assert Decide(0, 0) in out and machine.decision == Decide(0, 0)
    assert (
        machine.on_timeout("propose", 0) == [] and _feed(machine, _vote(0, 1, "prevote", 1)) == []
    )


def test_a_duplicate_vote_counts_once() -> None:
    machine = _machine()
    machine.start(0)
    _feed(machine, *([_vote(0, 0, "precommit", 1)] * 5), _vote(1, 0, "precommit", 1))
    assert machine.count(0, "precommit", 1) == 2 and machine.decision is None


def test_f_plus_one_messages_of_a_later_round_make_it_skip_there() -> None:
    machine = _machine()
    machine.start(0)
    _feed(machine, _vote(0, 5, "prevote", 1))
    assert machine.round == 0  # one could be a Byzantine reporter: f + 1 = 2 are needed
    out = _feed(machine, _vote(1, 5, "prevote", 1))
    assert machine.round == 5 and Arm("propose", 5) in out
