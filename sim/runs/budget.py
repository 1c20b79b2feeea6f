"""The work a run will take, estimated from its scenario before it starts, and the limits.

Every duration and rate has a range in the schema (:mod:`sim.scenario.sections`), but ranges
alone still let a scenario ask for years of work (a million traders at an order a second for a
year). :func:`estimate` multiplies a run's settings out into the simulated events, orders,
messages and memory it will need; :func:`refusal` compares that with :data:`LIMITS`, and the
CLI refuses a scenario beyond them (exit 2, with the estimate) unless ``--allow-large``.

The estimate is a model, not a measurement: each term is a count the scenario fixes (blocks,
batches, rounds, order floods) times a cost per unit fitted on the bundled and golden
scenarios. ``tests/sim/runs/test_budget.py`` runs several of them and checks that the actual
``perf.events`` and ``perf.messages`` lie within :data:`HONEST_FACTOR` of the estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from sim.errors import InputError
from sim.scenario import RunSpec, Scenario

# Costs per unit, fitted on the bundled and golden scenarios (see the module docstring).
EVENTS_PER_SLOT = 3.5
"""Simulated events per block slot (the sequencer's turn, replicas, catch-up), even empty."""
EVENTS_PER_ORDER = 15.0
"""Events per order: its submission, relays that are not computed in bulk, its execution."""
EVENTS_PER_PERIOD = 3.0
"""Events per tick of a periodic process (a threshold batch, a settlement round, an epoch)."""
EVENTS_PER_MESSAGE = 0.05
"""Events per delivered message (most floods are computed at once, point-to-point ones not)."""
FLOODS_PER_ORDER = {"transparent": 2.0, "operator": 1.0, "commit_reveal": 4.0, "threshold": 3.5}
"""Network-wide floods an order causes in each order-flow mode (its own, its block's, ...)."""
BASE_MB = 300.0
"""Memory of the interpreter, the libraries and a small run."""
KB_PER_ORDER = 10.0
"""Memory per order: its record, its transactions, what the spies logged of it."""
BYTES_PER_MESSAGE = 64.0
"""Memory per delivered message (arrival logs, counters)."""
HELD_OUT_EVENTS = 10_000
"""Held-out events the forecaster is scored on (its own data set, as big as a client's)."""

HONEST_FACTOR = 4.0
"""The actual events and messages of a run lie within this factor of the estimate (tested)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A run's estimated work: simulated events, orders, delivered messages, peak memory."""

    events: float
    orders: float
    messages: float
    memory_mb: float

    def worst(self, other: Estimate) -> Estimate:
        """The larger of each figure (the heaviest run of a sweep, figure by figure)."""
        return Estimate(*(max(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)))

    def describe(self) -> str:
        """``2.1e+07 events, 3.4e+05 orders, 1.2e+09 messages, 5400 MB``."""
        return (
            f"{self.events:.2g} events, {self.orders:.2g} orders, "
            f"{self.messages:.2g} messages, {self.memory_mb:.0f} MB"
        )


LIMITS = Estimate(events=2e7, orders=2e6, messages=5e8, memory_mb=8192.0)
"""The most one run may need without ``--allow-large``: about a hundred times the default
scenario's events, some minutes of work on one core, and memory a laptop has."""


def _periods(span: float, interval: float) -> float:
    return max(0.0, span) / interval


def estimate(s: Scenario) -> Estimate:
    """The work of one run of ``s`` (a resolved scenario: its sweep point applied)."""
    net, market, traders, privacy = s.network, s.market, s.traders, s.privacy
    horizon = s.duration_s
    trading = min(market.close_s, horizon)
    people = traders.informed + traders.noise + s.adversary.frontrunner + s.forecaster.enabled
    orders = people * traders.orders_per_hour * trading / 3600.0
    degree = net.nodes - 1 if net.topology == "complete" else min(net.degree, net.nodes - 1)
    flood = net.nodes * degree / (1.0 - net.loss)
    settling = horizon - market.resolve_s
    votes = market.count * s.settlement.reporters * _periods(settling, s.settlement.round_timeout_s)
    fl = s.forecaster
    sampled = fl.clients * fl.client_fraction
    fl_messages = fl.enabled * fl.rounds * sampled * (sampled if fl.secure_aggregation else 4.0)
    messages = orders * FLOODS_PER_ORDER[privacy.order_flow] * flood + votes * net.nodes
    messages += fl_messages * net.nodes**0.5  # hop by hop along shortest paths
    periods = market.count * _periods(settling, s.settlement.round_timeout_s)
    if privacy.order_flow == "threshold":
        periods += _periods(trading, privacy.batch_interval_s)
    if net.propagation == "dandelion":
        periods += net.nodes * _periods(horizon, net.dandelion_epoch_s)
    events = (
        EVENTS_PER_SLOT * _periods(horizon, net.block_interval_s)
        + EVENTS_PER_ORDER * orders
        + EVENTS_PER_PERIOD * periods
        + EVENTS_PER_MESSAGE * messages
        + fl.enabled * fl.rounds * sampled * fl.local_steps
    )
    data = fl.enabled * (fl.clients * fl.samples_per_client + HELD_OUT_EVENTS) * fl.features
    memory_mb = (
        BASE_MB
        + KB_PER_ORDER * orders / 1024.0
        + BYTES_PER_MESSAGE * messages / 2**20
        + 8.0 * 3 * data / 2**20  # float64 features, labels and a working copy
    )
    return Estimate(events=events, orders=orders, messages=messages, memory_mb=memory_mb)


def refusal(work: Estimate, limits: Estimate = LIMITS) -> list[str]:
    """One line per figure of ``work`` beyond ``limits`` (empty: within every limit)."""
    return [
        f"estimated {f.name.replace('_mb', '')} {getattr(work, f.name):.2g}"
        f" exceeds the limit of {getattr(limits, f.name):.2g}"
        + (" MB" if f.name == "memory_mb" else "")
        for f in fields(work)
        if getattr(work, f.name) > getattr(limits, f.name)
    ]


class TooMuchWorkError(InputError):
    """A scenario whose heaviest run needs more than :data:`LIMITS` (exit code 2)."""

    def __init__(self, source: str, lines: list[str]) -> None:
        self.source = source
        self.problems = tuple(lines)
        super().__init__("; ".join(lines))

    def lines(self) -> list[str]:
        """One line per figure beyond its limit, then how to run it anyway."""
        hint = "pass --allow-large to run it anyway"
        return [f"{self.source}: work estimate: {line}" for line in self.problems] + [
            f"{self.source}: work estimate: {hint}"
        ]


def check(specs: Sequence[RunSpec], *, source: str, allow_large: bool = False) -> Estimate:
    """The heaviest run's estimate of ``specs``; refuses it beyond :data:`LIMITS`.

    Raises:
        TooMuchWorkError: some figure is beyond its limit and ``allow_large`` is false.
    """
    work = Estimate(0.0, 0.0, 0.0, 0.0)
    for spec in specs:
        work = work.worst(estimate(spec.scenario))
    over = refusal(work)
    if over and not allow_large:
        raise TooMuchWorkError(source, [f"{line} ({work.describe()} per run)" for line in over])
    return work
