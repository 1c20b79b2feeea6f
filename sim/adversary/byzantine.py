"""Byzantine reporters: colluding on one wrong outcome per market, through the honest calls.

The settlement protocols (:mod:`sim.settlement`) run the honest reporters only. This component
acts for the Byzantine ones (``settlement.byzantine_fraction`` of the reporters, chosen by the
fault plan) and goes through the calls an honest reporter's code goes through, so every check
the honest nodes make applies to it unchanged:

* **BFT rounds** (:class:`~sim.settlement.rounds.Voting`, the ``bft`` protocol and the
  optimistic oracle's final vote). When a round begins (``Voting.on_round``) a Byzantine leader
  proposes the wrong outcome of every market voted on (:meth:`Voting.propose`), every running
  Byzantine reporter votes for it (:meth:`Voting.cast`), and the first of them floods votes every
  check must catch (:meth:`Voting.flood`): one forged in an honest reporter's name, one signed by
  a non-reporter (a *sybil*), an honest vote replayed into another market and one replayed into a
  later round. As a sequencer it offers a certificate for the wrong outcome to the block it
  closes (``propose``), once per market and round: genuine when it holds a quorum of Byzantine
  votes, otherwise completed with signatures forged in honest reporters' names, which every
  replica refuses.
* **Optimistic oracle** (:class:`~sim.settlement.optimistic.Optimistic`). When a request opens
  (``on_open``) a Byzantine reporter races to propose the wrong outcome; when the chain takes a
  true proposal (``on_proposal``) another one disputes it (:meth:`Optimistic.offer`), each within
  the bonds its endowment pays for.

The wrong outcome of each market is uniform among the others (stream ``settlement-wrong``); the
forged signatures and the sybil's key come from ``settlement-junk``. The adversary signs without
the run's crypto meter (``cost.crypto_ops`` counts the protocol's work, not the attacker's).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from market.crypto import keypair, sign
from market.oracle import Settlement, SettlementKind
from market.types import to_micro
from sim.chain.blocks import SettleTx, Tx
from sim.host.component import Component
from sim.host.host import Host
from sim.settlement.optimistic import Optimistic
from sim.settlement.protocol import SettlementProtocol
from sim.settlement.rounds import SIGNATURE_BYTES, Ballot
from sim.settlement.rules import Vote, certificate, leader_message, sign_vote, step_message

BONDS_WITHOUT_BOND = 4
"""Bond steps per market each Byzantine reporter may post when the bond is zero."""


def wrong_outcomes(truth: Sequence[int], outcomes: int, rng: random.Random) -> tuple[int, ...]:
    """Per market, the outcome the Byzantine reporters collude on: uniform among the others."""
    return tuple((o + 1 + rng.randrange(outcomes - 1)) % outcomes for o in truth)


class ByzantineReporters(Component):
    """The Byzantine reporters of ``protocol``'s fault plan, acting through its public calls.

    Args:
        sim: the run.
        protocol: the run's settlement protocol (its hooks are registered here).
    """

    def __init__(self, sim: Host, protocol: SettlementProtocol) -> None:
        super().__init__(sim)
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
        self.honest_votes: dict[int, list[Vote]] = {}
        """Every honest vote flooded so far, by market (what replays are taken from)."""
        self.votes: dict[tuple[int, int], list[Vote]] = {}
        """The Byzantine votes of each ``(market, round)``."""
        self.forged: set[tuple[int, int]] = set()
        self.signed: set[tuple[int, SettlementKind, int, int]] = set()
        self.budget: dict[int, int] = {}
        """Bonds each Byzantine reporter can still post (it spends its endowment, no more)."""
        self.voting.on_round.append(self._round)
        self.voting.on_cast.append(self._heard)
        self.oracle = protocol if isinstance(protocol, Optimistic) else None
        if self.oracle is not None:
            bond, endowment = self.oracle.bond, to_micro(protocol.settlement.endowment)
            bonds = endowment // bond if bond else len(self.truth) * BONDS_WITHOUT_BOND
            self.budget = dict.fromkeys(self.nodes, bonds)
            self.oracle.on_open.append(self._opened)
            self.oracle.on_proposal.append(self._proposal)

    def up(self, node: int) -> bool:
        """Whether ``node`` is running (not crashed)."""
        return node not in self.sim.net.down

    # -- BFT rounds ------------------------------------------------------------------------------

    def _heard(self, origin: int, bundle: Sequence[Ballot]) -> None:
        if origin in self.secrets:
            return
        for market, vote in bundle:
            self.honest_votes.setdefault(market, []).append(vote)

    def _round(self, round_: int, active: Sequence[int]) -> None:
        """A round began: lead it if it is ours, vote the wrong outcomes, flood junk."""
        voting, lead = self.voting, self.voting.leader(round_)
        if lead in self.secrets and self.up(lead):
            choices = tuple((m, self.wrong[m]) for m in active)
            signature = sign(self.secrets[lead], leader_message(round_, lead, choices))
            voting.propose(lead, round_, choices, signature)
        attackers = [b for b in self.nodes if self.up(b)]
        for node in attackers:
            self._vote(node, round_, [(m, self.wrong[m]) for m in active])
        if attackers:
            self._junk(attackers[0], round_, active[0])

    def _vote(self, node: int, round_: int, choices: Sequence[tuple[int, int]]) -> None:
        secret = self.secrets[node]
        ballots = []
        for market, outcome in choices:
            vote = sign_vote(
                secret, reporter=node, market=market, round_=round_, outcome=outcome, meter=None
            )
            ballots.append((market, vote))
            self.votes.setdefault((market, round_), []).append(vote)
        self.voting.cast(node, ballots)

    def _junk(self, node: int, round_: int, market: int) -> None:
        """``node`` floods votes on ``market`` that every check must catch."""
        wrong = self.wrong[market]
        victim = self.honest[0] if self.honest else self.voting.reporters[0]
        sybil, secret = self.sybil
        junk = [
            Vote(victim, market, round_, wrong, self.junk(SIGNATURE_BYTES)),
            sign_vote(
                secret, reporter=sybil, market=market, round_=round_, outcome=wrong, meter=None
            ),
        ]
        elsewhere = [vs[-1] for m, vs in sorted(self.honest_votes.items()) if m != market]
        stale = [v for v in self.honest_votes.get(market, []) if v.round < round_]
        self.voting.flood(node, [(market, vote) for vote in [*junk, *elsewhere[:1], *stale[-1:]]])

    def propose(self, proposer: int) -> list[Tx]:
        """A running Byzantine sequencer offers its wrong certificates to the block it closes."""
        if proposer not in self.secrets or not self.up(proposer):
            return []
        return [SettleTx(cert) for cert in self._forgeries()]

    def _forgeries(self) -> list[Settlement]:
        """A certificate for the wrong outcome, once per market and round.

        With a quorum of Byzantine votes it is genuine; otherwise the missing signatures are
        forged in honest reporters' names, and every replica refuses it.
        """
        voting, out = self.voting, []
        for market in sorted(voting.current):
            key = (market, voting.round)
            if self.sim.exchange.ledger.is_settled(market) or key in self.forged:
                continue
            self.forged.add(key)
            votes = self.votes.get(key, [])
            if votes:
                fakes = [
                    Vote(h, market, voting.round, self.wrong[market], self.junk(SIGNATURE_BYTES))
                    for h in self.honest[: max(0, voting.quorum - len(votes))]
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
