"""Tendermint consensus on every market, as events on the simulated network.

The rules are :mod:`sim.settlement.tendermint` (one state machine per honest reporter per
market) and :mod:`sim.settlement.rules` (messages, checks, certificates, evidence); this module
is the driver: it signs what a machine says to send, floods it, arms its timeouts on the
host's clock, and feeds each checked message that arrives to the machine it is for.

* **Messages.** Every proposal and vote is signed on its own (:func:`.rules.sign_vote`,
  :func:`.rules.sign_proposal`). What one node has to send goes out as one
  :class:`StepBundle` flood after a short window (:data:`BUNDLE_WINDOW` of
  ``round_timeout_s``), across markets: each market has its own proposer, so proposals and the
  votes they cause arrive at slightly different instants, and the window gathers one step of
  every market opened together into one bundle per reporter. A node checks every message it receives
  (:func:`.rules.check_signed`: reporter, signature, value), and the market's record counts the
  distinct rejected ones by reason, in its latest round.
* **Timeouts.** ``timeoutPropose``, ``timeoutPrevote`` and ``timeoutPrecommit`` of round ``r``
  are each ``(round_timeout_s / 3)·(1 + r/2)``: a round without faults takes a few hops, a
  round that times out takes ``round_timeout_s`` at first and longer after each failure, so
  after the network heals some round lasts long enough for every honest message to arrive.
  A crashed reporter's timers wait until it is running again.
* **Certificates.** Every honest *listener* (honest reporters, and honest sequencers, who
  close the blocks) keeps the valid precommits it has seen; ``⌊2n/3⌋ + 1`` for one value in one
  round of a market is a certificate (:func:`.rules.certificate`), which an honest sequencer
  offers to the next block it closes; every replica verifies it before paying out. Consensus
  on a market stops once its certificate is in the chain (a lagging replica fetches the block,
  :mod:`sim.host.catchup`, rather than voting on).
* **Evidence.** A listener that holds two valid votes of one signer in one ``(market, round,
  step)`` with different values holds evidence (:func:`.rules.equivocation`); honest sequencers
  offer it to the chain, which slashes the signer. A message that reached a listener by a
  direct send (not a flood, so perhaps seen by it alone) is relayed in its next bundle, as
  Tendermint's vote gossip does; that is how the evidence of an equivocator who tells each
  honest group something else reaches everyone.

:class:`Voting` runs the honest reporters only. Byzantine reporters are an adversary component
of their own (:mod:`sim.adversary.byzantine`), acting through :meth:`Voting.flood` and
:meth:`Voting.send`, and told what happens through :attr:`Voting.on_round` (a market entered a
round) and :attr:`Voting.on_cast` (an honest node sent a bundle).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from market.crypto import keypair
from market.exchange import Exchange
from market.oracle import Settlement
from sim.host.host import Host
from sim.net.network import Message, unexpected
from sim.settlement.records import RoundRecord
from sim.settlement.rules import (
    NIL,
    Keyring,
    Proposal,
    Reason,
    Signed,
    Vote,
    bft_quorum,
    certificate,
    check_signed,
    equivocation,
    observations,
    proposer,
    sign_proposal,
    sign_vote,
)
from sim.settlement.tendermint import Action, Arm, Decide, Send, Step, Tendermint

SIGNATURE_BYTES = 64
BUNDLE_WINDOW = 1 / 30
"""How long a node gathers its outgoing messages into one bundle, as a share of
``round_timeout_s`` (a tenth of the first propose timeout: 1 s at the default 30 s)."""
RoundHook = Callable[[int, int], None]
"""``hook(market, round_)``: ``round_`` of ``market`` got its record, the first time an honest
reporter entered it or a checked message of that round was counted, whichever came first."""
CastHook = Callable[[int, Sequence[Signed]], None]
"""``hook(origin, items)``: honest ``origin`` is flooding these messages."""
Timer = tuple[int, Step, int]
"""``(market, step, round)`` of an armed timeout."""


@dataclass(frozen=True, slots=True)
class StepBundle:
    """Signed proposals and votes sent together by one node, each signed on its own."""

    kind: ClassVar[str] = "vote"
    items: tuple[Signed, ...]

    @property
    def size(self) -> int:
        """Bytes on the wire: each item's."""
        return sum(item.size for item in self.items)


@dataclass(frozen=True, slots=True)
class Keys:
    """The reporters' simulation keys: secrets by node, and the public keyring."""

    secrets: Mapping[int, int]
    ring: Keyring


def reporter_keys(reporters: Sequence[int], sim: Host) -> Keys:
    """One P-256 key pair per reporter, in node order, from the run's ``settlement-keys`` bytes."""
    randbytes = sim.streams.randbytes("settlement-keys")
    pairs = {node: keypair(randbytes) for node in sorted(reporters)}
    secrets = {node: secret for node, (secret, _) in pairs.items()}
    public = {node: point for node, (_, point) in pairs.items()}
    return Keys(secrets, Keyring(public, meter=sim.meter))


def settled_at(sim: Host, node: int, market: int) -> bool:
    """Whether ``node`` has seen ``market`` settle (its replica, or the chain if it keeps none)."""
    replica = sim.replicas.get(node)
    exchange: Exchange = replica.exchange if replica is not None else sim.exchange
    return exchange.ledger.is_settled(market)


def step_timeout(round_timeout_s: float, round_: int) -> float:
    """Each step's timeout in ``round_``: a third of ``round_timeout_s``, half more a round."""
    return round_timeout_s / 3 * (1 + round_ / 2)


class Listener:
    """What one honest node keeps of the votes it saw: precommits by value, first votes, evidence.

    Args:
        quorum: precommits a certificate needs.
    """

    __slots__ = ("certificates", "evidence", "first", "precommits", "quorum")

    def __init__(self, quorum: int) -> None:
        self.quorum = quorum
        self.precommits: dict[tuple[int, int, int], dict[int, Vote]] = {}
        """Valid precommits by ``(market, round, value)`` and signer."""
        self.first: dict[tuple[int, int, int, str], Vote] = {}
        """The first valid vote of each ``(signer, market, round, step)``."""
        self.certificates: dict[int, list[Settlement]] = {}
        """Every certificate formed here, by market (two only if someone equivocated)."""
        self.evidence: dict[tuple[int, int, int, str], Settlement] = {}

    def add(self, vote: Vote) -> Settlement | None:
        """Keep a checked vote, and evidence if it is its signer's second value in that step;
        returns the certificate it completed, if any."""
        first = self.first.setdefault((vote.reporter, vote.market, vote.round, vote.step), vote)
        evidence = equivocation(first, vote)
        if evidence is not None:
            self.evidence.setdefault(evidence.accused(), evidence)
        if vote.step != "precommit" or vote.outcome == NIL:
            return None
        signers = self.precommits.setdefault((vote.market, vote.round, vote.outcome), {})
        if vote.reporter in signers:
            return None
        signers[vote.reporter] = vote
        if len(signers) != self.quorum:
            return None
        cert = certificate(list(signers.values()))
        self.certificates.setdefault(vote.market, []).append(cert)
        return cert


class Voting:
    """Tendermint rounds on the markets' outcomes, for the honest reporters.

    Args:
        sim: the run.
        keys: the reporters' keys.
        byzantine: the reporters this class does not run (an adversary component acts for them).
        records: where each market's rounds are recorded, keyed ``(market, row)``.
        outcomes: how many outcomes each market has.
        round_timeout_s: the first round's propose + prevote + precommit timeouts together.
        first_row: the table's ``round`` of a market's round 0.
        observation_error: chance an honest reporter observes a wrong outcome.

    Attributes:
        on_round: called as a market enters a round at its first honest reporter.
        on_cast: called with every bundle an honest node floods.
    """

    def __init__(
        self,
        sim: Host,
        *,
        keys: Keys,
        byzantine: frozenset[int],
        records: dict[tuple[int, int], RoundRecord],
        outcomes: int,
        round_timeout_s: float,
        first_row: int = 0,
        observation_error: float = 0.0,
    ) -> None:
        self.sim = sim
        self.keys, self.keyring = keys, keys.ring
        self.reporters = tuple(sorted(sim.validators))
        self.honest = tuple(r for r in self.reporters if r not in byzantine)
        self.honest_set = frozenset(self.honest)
        self.byzantine = frozenset(byzantine)
        self.quorum = bft_quorum(len(self.reporters))
        self.truth = sim.world.outcomes
        self.outcomes = outcomes
        self.observed: dict[tuple[int, int], int] = {}
        """Honest reporters' observations by ``(node, market)``; empty: all saw the truth."""
        if observation_error > 0:
            self.observed = observations(
                self.honest,
                self.truth,
                outcomes=outcomes,
                error=observation_error,
                rng=sim.streams.python("settlement-observations"),
            )
        self.round_timeout_s = round_timeout_s
        self.bundle_window_s = round_timeout_s * BUNDLE_WINDOW
        self.order = list(self.reporters)
        sim.streams.python("settlement-rota").shuffle(self.order)
        self.records, self.first_row = records, first_row
        self.opened: set[int] = set()
        self.latest: dict[int, int] = {}
        """Each open market's latest round with a record."""
        self.machines: dict[tuple[int, int], Tendermint] = {}
        self.listeners: dict[int, Listener] = {}
        self.formed: dict[int, set[int]] = {}
        """The values certified for each market at any honest node."""
        self.rejected: set[tuple[Signed, Reason]] = set()
        self.verdicts: dict[Signed, Reason | None] = {}
        self.refused: set[Settlement] = set()
        self.outbox: dict[int, list[Signed]] = {}
        self.sent: dict[tuple[int, int], dict[tuple[int, str], Signed]] = {}
        """Each honest reporter's own messages by ``(node, market)``, keyed ``(round, step)``."""
        self.progress: dict[tuple[int, int], tuple[int, str, bool]] = {}
        """Where each machine stood at the last gossip tick."""
        self.gossiping: set[int] = set()
        self.timers: dict[tuple[int, float], list[Timer]] = {}
        self.on_round: list[RoundHook] = []
        self.on_cast: list[CastHook] = []

    def up(self, node: int) -> bool:
        """Whether ``node`` is running (not crashed)."""
        return node not in self.sim.net.down

    def observation(self, node: int, market: int) -> int:
        """The outcome honest ``node`` observed for ``market``: what it proposes and accepts."""
        return self.observed.get((node, market), self.truth[market])

    def proposer(self, market: int, round_: int) -> int:
        """``proposer(market, round)``: the rota drawn from the run seed, turned by both."""
        return proposer(self.order, market, round_)

    def row(self, market: int, round_: int) -> RoundRecord:
        """The record of ``market``'s ``round_``, made when the round is first entered."""
        key = (market, self.first_row + round_)
        record = self.records.get(key)
        if record is None:
            truth = self.truth[market]
            record = RoundRecord(market, key[1], "vote", truth, [0] * self.outcomes, self.sim.now)
            record.prevotes = [0] * self.outcomes
            record.leader = self.proposer(market, round_)
            self.records[key] = record
            self.latest[market] = max(round_, self.latest.get(market, 0))
            for hook in self.on_round:
                hook(market, round_)
        return record

    # -- markets, machines and timers -----------------------------------------------------------

    def open(self, market: int) -> None:
        """Start consensus on ``market`` at every honest reporter: its round 0."""
        if market in self.opened:
            return
        self.opened.add(market)
        if not self.listeners:
            watchers = (set(self.sim.sequencers) | set(self.reporters)) - self.byzantine
            self.listeners = {node: Listener(self.quorum) for node in sorted(watchers)}
        self.row(market, 0)
        for node in self.honest:
            seen = self.observation(node, market)
            machine = Tendermint(
                me=node,
                reporters=len(self.reporters),
                proposer=partial(self.proposer, market),
                own_value=seen,
                valid=seen.__eq__,
            )
            self.machines[(node, market)] = machine
            self._act(node, market, machine.start(0))
            if node not in self.gossiping:
                self.gossiping.add(node)
                interval = step_timeout(self.round_timeout_s, 0)
                self.sim.every(interval, partial(self._gossip, node))

    def _live(self, node: int, market: int) -> bool:
        """``node`` goes on with ``market``'s consensus until its own replica holds the block
        with the certificate (it cannot know before), not a round more."""
        return not settled_at(self.sim, node, market)

    def _act(self, node: int, market: int, actions: Sequence[Action]) -> None:
        """Carry out what ``node``'s machine for ``market`` says: sign and send, arm, decide."""
        for action in actions:
            match action:
                case Send(step="propose", round=round_, value=value, valid_round=vr):
                    self._send_own(node, self._proposal(node, market, round_, value, vr))
                case Send(step="prevote" | "precommit" as step, round=round_, value=value):
                    vote = sign_vote(
                        self.keys.secrets[node],
                        reporter=node,
                        market=market,
                        round_=round_,
                        outcome=value,
                        meter=self.sim.meter,
                        step=step,
                    )
                    self._send_own(node, vote)
                    self._listen(node, vote)
                case Arm(step=step, round=round_):
                    self._arm(node, (market, step, round_))
                case Decide():
                    pass  # the listener holds the certificate; the machine stops

    def _proposal(self, node: int, market: int, round_: int, value: int, vr: int) -> Proposal:
        return sign_proposal(
            self.keys.secrets[node],
            reporter=node,
            market=market,
            round_=round_,
            outcome=value,
            valid_round=vr,
            meter=self.sim.meter,
        )

    def _send_own(self, node: int, item: Signed) -> None:
        """Queue ``node``'s own message for the bundle it floods at the end of this instant."""
        self._count([item])
        self.sent.setdefault((node, item.market), {})[(item.round, item.step)] = item
        self._queue(node, item)

    def _gossip(self, node: int) -> bool:
        """Flood again what ``node`` sent in a round where it has made no progress since the last
        tick; False once no market it votes on is live.

        Tendermint assumes that every message between honest nodes eventually arrives (its
        gossip layer re-sends what a peer is missing); a lossy flood loses some for good, so a
        stalled reporter repeats its own messages of the current round (the same signatures:
        nothing is signed again, and every receiver counts a signer once).
        """
        live = [
            m for m in sorted(self.opened) if (node, m) in self.machines and self._live(node, m)
        ]
        if not live:
            self.gossiping.discard(node)
            return False
        if not self.up(node):
            return True
        for market in live:
            machine = self.machines[(node, market)]
            state = (machine.round, machine.step, machine.decision is not None)
            if self.progress.get((node, market)) == state:
                for (round_, _), item in self.sent.get((node, market), {}).items():
                    if round_ == machine.round:
                        self._queue(node, item)
            self.progress[(node, market)] = state
        return True

    def _queue(self, node: int, item: Signed) -> None:
        pending = self.outbox.setdefault(node, [])
        if not pending:
            self.sim.after(self.bundle_window_s, partial(self._flush, node))
        pending.append(item)

    def _flush(self, node: int) -> None:
        items = self.outbox.pop(node, [])
        if items:
            for hook in self.on_cast:
                hook(node, items)
            self.sim.net.flood(node, StepBundle(tuple(items)), to=self.receive)

    def _arm(self, node: int, timer: Timer) -> None:
        _, _, round_ = timer
        due = self.sim.now + step_timeout(self.round_timeout_s, round_)
        armed = self.timers.setdefault((node, due), [])
        if not armed:
            self.sim.after(due - self.sim.now, partial(self._fire, node, due))
        armed.append(timer)

    def _fire(self, node: int, due: float) -> None:
        """Timeouts of ``node`` due now; a crashed node's wait until it runs again."""
        timers = self.timers.pop((node, due), [])
        if not self.up(node):
            for timer in timers:
                self._arm(node, timer)
            return
        for market, step, round_ in timers:
            machine = self.machines[(node, market)]
            if self._live(node, market):
                self._act(node, market, machine.on_timeout(step, round_))
                if machine.round > round_:
                    self.row(market, machine.round)

    # -- the network -------------------------------------------------------------------------

    def flood(self, origin: int, items: Sequence[Signed]) -> None:
        """Flood a bundle from ``origin`` as it is (the adversary's way to broadcast)."""
        self.sim.net.flood(origin, StepBundle(tuple(items)), to=self.receive)

    def send(self, origin: int, dst: int, items: Sequence[Signed]) -> None:
        """Send a bundle from ``origin`` to ``dst`` alone, hop by hop along a shortest path."""
        path = self.sim.net.route(origin, dst)
        self.sim.net.relay(path, StepBundle(tuple(items)), to=self.receive_direct)

    def count(self, items: Sequence[Signed]) -> None:
        """Count messages as cast in their rounds' records: the adversary's genuine ones (once
        each, however many nodes it sends them to; its junk is not a cast vote)."""
        self._count(items)

    def _count(self, items: Sequence[Signed]) -> None:
        for item in items:
            if item.market not in self.opened:
                continue
            record = self.row(item.market, item.round)
            match item:
                case Proposal(outcome=value):
                    if record.proposed < 0:
                        record.proposed = value
                case Vote(step="prevote", outcome=value):
                    record.nil_prevotes += value == NIL
                    if 0 <= value < self.outcomes:
                        record.prevotes[value] += 1
                case Vote(outcome=value):
                    record.nil_precommits += value == NIL
                    if 0 <= value < self.outcomes:
                        record.votes[value] += 1

    def receive(self, node: int, _sender: int, msg: Message) -> None:
        """A flooded bundle reaches ``node``."""
        match msg:
            case StepBundle(items=items):
                for item in items:
                    self._hear(node, item)
            case _:
                unexpected(msg)

    def receive_direct(self, node: int, _sender: int, msg: Message) -> None:
        """A bundle sent to ``node`` alone: heard, and relayed in its next bundle."""
        match msg:
            case StepBundle(items=items):
                for item in items:
                    if self._hear(node, item):
                        self._queue(node, item)
            case _:
                unexpected(msg)

    def _hear(self, node: int, item: Signed) -> bool:
        """An honest listener checks a message and hands it on; True if it was valid."""
        if node not in self.listeners or item.market not in self.opened:
            return False
        reason = self._verdict(item)
        if reason is not None:
            if (item, reason) not in self.rejected:
                self.rejected.add((item, reason))
                # counted in the round under way: a forged round number makes no row
                self.row(item.market, self.latest[item.market]).rejected[reason] += 1
            return False
        if isinstance(item, Vote):
            self._listen(node, item)
        machine = self.machines.get((node, item.market))
        if machine is None or not self._live(node, item.market):
            return True
        before = machine.round
        match item:
            case Proposal():
                actions = machine.on_proposal(item)
            case Vote():
                actions = machine.on_vote(item)
        self._act(node, item.market, actions)
        if machine.round > before:
            self.row(item.market, machine.round)
        return True

    def _verdict(self, item: Signed) -> Reason | None:
        """:func:`.rules.check_signed`'s answer for ``item``, remembered by the item itself.

        The keyring already verifies each signature once per run; this also spares
        re-encoding the signed bytes each time one of the many nodes that receive the same
        message looks it up (every field, signature included, is part of the key).
        """
        if item in self.verdicts:
            return self.verdicts[item]
        reason = check_signed(item, keyring=self.keyring, outcomes=self.outcomes)
        self.verdicts[item] = reason
        return reason

    def _listen(self, node: int, vote: Vote) -> None:
        listener = self.listeners.get(node)
        if listener is None:
            return
        cert = listener.add(vote)
        if cert is not None:
            self.formed.setdefault(cert.market, set()).add(cert.outcome)

    # -- the chain ---------------------------------------------------------------------------------

    def certificates_for(self, proposer: int) -> list[Settlement]:
        """The certificates honest ``proposer`` holds for markets the chain has not settled.

        The block proposer reads the canonical chain: sequencers agree on the tip among
        themselves (the assumption stated in :mod:`sim.chain.blocks`)."""
        listener = self.listeners.get(proposer)
        if listener is None:
            return []
        chain = self.sim.exchange.ledger
        return [
            cert
            for market, certs in sorted(listener.certificates.items())
            if not chain.is_settled(market)
            for cert in certs
            if cert not in self.refused
        ]

    def evidence_for(self, proposer: int) -> list[Settlement]:
        """The evidence honest ``proposer`` holds that the chain has not taken."""
        listener = self.listeners.get(proposer)
        if listener is None:
            return []
        taken = self.sim.exchange.evidence
        return [e for key, e in sorted(listener.evidence.items()) if key not in taken]

    def on_chain(
        self, t: float, applied: Sequence[Settlement], refused: Sequence[Settlement]
    ) -> None:
        """Record the certificates a block made final, the evidence it took, what it refused."""
        for s in applied:
            if s.kind == "certificate" and s.market in self.opened:
                record = self.row(s.market, s.round)
                record.outcome, record.t_final = s.outcome, t
                record.certificate_size = len(s.signatures)
                self.formed.setdefault(s.market, set()).add(s.outcome)
            elif s.kind == "evidence" and s.market in self.opened:
                self.row(s.market, s.round).equivocations += 1
        for s in refused:
            if s.kind == "certificate":
                self.refused.add(s)
                if s.market in self.opened:
                    self.row(s.market, s.round).refused += 1

    def conflicting(self) -> int:
        """Markets with valid certificates for two or more outcomes, at honest nodes or on chain."""
        return sum(len(values) > 1 for values in self.formed.values())
