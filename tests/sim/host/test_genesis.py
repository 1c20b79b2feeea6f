"""Components declare their genesis; the host applies all of them before replicas copy the chain."""

from __future__ import annotations

from typing import Any

import pytest

from market.accounts import frontrunner_account, reporter_account
from market.oracle import Settlement
from market.types import to_micro
from sim.host.component import Component, Genesis
from sim.runs.runner import build
from sim.scenario import expand, parse_scenario


def _tiny(small: dict[str, Any], **sections: dict[str, Any]) -> Any:
    """The small world cut to a few simulated seconds: building and starting it is the test."""
    data = small | {"duration_s": 4.0}
    data["market"] = data["market"] | {"close_s": 2.0, "resolve_s": 3.0}
    for name, values in sections.items():
        data[name] = data.get(name, {}) | values
    [spec] = expand(parse_scenario(data))
    return build(spec)


def test_every_genesis_reaches_every_replica(small: dict[str, Any]) -> None:
    run = _tiny(small, adversary={"frontrunner": True}, settlement={"endowment": 7.0})
    run.run()
    budget, endowment = to_micro(200.0), to_micro(7.0)
    account = frontrunner_account(len(run.world.traders))
    assert account == 14  # by hand: 6 informed + 8 noise traders hold ids 0..13
    for replica in [run.start_state, *(r.exchange for r in run.replicas.values())]:
        ledger = replica.ledger
        assert ledger.cash(account) == budget
        assert all(ledger.cash(reporter_account(n)) == endowment for n in run.validators)


def test_the_settlement_check_comes_from_the_protocol_and_is_given_once(
    small: dict[str, Any],
) -> None:
    run = _tiny(small)

    class SecondCheck(Component):
        def genesis(self) -> Genesis:
            return Genesis(settlement_check=lambda _s: True)

    run.plug(SecondCheck(run))
    with pytest.raises(AssertionError, match="two components check settlements"):
        run.run()


def test_byzantine_replicas_are_faulty_from_the_start(small: dict[str, Any]) -> None:
    run = _tiny(small, settlement={"byzantine_fraction": 0.3})
    run.run()
    # by hand: floor(0.3 * 7 + 0.5) = 2 of the 7 reporters are Byzantine
    assert len(run.faulty_replicas) == 2 and run.faulty_replicas <= set(run.validators)


def test_before_the_run_nothing_settles(small: dict[str, Any]) -> None:
    run = _tiny(small)
    assert run.settlement_ok(Settlement(0, 0, (), "certificate")) is False
