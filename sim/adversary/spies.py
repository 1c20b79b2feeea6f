"""Who sent it? The spies' first-spy estimator over every order's first message.

Spies are nodes that log every message they receive, when and from which neighbour. For each
order they saw, the **first-spy** estimator names as its origin the node from which the first spy
to receive it received it: under diffusion with per-link latency that is very often the origin
itself. Dandelion++ marks stem messages as such, so its spies can also use the **first stem spy**
variant: the node from which the first spy to receive the message *over a stem edge* received it
(orders no spy saw on a stem are not attributed by it). It is a different estimator from the
paper's per-edge routing, and named so.

Scores are those of Dandelion++ (Fanti et al., "Dandelion++: Lightweight Cryptocurrency
Networking with Formal Anonymity Guarantees", SIGMETRICS 2018, section 3), over the orders that
did not start at a spy. For each honest node ``v`` that sent at least one of them (the paper's
honest nodes each send one transaction), **precision** ``D(v)`` is the share of the orders
attributed to ``v`` that ``v`` sent, 0 when none is attributed to it, and **recall** ``R(v)`` the
share of ``v``'s orders attributed to it; both are averaged over all those nodes. A node the
estimator never names therefore scores 0, which is what keeps precision from rewarding an
estimator that names few nodes. With no spies the estimator names nobody and both are NaN.

A trader's orders all leave from its node, so every correct attribution links one more of its
orders to it; the ``sender_estimates`` table counts them per trader, to show linkage growing with
activity.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from sim.host.component import Component
from sim.host.host import Host
from sim.net.fastflood import Spread
from sim.net.network import Flood
from sim.results.records import OrderRecord
from sim.world.build import TraderSpec

NAN = math.nan

SCHEMA = {
    "run_id": pl.String,
    "trader": pl.Int64,
    "node": pl.Int64,
    "kind": pl.String,
    "orders": pl.Int64,
    "seen": pl.Int64,
    "attributed": pl.Int64,
    "attributed_first_stem_spy": pl.Int64,
}
"""``sender_estimates``: per trader, its orders, those the spies saw, those attributed to its
node by first-spy and by the first-stem-spy variant (null where an estimator does not apply)."""


@dataclass(frozen=True, slots=True)
class Attribution:
    """One order as the spies judged it (-1: not attributed)."""

    trader: int
    origin: int
    seen: bool
    named: int
    named_stem: int


def first_spy(flood: Flood, spies: np.ndarray, *, until: float) -> tuple[bool, int]:
    """Whether a spy received ``flood`` by ``until``, and whom the first one received it from.

    Args:
        flood: one message's arrivals and senders.
        spies: the spy nodes, sorted (a tie in time goes to the lowest-numbered spy).
        until: the end of the run: computed arrivals after it never happened.

    Returns:
        (seen, named), ``named`` being -1 when no spy received it.
    """
    times = np.asarray(flood.arrivals, dtype=np.float64)[spies]
    times[times > until] = NAN
    if np.isnan(times).all():
        return False, -1
    spy = int(spies[int(np.nanargmin(times))])
    return True, int(flood.first_from[spy])


def first_stem_spy(flood: Flood, spies: frozenset[int], *, until: float) -> int:
    """The node from which the first spy to get ``flood`` on a stem edge got it (-1: none)."""
    if not isinstance(flood, Spread):
        return -1
    arrivals = flood.arrivals
    heard = [(arrivals[s], s) for s in flood.stem_from if s in spies and arrivals[s] <= until]
    return flood.stem_from[min(heard)[1]] if heard else -1


def sender_scores(
    origins: Sequence[int], named: Sequence[int], *, spies: frozenset[int]
) -> tuple[float, float]:
    """(precision, recall) of an estimator, as Fanti et al. (2018) average them (module doc).

    Args:
        origins: each order's true origin node.
        named: the node the estimator named for it (-1: none).
        spies: the spy nodes; orders from a spy are left out, and with no spies both scores are
            NaN (nobody can be named).
    """
    pairs = [(o, n) for o, n in zip(origins, named, strict=True) if o not in spies]
    if not spies or not pairs:
        return NAN, NAN
    sent = Counter(o for o, _ in pairs)
    attributed = Counter(n for _, n in pairs if n >= 0)
    correct = Counter(o for o, n in pairs if o == n)
    honest = sorted(sent)
    precision = math.fsum(correct[v] / attributed[v] for v in honest if attributed[v])
    recall = math.fsum(correct[v] / sent[v] for v in honest)
    return precision / len(honest), recall / len(honest)


def attribute(
    records: Sequence[OrderRecord],
    traders: Sequence[TraderSpec],
    spies: frozenset[int],
    *,
    until: float,
) -> list[Attribution]:
    """The spies' judgement of every diffused order the world's traders placed, in order.

    Orders that never diffused (operator mode sends them point to point to the operator) are
    not judged: the first-spy estimator does not apply to them, so their scores are NaN.
    """
    nodes = {spec.trader: spec.node for spec in traders}
    spy_array = np.array(sorted(spies), dtype=np.int64)
    out = []
    for record in records:
        trader = record.order.trader
        if nodes.get(trader) != record.node or record.flood is None:
            continue  # the front-runner trades for the spies; point-to-point orders never spread
        seen, named, stems = False, -1, -1
        if spies:
            seen, named = first_spy(record.flood, spy_array, until=until)
            stems = first_stem_spy(record.flood, spies, until=until)
        out.append(Attribution(trader, record.node, seen, named, stems))
    return out


def estimates_table(
    attributions: Sequence[Attribution],
    traders: Sequence[TraderSpec],
    *,
    run_id: str,
    spies: bool,
    stems: bool,
) -> pl.DataFrame:
    """One row per trader: orders, seen, attributed (nulls where an estimator does not apply)."""
    orders: Counter[int] = Counter()
    seen: Counter[int] = Counter()
    hits: Counter[int] = Counter()
    edge_hits: Counter[int] = Counter()
    for a in attributions:
        orders[a.trader] += 1
        seen[a.trader] += a.seen
        hits[a.trader] += a.named == a.origin
        edge_hits[a.trader] += a.named_stem == a.origin
    ids = [spec.trader for spec in traders]
    rows = {
        "run_id": [run_id] * len(ids),
        "trader": ids,
        "node": [spec.node for spec in traders],
        "kind": [spec.kind for spec in traders],
        "orders": [orders[t] for t in ids],
        "seen": [seen[t] if spies else None for t in ids],
        "attributed": [hits[t] if spies else None for t in ids],
        "attributed_first_stem_spy": [edge_hits[t] if spies and stems else None for t in ids],
    }
    return pl.DataFrame(rows, schema=SCHEMA)


class Spies(Component):
    """After the run, the spies name each order's origin; reports precision and recall.

    Metrics: ``privacy.sender_precision`` and ``privacy.sender_recall`` (first-spy), and with
    Dandelion ``privacy.sender_precision_first_stem_spy`` and
    ``privacy.sender_recall_first_stem_spy``.
    Table: ``sender_estimates``.

    ``stems`` is set when messages travel Dandelion stems (which the first-stem-spy variant needs).
    """

    def __init__(self, sim: Host, *, stems: bool) -> None:
        super().__init__(sim)
        self.spies = sim.world.spies
        self.stems = stems
        self._judged: list[Attribution] | None = None

    def judged(self) -> list[Attribution]:
        """Every order's attribution (computed once, after the run)."""
        if self._judged is None:
            sim = self.sim
            self._judged = attribute(
                sim.records.orders, sim.world.traders, self.spies, until=sim.now
            )
        return self._judged

    def metrics(self) -> dict[str, float]:
        """Sender precision and recall, first-spy and (Dandelion) first-stem-spy."""
        judged = self.judged()
        origins = [a.origin for a in judged]
        precision, recall = sender_scores(origins, [a.named for a in judged], spies=self.spies)
        values = {"privacy.sender_precision": precision, "privacy.sender_recall": recall}
        if self.stems:
            named = [a.named_stem for a in judged]
            precision, recall = sender_scores(origins, named, spies=self.spies)
            values["privacy.sender_precision_first_stem_spy"] = precision
            values["privacy.sender_recall_first_stem_spy"] = recall
        return values

    def tables(self, run_id: str) -> dict[str, pl.DataFrame]:
        """``sender_estimates``: per trader, how many of its orders the spies linked to it."""
        table = estimates_table(
            self.judged(),
            self.sim.world.traders,
            run_id=run_id,
            spies=bool(self.spies),
            stems=self.stems,
        )
        return {"sender_estimates": table}
