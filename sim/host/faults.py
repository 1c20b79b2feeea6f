"""The faults a run injects: Byzantine and crashed reporters, scheduled crashes and partitions.

From ``[settlement]``: ``byzantine_fraction`` of the reporters collude on a wrong outcome and
``crash_fraction`` of them stop at a random time (uniform within ``crash_window_s`` around
``resolve_s``, where settlement happens) and never come back.
Counts round to the nearest whole reporter (``floor(fraction·n + 0.5)``); the two sets are
disjoint, drawn from the run seed by one permutation (the first reporters of it Byzantine, the
next crashed). From ``[faults]``: partitions that cut a set of nodes off the rest from a time to
a time, and crashes of given nodes with optional restarts.

:func:`plan_faults` decides everything up front (a pure function of the scenario, the reporters
and a random stream); :class:`FaultInjector` turns the plan into events on the network
(:meth:`sim.net.network.SimNetwork.crash`, ``restart``, ``cut``, ``heal``) and keeps
``sim.faulty_replicas`` (Byzantine reporters, and reporters down at the moment) up to date, so
``ledger.replica_divergence`` compares the reporters that are neither Byzantine nor crashed. A
reporter that restarts catches up by height and counts again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from sim.host.component import Component, Genesis
from sim.host.host import Host
from sim.scenario import Scenario
from sim.world.build import role_count

NEVER = math.inf


@dataclass(frozen=True, slots=True)
class Outage:
    """A node down from ``start`` until ``end`` (``inf``: it never restarts)."""

    node: int
    start: float
    end: float = NEVER


@dataclass(frozen=True, slots=True)
class Cut:
    """A partition: every link between ``nodes`` and the rest is cut from ``start`` to ``end``."""

    nodes: frozenset[int]
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Every fault of a run, decided before it starts.

    Attributes:
        byzantine: reporter nodes that collude on a wrong outcome.
        crashed: reporter nodes that ``crash_fraction`` stops for good.
        outages: every crash, from ``crash_fraction`` and from ``[faults]``, by start time.
        cuts: the partitions of ``[faults]``.
    """

    byzantine: frozenset[int]
    crashed: frozenset[int]
    outages: tuple[Outage, ...]
    cuts: tuple[Cut, ...]

    @property
    def scheduled(self) -> bool:
        """Whether any node goes down or any link is cut during the run."""
        return bool(self.outages or self.cuts)


def fault_counts(
    reporters: int, *, byzantine_fraction: float, crash_fraction: float
) -> tuple[int, int]:
    """Byzantine and crashed reporters: each fraction of ``reporters`` rounded half up.

    The two sets are disjoint, so the crashed count is capped at what the Byzantine leave.
    """
    byzantine = min(reporters, role_count(byzantine_fraction, reporters))
    crashed = min(reporters - byzantine, role_count(crash_fraction, reporters))
    return byzantine, crashed


def crash_window(scenario: Scenario) -> tuple[float, float]:
    """When ``crash_fraction``'s crashes happen: ``crash_window_s`` centred on ``resolve_s``.

    Clipped to the run, so a window reaching past either end is shorter, never empty of time.
    """
    half, centre = scenario.settlement.crash_window_s / 2, scenario.market.resolve_s
    low, high = (min(max(t, 0.0), scenario.duration_s) for t in (centre - half, centre + half))
    return low, high


def plan_faults(
    scenario: Scenario, reporters: Sequence[int], rng: np.random.Generator
) -> FaultPlan:
    """The faults of a run: the settlement fractions drawn from ``rng``, then ``[faults]``.

    Args:
        scenario: the resolved scenario.
        reporters: the reporter nodes, sorted (``[faults]`` names reporters by position here).
        rng: the run's ``faults`` stream.
    """
    cfg = scenario.settlement
    n_byz, n_crash = fault_counts(
        len(reporters), byzantine_fraction=cfg.byzantine_fraction, crash_fraction=cfg.crash_fraction
    )
    order = [reporters[int(i)] for i in rng.permutation(len(reporters))]
    byzantine = frozenset(order[:n_byz])
    crashed = order[n_byz : n_byz + n_crash]
    times = rng.uniform(*crash_window(scenario), size=len(crashed))
    outages = [Outage(node, float(t)) for node, t in zip(crashed, times.tolist(), strict=True)]
    for crash in scenario.faults.crashes:
        node = crash.node if crash.node is not None else reporters[crash.reporter or 0]
        end = NEVER if crash.restart_s is None else crash.restart_s
        outages.append(Outage(node, crash.at_s, end))
    cuts = tuple(
        Cut(frozenset(p.nodes) | {reporters[i] for i in p.reporters}, p.start_s, p.end_s)
        for p in scenario.faults.partitions
    )
    outages.sort(key=lambda o: (o.start, o.node))
    return FaultPlan(byzantine, frozenset(crashed), tuple(outages), cuts)


class FaultInjector(Component):
    """Crashes, restarts and partitions as events on the run's network.

    Args:
        sim: the run.
        plan: what to inject.
        horizon_s: the run's end (a restart or heal after it is not scheduled).
    """

    def __init__(self, sim: Host, plan: FaultPlan, *, horizon_s: float) -> None:
        super().__init__(sim)
        self.plan = plan
        self.horizon_s = horizon_s
        self.validators = frozenset(sim.validators)
        self.outages: dict[int, int] = {}
        """How many outages keep each node down now (they may overlap)."""

    def genesis(self) -> Genesis:
        """Byzantine replicas are faulty from the start; scheduled faults slow diffusion down."""
        return Genesis(
            faulty_replicas=frozenset(self.plan.byzantine & self.validators),
            faults_scheduled=self.plan.scheduled,
        )

    def start(self) -> None:
        """Schedule every crash, restart, cut and heal."""
        sim, horizon = self.sim, self.horizon_s
        for outage in self.plan.outages:
            sim.after(outage.start, partial(self._down, outage.node))
            if outage.end < horizon:
                sim.after(outage.end, partial(self._up, outage.node))
        for cut in self.plan.cuts:
            sim.after(cut.start, partial(sim.net.cut, cut.nodes))
            if cut.end < horizon:
                sim.after(cut.end, partial(sim.net.heal, cut.nodes))

    def _down(self, node: int) -> None:
        self.outages[node] = self.outages.get(node, 0) + 1
        self.sim.net.crash(node)
        if node in self.validators:
            self.sim.faulty_replicas.add(node)

    def _up(self, node: int) -> None:
        self.outages[node] -= 1
        if self.outages[node]:
            return  # another outage still holds it down
        self.sim.net.restart(node)
        if node not in self.plan.byzantine:
            self.sim.faulty_replicas.discard(node)
