"""BFT voting rounds among the reporters, as events on the simulated network.

Voting runs in rounds of ``round_timeout_s``, shared by every market open for voting (a market
that opens while a round runs joins the next one). Each round has a leader (a rota drawn from
the run seed: a new leader every round), which floods one signed proposal naming an outcome for
every open market. Every honest reporter that receives it signs a vote ``(market, round,
outcome)`` for each market whose proposed outcome it agrees with (it observes the truth, or
with chance ``settlement.observation_error`` a wrong outcome) and has not seen settle, and
floods its votes together in one message (a *bundle*: one broadcast per reporter and round,
each vote still signed on its own). Every honest sequencer node counts the
votes it receives, each against the market it is bundled for: :func:`.rules.check_vote` rejects,
and the round's record counts by reason, votes from non-reporters, for another market, from
another round and with bad signatures. Once a node holds a quorum (``⌊2n/3⌋ + 1``) of votes for
one outcome it holds a certificate and puts it in the next block it closes; replicas verify it
before paying out. A market without a quorum (a Byzantine or crashed leader, lost votes, a
partition) goes on to the next round, until its certificate is in the chain: no round follows
that (a lagging replica fetches the block instead).

:class:`Voting` runs the honest reporters only, and the checks every node makes. Byzantine
reporters are an adversary component of their own, which acts through the same calls an honest
reporter's code goes through: :meth:`Voting.propose` (a leader's signed proposal),
:meth:`Voting.cast` (a reporter's own signed votes, one bundle) and :meth:`Voting.flood` (any
bundle of votes, as it is); and, like every component, offers certificates to the next block
from its ``propose``. It learns what it acts on from two hook lists: :attr:`Voting.on_round`
(a round began) and :attr:`Voting.on_cast` (a reporter flooded its votes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from market.crypto import keypair, sign
from market.exchange import Exchange
from market.oracle import Settlement
from sim.host.host import Host
from sim.net.network import Message, unexpected
from sim.settlement.records import RoundRecord
from sim.settlement.rules import (
    VOTE_BYTES,
    Keyring,
    Reason,
    Tally,
    Vote,
    bft_quorum,
    certificate,
    check_vote,
    leader_message,
    observations,
    rota,
    sign_vote,
)

SIGNATURE_BYTES = 64
Ballot = tuple[int, Vote]
"""A vote in a bundle, with the market it is bundled for (its envelope)."""
RoundHook = Callable[[int, Sequence[int]], None]
"""``hook(round_, markets)``: round ``round_`` began on ``markets`` (after an honest leader's
proposal, when the leader is honest)."""
CastHook = Callable[[int, Sequence[Ballot]], None]
"""``hook(origin, bundle)``: reporter ``origin`` is flooding its own signed votes."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """A round leader's signed proposal: one outcome per market it puts to the vote."""

    kind: ClassVar[str] = "leader"
    round: int
    leader: int
    choices: tuple[tuple[int, int], ...]
    """``(market, outcome)`` pairs."""
    signature: bytes
    """The leader's signature over :func:`.rules.leader_message` of the three fields above."""

    @property
    def size(self) -> int:
        """Bytes on the wire: round and leader, three bytes a choice, the signature."""
        return 16 + 3 * len(self.choices) + SIGNATURE_BYTES


@dataclass(frozen=True, slots=True)
class VoteBundle:
    """Signed votes flooded together by one reporter, each with the market it is bundled for."""

    kind: ClassVar[str] = "vote"
    ballots: tuple[Ballot, ...]

    @property
    def size(self) -> int:
        """Bytes on the wire: one signed vote each."""
        return VOTE_BYTES * len(self.ballots)


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


class Voting:
    """Rounds of signed votes on the markets' outcomes.

    Args:
        sim: the run.
        keys: the reporters' keys.
        byzantine: the reporters this class does not run (an adversary component acts for
            them); they neither count votes nor vote where they agree.
        records: where each market's rounds are recorded, keyed ``(market, row)``.
        outcomes: how many outcomes each market has.
        round_timeout_s: how long a round lasts.
        first_row: the table's ``round`` of a market's first voting round.

    Attributes:
        on_round: called as each round begins, after an honest leader proposed.
        on_cast: called with every bundle of a reporter's own votes, before it is flooded.
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
        self.timeout = round_timeout_s
        self.order = list(self.reporters)
        sim.streams.python("settlement-rota").shuffle(self.order)
        self.records, self.first_row = records, first_row
        self.round = -1
        """The current round (-1: none yet)."""
        self.joined: dict[int, int] = {}
        """Open markets, with the round each joined in."""
        self.waiting: list[int] = []
        self.current: frozenset[int] = frozenset()
        """The markets the current round votes on."""
        self.running = False
        self.counters: frozenset[int] = frozenset()
        self.tallies: dict[tuple[int, int], Tally] = {}
        self.certificates: dict[int, dict[int, Settlement]] = {}
        self.rejected: set[tuple[int, Vote, Reason]] = set()
        self.refused: set[Settlement] = set()
        self.on_round: list[RoundHook] = []
        self.on_cast: list[CastHook] = []

    def up(self, node: int) -> bool:
        """Whether ``node`` is running (not crashed)."""
        return node not in self.sim.net.down

    def observation(self, node: int, market: int) -> int:
        """The outcome honest ``node`` observed for ``market``: what it proposes and signs."""
        return self.observed.get((node, market), self.truth[market])

    def leader(self, round_: int) -> int:
        """The leader of (global) round ``round_``: the rota drawn from the run seed."""
        return rota(self.order, round_)

    def row(self, market: int, round_: int) -> RoundRecord | None:
        """The record of ``market`` in (global) round ``round_``, if it voted then."""
        joined = self.joined.get(market)
        if joined is None or round_ < joined:
            return None
        return self.records.get((market, self.first_row + round_ - joined))

    # -- rounds ----------------------------------------------------------------------------------

    def open(self, market: int) -> None:
        """Put ``market`` to the vote: in a round starting now, or in the next one."""
        if not self.counters:
            # the order flow decides who closes blocks; the honest ones count votes
            self.counters = frozenset(self.sim.sequencers) - self.byzantine
        self.waiting.append(market)
        if not self.running:
            self.running = True
            self.sim.every(self.timeout, self._round, at_once=True)

    def _round(self) -> bool:
        """Begin the next round over every undecided market; False once none is left."""
        for market in self.waiting:
            self.joined[market] = self.round + 1
        self.waiting.clear()
        active = [m for m in sorted(self.joined) if self._undecided(m)]
        if not active:
            self.running, self.current = False, frozenset()
            return False
        self.round += 1
        self._begin(active)
        return True

    def _undecided(self, market: int) -> bool:
        """Voting goes on until the market's certificate is in the chain, and not a round more.

        A reporter whose replica lags catches up by fetching the block that settled it
        (:mod:`sim.host.catchup`), not by more voting.
        """
        return not self.sim.exchange.ledger.is_settled(market)

    def _begin(self, active: Sequence[int]) -> None:
        round_, now = self.round, self.sim.now
        lead = self.leader(round_)
        self.current = frozenset(active)
        for market in active:
            row = self.first_row + round_ - self.joined[market]
            record = RoundRecord(market, row, "vote", self.truth[market], [0] * self.outcomes, now)
            record.leader = lead
            self.records[(market, row)] = record
        if lead in self.honest_set and self.up(lead):
            self._lead(lead, round_, active)
        for hook in self.on_round:
            hook(round_, active)

    def _lead(self, lead: int, round_: int, active: Sequence[int]) -> None:
        """An honest leader proposes what it observed of every market it has not seen settle."""
        choices = tuple(
            (m, self.observation(lead, m)) for m in active if not settled_at(self.sim, lead, m)
        )
        message = leader_message(round_, lead, choices)
        self.propose(
            lead, round_, choices, sign(self.keys.secrets[lead], message, meter=self.sim.meter)
        )

    def propose(
        self, lead: int, round_: int, choices: Sequence[tuple[int, int]], signature: bytes
    ) -> None:
        """``lead`` floods its proposal of ``choices`` for ``round_``, signed ``signature``.

        Every honest reporter it reaches checks the signature and votes, in one bundle, for each
        proposed outcome it agrees with (what it observed) on a market still voted on that it has
        not seen settle.
        """
        choices = tuple(choices)
        for market, outcome in choices:
            record = self.row(market, round_)
            if record is not None:
                record.proposed = outcome
        self.sim.net.flood(lead, Proposal(round_, lead, choices, signature), to=self.receive)

    def receive(self, node: int, _sender: int, msg: Message) -> None:
        """A leader's proposal or a bundle of votes reaches ``node``."""
        match msg:
            case Proposal():
                self._proposal_at(node, msg)
            case VoteBundle(ballots=ballots):
                self._count(node, ballots)
            case _:
                unexpected(msg)

    def _proposal_at(self, node: int, proposal: Proposal) -> None:
        """An honest reporter votes for each proposed outcome it agrees with, if it is signed."""
        round_ = proposal.round
        if node not in self.honest_set or self.round != round_:
            return
        agreed = [
            (m, o)
            for m, o in proposal.choices
            if o == self.observation(node, m)
            and m in self.current
            and not settled_at(self.sim, node, m)
        ]
        message = leader_message(round_, proposal.leader, proposal.choices)
        if agreed and self.keyring.authentic(proposal.leader, message, proposal.signature):
            self._vote(node, round_, agreed)

    def _vote(self, node: int, round_: int, choices: Sequence[tuple[int, int]]) -> None:
        """Honest ``node`` signs a vote for each ``(market, outcome)`` and casts them."""
        secret, meter = self.keys.secrets[node], self.sim.meter
        ballots = [
            (m, sign_vote(secret, reporter=node, market=m, round_=round_, outcome=o, meter=meter))
            for m, o in choices
        ]
        self.cast(node, ballots)

    def cast(self, node: int, ballots: Sequence[Ballot]) -> None:
        """``node`` floods its own signed votes as one bundle; each counts in its round's record."""
        for market, vote in ballots:
            record = self.row(market, vote.round)
            if record is not None:
                record.votes[vote.outcome] += 1
        for hook in self.on_cast:
            hook(node, ballots)
        self.flood(node, ballots)

    def flood(self, origin: int, ballots: Sequence[Ballot]) -> None:
        """Flood a bundle of votes from ``origin`` as it is; sequencers check each vote they get."""
        self.sim.net.flood(origin, VoteBundle(tuple(ballots)), to=self.receive)

    def _count(self, node: int, bundle: Sequence[Ballot]) -> None:
        """An honest sequencer node checks and counts the votes of a bundle it received."""
        if node not in self.counters:
            return
        round_, current = self.round, self.current
        for market, vote in bundle:
            if market not in current or settled_at(self.sim, node, market):
                continue
            reason = check_vote(vote, market=market, round_=round_, keyring=self.keyring)
            if reason is None:
                self._tally(node, market, vote)
            elif (market, vote, reason) not in self.rejected:
                self.rejected.add((market, vote, reason))
                record = self.row(market, round_)
                if record is not None:
                    record.rejected[reason] += 1

    def _tally(self, node: int, market: int, vote: Vote) -> None:
        tally = self.tallies.get((node, market))
        if tally is None or tally.round != vote.round:
            tally = self.tallies[(node, market)] = Tally(vote.round, self.outcomes)
        if tally.add(vote) and tally.counts[vote.outcome] == self.quorum:
            votes = [v for v in tally.by_reporter.values() if v.outcome == vote.outcome]
            self.certificates.setdefault(node, {})[market] = certificate(votes)

    # -- the chain ---------------------------------------------------------------------------------

    def certificates_for(self, proposer: int) -> list[Settlement]:
        """The certificates honest ``proposer`` holds for markets the chain has not settled."""
        chain = self.sim.exchange.ledger
        held = self.certificates.get(proposer, {})
        return [
            cert
            for market, cert in sorted(held.items())
            if not chain.is_settled(market) and cert not in self.refused
        ]

    def on_chain(
        self, t: float, applied: Sequence[Settlement], refused: Sequence[Settlement]
    ) -> None:
        """Record the certificates a block made final, and those the chain refused."""
        for s in applied:
            record = self.row(s.market, s.round)
            if s.kind == "certificate" and record is not None:
                record.outcome, record.t_final = s.outcome, t
                record.certificate_size = len(s.signatures)
        for s in refused:
            if s.kind == "certificate":
                self.refused.add(s)
                record = self.row(s.market, s.round)
                if record is not None:
                    record.refused += 1
