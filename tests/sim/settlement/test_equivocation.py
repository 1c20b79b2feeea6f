"""Equivocating Byzantine reporters in whole runs: conflicting finality at a third or more,
evidence and slashing below it, and the metrics recomputed by hand.

Honest reporters observe each of two outcomes with chance one half
(``observation_error = 0.5``), so they split. An equivocator sends each honest group a
proposal (when it proposes) and votes for the outcome that group observed.

* ``n = 4``, two equivocators (``≥ n/3``; ``2q − n = 2``, so safety is not guaranteed), two
  honest reporters: where they observed different outcomes and a Byzantine reporter proposes
  round 0, each honest reporter plus the two equivocators is a quorum (3) for its own outcome:
  two certificates, both at honest nodes. By hand: every such market must be conflicting.
* ``n = 7``, two equivocators (``< n/3``): never a conflict, over several seeds; the evidence
  reaches the chain and each equivocator caught loses its whole endowment.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from market.crypto import base_mul
from sim.settlement.rules import Keyring, certificate_ok, evidence_ok
from tests.conftest import SMALL
from tests.sim.settlement.test_settlement import _simulate, audit

pytestmark = pytest.mark.slow  # whole runs

SEEDS = (21, 22, 23, 24)
MARKETS = 6


def _world(reporters: int, byzantine: int, seed: int) -> dict[str, Any]:
    scenario = copy.deepcopy(SMALL)
    scenario["seed"], scenario["duration_s"] = seed, 7800.0
    scenario["market"]["count"] = MARKETS
    scenario["settlement"] |= {
        "reporters": reporters,
        "byzantine_fraction": byzantine / reporters,
        "byzantine_strategy": "equivocate",
        "observation_error": 0.5,
        "round_timeout_s": 30.0,
    }
    return scenario


def test_a_third_or_more_equivocators_make_conflicting_certificates_and_the_run_says_so() -> None:
    total = 0
    for seed in SEEDS:
        run, m, protocol = _simulate(_world(4, 2, seed))
        voting, plan = protocol.voting, protocol.plan
        assert len(plan.byzantine) == 2 and protocol.quorum == 3
        honest = [r for r in protocol.reporters if r not in plan.byzantine]
        fresh = Keyring({n: base_mul(s) for n, s in protocol.keys.secrets.items()})
        # every certificate formed at an honest node is genuine: it verifies with a fresh keyring
        certified: dict[int, set[int]] = {}
        for node, listener in voting.listeners.items():
            assert node not in plan.byzantine
            for market, certs in listener.certificates.items():
                for cert in certs:
                    assert certificate_ok(cert, keyring=fresh, quorum=protocol.quorum)
                    certified.setdefault(market, set()).add(cert.outcome)
        recount = sum(len(values) > 1 for values in certified.values())
        assert m["settlement.conflicting_certificates"] == recount
        # by hand: split honest observations and a Byzantine proposer in round 0 must conflict
        for market in range(MARKETS):
            split = len({voting.observation(h, market) for h in honest}) == 2
            if split and voting.proposer(market, 0) in plan.byzantine:
                assert certified.get(market) == {0, 1}, market
        # the chain still paid each market once, on one of them, and the books balance
        assert m["settlement.finalized_fraction"] == 1.0 and m["ledger.payout_error"] == 0
        assert m["settlement.equivocations_detected"] > 0  # both signatures reach a sequencer
        audit(run, protocol)
        total += recount
    assert total > 0  # P(no conflict in 24 markets) = (3/4)^24 < 0.1 %; this seed set has some


@pytest.mark.parametrize("seed", SEEDS)
def test_below_a_third_equivocators_never_conflict_and_are_slashed(seed: int) -> None:
    run, m, protocol = _simulate(_world(7, 2, seed))
    assert len(protocol.plan.byzantine) == 2 and protocol.quorum == 5
    assert m["settlement.conflicting_certificates"] == 0
    fresh = Keyring({n: base_mul(s) for n, s in protocol.keys.secrets.items()})
    evidence = [s for s in run.exchange.applied if s.kind == "evidence"]
    assert all(evidence_ok(e, keyring=fresh) for e in evidence)
    keys = {(e.voters[0], e.market, e.round, e.step) for e in evidence}  # by hand, not accused()
    assert len(keys) == len(evidence) == m["settlement.equivocations_detected"]
    assert {signer for signer, *_ in keys} <= protocol.plan.byzantine  # never an honest one
    slashed = {signer for signer, *_ in keys}
    endowment = run.scenario.settlement.endowment
    assert m["settlement.slashed"] == len(slashed) * endowment  # each loses its whole account
    assert m["ledger.payout_error"] == 0 and m["ledger.conservation_error"] == 0
    assert m["ledger.replica_divergence"] == 0
    audit(run, protocol)
