"""The sequencers' mempools: what each validator node has received and not yet seen on chain."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")


class Mempools(Generic[Item]):
    """One pool per sequencer node: ``key -> (item, arrival time)``.

    The chain's agreement on what it already holds is shared (see :mod:`sim.chain.blocks`), so a
    proposer drops what any block already included before it builds.
    """

    def __init__(self, nodes: Iterable[int]) -> None:
        self.pools: dict[int, dict[Hashable, tuple[Item, float]]] = {n: {} for n in nodes}
        self.included: set[Hashable] = set()

    def add(self, node: int, key: Hashable, item: Item, arrival: float) -> None:
        """``item`` reached ``node`` at ``arrival`` (ignored where no pool is kept)."""
        pool = self.pools.get(node)
        if pool is not None and key not in pool:
            pool[key] = (item, arrival)

    def take(
        self,
        node: int,
        *,
        order: Callable[[Item, float], Any],
        ready: Callable[[Item], bool] = lambda _item: True,
    ) -> list[tuple[Item, float]]:
        """Remove and return the ready items at ``node`` not yet on chain, sorted by ``order``."""
        pool = self.pools[node]
        for key in [k for k in pool if k in self.included]:
            del pool[key]
        chosen = sorted(
            ((key, item, t) for key, (item, t) in pool.items() if ready(item)),
            key=lambda entry: order(entry[1], entry[2]),
        )
        for key, _, _ in chosen:
            self.included.add(key)
            del pool[key]
        return [(item, t) for _, item, t in chosen]
