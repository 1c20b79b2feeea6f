"""The world of a run: everything drawn from the world seed.

Topology, link latencies, roles, true probabilities, realised outcomes, trader signals and the
times, markets and sizes of every trader's orders come from the world seed, which depends on the
root seed and the replication only. Every sweep point of one replication therefore sees the
same world, and privacy settings are compared like for like (SPEC section 2).

Each market's true probability comes from ``market.prior`` and each informed trader's evidence
from its own draws of it (:mod:`sim.world.information`). With the forecaster enabled, the
markets' true probabilities come instead from the same logistic ground truth as the
forecaster's training data (:func:`sim.world.forecast.forecast_world`, drawn from
its own stream of the world seed); with it disabled the world is exactly what it was without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from sim.net.network import Topology, build_topology
from sim.rng import Streams
from sim.scenario import Scenario
from sim.world.forecast import ForecastWorld, consent_withdrawals, forecast_world
from sim.world.information import concentration, evidence, favoured, pooled, posterior_mean

TraderKind = Literal["informed", "noise"]


def role_count(fraction: float, total: int) -> int:
    """A fraction of a role count, rounded to the nearest whole number (halves up)."""
    return int(np.floor(fraction * total + 0.5))


@dataclass(frozen=True, slots=True)
class TraderSpec:
    """One trader of the world.

    Attributes:
        trader: the trader's id, also its ledger account.
        kind: informed traders hold evidence, noise traders trade at random.
        node: the network node it submits from.
        signals: per market, the outcome its evidence names most often (-1 for noise traders).
        evidence: per market, how many of its private draws fell on each outcome (empty for
            noise traders).
        beliefs: per market, its posterior mean from the prior and its own evidence (empty for
            noise traders).
    """

    trader: int
    kind: TraderKind
    node: int
    signals: tuple[int, ...]
    evidence: tuple[tuple[int, ...], ...] = ()
    beliefs: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """When a trader acts, on which market, how much, and a uniform draw for random choices."""

    t: float
    trader: int
    market: int
    shares: float
    pick: float


@dataclass(frozen=True, slots=True)
class World:
    """Everything a run's world seed decides."""

    topology: Topology
    spies: frozenset[int]
    reporters: tuple[int, ...]
    keypers: tuple[int, ...]
    """Keyper nodes in committee order (Shamir x-coordinates 1..n follow this order)."""
    operator: int
    """The operator node of ``operator`` order flow (never a spy: its honesty is a setting)."""
    adversary_node: int
    """Where the front-runner trades from: a spy when there are spies."""
    traders: tuple[TraderSpec, ...]
    true_probs: tuple[tuple[float, ...], ...]
    outcomes: tuple[int, ...]
    plan: tuple[PlannedOrder, ...]
    forecast: ForecastWorld | None = None
    """The forecaster's ground truth, data and roles (None when the forecaster is off)."""
    prior: tuple[float, ...] = ()
    """The prior's Dirichlet parameters, the same for every market (empty: a hand-made world)."""
    posteriors: tuple[tuple[float, ...], ...] = ()
    """Per market, the full-information posterior mean: the prior updated on every informed
    trader's evidence (empty: a hand-made world)."""

    def prior_mean(self) -> tuple[float, ...]:
        """The prior's mean over outcomes (what a trader without evidence believes)."""
        return posterior_mean(self.prior, (0,) * len(self.prior))


def _traders(
    scenario: Scenario,
    honest_nodes: list[int],
    probs: tuple[tuple[float, ...], ...],
    alpha: tuple[float, ...],
    rng: np.random.Generator,
) -> tuple[TraderSpec, ...]:
    """Informed traders first, each with its own draws of every market; then noise traders."""
    cfg = scenario.traders
    specs = []
    for trader in range(cfg.informed + cfg.noise):
        node = honest_nodes[trader % len(honest_nodes)]
        if trader >= cfg.informed:
            specs.append(TraderSpec(trader, "noise", node, (-1,) * len(probs)))
            continue
        counts = tuple(evidence(p, cfg.signal_draws, rng) for p in probs)
        signals = tuple(favoured(c) for c in counts)
        beliefs = tuple(posterior_mean(alpha, c) for c in counts)
        specs.append(TraderSpec(trader, "informed", node, signals, counts, beliefs))
    return tuple(specs)


def _plan(scenario: Scenario, traders: int, rng: np.random.Generator) -> tuple[PlannedOrder, ...]:
    """Each trader's orders as a Poisson process until the markets close."""
    rate = scenario.traders.orders_per_hour / 3600.0
    close = scenario.market.close_s
    plan: list[PlannedOrder] = []
    for trader in range(traders):
        t = 0.0
        while rate > 0:
            t += float(rng.exponential(1.0 / rate))
            if t >= close:
                break
            market = int(rng.integers(scenario.market.count))
            shares = float(rng.exponential(scenario.traders.order_size))
            plan.append(PlannedOrder(t, trader, market, shares, float(rng.random())))
    plan.sort(key=lambda p: (p.t, p.trader))
    return tuple(plan)


def build_world(scenario: Scenario, world_seed: int) -> World:
    """Draw the world of ``scenario`` from ``world_seed``."""
    streams = Streams(world_seed)
    topology = build_topology(scenario.network, streams.numpy("topology"))
    roles = streams.numpy("roles")
    nodes = scenario.network.nodes
    order = [int(v) for v in roles.permutation(nodes)]
    spy_count = role_count(scenario.adversary.spy_fraction, nodes)
    spies = frozenset(order[:spy_count])
    honest = order[spy_count:] or order
    reporters = tuple(
        sorted(int(v) for v in roles.choice(nodes, scenario.settlement.reporters, replace=False))
    )
    truth = streams.numpy("truth")
    n_out = scenario.market.outcomes
    alpha = concentration(scenario.market.prior, n_out)
    forecast = _forecast(scenario, streams.numpy("forecast"), streams.numpy("withdrawals"))
    if forecast is None:
        probs = tuple(
            tuple(float(p) for p in truth.dirichlet(alpha)) for _ in range(scenario.market.count)
        )
    else:  # binary markets (the scenario checks it): outcome 1 is the event
        probs = tuple((1.0 - float(p), float(p)) for p in forecast.market_probs)
    outcomes = tuple(int(truth.choice(n_out, p=np.asarray(p))) for p in probs)
    traders = _traders(scenario, honest, probs, alpha, streams.numpy("signals"))
    informed = [t.evidence for t in traders if t.kind == "informed"]
    posteriors = tuple(
        pooled(alpha, (e[m] for e in informed)) for m in range(scenario.market.count)
    )
    plan = _plan(scenario, len(traders), streams.numpy("orders"))
    committee = roles.permutation(nodes)[: min(scenario.privacy.keypers, nodes)]
    keypers = tuple(int(v) for v in committee)
    operator = honest[int(roles.integers(len(honest)))]  # trusted: never a spy
    adversary_node = min(spies) if spies else order[-1]
    return World(
        topology,
        spies,
        reporters,
        keypers,
        operator,
        adversary_node,
        traders,
        probs,
        outcomes,
        plan,
        forecast,
        alpha,
        posteriors,
    )


def _forecast(
    scenario: Scenario, rng: np.random.Generator, consent: np.random.Generator
) -> ForecastWorld | None:
    """The forecasting world when the forecaster is enabled (None otherwise, drawing nothing).

    Consent withdrawals come from their own world stream, so the data and roles are the same
    whatever ``withdraw_fraction`` is.
    """
    cfg = scenario.forecaster
    if not cfg.enabled:
        return None
    withdrawals = consent_withdrawals(
        clients=cfg.clients, fraction=cfg.withdraw_fraction, rounds=cfg.rounds, rng=consent
    )
    world = forecast_world(
        features=cfg.features,
        clients=cfg.clients,
        samples=cfg.samples_per_client,
        non_iid=cfg.non_iid,
        markets=scenario.market.count,
        nodes=scenario.network.nodes,
        rng=rng,
    )
    return replace(world, withdrawals=withdrawals)
