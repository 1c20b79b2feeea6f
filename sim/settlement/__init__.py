"""Settlement: how the reporters agree on each market's outcome, and what faults do to it.

Two protocols (``settlement.protocol``), each a :class:`sim.host.component.Component`:

* ``bft`` (:mod:`.bft`): rounds of ECDSA-signed votes with a ``2f + 1`` quorum, a new leader
  each round, certificates that every replica verifies before paying out;
* ``optimistic`` (:mod:`.optimistic`): UMA-style bonded proposals, disputes, a liveness window
  and a vote of all reporters after a second dispute.

:func:`settlement_components` builds the run's faults (:mod:`sim.host.faults`: Byzantine and crashed
reporters, scheduled crashes and partitions) and the protocol to a simulation. The pure rules
(votes, certificates, checks) are in :mod:`.rules`, the voting rounds in :mod:`.rounds`.

The protocols run the honest reporters only. The Byzantine ones are an adversary component the
runner plugs beside the protocol, acting through the protocols' public calls (a leader's
proposal, a reporter's votes, a bond step, a block's certificates) and their hook lists.
"""

from __future__ import annotations

from collections.abc import Callable

from market.oracle import Settlement
from sim.host.faults import FaultInjector, FaultPlan, plan_faults
from sim.host.host import Host
from sim.settlement.bft import BFT
from sim.settlement.optimistic import Optimistic
from sim.settlement.protocol import SettlementProtocol

__all__ = [
    "BFT",
    "PROTOCOLS",
    "Optimistic",
    "SettlementProtocol",
    "majority_ok",
    "settlement_components",
]

PROTOCOLS: dict[str, Callable[[Host, FaultPlan], SettlementProtocol]] = {
    "bft": BFT,
    "optimistic": Optimistic,
}
"""The component of each ``settlement.protocol``."""


def settlement_components(host: Host) -> tuple[FaultInjector, SettlementProtocol]:
    """The run's fault injector and its settlement protocol, in the order they are plugged."""
    plan = plan_faults(host.scenario, sorted(host.validators), host.streams.numpy("faults"))
    injector = FaultInjector(host, plan)
    return injector, PROTOCOLS[host.scenario.settlement.protocol](host, plan)


def majority_ok(settlement: Settlement, *, reporters: frozenset[int], needed: int) -> bool:
    """The first version's unsigned check: ``needed`` distinct reporters behind a settlement.

    Kept for the chain's unit tests, which exercise blocks without signatures; runs verify
    signed certificates (:func:`.rules.settlement_ok`).
    """
    voters = settlement.voters
    return len(set(voters)) == len(voters) >= needed and set(voters) <= reporters
