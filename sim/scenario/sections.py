"""The sections of a scenario file (``[network]``, ``[market]``, ...): frozen pydantic models.

Each model says what one key may hold; :mod:`sim.scenario.rules` says what keys may hold
together, and :mod:`sim.scenario.schema` puts the sections into a ``Scenario``. Money keys
(``budget``, ``fee``, ``deposit``, ``bond``, ``endowment``, ``priority_fee``) stay in units here;
the simulator converts them to micro-units.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

MAX_SEED = 2**63 - 1  # seeds are TOML integers (signed 64-bit), never negative


MAX_COUNT = 1_000_000
"""Ceiling of every count (nodes, traders, rounds, bytes...): far beyond what one run can
simulate, so a bigger number is a typo, refused before it turns into a hang."""


# --- the models -------------------------------------------------------------------------------

_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


UnitInterval = Annotated[float, Field(ge=0.0, le=1.0)]


Count = Annotated[int, Field(le=MAX_COUNT)]


MAX_DURATION_S = 366 * 86400.0
"""Longest simulated time any duration may name (a leap year): prediction markets live hours
to months; a bigger number is a typo, and ``1e300`` would never finish."""

MIN_INTERVAL_S = 0.01
"""Shortest interval or timeout (10 ms): a fifth of the default link latency, far below any
block, batch or round a protocol can complete. A smaller one (``1e-300``) stops simulated time
from advancing (``t + 1e-300 == t``) while the event count grows without bound."""

MAX_ORDERS_PER_HOUR = 3600.0
"""A trader places at most one order per simulated second on average: faster than any person
or bot the markets model, and a bound the work estimate multiplies out."""

MAX_LATENCY_MS = 600_000.0
"""Longest median link latency (10 minutes): beyond that a link is a partition, see [faults]."""

Duration = Annotated[float, Field(gt=0.0, le=MAX_DURATION_S)]
"""A point or span of simulated time, in seconds: positive, at most :data:`MAX_DURATION_S`."""

Instant = Annotated[float, Field(ge=0.0, le=MAX_DURATION_S)]
"""A moment of simulated time from the start, in seconds (0 = the start)."""

Interval = Annotated[float, Field(ge=MIN_INTERVAL_S, le=MAX_DURATION_S)]
"""A repeating interval or a timeout, in seconds: from :data:`MIN_INTERVAL_S` to a year."""


def _inf_from_text(value: Any) -> Any:
    return math.inf if value == "inf" else value


Budget = Annotated[
    float,
    Field(gt=0.0, allow_inf_nan=True),
    BeforeValidator(_inf_from_text),
    PlainSerializer(lambda v: "inf" if math.isinf(v) else v, when_used="json"),
]
"""A privacy budget: a positive ``ε``, or ``inf`` (TOML's ``inf``, or the text ``"inf"`` in
JSON, where it round-trips) for none. NaN is refused."""


class Section(BaseModel):
    model_config = _CONFIG


class Latency(Section):
    """Per-link latency in milliseconds, lognormal, drawn once per link."""

    median: float = Field(default=50.0, gt=0.0, le=MAX_LATENCY_MS)  # up to 10 minutes
    sigma: float = Field(default=0.5, ge=0.0, le=5.0)  # e^5: the 84th percentile 148× the median


class Network(Section):
    """The peer-to-peer network; ``degree`` means d, k, m or the mean degree by topology."""

    nodes: Count = Field(default=100, ge=2)
    topology: Literal[
        "random_regular", "watts_strogatz", "barabasi_albert", "erdos_renyi", "complete"
    ] = "random_regular"
    degree: Count = Field(default=8, ge=1)
    latency_ms: Latency = Latency()
    loss: float = Field(default=0.0, ge=0.0, lt=1.0)  # per message per link
    # mean of the exponential wait before a node forwards an order-bearing message to each
    # neighbour (per message, node and neighbour); blocks, votes and keys are relayed at once
    diffusion_delay_ms: float = Field(default=2000.0, ge=0.0, le=60_000.0)
    propagation: Literal["diffusion", "dandelion"] = "diffusion"
    fluff_probability: float = Field(default=0.1, gt=0.0, le=1.0)  # dandelion: stem -> fluff
    dandelion_epoch_s: Interval = 600.0
    block_interval_s: Interval = 2.0


MAX_CONCENTRATION = 1e6
"""Largest prior parameter: a Beta(1e6, 1e6) is already a point mass for any run's evidence."""


class Prior(Section):
    """The prior of every market's true probability: ``prior = { alpha = 1.5, beta = 1.5 }``.

    For a binary market, the probability of outcome 1 (the "yes" outcome) is Beta(alpha, beta),
    so alpha counts prior "yes" evidence and beta prior "no" evidence. A market with more
    outcomes takes the symmetric Dirichlet with ``alpha`` on every outcome (the rules then require
    ``alpha == beta``). The default Beta(1.5, 1.5) is the Dirichlet(1.5, ...) the world drew true
    probabilities from before the prior was a setting.
    """

    alpha: float = Field(default=1.5, gt=0.0, le=MAX_CONCENTRATION)
    beta: float = Field(default=1.5, gt=0.0, le=MAX_CONCENTRATION)


class MarketConfig(Section):
    """The markets; the wire format holds a 16-bit market and an 8-bit outcome index."""

    mechanism: Literal["lmsr", "ls_lmsr"] = "lmsr"
    count: int = Field(default=4, ge=1, le=2**16)
    outcomes: int = Field(default=2, ge=2, le=2**8)
    liquidity_b: float = Field(default=100.0, gt=0.0)  # lmsr b
    alpha: float = Field(default=0.05, gt=0.0)  # ls_lmsr
    fee: float = Field(default=0.0, ge=0.0)  # per share traded, paid to the market maker
    close_s: Duration = 36000.0  # trading stops
    resolve_s: Duration = 39600.0  # the truth becomes observable
    prior: Prior = Prior()  # of each market's true probability (Beta for binary markets)


MAX_RISK_AVERSION = 20.0
"""Largest ``traders.risk_aversion``: a CRRA coefficient of 21 already bets next to nothing."""

RETIRED: dict[str, str] = {
    "traders.signal_accuracy": (
        "was retired: informed traders now see traders.signal_draws private draws of each "
        "market's true probability, which comes from market.prior; remove this key and set "
        "traders.signal_draws (more draws, sharper beliefs)"
    ),
}
"""Keys a scenario may no longer hold, each with what replaces it (reported instead of
"unknown key", so an old file says how to migrate)."""


class Traders(Section):
    """The trading population.

    Informed traders size each order by the Kelly criterion (or CRRA utility) on their belief and
    their current wealth; noise traders buy a uniformly chosen outcome, ``order_size`` shares on
    average, which is mean-zero flow in every outcome's log-odds.
    """

    informed: Count = Field(default=20, ge=0)
    noise: Count = Field(default=40, ge=0)
    # private draws of each market's true probability an informed trader sees (0: prior only)
    signal_draws: Count = Field(default=10, ge=0)
    # 0 = Kelly (log utility); otherwise CRRA with relative risk aversion 1 + risk_aversion
    risk_aversion: float = Field(default=0.0, ge=0.0, le=MAX_RISK_AVERSION)
    price_weight: UnitInterval = 0.0  # log-linear weight of the price in a belief (0 = never)
    budget: float = Field(default=1000.0, gt=0.0)
    orders_per_hour: float = Field(default=4.0, gt=0.0, le=MAX_ORDERS_PER_HOUR)
    order_size: float = Field(default=10.0, gt=0.0)  # mean shares of a noise trader's order


class Privacy(Section):
    """How order flow is hidden before execution."""

    order_flow: Literal["transparent", "operator", "commit_reveal", "threshold"] = "transparent"
    batch_interval_s: Interval = 30.0
    pad_to_bytes: Count = Field(default=256, ge=0)  # 0 = no padding
    keypers: Count = Field(default=10, ge=1)
    threshold: Count = Field(default=7, ge=1)
    reveal_deadline_s: Interval = 60.0
    # mean of the exponential wait from a commitment's block reaching its trader to the reveal
    reveal_delay_s: Instant = 0.0
    reveal_failure: UnitInterval = 0.0  # chance that a trader never reveals a commitment
    deposit: float = Field(default=5.0, ge=0.0)
    unlinkable_senders: bool = False
    sender_proofs: bool = False  # threshold: sealed orders carry a proof bound to their sender


class Adversary(Section):
    """Who attacks and how."""

    spy_fraction: UnitInterval = 0.1
    frontrunner: bool = False
    colluding_keypers: Count = Field(default=0, ge=0)
    cheating_keypers: Count = Field(default=0, ge=0)  # threshold: forge DKG and decryption shares
    operator_frontruns: bool = False
    copycat: bool = False  # threshold: copy sealed orders of senders linked to informed traders
    priority_fee: float = Field(default=0.01, ge=0.0)


class Settlement(Section):
    """How the markets' outcomes are agreed on."""

    protocol: Literal["bft", "optimistic"] = "bft"
    reporters: Count = Field(default=21, ge=1)
    byzantine_fraction: UnitInterval = 0.0
    # what the Byzantine reporters do (sim.adversary.byzantine): vote one fixed wrong outcome,
    # sign each honest group's observation to that group, or send nothing
    byzantine_strategy: Literal["fixed", "equivocate", "silent"] = "fixed"
    crash_fraction: UnitInterval = 0.0
    # crash_fraction's crashes are drawn uniformly within this window centred on resolve_s
    # (clipped to the run), where they meet settlement, not uniformly over the whole run
    crash_window_s: Interval = 1200.0
    # chance that an honest reporter observes a wrong outcome of a market (independently per
    # reporter and market), so that honest reporters can disagree
    observation_error: UnitInterval = 0.0
    round_timeout_s: Interval = 30.0
    bond: float = Field(default=750.0, ge=0.0)
    liveness_s: Interval = 7200.0
    endowment: float = Field(default=2000.0, ge=0.0)


NodeId = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class Partition(Section):
    """Nodes cut off from the rest of the network from ``start_s`` until ``end_s``.

    ``nodes`` are node ids; ``reporters`` are positions in the sorted list of reporter nodes
    (0 = the reporter with the smallest node id), so a schedule can target reporters without
    knowing where the seed put them.
    """

    nodes: list[NodeId] = Field(default_factory=list)
    reporters: list[NodeId] = Field(default_factory=list)
    start_s: Instant
    end_s: Duration


class Crash(Section):
    """One node (``node``, or the reporter at position ``reporter``) that stops at ``at_s``.

    It runs again at ``restart_s`` when given, and catches up by height like any replica.
    """

    node: NodeId | None = None
    reporter: NodeId | None = None
    at_s: Instant
    restart_s: Duration | None = None


class Faults(Section):
    """Scheduled network faults, on top of ``network.loss`` and the settlement fractions."""

    partitions: list[Partition] = Field(default_factory=list)
    crashes: list[Crash] = Field(default_factory=list)


class Forecaster(Section):
    """The federated forecaster (optional)."""

    enabled: bool = False
    clients: Count = Field(default=40, ge=1)
    features: Count = Field(default=16, ge=1)
    samples_per_client: Count = Field(default=200, ge=1)
    non_iid: UnitInterval = 0.5
    rounds: Count = Field(default=20, ge=1)
    client_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    local_steps: Count = Field(default=5, ge=1)
    learning_rate: float = Field(default=0.5, gt=0.0)
    batch_size: Count = Field(default=32, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    secure_aggregation: bool = True
    dp_noise_multiplier: float = Field(default=0.0, ge=0.0)  # 0 = no differential privacy
    dp_clip: float = Field(default=1.0, gt=0.0)
    dp_delta: float = Field(default=1e-5, gt=0.0, lt=1.0)
    round_timeout_s: Interval = 60.0
    secagg_bound: float = Field(default=8.0, gt=0.0)  # secure aggregation's per-coordinate clamp
    # who adds the DP noise: the coordinator after unmasking, or each client before masking
    dp_noise_at: Literal["server", "clients"] = "server"
    withdraw_fraction: UnitInterval = 0.0  # clients that withdraw consent at a random round
    # each client's own epsilon budget at dp_delta; inf (the default) = no budget
    client_epsilon_budget: Budget = math.inf
