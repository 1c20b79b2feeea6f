"""BFT settlement over random worlds: safe under any tolerated fault, live once healed.

Hypothesis draws every example afresh (no ``derandomize``, no example database), over small
whole runs (16 nodes, 4-10 reporters): crashes and partitions around ``resolve_s`` that all
end at least 600 s before the horizon, message loss, noisy honest observations, and up to
``f = ⌊(n − 1)/3⌋`` Byzantine reporters of each strategy. In every example:

* **safety**: no two honest replicas finalize different outcomes of a market, and no valid
  certificates for two outcomes exist anywhere (``settlement.conflicting_certificates == 0``:
  ``b ≤ f < 2q − n``);
* **liveness**: every market for which ``⌊2n/3⌋ + 1`` honest reporters that are running at the
  horizon observed one outcome is final by the horizon (the network healed in time);
* **money**: nothing paid without a certificate (the independent replay of :func:`audit`), the
  payout audit 0, and every honest running replica in the chain's state at its own height.

How far behind a replica may be at the horizon is not asserted here: over lossy links no finite
margin holds in every world (one drawn world, 15 % loss, left a replica one block short 82 s
after the block closed, its diffusion, three tip pushes and six status polls all lost, before
the tip notices were acknowledged and re-sent).
Catch-up time is a measured distribution, tested over several seeds in ``test_catch_up.py``;
here it is only recorded (``event``) so a run's statistics show how often replicas lag.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sim.settlement.rules import fault_tolerance
from tests.sim.settlement.test_settlement import (
    _honest_live_replicas_hold_a_prefix_of_the_chain,
    _simulate,
    audit,
)

pytestmark = pytest.mark.slow  # whole runs

RESOLVE, END, NODES = 900.0, 2700.0, 16
HEALED_BY = END - 600.0


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    """A small BFT world with a random fault schedule around ``resolve_s``, healed in time."""
    reporters = draw(st.integers(4, 10))
    byzantine = draw(st.integers(0, fault_tolerance(reporters)))

    def window(lo: float, hi: float) -> tuple[float, float]:
        start = draw(st.floats(lo, hi))
        return start, min(start + draw(st.floats(20.0, 400.0)), HEALED_BY)

    partitions = []
    for _ in range(draw(st.integers(0, 2))):
        start, stop = window(RESOLVE - 300.0, RESOLVE + 300.0)
        cut = draw(st.sets(st.integers(0, reporters - 1), min_size=1, max_size=reporters - 1))
        others = draw(st.sets(st.integers(0, NODES - 1), max_size=3))
        partitions.append({"reporters": sorted(cut), "nodes": sorted(others),
                           "start_s": start, "end_s": stop})  # fmt: skip
    crashes = []
    for _ in range(draw(st.integers(0, 2))):
        start, stop = window(RESOLVE - 200.0, RESOLVE + 300.0)
        crash: dict[str, Any] = {"reporter": draw(st.integers(0, reporters - 1)), "at_s": start}
        if draw(st.booleans()):
            crash["restart_s"] = stop
        crashes.append(crash)
    return {
        "name": "bft-property", "seed": draw(st.integers(0, 2**31 - 1)), "duration_s": END,
        "network": {"nodes": NODES, "degree": 4,
                    "loss": draw(st.sampled_from([0.0, 0.05, 0.15]))},
        "market": {"count": 2, "liquidity_b": 30.0, "close_s": 600.0, "resolve_s": RESOLVE},
        "traders": {"informed": 3, "noise": 3, "orders_per_hour": 12.0, "budget": 100.0},
        "settlement": {
            "reporters": reporters, "protocol": "bft",
            "byzantine_fraction": byzantine / reporters,  # rounds back to exactly `byzantine`
            "byzantine_strategy": draw(st.sampled_from(["fixed", "equivocate", "silent"])),
            "crash_fraction": draw(st.sampled_from([0.0, 0.0, 0.15])),
            "observation_error": draw(st.sampled_from([0.0, 0.1, 0.3])),
            "round_timeout_s": 20.0, "endowment": 400.0,
        },
        "faults": {"partitions": partitions, "crashes": crashes},
    }  # fmt: skip


@settings(max_examples=100, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(worlds())
def test_bft_is_safe_under_any_tolerated_fault_and_live_once_the_network_heals(
    world: dict[str, Any],
) -> None:
    run, m, protocol = _simulate(world)
    n, plan = len(protocol.reporters), protocol.plan
    assert len(plan.byzantine) <= fault_tolerance(n)
    event(f"{run.scenario.settlement.byzantine_strategy} Byzantine: {bool(plan.byzantine)}")
    if m["settlement.equivocations_detected"] > 0:
        event("equivocation evidence on chain")
    # safety: the honest replicas and every honest node's certificates agree
    assert m["settlement.conflicting_certificates"] == 0
    honest = [node for node in protocol.reporters if node not in plan.byzantine]
    for market in range(run.scenario.market.count):
        finals = {
            step.outcome
            for node in honest
            for step in run.replicas[node].exchange.applied
            if step.kind == "certificate" and step.market == market
        }
        assert len(finals) <= 1, (market, finals)
    # liveness: q honest reporters running at the horizon that observed one outcome suffice
    down = {o.node for o in plan.outages if o.end > run.scenario.duration_s}
    running = [node for node in honest if node not in down]
    for market in range(run.scenario.market.count):
        seen = Counter(protocol.voting.observation(node, market) for node in running)
        if seen and max(seen.values()) >= protocol.quorum:
            event("a market owed liveness")
            assert run.exchange.ledger.is_settled(market), (market, seen, protocol.quorum)
    # money: paid only on a certificate, to the right accounts; replicas agree
    assert m["ledger.payout_error"] == 0 and m["ledger.conservation_error"] == 0
    assert m["ledger.replica_divergence"] == 0
    states = audit(run, protocol)
    _honest_live_replicas_hold_a_prefix_of_the_chain(run, states)
    closed = sum(1 for block, _ in run.blocks if block.t <= END - 60.0)
    if any(run.replicas[node].next_height < closed for node in running if node in run.replicas):
        event("an honest replica a block short 60 s after it closed")
