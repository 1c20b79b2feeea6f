"""Replicas catching up: a replica that misses a block fetches it by height.

A replica learns that a height exists when a later block arrives or when a neighbour answers
its periodic status request; after a grace period it asks the nearest node holding the missing
block for it (hop by hop, each hop lossy like any message) and retries with another holder until
the block arrives. Loss and partitions therefore delay a replica but never make it diverge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sim.chain.blocks import Block
from sim.host.host import Host
from sim.net.network import Message, unexpected

SYNC_INTERVAL_S = 30.0
"""How often a replica asks a neighbour for the latest height it has seen."""

FETCH_RETRY_S = 2.0
"""How long a replica waits for a fetched block before asking another holder."""

STATUS_BYTES = 16
"""A status request or answer, or a fetch request: a height and a few header bytes."""


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """A replica asks a peer for the latest height it holds.

    ``route`` is the path the request takes (source routing, in the link layer's header and
    not counted in ``size``); the answer goes back along it.
    """

    kind: ClassVar[str] = "sync"
    size: ClassVar[int] = STATUS_BYTES
    route: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StatusReply:
    """A peer's latest height, sent back to the replica that asked."""

    kind: ClassVar[str] = "sync"
    size: ClassVar[int] = STATUS_BYTES
    height: int


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """A replica asks the nearest holder for the block at ``height``, along ``route``."""

    kind: ClassVar[str] = "fetch"
    size: ClassVar[int] = STATUS_BYTES
    height: int
    route: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class BlockReply:
    """A fetched block on its way back to the replica that asked."""

    kind: ClassVar[str] = "fetch"
    block: Block

    @property
    def size(self) -> int:
        """Bytes on the wire: the block."""
        return self.block.size


class CatchUp:
    """Block delivery to replicas, gap detection, fetch by height and periodic status."""

    def __init__(self, sim: Host) -> None:
        self.sim = sim
        self.heard: dict[int, int] = {}
        self.fetching: set[int] = set()
        self.rounds = 0
        """Status rounds so far: each replica asks the replica ``rounds`` places after it."""

    def start(self) -> None:
        """Begin the periodic status requests."""
        self.heard = dict.fromkeys(self.sim.replicas, -1)
        self.sim.every(SYNC_INTERVAL_S, self._sync)

    def arrived(self, node: int, block: Block) -> None:
        """``block`` reached ``node`` (by diffusion or by a fetch)."""
        replica = self.sim.replicas.get(node)
        if replica is None:
            return
        replica.receive(block)
        self.heard_of(node, block.height)

    def heard_of(self, node: int, height: int) -> None:
        """The replica at ``node`` learned that ``height`` exists; fetch gaps after a grace."""
        self.heard[node] = max(self.heard[node], height)
        replica = self.sim.replicas[node]
        if node not in self.fetching and replica.missing(self.heard[node]) is not None:
            self.fetching.add(node)
            self.sim.after(self.sim.block_interval_s, lambda: self._fetch(node, 0))

    def _fetch(self, node: int, attempt: int) -> None:
        """Ask the nearest node holding the missing block for it; retry until it arrives."""
        sim = self.sim
        height = sim.replicas[node].missing(self.heard[node])
        if height is None:
            self.fetching.discard(node)
            return
        path = sim.net.path_to(node, lambda n: self.holds(n, height), skip=attempt)
        if path:
            sim.net.relay(path, BlockRequest(height, tuple(path)), to=self.receive)
        sim.after(FETCH_RETRY_S, lambda: self._fetch(node, attempt + 1))

    def holds(self, node: int, height: int) -> bool:
        """Whether ``node`` has block ``height``: it received it, or its replica applied it."""
        replica = self.sim.replicas.get(node)
        if replica is not None and replica.next_height > height:
            return True
        return self.sim.blocks[height][1].has(node)

    def latest(self, node: int) -> int:
        """The highest block height ``node`` holds (-1: none)."""
        replica = self.sim.replicas.get(node)
        applied = replica.next_height - 1 if replica is not None else -1
        newer = self.sim.blocks[applied + 1 :]
        received = next((b.height for b, f in reversed(newer) if f.has(node)), -1)
        return max(applied, received)

    def _sync(self) -> bool:
        """Every replica asks another replica (in turn) for its latest height; runs for ever.

        Asking replicas rather than raw neighbours matters after a partition heals: a block that
        reached one side only by fetching is held by replicas there, not by their neighbours.
        """
        sim = self.sim
        self.rounds += 1
        replicas = sorted(sim.replicas)
        for i, node in enumerate(replicas):
            peer = replicas[(i + self.rounds) % len(replicas)]
            if peer == node:
                continue
            path = sim.net.route(node, peer)
            if not path:
                continue  # cut off from that replica for now
            sim.net.relay(path, StatusRequest(tuple(path)), to=self.receive)
        return True

    def receive(self, node: int, _sender: int, msg: Message) -> None:
        """Status and fetch messages reach the end of their route at ``node``."""
        net = self.sim.net
        match msg:
            case StatusRequest(route=route):
                height = self.latest(node)
                if height >= 0:
                    net.relay(route[::-1], StatusReply(height), to=self.receive)
            case StatusReply(height=height):
                self.heard_of(node, height)
            case BlockRequest(height=height, route=route):
                block, _ = self.sim.blocks[height]
                net.relay(route[::-1], BlockReply(block), to=self.receive)
            case BlockReply(block=block):
                self.arrived(node, block)
            case _:
                unexpected(msg)
