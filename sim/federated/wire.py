"""How federated rounds use the simulated network: messages, their sizes, and the server's waits.

Every message between the coordinator and a client travels hop by hop along a shortest path of
the topology (:meth:`sim.net.network.SimNetwork.relay`), so it pays each link's latency and may be
lost on any hop like any other message; its kind (``fl_*``) and its size in bytes show up in the
run's ``messages`` table. Sizes are those of the real payloads: 8 bytes per float of a model or
a plain update, 4 bytes per word of a masked vector in ``Z_{2^32}``, 33 bytes per compressed
P-256 point, and the sealed envelopes, digests and shares as they are.

The coordinator waits for a set of clients (:class:`Wait`): the wait ends when every expected
client has answered or dropped out, or ``round_timeout_s`` after it began, whichever comes
first. A client that drops out closes its connection, which the coordinator notices at once
(as a gRPC server does); a message lost on the way, or a crashed or cut-off node, is only
noticed by the timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from market.crypto import POINT_BYTES
from sim.federated.secagg import KeyAdvert, MaskedInput, Reveal, ShareCommitment, ShareEnvelope
from sim.federated.strategy import ClientResult
from sim.host.host import Host
from sim.net.network import Message, Receive

HEADER_BYTES = 16
"""Round number, sender and message kind, on every message."""

FLOAT_BYTES = 8
WORD_BYTES = 4
ID_BYTES = 4
ENVELOPE_HEADER_BYTES = 24
"""Owner, holder and round of a share envelope (3 × 64 bits, as sealed)."""
SHARE_BYTES = ID_BYTES + 32
"""A revealed Shamir share: whose secret it is, and its y-coordinate (x is the holder's)."""

T = TypeVar("T")


def floats_bytes(count: int) -> int:
    """A message carrying ``count`` float64 values (a model, a plain update)."""
    return HEADER_BYTES + FLOAT_BYTES * count


def words_bytes(count: int) -> int:
    """A message carrying ``count`` ring words (a masked input)."""
    return HEADER_BYTES + WORD_BYTES * count


def advert_bytes() -> int:
    """A key advertisement: the channel and mask public keys."""
    return HEADER_BYTES + 2 * POINT_BYTES


def roster_bytes(holders: int) -> int:
    """The roster sent to each holder: every holder's id and public keys."""
    return HEADER_BYTES + holders * (ID_BYTES + 2 * POINT_BYTES)


def envelopes_bytes(envelopes: Sequence[ShareEnvelope]) -> int:
    """Sealed share envelopes as they travel."""
    return sum(ENVELOPE_HEADER_BYTES + len(e.ciphertext) + len(e.mac) for e in envelopes)


def commitment_bytes(commitment: ShareCommitment) -> int:
    """A share commitment: the seed digest and two digests per holder."""
    digests = sum(len(a) + len(b) + ID_BYTES for a, b in commitment.share_digests.values())
    return len(commitment.seed_digest) + digests


def reveal_bytes(reveal: Reveal) -> int:
    """A survivor's reveal: one share per survivor's seed and per dropped client's key."""
    return HEADER_BYTES + SHARE_BYTES * (len(reveal.seed_shares) + len(reveal.key_shares))


def ids_bytes(count: int) -> int:
    """A message listing ``count`` client ids (an unmask request, the masking members)."""
    return HEADER_BYTES + ID_BYTES * count


@dataclass(frozen=True, slots=True)
class ModelOffer:
    """The round's global model, coordinator to ``client`` (stage 0 of both kinds of round)."""

    kind: ClassVar[str] = "fl_model"
    client: int
    size: int


@dataclass(frozen=True, slots=True)
class Update:
    """A plain round's payload, ``client`` to coordinator."""

    kind: ClassVar[str] = "fl_update"
    client: int
    result: ClientResult
    size: int


@dataclass(frozen=True, slots=True)
class KeyOffer:
    """``client``'s two public keys, to the coordinator (SecAgg+ stage 0)."""

    kind: ClassVar[str] = "fl_keys"
    client: int
    advert: KeyAdvert

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return advert_bytes()


@dataclass(frozen=True, slots=True)
class RosterOffer:
    """The roster of everyone who advertised, coordinator to holder ``client`` (stage 1)."""

    kind: ClassVar[str] = "fl_roster"
    client: int
    size: int


@dataclass(frozen=True, slots=True)
class ShareUpload:
    """Holder ``client``'s sealed share envelopes and their commitment (stage 1)."""

    kind: ClassVar[str] = "fl_shares"
    client: int
    envelopes: tuple[ShareEnvelope, ...]
    commitment: ShareCommitment

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return envelopes_bytes(self.envelopes) + commitment_bytes(self.commitment)


@dataclass(frozen=True, slots=True)
class ShareForward:
    """The envelopes addressed to member ``client``, with the member list (stage 1)."""

    kind: ClassVar[str] = "fl_share_fwd"
    client: int
    envelopes: tuple[ShareEnvelope, ...]
    members: int

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return ids_bytes(self.members) + envelopes_bytes(self.envelopes)


@dataclass(frozen=True, slots=True)
class MaskedUpload:
    """Member ``client``'s masked input (stage 2)."""

    kind: ClassVar[str] = "fl_masked"
    client: int
    masked: MaskedInput
    words: int

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return words_bytes(self.words)


@dataclass(frozen=True, slots=True)
class UnmaskOffer:
    """The survivors and dropped clients, coordinator to survivor ``client`` (stage 3)."""

    kind: ClassVar[str] = "fl_unmask"
    client: int
    size: int


@dataclass(frozen=True, slots=True)
class RevealUpload:
    """Survivor ``client``'s revealed shares (stage 4)."""

    kind: ClassVar[str] = "fl_reveal"
    client: int
    answer: Reveal

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return reveal_bytes(self.answer)


ToClient = ModelOffer | RosterOffer | ShareForward | UnmaskOffer
ToCoordinator = Update | KeyOffer | ShareUpload | MaskedUpload | RevealUpload


class Courier:
    """Carries the federated protocol's messages between the coordinator and the clients.

    Shortest paths are cached while the run schedules no crash or partition (the topology is
    then fixed); otherwise each message looks for a path around the nodes down at sending time.
    """

    def __init__(self, sim: Host, *, coordinator: int, nodes: Sequence[int]) -> None:
        self.sim = sim
        self.coordinator = coordinator
        self.nodes = tuple(nodes)
        self._paths: dict[tuple[int, int], list[int]] = {}

    def to_client(self, msg: ToClient, *, to: Receive) -> None:
        """Send ``msg`` from the coordinator to its client; ``to`` runs there on arrival."""
        self._send(self.coordinator, self.nodes[msg.client], msg, to=to)

    def to_coordinator(self, msg: ToCoordinator, *, to: Receive) -> None:
        """Send ``msg`` from its client to the coordinator; ``to`` runs there on arrival."""
        self._send(self.nodes[msg.client], self.coordinator, msg, to=to)

    def _send(self, src: int, dst: int, msg: Message, *, to: Receive) -> None:
        net = self.sim.net
        if src == dst:  # the same node: no network, but never within the sender's own step
            self.sim.after(0.0, lambda: to(dst, -1, msg))
            return
        path = self._path(src, dst)
        if not path:  # no route around the crashed nodes: lost like any undeliverable message
            net.stats.add(msg.kind, sent=1, delivered=0, lost=1, size=msg.size)
            return
        net.relay(path, msg, to=to)

    def _path(self, src: int, dst: int) -> list[int]:
        net = self.sim.net
        if net.faults_scheduled:
            return net.path_to(src, lambda node: node == dst)
        path = self._paths.get((src, dst))
        if path is None:
            path = self._paths[(src, dst)] = net.path_to(src, lambda node: node == dst)
        return path


@dataclass(slots=True)
class Wait(Generic[T]):
    """The coordinator waiting for a set of clients; ``then`` runs once, with what arrived.

    Attributes:
        expected: clients still expected (a dropped client is removed at once).
        then: what the coordinator does next with the answers, by client.
        arrived: the answers so far.
        done: set once ``then`` ran; later answers are ignored.
    """

    expected: set[int]
    then: Callable[[Mapping[int, T]], None]
    arrived: dict[int, T] = field(default_factory=dict)
    done: bool = False

    def deliver(self, client: int, answer: T) -> None:
        """``client``'s answer reached the coordinator."""
        if not self.done:
            self.arrived[client] = answer
            self._check()

    def drop(self, client: int) -> None:
        """``client`` dropped out: stop waiting for it."""
        if not self.done:
            self.expected.discard(client)
            self._check()

    def expire(self) -> None:
        """The timeout passed: go on with what arrived."""
        if not self.done:
            self._finish()

    def _check(self) -> None:
        if self.expected <= self.arrived.keys():
            self._finish()

    def _finish(self) -> None:
        self.done = True
        self.then(self.arrived)


def wait_for(
    sim: Host,
    clients: Sequence[int],
    then: Callable[[Mapping[int, T]], None],
    *,
    timeout: float,
) -> Wait[T]:
    """Start waiting for ``clients``; ends early when all answered, else after ``timeout``.

    With nobody to wait for, ``then`` runs at once (with nothing).
    """
    wait: Wait[T] = Wait(set(clients), then)
    sim.after(timeout, wait.expire)
    wait._check()
    return wait
