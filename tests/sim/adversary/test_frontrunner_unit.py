"""The front-runner's rules on the instant host, transparent order flow, hand-written timings.

Nodes 0-3 are the sequencers, the victims trade from nodes 5 and 6, node 7 is the spy the
front-runner trades from. Messages take :data:`HOP` seconds unless a test says otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from market.accounts import TREASURY, frontrunner_account
from market.types import MICRO, Order, to_micro
from sim.adversary.frontrunner import FrontRunner
from sim.chain.blocks import OrderTx, RevealTx
from sim.host.component import OrderFlow
from sim.host.instant import InstantHost, tiny_world
from sim.orderflow.commit_reveal import CommitReveal
from sim.orderflow.transparent import Transparent
from sim.results.records import OrderRecord
from sim.runs import assembly
from sim.scenario import Scenario

HOP = 0.05
SPY = 7
TRADER_NODES = (5, 6)


def _host(
    flow: type[OrderFlow] = Transparent, latency: Any = HOP, deposit: float = 5.0
) -> tuple[InstantHost, FrontRunner]:
    scenario = Scenario.model_validate(
        {
            "name": "unit",
            "seed": 5,
            "duration_s": 1000.0,
            "network": {"nodes": 8, "topology": "complete", "block_interval_s": 2.0},
            "market": {"count": 1, "liquidity_b": 20.0, "close_s": 900.0, "resolve_s": 950.0},
            "traders": {"informed": 0, "noise": 2, "budget": 100.0},
            "settlement": {"reporters": 4},
            "adversary": {"frontrunner": True, "priority_fee": 0.01},
            "privacy": {"reveal_deadline_s": 30.0, "order_flow": flow.mode, "deposit": deposit},
        }
    )
    world = tiny_world(scenario, reporters=(0, 1, 2, 3), spies=(SPY,), trader_nodes=TRADER_NODES)
    host = InstantHost(scenario, world, latency=latency)
    orderflow = assembly.order_flow(host, scenario, world)
    assert isinstance(orderflow, flow)
    host.plug(orderflow)
    runner = FrontRunner(
        host,
        orderflow,
        node=assembly.frontrunner_node(scenario, world),
        account=frontrunner_account(len(world.traders)),
        priority_fee=scenario.adversary.priority_fee,
        budget=scenario.traders.budget,
    )
    host.plug(runner)
    host.start()
    return host, runner


def _victim(host: InstantHost, trader: int, *, shares: float, fee: float = 0.0) -> OrderRecord:
    order = Order(trader, len(host.records.orders), 0, 1, to_micro(shares), MICRO, to_micro(fee))
    return host.submit(order, node=TRADER_NODES[trader], kind="noise")


def _orders(host: InstantHost, height: int) -> list[Order]:
    block, _ = host.blocks[height]
    return [tx.order for tx in block.txs if isinstance(tx, OrderTx)]


def test_it_sandwiches_a_plaintext_buy_it_reads() -> None:
    host, runner = _host()
    victim = _victim(host, 0, shares=10.0)
    host.run(until=1.0)  # the spy read it at HOP; the front leg reached the sequencers at 2 HOP
    [sandwich] = runner.sandwiches
    front = sandwich.front
    assert victim.frontrun and victim.adv_read_t == HOP
    assert front.order.trader == frontrunner_account(2) and front.node == SPY
    assert front.order.outcome == victim.order.outcome and front.order.is_buy
    host.close_block()
    assert _orders(host, 0) == [front.order, victim.order]  # its priority fee put it first
    assert sandwich.back is None  # the block has not reached the front-runner's node yet
    host.run(until=2.0)
    back = sandwich.back
    assert back is not None and back.order.shares == -front.order.shares
    host.close_block()
    assert _orders(host, 1) == [back.order]
    assert back.status == "executed"
    metrics = runner.metrics()
    assert metrics["mev.extracted"] > 0
    assert metrics["mev.victim_loss"] > 0


def test_it_leaves_sells_alone() -> None:
    host, runner = _host()
    _victim(host, 0, shares=10.0)
    host.run(until=1.0)
    host.close_block()
    host.run(until=2.0)
    host.close_block()  # the first sandwich is done
    count = len(runner.sandwiches)
    sell = Order(0, len(host.records.orders), 0, 1, -to_micro(5.0), 0)
    host.submit(sell, node=TRADER_NODES[0], kind="noise")
    host.run(until=3.0)
    assert len(runner.sandwiches) == count
    assert host.records.orders[-1].order == sell


def test_it_places_no_back_leg_when_its_front_leg_lands_in_a_later_block() -> None:
    # the front-runner's messages take 3 s: the victim executes alone at t = 1
    host, runner = _host(latency=lambda kind, src, _dst: 3.0 if src == SPY else HOP)
    victim = _victim(host, 0, shares=10.0)
    host.run(until=1.0)
    host.close_block()
    assert _orders(host, 0) == [victim.order]
    host.run(until=4.0)
    host.close_block()
    [sandwich] = runner.sandwiches
    assert sandwich.front.status == "executed" and sandwich.front.block == 1
    host.run(until=10.0)
    assert sandwich.back is None


def test_it_places_no_back_leg_when_its_front_leg_lands_after_the_victim_in_the_block() -> None:
    host, runner = _host()
    victim = _victim(host, 0, shares=10.0, fee=0.5)  # outbids the front-runner's 0.01
    host.run(until=1.0)
    host.close_block()
    [sandwich] = runner.sandwiches
    assert _orders(host, 0) == [victim.order, sandwich.front.order]
    host.run(until=2.0)
    assert sandwich.back is None


# -- what it measures, against the LMSR by hand -------------------------------------------------

B = 20.0  # the scenario's liquidity_b; market 0 opens at q = (0, 0)


def _cost(q1: float) -> float:
    """LMSR cost C(q) = b ln(e^{q0/b} + e^{q1/b}) with q0 = 0 (Hanson 2003)."""
    return B * math.log(1.0 + math.exp(q1 / B))


def _price(q1: float) -> float:
    return math.exp(q1 / B) / (1.0 + math.exp(q1 / B))


def test_a_completed_sandwich_extracts_and_costs_the_victim_what_the_lmsr_says() -> None:
    host, runner = _host()
    _victim(host, 0, shares=10.0)
    host.run(until=1.0)
    host.close_block()  # front leg, then victim
    host.run(until=2.0)
    host.close_block()  # back leg
    [sandwich] = runner.sandwiches
    f, v = sandwich.front.order.shares / MICRO, 10.0
    metrics = runner.metrics()
    # bought f, the victim bought v on top, sold f back: the round trip, less its priority fee
    extracted = (_cost(f) - _cost(0)) * -1 + (_cost(f + v) - _cost(v)) - 0.01
    assert metrics["mev.extracted"] == pytest.approx(extracted, abs=1e-4)
    # the victim paid C(f + v) - C(f) instead of C(v) - C(0)
    loss = (_cost(f + v) - _cost(f)) - (_cost(v) - _cost(0))
    assert metrics["mev.victim_loss"] == pytest.approx(loss, abs=1e-4)
    assert (metrics["mev.sandwiches"], metrics["mev.failed_attempts"]) == (1.0, 0.0)


def test_a_failed_attempt_is_valued_at_the_next_price_not_the_last() -> None:
    host, runner = _host()
    victim = _victim(host, 0, shares=10.0, fee=0.5)  # the front leg runs after it
    host.run(until=1.0)
    host.close_block()
    [sandwich] = runner.sandwiches
    f = sandwich.front.order.shares / MICRO
    after = _price(10.0 + f)  # the price once the victim and the front leg have traded
    # the victim sells half back (the front-runner leaves sells alone): the price moves on
    seller = Order(0, len(host.records.orders), 0, 1, -to_micro(5.0), 0)
    host.submit(seller, node=TRADER_NODES[0], kind="noise")
    host.run(until=2.0)
    host.close_block()
    assert host.exchange.prices(0)[1] != pytest.approx(after, abs=1e-3)
    metrics = runner.metrics()
    extracted = -(_cost(10.0 + f) - _cost(10.0)) - 0.01 + f * after
    assert metrics["mev.extracted"] == pytest.approx(extracted, abs=1e-4)
    assert metrics["mev.victim_loss"] == 0.0  # the attack ran after its victim: no harm done
    assert (metrics["mev.sandwiches"], metrics["mev.failed_attempts"]) == (0.0, 1.0)
    assert victim.status == "executed"


def test_a_victim_in_a_later_block_than_the_front_leg_is_still_counted() -> None:
    # the victim's order reaches the sequencers slowly, the spy at once: its front leg is
    # sequenced a block earlier
    host, runner = _host(latency=lambda _k, src, dst: 1.5 if src == 5 and dst != SPY else HOP)
    victim = _victim(host, 0, shares=10.0)
    host.run(until=1.0)
    host.close_block()
    [sandwich] = runner.sandwiches
    assert _orders(host, 0) == [sandwich.front.order]
    host.run(until=2.0)
    host.close_block()
    assert _orders(host, 1) == [victim.order]
    host.run(until=3.0)
    host.close_block()
    assert sandwich.back is not None and sandwich.back.status == "executed"
    f, v = sandwich.front.order.shares / MICRO, 10.0
    metrics = runner.metrics()
    loss = (_cost(f + v) - _cost(f)) - (_cost(v) - _cost(0))
    assert metrics["mev.victim_loss"] == pytest.approx(loss, abs=1e-4)
    assert metrics["mev.sandwiches"] == 1.0


def test_it_cannot_front_run_what_commit_reveal_orders_by_commitment() -> None:
    host, runner = _host(CommitReveal)
    victim = _victim(host, 0, shares=10.0)
    host.run(until=1.0)
    host.close_block()  # the commitment
    host.run(until=2.0)  # the reveal reached the spy: it reads it, but cannot get ahead
    assert victim.adv_read_t == victim.adv_read_t
    assert runner.sandwiches == []


# -- commit-reveal: the free option -------------------------------------------------------------


def _commit_reveal_sandwich(deposit: float) -> tuple[InstantHost, FrontRunner, OrderRecord]:
    host, runner = _host(CommitReveal, deposit=deposit)
    host.close_block(proposer=0)  # nothing to propose yet: no block
    _victim(host, 1, shares=1.0)  # another trader's order gives the chain its first block
    host.run(until=1.0)
    host.close_block()  # block 0 reaches the front-runner: it commits an option per outcome
    host.run(until=2.0)
    host.close_block()  # block 1: the options' commitments (and the first order's reveal)
    victim = _victim(host, 0, shares=10.0)
    for t in (3.0, 4.0, 5.0, 6.0, 7.0, 8.0):
        host.run(until=t)
        host.close_block()
    return host, runner, victim


def test_against_commit_reveal_it_exercises_an_option_committed_before_the_victim() -> None:
    host, runner, victim = _commit_reveal_sandwich(deposit=0.01)
    [sandwich] = [s for s in runner.sandwiches if s.victim is victim]
    front, back = sandwich.front, sandwich.back
    assert back is not None and front.order.outcome == victim.order.outcome
    # reveals execute in commitment order: its option, committed first, ran ahead of the victim
    assert front.status == victim.status == back.status == "executed"
    assert front.block == victim.block < back.block
    block, _ = host.blocks[victim.block]
    reveals = [tx.order for tx in block.txs if isinstance(tx, RevealTx)]
    assert reveals.index(front.order) < reveals.index(victim.order)
    metrics = runner.metrics()
    assert metrics["mev.sandwiches"] >= 1 and metrics["mev.victim_loss"] > 0


def test_the_options_it_lets_lapse_cost_their_deposits() -> None:
    host, runner, _ = _commit_reveal_sandwich(deposit=2.0)
    host.run(until=60.0)  # the unused option (the other outcome) lapses after 30 s
    for t in range(10, 60, 2):
        host.run(until=float(t))
        host.close_block()
    lapsed = [r for r in host.records.orders if r.kind == "frontrunner" and r.reason == "forfeited"]
    assert lapsed
    assert host.exchange.ledger.cash(TREASURY) >= 2 * to_micro(2.0)
    with_lapses = runner.metrics()["mev.extracted"]
    runner.flow.privacy = runner.flow.privacy.model_copy(update={"deposit": 0.0})
    assert with_lapses == pytest.approx(runner.metrics()["mev.extracted"] - 2.0 * len(lapsed))
