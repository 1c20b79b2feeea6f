"""One federated round over the simulated network, plain or with secure aggregation.

The coordinator has already sampled the round's clients and drawn which of them will drop out
(:class:`RoundPlan`); a round object carries the messages (:mod:`sim.federated.wire`), runs each
client's step when its message arrives, and hands the coordinator the round's payload sum, its
survivors and what the coordinator saw (or an abort reason) through ``close``.

* **Plain** (:class:`PlainRound`): the model goes out, each surviving client trains on arrival
  and sends its payload back; the sum is taken when the survivors' updates are in or the wait
  times out.
* **Secure** (:class:`SecureRound`), the four stages of SecAgg+ (Bonawitz et al. 2017) as
  messages: the model and a key request go out and each client advertises its public keys
  (``fl_keys``); the coordinator sends the roster (``fl_roster``); each holder agrees its pair
  keys, Shamir-shares its self-mask seed and mask key and uploads the sealed envelopes with
  their digests (``fl_shares``); the coordinator forwards each member its envelopes
  (``fl_share_fwd``); a client that drops out does so now, the others train, mask and send
  their masked input (``fl_masked``); the coordinator names survivors and dropped clients
  (``fl_unmask``), the survivors reveal their shares (``fl_reveal``), and the coordinator
  unmasks the sum. In clients mode (``dp_noise_at = "clients"``) each member adds its share of
  the DP noise to its encoded update before masking (:class:`~sim.federated.rounds.ClientNoise`).
  Every step's cryptography is the real one of :mod:`sim.federated.secagg`,
  metered into the session's meter. A client whose mask key was revealed rotates it
  (:func:`sim.federated.training.rotate`) before it takes part again.

Each wait of the coordinator lasts at most ``round_timeout_s``. A message that arrives after
its round closed is ignored, by the coordinator and by the client alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sim.federated.attacks import UpdateObservation
from sim.federated.rounds import (
    Observation,
    client_rng,
    client_update,
    plain_sum,
    visible_delta,
    visible_sum,
)
from sim.federated.secagg import (
    MIN_PARTICIPANTS,
    ClientRound,
    KeyAdvert,
    MaskedInput,
    Reveal,
    Roster,
    SecAggAbortError,
    ShareCommitment,
    ShareEnvelope,
    UnmaskRequest,
    agree_keys,
    make_roster,
    mask_input,
    receive_shares,
    reveal,
    share_keys,
    unmask,
    unmask_request,
    with_members,
)
from sim.federated.strategy import AbortReason, ClientResult
from sim.federated.training import Session, rotate
from sim.federated.wire import (
    Courier,
    KeyOffer,
    MaskedUpload,
    ModelOffer,
    RevealUpload,
    RosterOffer,
    ShareForward,
    ShareUpload,
    UnmaskOffer,
    Update,
    Wait,
    floats_bytes,
    ids_bytes,
    roster_bytes,
    wait_for,
)
from sim.host.host import Host
from sim.net.network import Message, unexpected


@dataclass(frozen=True, slots=True, eq=False)
class RoundEnd:
    """How a round ended, as the coordinator hands it on.

    Attributes:
        total: the sum of the survivors' payloads; None when the round aborted.
        survivors: the clients whose updates reached the coordinator.
        reason: why it aborted (``""`` when it completed).
        observed: what the coordinator saw of the individual clients (None if aborted).
        clamped: coordinates the secure sum clamped (None: plain, or aborted).
        client_multiplier: what the members' own noise in ``total`` is worth (clients mode;
            None when the coordinator adds the noise).
    """

    total: np.ndarray | None
    survivors: tuple[int, ...]
    reason: AbortReason
    observed: Observation | None
    clamped: int | None = None
    client_multiplier: float | None = None


Close = Callable[[RoundEnd], None]
"""Called once when the round ends."""

Shared = tuple[tuple[ShareEnvelope, ...], ShareCommitment]


@dataclass(frozen=True, slots=True, eq=False)
class RoundPlan:
    """What the coordinator decided when the round started.

    Attributes:
        number: the round number.
        params: the global parameters sent to the clients.
        sampled: the Poisson-sampled clients.
        dropping: the sampled clients that will drop out mid-round.
    """

    number: int
    params: np.ndarray
    sampled: tuple[int, ...]
    dropping: frozenset[int]


class NetworkRound:
    """What plain and secure rounds share: the session, the courier, the plan, the close."""

    def __init__(
        self,
        sim: Host,
        run: Session,
        courier: Courier,
        plan: RoundPlan,
        *,
        close: Close,
    ) -> None:
        self.sim = sim
        self.run = run
        self.courier = courier
        self.plan = plan
        self.timeout = run.config.round_timeout_s
        self._close = close
        self.closed = False

    def train(self, client: int) -> ClientResult:
        """``client``'s local update from the round's global parameters."""
        run, plan = self.run, self.plan
        return client_update(
            run.model,
            plan.params,
            run.clients[client],
            config=run.config,
            rng=client_rng(run.sgd_seed, plan.number, client),
        )

    def model_bytes(self) -> int:
        """The size of the model message."""
        return floats_bytes(self.run.model.size)

    def finish(
        self,
        total: np.ndarray | None,
        survivors: tuple[int, ...],
        reason: AbortReason,
        observed: Observation | None,
        *,
        clamped: int | None = None,
        client_multiplier: float | None = None,
    ) -> None:
        """Close the round once."""
        if not self.closed:
            self.closed = True
            end = RoundEnd(total, survivors, reason, observed, clamped, client_multiplier)
            self._close(end)


class PlainRound(NetworkRound):
    """The model out, the payloads back, their sum."""

    updates: Wait[ClientResult]
    """The coordinator's wait for the updates (from :meth:`start`)."""

    def start(self) -> None:
        """Send the model to every sampled client and wait for their updates."""
        self.updates = wait_for(self.sim, self.plan.sampled, self._aggregate, timeout=self.timeout)
        for c in self.plan.sampled:
            self.courier.to_client(ModelOffer(c, self.model_bytes()), to=self.receive)

    def receive(self, _node: int, _sender: int, msg: Message) -> None:
        """The model reaches a client, or an update the coordinator."""
        match msg:
            case ModelOffer(client=client):
                self._at_client(client)
            case Update(client=client, result=result):
                self.updates.deliver(client, result)
            case _:
                unexpected(msg)

    def _at_client(self, client: int) -> None:
        if self.closed:
            return
        if client in self.plan.dropping:
            self.updates.drop(client)
            return
        result = self.train(client)
        size = floats_bytes(self.run.strategy.payload_size(self.run.model.size))
        self.courier.to_coordinator(Update(client, result, size), to=self.receive)

    def _aggregate(self, got: Mapping[int, ClientResult]) -> None:
        strategy, results = self.run.strategy, [got[c] for c in sorted(got)]
        if not results and not strategy.dp:  # DP rounds always release (noise alone)
            reason: AbortReason = "no_survivors" if self.plan.sampled else "none_sampled"
            self.finish(None, (), reason, None)
            return
        seen = tuple(UpdateObservation(r.client, visible_delta(strategy, r)) for r in results)
        total = plain_sum(strategy, results, self.run.model.size)
        self.finish(total, tuple(sorted(got)), "", seen)


class SecureRound(NetworkRound):
    """SecAgg+'s four stages as messages (see the module doc).

    The coordinator's waits, one per stage, each set when its stage begins: a message can only
    answer a stage that has begun.
    """

    adverts: Wait[KeyAdvert]
    uploads: Wait[Shared]
    masked: Wait[MaskedInput]
    reveals: Wait[Reveal]

    def __init__(
        self,
        sim: Host,
        run: Session,
        courier: Courier,
        plan: RoundPlan,
        *,
        close: Close,
    ) -> None:
        super().__init__(sim, run, courier, plan, close=close)
        self.states: dict[int, ClientRound] = {}
        self.roster: Roster | None = None
        self.members: Roster | None = None
        self.commitments: dict[int, ShareCommitment] = {}
        self.inputs: dict[int, MaskedInput] = {}
        self.request: UnmaskRequest | None = None

    def start(self) -> None:
        """Stage 0: the model and a key request to every sampled client."""
        if len(self.plan.sampled) < MIN_PARTICIPANTS:  # nothing is sent for a round so small
            self.finish(None, (), "too_few_clients", None)
            return
        self.adverts = wait_for(self.sim, self.plan.sampled, self._adverts, timeout=self.timeout)
        for c in self.plan.sampled:
            self.courier.to_client(ModelOffer(c, self.model_bytes()), to=self.receive)

    def receive(self, _node: int, _sender: int, msg: Message) -> None:
        """A stage's message reaches its client or the coordinator (ignored once closed)."""
        match msg:
            case ModelOffer(client=client):
                self._advertise(client)
            case KeyOffer(client=client, advert=advert):
                self.adverts.deliver(client, advert)
            case RosterOffer(client=client):
                self._share(client)
            case ShareUpload(client=client, envelopes=envelopes, commitment=commitment):
                self.uploads.deliver(client, (envelopes, commitment))
            case ShareForward(client=client, envelopes=envelopes):
                self._mask(client, envelopes)
            case MaskedUpload(client=client, masked=masked):
                self.masked.deliver(client, masked)
            case UnmaskOffer(client=client):
                self._reveal(client)
            case RevealUpload(client=client, answer=answer):
                self.reveals.deliver(client, answer)
            case _:
                unexpected(msg)

    def _advertise(self, client: int) -> None:
        if self.closed:
            return
        advert = self.run.keys[client].advert()
        self.courier.to_coordinator(KeyOffer(client, advert), to=self.receive)

    def _adverts(self, got: Mapping[int, KeyAdvert]) -> None:
        """Stage 1 at the coordinator: the roster of everyone who advertised."""
        strategy = self.run.strategy
        try:
            roster = make_roster(
                self.plan.number,
                [got[c] for c in sorted(got)],
                dim=strategy.payload_size(self.run.model.size),
                bound=strategy.payload_bound(),
            )
        except SecAggAbortError as abort:
            self._abort(abort)
            return
        self.roster = roster
        self.uploads = wait_for(self.sim, roster.holders, self._shares, timeout=self.timeout)
        size = roster_bytes(len(roster.holders))
        for c in roster.holders:
            self.courier.to_client(RosterOffer(c, size), to=self.receive)

    def _share(self, client: int) -> None:
        """Stage 1 at a holder: agree pair keys, share the secrets, upload the envelopes."""
        run, roster = self.run, self.roster
        if self.closed or roster is None:
            return
        keys = run.keys[client]
        agree_keys(keys, roster, run.pairs)
        state, envelopes, commitment = share_keys(
            keys, roster, randbytes=run.randbytes, pairs=run.pairs, meter=run.meter
        )
        self.states[client] = state
        upload = ShareUpload(client, tuple(envelopes), commitment)
        self.courier.to_coordinator(upload, to=self.receive)

    def _shares(self, got: Mapping[int, Shared]) -> None:
        """Stage 1 at the coordinator: the members, and each member's envelopes forwarded."""
        assert self.roster is not None
        try:
            members = with_members(self.roster, sorted(got))
        except SecAggAbortError as abort:
            self._abort(abort)
            return
        self.members = members
        self.commitments = {c: got[c][1] for c in members.members}
        mail: dict[int, list[ShareEnvelope]] = {c: [] for c in members.members}
        for owner in members.members:
            for envelope in got[owner][0]:
                if envelope.holder in mail:
                    mail[envelope.holder].append(envelope)
        self.masked = wait_for(self.sim, members.members, self._inputs, timeout=self.timeout)
        for c in members.members:
            forward = ShareForward(c, tuple(mail[c]), len(members.members))
            self.courier.to_client(forward, to=self.receive)

    def _mask(self, client: int, envelopes: Sequence[ShareEnvelope]) -> None:
        """Stage 2 at a member: open the shares; drop out now, or train, mask and send."""
        run, members = self.run, self.members
        if self.closed or members is None:
            return
        state = replace(self.states[client], roster=members)
        self.states[client] = receive_shares(state, list(envelopes), pairs=run.pairs)
        if client in self.plan.dropping:
            self.masked.drop(client)
            return
        payload = run.strategy.payload(self.train(client))
        state = self.states[client]
        noise = None if run.noise is None else run.noise.share(state.roster, client)
        masked = mask_input(state, payload, pairs=run.pairs, meter=run.meter, noise=noise)
        self.courier.to_coordinator(MaskedUpload(client, masked, len(payload)), to=self.receive)

    def _inputs(self, got: Mapping[int, MaskedInput]) -> None:
        """Stage 3 at the coordinator: name survivors and dropped clients."""
        assert self.members is not None
        self.inputs = dict(got)
        try:
            request = unmask_request(self.members, sorted(got))
        except SecAggAbortError as abort:
            self._abort(abort)
            return
        self.request = request
        self.reveals = wait_for(self.sim, request.survivors, self._reveals, timeout=self.timeout)
        size = ids_bytes(len(request.survivors) + len(request.dropped))
        for c in request.survivors:
            self.courier.to_client(UnmaskOffer(c, size), to=self.receive)

    def _reveal(self, client: int) -> None:
        """Stage 4 at a survivor: reveal seed shares of survivors, key shares of the dropped."""
        if self.closed or self.request is None:
            return
        self.states[client], answer = reveal(self.states[client], self.request)
        self.courier.to_coordinator(RevealUpload(client, answer), to=self.receive)

    def _reveals(self, got: Mapping[int, Reveal]) -> None:
        """Stage 5 at the coordinator: check the shares, rebuild the secrets, unmask the sum."""
        assert self.members is not None and self.request is not None
        try:
            result = unmask(
                self.members,
                self.request,
                self.commitments,
                self.inputs,
                [got[c] for c in sorted(got)],
                meter=self.run.meter,
            )
        except SecAggAbortError as abort:
            self._abort(abort)
            return
        rotate(self.run, result.dropped)
        seen = visible_sum(self.run.strategy, result.total)
        noise, dim = self.run.noise, len(result.total)
        worth = None if noise is None else noise.of_sum(result, dim)
        self.finish(
            result.total,
            result.survivors,
            "",
            seen,
            clamped=result.clamped,
            client_multiplier=worth,
        )

    def _abort(self, abort: SecAggAbortError) -> None:
        # once an unmask request went out, the dropped clients' key shares may have been revealed
        if self.request is not None:
            rotate(self.run, self.request.dropped)
        self.finish(None, tuple(sorted(self.inputs)), abort.reason, None)
