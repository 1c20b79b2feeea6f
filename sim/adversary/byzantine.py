"""Byzantine reporters: a strategy each run, acting through the honest nodes' own calls.

The settlement protocols (:mod:`sim.settlement`) run the honest reporters only. This component
acts for the Byzantine ones (``settlement.byzantine_fraction`` of the reporters, chosen by the
fault plan) and goes through the calls an honest reporter's code goes through, so every check
the honest nodes make applies to it unchanged. ``settlement.byzantine_strategy`` says what they
do in Tendermint consensus (:class:`~sim.settlement.rounds.Voting`: the ``bft`` protocol and the
optimistic oracle's final vote), as each market enters a round (``Voting.on_round``):

* ``fixed``: they collude on one wrong outcome per market. A Byzantine proposer floods a
  proposal of it, every running Byzantine reporter floods a prevote and a precommit for it, and
  the first of them floods messages every check must catch: a vote forged in an honest
  reporter's name, one signed by a non-reporter (a *sybil*), an honest vote moved into another
  market, another round and another step. As a sequencer it offers the chain a certificate for
  the wrong outcome, once per market and round, completed with forged honest signatures where
  its own are too few: every replica refuses it.
* ``equivocate``: the worst case for safety. Per market, the honest reporters are grouped by
  the outcome they observed; a Byzantine proposer sends each group a proposal of that group's
  outcome, and every Byzantine reporter sends each group a prevote and a precommit for it,
  each by a direct send (not a flood), so each group sees its own value only, until honest
  nodes relay what reached them directly. Two signatures on two values of one step are
  evidence (:func:`sim.settlement.rules.equivocation`): the chain slashes the signer.
* ``silent``: they send nothing (a liveness attack: ``b > n − q`` of them stop consensus).

**Optimistic oracle** (:class:`~sim.settlement.optimistic.Optimistic`), any strategy but
``silent``: when a request opens (``on_open``) a Byzantine reporter races to propose the wrong
outcome; when the chain takes a true proposal (``on_proposal``) another one disputes it
(:meth:`Optimistic.offer`), each within the bonds its endowment pays for.

The wrong outcome of each market is uniform among the others (stream ``settlement-wrong``); the
forged signatures and the sybil's key come from ``settlement-junk``. The adversary signs without
the run's crypto meter (``cost.crypto_ops`` counts the protocol's work, not the attacker's).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

from market.crypto import keypair, sign
from market.oracle import Settlement, SettlementKind
from market.types import to_micro
from sim.chain.blocks import SettleTx, Tx
from sim.host.component import Component
from sim.host.host import Host
from sim.settlement.optimistic import Optimistic
from sim.settlement.protocol import SettlementProtocol
from sim.settlement.rounds import SIGNATURE_BYTES
from sim.settlement.rules import (
    Signed,
    Vote,
    VoteStep,
    certificate,
    sign_proposal,
    sign_vote,
    step_message,
)

BONDS_WITHOUT_BOND = 4
"""Bond steps per market each Byzantine reporter may post when the bond is zero."""
STRATEGIES = ("fixed", "equivocate", "silent")
STEPS: tuple[VoteStep, ...] = ("prevote", "precommit")


def wrong_outcomes(truth: Sequence[int], outcomes: int, rng: random.Random) -> tuple[int, ...]:
    """Per market, the outcome the Byzantine reporters collude on: uniform among the others."""
    return tuple((o + 1 + rng.randrange(outcomes - 1)) % outcomes for o in truth)


class ByzantineReporters(Component):
    """The Byzantine reporters of ``protocol``'s fault plan, acting through its public calls.

    Args:
        sim: the run.
        protocol: the run's settlement protocol (its hooks are registered here).
        strategy: ``settlement.byzantine_strategy``.
    """

    def __init__(self, sim: Host, protocol: SettlementProtocol, strategy: str = "fixed") -> None:
        super().__init__(sim)
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown Byzantine strategy {strategy!r}")
        self.strategy = strategy
        self.voting = protocol.voting
        self.nodes = tuple(sorted(protocol.plan.byzantine))
        self.secrets = {node: protocol.keys.secrets[node] for node in self.nodes}
        reporters = self.voting.reporters
        self.honest = tuple(r for r in reporters if r not in protocol.plan.byzantine)
        self.truth = sim.world.outcomes
        rng = sim.streams.python("settlement-wrong")
        self.wrong = wrong_outcomes(self.truth, protocol.market.outcomes, rng)
        self.junk = sim.streams.randbytes("settlement-junk")
        outsiders = [n for n in range(sim.world.topology.nodes) if n not in set(reporters)]
        self.sybil = (
            outsiders[0] if outsiders else sim.world.topology.nodes,
            keypair(self.junk)[0],
        )
        self.honest_votes: list[Vote] = []
        """Honest votes flooded so far (what replays are taken from)."""
        self.votes: dict[tuple[int, int], list[Vote]] = {}
        """The Byzantine precommits of each ``(market, round)`` (``fixed``: its forgeries')."""
        self.outbox: dict[tuple[int, int], list[Signed]] = {}
        """Messages to send at the end of this instant, by ``(origin, destination)``; -1 floods."""
        self.forged: set[tuple[int, int]] = set()
        self.signed: set[tuple[int, SettlementKind, int, int]] = set()
        self.budget: dict[int, int] = {}
        """Bonds each Byzantine reporter can still post (it spends its endowment, no more)."""
        if strategy != "silent":
            self.voting.on_round.append(self._round)
            self.voting.on_cast.append(self._heard)
        self.oracle = protocol if isinstance(protocol, Optimistic) else None
        if self.oracle is not None and strategy != "silent":
            bond, endowment = self.oracle.bond, to_micro(protocol.settlement.endowment)
            bonds = endowment // bond if bond else len(self.truth) * BONDS_WITHOUT_BOND
            self.budget = dict.fromkeys(self.nodes, bonds)
            self.oracle.on_open.append(self._opened)
            self.oracle.on_proposal.append(self._proposal)

    def up(self, node: int) -> bool:
        """Whether ``node`` is running (not crashed)."""
        return node not in self.sim.net.down

    # -- Tendermint rounds -----------------------------------------------------------------------

    def _heard(self, origin: int, items: Sequence[Signed]) -> None:
        self.honest_votes += [v for v in items if isinstance(v, Vote) and v.outcome >= 0]
        del self.honest_votes[:-8]  # the latest few are enough to replay

    def _round(self, market: int, round_: int) -> None:
        """``market`` entered ``round_``: propose if it is ours, vote, as the strategy says."""
        attackers = [b for b in self.nodes if self.up(b)]
        if self.strategy == "fixed":
            self._fixed(market, round_, attackers)
        else:
            self._equivocate(market, round_, attackers)

    def _fixed(self, market: int, round_: int, attackers: Sequence[int]) -> None:
        wrong, lead = self.wrong[market], self.voting.proposer(market, round_)
        signed: list[tuple[int, Signed]] = []
        if lead in attackers:
            signed.append((lead, self._proposal_of(lead, market, round_, wrong)))
        for node in attackers:
            signed += [(node, self._vote(node, market, round_, s, wrong)) for s in STEPS]
        self.voting.count([item for _, item in signed])
        for origin, item in signed:
            self._queue(origin, -1, item)
        if attackers:
            for vote in self._junk(market, round_):
                self._queue(attackers[0], -1, vote)

    def _equivocate(self, market: int, round_: int, attackers: Sequence[int]) -> None:
        """Each honest group, by what it observed, gets that outcome signed, and only it."""
        lead = self.voting.proposer(market, round_)
        groups: dict[int, list[int]] = {}
        for node in self.honest:
            groups.setdefault(self.voting.observation(node, market), []).append(node)
        for value, members in sorted(groups.items()):
            signed: list[tuple[int, Signed]] = []
            if lead in attackers:
                signed.append((lead, self._proposal_of(lead, market, round_, value)))
            for node in attackers:
                signed += [(node, self._vote(node, market, round_, s, value)) for s in STEPS]
            self.voting.count([item for _, item in signed])
            for origin, item in signed:
                for member in members:
                    self._queue(origin, member, item)

    def _proposal_of(self, node: int, market: int, round_: int, value: int) -> Signed:
        return sign_proposal(
            self.secrets[node],
            reporter=node,
            market=market,
            round_=round_,
            outcome=value,
            valid_round=-1,
            meter=None,
        )

    def _vote(self, node: int, market: int, round_: int, step: VoteStep, value: int) -> Vote:
        vote = sign_vote(
            self.secrets[node],
            reporter=node,
            market=market,
            round_=round_,
            outcome=value,
            meter=None,
            step=step,
        )
        if self.strategy == "fixed" and step == "precommit" and value == self.wrong[market]:
            self.votes.setdefault((market, round_), []).append(vote)  # what it forges from
        return vote

    def _queue(self, origin: int, dst: int, item: Signed) -> None:
        pending = self.outbox.setdefault((origin, dst), [])
        if not pending:
            self.sim.after(0.0, partial(self._flush, origin, dst))
        pending.append(item)

    def _flush(self, origin: int, dst: int) -> None:
        items = self.outbox.pop((origin, dst), [])
        if not items or not self.up(origin):
            return
        if dst < 0:
            self.voting.flood(origin, items)
        else:
            self.voting.send(origin, dst, items)

    def _junk(self, market: int, round_: int) -> list[Vote]:
        """Votes on ``market`` that every check must catch."""
        wrong = self.wrong[market]
        victim = self.honest[0] if self.honest else self.voting.reporters[0]
        sybil, secret = self.sybil
        junk = [
            Vote(victim, market, round_, wrong, self.junk(SIGNATURE_BYTES)),
            sign_vote(
                secret, reporter=sybil, market=market, round_=round_, outcome=wrong, meter=None
            ),
        ]
        if self.honest_votes:  # an honest vote moved to another market, round and step
            v = self.honest_votes[-1]
            other: VoteStep = "precommit" if v.step == "prevote" else "prevote"
            junk += [
                replace(v, market=(v.market + 1) % len(self.truth)),
                replace(v, round=v.round + 1),
                replace(v, step=other),
            ]
        return [v for v in junk if v.market in self.voting.opened]

    def propose(self, proposer: int) -> list[Tx]:
        """A running Byzantine sequencer (``fixed``) offers its wrong certificates to the block."""
        if self.strategy != "fixed" or proposer not in self.secrets or not self.up(proposer):
            return []
        return [SettleTx(cert) for cert in self._forgeries()]

    def _forgeries(self) -> list[Settlement]:
        """A certificate for the wrong outcome, once per market and round.

        With a quorum of Byzantine precommits it is genuine; otherwise the missing signatures are
        forged in honest reporters' names, and every replica refuses it.
        """
        out = []
        for (market, round_), votes in sorted(self.votes.items()):
            if self.sim.exchange.ledger.is_settled(market) or (market, round_) in self.forged:
                continue
            self.forged.add((market, round_))
            fakes = [
                Vote(h, market, round_, self.wrong[market], self.junk(SIGNATURE_BYTES))
                for h in self.honest[: max(0, self.voting.quorum - len(votes))]
            ]
            out.append(certificate([*votes, *fakes]))
        return out

    # -- the optimistic oracle -------------------------------------------------------------------

    def _attacker(self, *, exclude: int) -> int | None:
        """A running Byzantine reporter with a bond left to post, or None."""
        for node in self.nodes:
            if node != exclude and self.up(node) and self.budget[node] > 0:
                return node
        return None

    def _opened(self, market: int, request: int) -> None:
        """A request opened: race to propose the wrong outcome."""
        attacker = self._attacker(exclude=-1)
        if attacker is not None:
            self._send(attacker, "propose", market, request, self.wrong[market])

    def _proposal(self, step: Settlement) -> None:
        """The chain took a proposal: dispute it if it is true."""
        if step.outcome == self.truth[step.market]:
            attacker = self._attacker(exclude=step.voters[0])
            if attacker is not None:
                self._send(attacker, "dispute", step.market, step.request, self.wrong[step.market])

    def _send(
        self, node: int, kind: SettlementKind, market: int, request: int, outcome: int
    ) -> None:
        """``node`` posts a bond: it signs the step and offers it (once per step)."""
        if (node, kind, market, request) in self.signed:
            return
        self.signed.add((node, kind, market, request))
        self.budget[node] -= 1
        step = Settlement(market, outcome, (node,), kind=kind, request=request)
        signature = sign(self.secrets[node], step_message(step))
        assert self.oracle is not None  # only its hooks get here
        self.oracle.offer(node, replace(step, signatures=(signature,)))
