"""Rules that span several keys of a scenario, each naming the dotted key it is about.

Kept apart from the models (:mod:`sim.scenario`) so that each stays readable: the models say
what one key may hold; these rules say what keys may hold together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from market.types import MAX_COMPACT_BYTES
from sim.scenario.problems import show
from sim.scenario.sections import (
    Adversary,
    Faults,
    Forecaster,
    MarketConfig,
    Network,
    Privacy,
    Settlement,
    Traders,
)

MAX_RUNS = 10_000
"""Most runs (sweep points × replications) one scenario may ask for: more is almost surely a
typo (``replications = 10000000``), and every sweep point is validated at load time."""


MIN_PAD_BYTES = MAX_COMPACT_BYTES + 1
"""Encrypted order flows pad the order's compact encoding (at most ``MAX_COMPACT_BYTES``) before
encryption; padding needs one marker byte more than the longest encoding."""


class Sections(Protocol):
    """What the rules read of a scenario (the schema's ``Scenario`` has all of it).

    A protocol rather than the ``Scenario`` class itself, because that class runs these rules
    when it validates: the schema imports the rules, never the reverse.
    """

    @property
    def duration_s(self) -> float: ...
    @property
    def replications(self) -> int: ...
    @property
    def network(self) -> Network: ...
    @property
    def market(self) -> MarketConfig: ...
    @property
    def traders(self) -> Traders: ...
    @property
    def privacy(self) -> Privacy: ...
    @property
    def adversary(self) -> Adversary: ...
    @property
    def settlement(self) -> Settlement: ...
    @property
    def forecaster(self) -> Forecaster: ...
    @property
    def faults(self) -> Faults: ...
    @property
    def sweep(self) -> Mapping[str, list[Any]]: ...


Rule = tuple[bool, str, str]
"""A cross-field rule: ``(broken, dotted key, message)``."""


def cross_field_rules(s: Sections) -> list[tuple[str, str]]:
    """Every broken rule that spans fields, as ``(dotted key, message)``."""
    p, m, st, colluding = s.privacy, s.market, s.settlement, s.adversary.colluding_keypers
    runs = math.prod(len(values) for values in s.sweep.values()) * s.replications
    # fmt: off
    rules: list[Rule] = [
        *_network_rules(s),
        *_fault_rules(s),
        (p.threshold > p.keypers, "privacy.threshold",
         _at_most("privacy.keypers", p.keypers, p.threshold)),
        (colluding > p.keypers, "adversary.colluding_keypers",
         _at_most("privacy.keypers", p.keypers, colluding)),
        (s.adversary.cheating_keypers >= p.keypers, "adversary.cheating_keypers",
         f"must be below privacy.keypers ({p.keypers}): the DKG needs an honest dealer, got "
         f"{s.adversary.cheating_keypers}"),
        (0 < p.pad_to_bytes < MIN_PAD_BYTES, "privacy.pad_to_bytes",
         f"must be 0 (no padding) or at least {MIN_PAD_BYTES} (the longest encoded order and "
         f"a padding marker), got {p.pad_to_bytes}"),
        (p.reveal_deadline_s < s.network.block_interval_s, "privacy.reveal_deadline_s",
         f"must be at least network.block_interval_s ({show(s.network.block_interval_s)}): a "
         f"reveal needs a block to land in, got {show(p.reveal_deadline_s)}"),
        (m.close_s > m.resolve_s, "market.close_s",
         _at_most("market.resolve_s", m.resolve_s, m.close_s)),
        (m.resolve_s > s.duration_s, "market.resolve_s",
         _at_most("duration_s", s.duration_s, m.resolve_s)),
        (st.byzantine_fraction + st.crash_fraction > 1.0, "settlement.crash_fraction",
         "byzantine_fraction + crash_fraction must be at most 1"),
        (m.outcomes > 2 and m.prior.alpha != m.prior.beta, "market.prior",
         f"a market with {m.outcomes} outcomes takes a symmetric Dirichlet prior: alpha must "
         f"equal beta, got alpha = {show(m.prior.alpha)}, beta = {show(m.prior.beta)}"),
        (s.forecaster.enabled and m.outcomes != 2, "forecaster.enabled",
         f"the forecaster needs binary markets (market.outcomes = 2), got {m.outcomes}"),
        *_forecaster_rules(s.forecaster),
        (runs > MAX_RUNS, "sweep" if s.sweep else "replications",
         f"{runs} runs (sweep points × replications) exceed the limit of {MAX_RUNS}"),
    ]
    # fmt: on
    return [(key, message) for broken, key, message in rules if broken]


def _forecaster_rules(f: Forecaster) -> list[Rule]:
    """Distributed DP needs secure aggregation; a per-client budget needs DP."""
    # fmt: off
    return [
        (f.enabled and f.dp_noise_at == "clients" and not f.secure_aggregation,
         "forecaster.dp_noise_at",
         '"clients" needs forecaster.secure_aggregation = true: without masking the coordinator '
         "sees each client's update with only its 1/k share of the noise"),
        (f.enabled and math.isfinite(f.client_epsilon_budget) and f.dp_noise_multiplier == 0,
         "forecaster.client_epsilon_budget",
         f"a budget ({show(f.client_epsilon_budget)}) needs DP: set forecaster."
         "dp_noise_multiplier > 0 (without noise every round costs an infinite epsilon)"),
    ]
    # fmt: on


def _at_most(name: str, limit: float, got: float) -> str:
    return f"must be at most {name} ({show(limit)}), got {show(got)}"


def _network_rules(s: Sections) -> list[Rule]:
    net, n, d = s.network, s.network.nodes, s.network.degree
    # Roles that each need their own node, checked only when the component runs, so that a
    # small network is not refused over an unused section's defaults.
    counts = [("settlement.reporters", s.settlement.reporters, True),
              ("privacy.keypers", s.privacy.keypers, s.privacy.order_flow == "threshold"),
              ("forecaster.clients", s.forecaster.clients, s.forecaster.enabled)]  # fmt: skip
    rules = [(used and c > n, key, _at_most("network.nodes", n, c)) for key, c, used in counts]
    if net.topology == "complete":  # the degree is n - 1 by construction; the key is ignored
        return rules
    # fmt: off
    return [*rules,
        (d >= n, "network.degree", f"must be less than network.nodes ({n}), got {d}"),
        (d < n and net.topology == "random_regular" and n * d % 2 == 1, "network.degree",
         f"random_regular needs nodes × degree even, got {n} × {d}"),
        (d < n and net.topology == "watts_strogatz" and d % 2 == 1, "network.degree",
         f"watts_strogatz needs an even degree (k neighbours, k/2 each side), got {d}"),
    ]


    # fmt: on


def _fault_rules(s: Sections) -> list[Rule]:
    """Scheduled faults name nodes and reporters that exist, and end after they start."""
    nodes, reporters = s.network.nodes, s.settlement.reporters
    rules: list[Rule] = []
    for i, cut in enumerate(s.faults.partitions):
        key = f"faults.partitions[{i}]"
        rules += [
            (not (cut.nodes or cut.reporters), key, "names no node (give nodes or reporters)"),
            *_ids_exist(f"{key}.nodes", cut.nodes, nodes, reporters=False),
            *_ids_exist(f"{key}.reporters", cut.reporters, reporters, reporters=True),
            (cut.end_s <= cut.start_s, f"{key}.end_s",
             f"must be greater than start_s ({show(cut.start_s)}), got {show(cut.end_s)}"),
        ]  # fmt: skip
    for i, crash in enumerate(s.faults.crashes):
        key = f"faults.crashes[{i}]"
        restart = crash.restart_s
        rules += [
            ((crash.node is None) == (crash.reporter is None), key,
             "give exactly one of node or reporter"),
            *_ids_exist(f"{key}.node", [crash.node] if crash.node is not None else [], nodes,
                        reporters=False),
            *_ids_exist(f"{key}.reporter",
                        [crash.reporter] if crash.reporter is not None else [], reporters,
                        reporters=True),
            (restart is not None and restart <= crash.at_s, f"{key}.restart_s",
             f"must be greater than at_s ({show(crash.at_s)}), got {show(restart)}"),
        ]  # fmt: skip
    return rules


def _ids_exist(key: str, ids: Sequence[int], count: int, *, reporters: bool) -> list[Rule]:
    what = "settlement.reporters" if reporters else "network.nodes"
    return [
        (i >= count, key, f"{i} does not exist: {what} is {count} (ids start at 0)") for i in ids
    ]
