"""``ledger.payout_error`` on whole runs: 0 in every mode, and not 0 when a payout goes wrong.

Each world exercises the records the audit adds up (priority fees, forfeited deposits, batches,
disputed bonds), checked here so that a 0 is not the audit having nothing to do. The planted bugs
move money only by zero-sum transfers, so ``ledger.conservation_error`` stays 0 under each.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from market import exchange as exchange_module
from market.accounts import TREASURY
from market.ledger import Ledger
from market.oracle import Request, bond_release
from sim.runs.runner import build, compute_metrics
from sim.runs.simulation import Simulation
from sim.scenario import expand, parse_scenario
from tests.conftest import SMALL

pytestmark = pytest.mark.slow  # whole runs

SEEDS = (11, 12, 13)


def _world(**sections: dict[str, Any]) -> dict[str, Any]:
    scenario = copy.deepcopy(SMALL)
    for name, values in sections.items():
        scenario.setdefault(name, {}).update(values)
    return scenario


OPTIMISTIC = {"protocol": "optimistic", "liveness_s": 300.0, "bond": 50.0, "endowment": 400.0}
WORLDS: dict[str, dict[str, Any]] = {
    "transparent-priority-fees": _world(
        adversary={"frontrunner": True}, market={"fee": 0.01}, settlement={"reporters": 10}
    ),
    "commit-reveal-forfeits": _world(
        privacy={"order_flow": "commit_reveal", "reveal_failure": 0.3, "reveal_deadline_s": 20.0},
        adversary={"frontrunner": True},
    ),
    "threshold-batches": _world(privacy={"order_flow": "threshold"}),
    "optimistic-disputes": _world(settlement=OPTIMISTIC | {"byzantine_fraction": 0.29}),
}


def _run(scenario: dict[str, Any], seed: int) -> tuple[Simulation, dict[str, float]]:
    spec = expand(parse_scenario(scenario | {"seed": seed}))[0]
    run = build(spec)
    run.run()
    return run, compute_metrics(run)


def _exercised(name: str, run: Simulation) -> bool:
    """Whether the run did what its world is there for."""
    orders = run.records.orders
    match name:
        case "transparent-priority-fees":
            return any(r.status == "executed" and r.order.priority_fee > 0 for r in orders)
        case "commit-reveal-forfeits":
            return any(r.deposit_state == "forfeited" for r in orders)
        case "threshold-batches":
            return any(r.status == "executed" and r.batch_id >= 0 for r in orders)
        case "optimistic-disputes":
            return any(r.disputed for rs in run.exchange.requests.values() for r in rs)
    raise AssertionError(name)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(WORLDS))
def test_every_payout_is_where_the_records_say_in_every_mode(name: str, seed: int) -> None:
    run, m = _run(WORLDS[name], seed)
    assert m["settlement.finalized_fraction"] == 1.0
    assert m["ledger.payout_error"] == 0 and m["ledger.conservation_error"] == 0
    assert _exercised(name, run)


def _double_settle(original: Callable[..., dict[int, int]]) -> Callable[..., dict[int, int]]:
    def settle(self: Ledger, market: int, outcome: int, *, maker: int) -> dict[int, int]:
        paid = original(self, market, outcome, maker=maker)
        for account, micro in paid.items():  # every winner paid a second time, while it lasts
            self.transfer(maker, account, min(micro, self.cash(maker)))
        return paid

    return settle


def _misdirected_settle(original: Callable[..., dict[int, int]]) -> Callable[..., dict[int, int]]:
    def settle(self: Ledger, market: int, outcome: int, *, maker: int) -> dict[int, int]:
        paid = original(self, market, outcome, maker=maker)
        for account, micro in paid.items():  # every payout lands in the treasury instead
            self.transfer(account, TREASURY, micro)
        return paid

    return settle


def _misdirected_bonds(request: Request, outcome: int) -> list[tuple[int, int]]:
    """The winner's share of a disputed bond goes to the losing side."""
    wrong = Request(request.disputer, request.outcome, request.bond, request.t, request.proposer)
    return bond_release(wrong if request.disputed else request, outcome)


@pytest.mark.parametrize(
    ("plant", "world"),
    [
        ("double payout", "transparent-priority-fees"),
        ("payout to the wrong account", "commit-reveal-forfeits"),
        ("bond to the wrong side", "optimistic-disputes"),
    ],
)
def test_a_planted_wrong_payout_shows_in_the_audit_but_not_in_conservation(
    plant: str, world: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    match plant:
        case "double payout":
            monkeypatch.setattr(Ledger, "settle", _double_settle(Ledger.settle))
        case "payout to the wrong account":
            monkeypatch.setattr(Ledger, "settle", _misdirected_settle(Ledger.settle))
        case "bond to the wrong side":
            monkeypatch.setattr(exchange_module, "bond_release", _misdirected_bonds)
    run, m = _run(WORLDS[world], SEEDS[0])
    assert _exercised(world, run)
    assert m["ledger.conservation_error"] == 0 and m["ledger.replica_divergence"] == 0
    assert m["ledger.payout_error"] > 0
