"""Settlement: how the reporters agree on each market's outcome, and what faults do to it.

Two protocols (``settlement.protocol``), each a :class:`sim.host.component.Component`:

* ``bft`` (:mod:`.bft`): Tendermint consensus per market (propose, prevote, precommit, with
  locks and growing timeouts; a proposer per market and round), ECDSA-signed steps,
  certificates of ``⌊2n/3⌋ + 1`` precommits that every replica verifies before paying out,
  equivocation evidence that the chain slashes;
* ``optimistic`` (:mod:`.optimistic`): UMA-style bonded proposals, disputes, a liveness window
  and a vote of all reporters after a second dispute.

The runner (:mod:`sim.runs.assembly`) builds the run's faults (:mod:`sim.host.faults`: Byzantine
and crashed reporters, scheduled crashes and partitions) and the protocol from their sections.
The pure rules are in :mod:`.rules` (messages, checks, certificates, evidence) and
:mod:`.tendermint` (one reporter's state machine per market); :mod:`.rounds` drives them on the
host's clock and network.

The protocols run the honest reporters only. The Byzantine ones are an adversary component the
runner plugs beside the protocol (:mod:`sim.adversary.byzantine`, one of three strategies),
acting through the protocols' public calls (floods and direct sends of signed steps, a bond
step, a block's certificates) and their hook lists.
"""

from __future__ import annotations

from market.oracle import Settlement
from sim.settlement.bft import BFT
from sim.settlement.optimistic import Optimistic
from sim.settlement.protocol import SettlementProtocol

__all__ = [
    "BFT",
    "PROTOCOLS",
    "Optimistic",
    "SettlementProtocol",
    "majority_ok",
]

PROTOCOLS: dict[str, type[BFT] | type[Optimistic]] = {
    "bft": BFT,
    "optimistic": Optimistic,
}
"""The component of each ``settlement.protocol``."""


def majority_ok(settlement: Settlement, *, reporters: frozenset[int], needed: int) -> bool:
    """The first version's unsigned check: ``needed`` distinct reporters behind a settlement.

    Kept for the chain's unit tests, which exercise blocks without signatures; runs verify
    signed certificates (:func:`.rules.settlement_ok`).
    """
    voters = settlement.voters
    return len(set(voters)) == len(voters) >= needed and set(voters) <= reporters
