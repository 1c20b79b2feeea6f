"""BFT voting rounds among the reporters, as events on the simulated network.

Voting runs in rounds of ``round_timeout_s``, shared by every market open for voting (a market
that opens while a round runs joins the next one). Each round has a leader (a rota drawn from
the run seed: a new leader every round), which floods one signed proposal naming an outcome for
every open market. Every honest reporter that receives it signs a vote ``(market, round,
outcome)`` for each market whose proposed outcome it agrees with (it observes the truth) and has
not seen settle, and floods its votes together in one message (a *bundle*: one broadcast per
reporter and round, each vote still signed on its own). Every honest sequencer node counts the
votes it receives, each against the market it is bundled for: :func:`.rules.check_vote` rejects,
and the round's record counts by reason, votes from non-reporters, for another market, from
another round and with bad signatures. Once a node holds ``2f + 1`` votes for one outcome it holds
a certificate and puts it in the next block it closes; replicas verify it before paying out. A
market without a quorum (a Byzantine or crashed leader, lost votes, a partition) goes on to the
next round, until the chain and every running honest reporter have it settled.

Byzantine reporters collude on one wrong outcome per market: they vote for it in every round and
propose it when they lead; one of them also floods votes every check must catch (an honest vote
replayed into another market and into a later round, a vote forged in an honest reporter's name,
one signed by a non-reporter); as sequencers they put forged certificates on chain (or genuine
ones, when they are ``2f + 1`` or more).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from market.crypto import keypair, sign
from market.exchange import Exchange
from market.oracle import Settlement
from sim.host.host import Host
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
    rota,
    sign_vote,
)

SIGNATURE_BYTES = 64
Ballot = tuple[int, Vote]
"""A vote in a bundle, with the market it is bundled for (its envelope)."""


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
        byzantine: the colluding reporters.
        wrong: per market, the outcome they collude on.
        records: where each market's rounds are recorded, keyed ``(market, row)``.
        first_row: the table's ``round`` of a market's first voting round.
    """

    def __init__(
        self,
        sim: Host,
        *,
        keys: Keys,
        byzantine: frozenset[int],
        wrong: Sequence[int],
        records: dict[tuple[int, int], RoundRecord],
        first_row: int = 0,
    ) -> None:
        self.sim = sim
        self.keys, self.keyring = keys, keys.ring
        self.reporters = tuple(sorted(sim.validators))
        self.honest = tuple(r for r in self.reporters if r not in byzantine)
        self.honest_set = frozenset(self.honest)
        self.byzantine = tuple(sorted(byzantine))
        self.quorum = bft_quorum(len(self.reporters))
        self.truth, self.wrong = sim.world.outcomes, tuple(wrong)
        self.outcomes = sim.scenario.market.outcomes
        self.timeout = sim.scenario.settlement.round_timeout_s
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
        self.honest_votes: dict[int, list[Vote]] = {}
        self.byzantine_votes: dict[tuple[int, int], list[Vote]] = {}
        self.forged: set[tuple[int, int]] = set()
        self.junk = sim.streams.randbytes("settlement-junk")
        outsiders = [n for n in range(sim.world.topology.nodes) if n not in set(self.reporters)]
        self.sybil = (
            outsiders[0] if outsiders else sim.world.topology.nodes,
            keypair(self.junk)[0],
        )

    def up(self, node: int) -> bool:
        """Whether ``node`` is running (not crashed)."""
        return node not in self.sim.net.down

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
            self.counters = frozenset(self.sim.sequencers) - set(self.byzantine)
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
        """Voting goes on until the chain and every running honest reporter see it settled."""
        sim = self.sim
        if not sim.exchange.ledger.is_settled(market):
            return True
        return any(self.up(r) and not settled_at(sim, r, market) for r in self.honest)

    def _begin(self, active: Sequence[int]) -> None:
        round_, now = self.round, self.sim.now
        lead = rota(self.order, round_)
        self.current = frozenset(active)
        for market in active:
            row = self.first_row + round_ - self.joined[market]
            record = RoundRecord(market, row, "vote", self.truth[market], [0] * self.outcomes, now)
            record.leader = lead
            self.records[(market, row)] = record
        if self.up(lead):
            self._lead(lead, round_, active)
        attackers = [b for b in self.byzantine if self.up(b)]
        for node in attackers:
            self._vote(node, round_, [(m, self.wrong[m]) for m in active])
        if attackers:
            self._junk(attackers[0], round_, active[0])

    def _lead(self, lead: int, round_: int, active: Sequence[int]) -> None:
        """The leader floods a signed proposal; honest reporters vote where they agree."""
        byzantine = lead in self.byzantine
        choices = tuple(
            (m, self.wrong[m] if byzantine else self.truth[m])
            for m in active
            if byzantine or not settled_at(self.sim, lead, m)
        )
        for market, outcome in choices:
            record = self.row(market, round_)
            if record is not None:
                record.proposed = outcome
        message = leader_message(round_, lead, choices)
        signature = sign(
            self.keys.secrets[lead], message, meter=None if byzantine else self.sim.meter
        )

        def arrive(node: int, _sender: int) -> None:
            if node not in self.honest_set or self.round != round_:
                return
            agreed = [
                (m, o)
                for m, o in choices
                if o == self.truth[m] and m in self.current and not settled_at(self.sim, node, m)
            ]
            if agreed and self.keyring.authentic(lead, message, signature):
                self._vote(node, round_, agreed)

        size = 16 + 3 * len(choices) + SIGNATURE_BYTES
        self.sim.net.flood(lead, kind="leader", size=size, on_arrival=arrive)

    def _vote(self, node: int, round_: int, choices: Sequence[tuple[int, int]]) -> None:
        """``node`` signs a vote for each ``(market, outcome)`` and floods them in one bundle."""
        honest = node not in self.byzantine
        secret, meter = self.keys.secrets[node], self.sim.meter if honest else None
        ballots: list[Ballot] = []
        for market, outcome in choices:
            vote = sign_vote(
                secret, reporter=node, market=market, round_=round_, outcome=outcome, meter=meter
            )
            ballots.append((market, vote))
            record = self.row(market, round_)
            if record is not None:
                record.votes[outcome] += 1
            if honest:
                self.honest_votes.setdefault(market, []).append(vote)
            else:
                self.byzantine_votes.setdefault((market, round_), []).append(vote)
        self._flood(node, ballots)

    def _flood(self, origin: int, ballots: Sequence[Ballot]) -> None:
        bundle = tuple(ballots)
        self.sim.net.flood(
            origin,
            kind="vote",
            size=VOTE_BYTES * len(bundle),
            on_arrival=lambda node, _sender: self._count(node, bundle),
        )

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

    def _junk(self, node: int, round_: int, market: int) -> None:
        """A Byzantine reporter floods votes on ``market`` that every check must catch."""
        wrong = self.wrong[market]
        victim = self.honest[0] if self.honest else self.reporters[0]
        sybil, secret = self.sybil
        junk = [
            Vote(victim, market, round_, wrong, self.junk(SIGNATURE_BYTES)),
            sign_vote(
                secret, reporter=sybil, market=market, round_=round_, outcome=wrong, meter=None
            ),
        ]
        elsewhere = [vs[-1] for m, vs in sorted(self.honest_votes.items()) if m != market]
        stale = [v for v in self.honest_votes.get(market, []) if v.round < round_]
        self._flood(node, [(market, vote) for vote in [*junk, *elsewhere[:1], *stale[-1:]]])

    # -- the chain ---------------------------------------------------------------------------------

    def certificates_for(self, proposer: int) -> list[Settlement]:
        """The certificates ``proposer`` puts in the block it closes now."""
        if proposer in self.byzantine:
            return self._forgeries()
        chain = self.sim.exchange.ledger
        held = self.certificates.get(proposer, {})
        return [
            cert
            for market, cert in sorted(held.items())
            if not chain.is_settled(market) and cert not in self.refused
        ]

    def _forgeries(self) -> list[Settlement]:
        """A Byzantine sequencer's certificate for the wrong outcome, once per market and round.

        With ``2f + 1`` Byzantine votes it is genuine; otherwise the missing signatures are
        forged in honest reporters' names, and every replica refuses it.
        """
        out = []
        for market in sorted(self.current):
            key = (market, self.round)
            if self.sim.exchange.ledger.is_settled(market) or key in self.forged:
                continue
            self.forged.add(key)
            votes = self.byzantine_votes.get(key, [])
            if votes:
                fakes = [
                    Vote(h, market, self.round, self.wrong[market], self.junk(SIGNATURE_BYTES))
                    for h in self.honest[: max(0, self.quorum - len(votes))]
                ]
                out.append(certificate([*votes, *fakes]))
        return out

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
