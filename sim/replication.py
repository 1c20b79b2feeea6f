"""Replicas catching up: a replica that misses a block fetches it by height.

A replica learns that a height exists when a later block arrives or when a neighbour answers
its periodic status request; after a grace period it asks the nearest node holding the missing
block for it (hop by hop, each hop lossy like any message) and retries with another holder until
the block arrives. Loss and partitions therefore delay a replica but never make it diverge.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from sim.chain import Block

if TYPE_CHECKING:
    from sim.simulation import Process, Simulation

SYNC_INTERVAL_S = 30.0
"""How often a replica asks a neighbour for the latest height it has seen."""

FETCH_RETRY_S = 2.0
"""How long a replica waits for a fetched block before asking another holder."""

STATUS_BYTES = 16
"""A status request or answer, or a fetch request: a height and a few header bytes."""


class CatchUp:
    """Block delivery to replicas, gap detection, fetch by height and periodic status."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.heard: dict[int, int] = {}
        self.fetching: set[int] = set()

    def start(self) -> None:
        """Begin the periodic status requests."""
        self.heard = dict.fromkeys(self.sim.replicas, -1)
        self.sim.env.process(self._sync())

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
            self.sim.after(self.sim.scenario.network.block_interval_s, lambda: self._fetch(node, 0))

    def _fetch(self, node: int, attempt: int) -> None:
        """Ask the nearest node holding the missing block for it; retry until it arrives."""
        sim = self.sim
        height = sim.replicas[node].missing(self.heard[node])
        if height is None:
            self.fetching.discard(node)
            return
        block, flood = sim.blocks[height]
        path = sim.net.path_to(node, flood.has, skip=attempt)
        if path:
            sim.records.fetches += 1
            sim.net.relay(
                path,
                kind="fetch",
                size=STATUS_BYTES,
                on_arrival=lambda: sim.net.relay(
                    path[::-1],
                    kind="fetch",
                    size=block.size(),
                    on_arrival=lambda: self.arrived(node, block),
                ),
            )
        sim.after(FETCH_RETRY_S, lambda: self._fetch(node, attempt + 1))

    def _sync(self) -> Process:
        """Every replica periodically asks one neighbour (in turn) for its latest height."""
        sim = self.sim
        rounds = 0
        while True:
            yield sim.env.timeout(SYNC_INTERVAL_S)
            rounds += 1
            for node in sim.replicas:
                links = sim.world.topology.links[node]
                peer = links[rounds % len(links)][0]
                sim.net.send(
                    node,
                    peer,
                    kind="sync",
                    size=STATUS_BYTES,
                    on_arrival=partial(self._status, node, peer),
                )

    def _status(self, node: int, peer: int) -> None:
        sim = self.sim
        height = next((b.height for b, f in reversed(sim.blocks) if f.has(peer)), -1)
        if height >= 0:
            sim.net.send(
                peer,
                node,
                kind="sync",
                size=STATUS_BYTES,
                on_arrival=lambda: self.heard_of(node, height),
            )
