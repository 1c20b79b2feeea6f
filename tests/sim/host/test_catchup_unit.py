"""Catch-up's rules on the instant host: gaps found, blocks fetched by height, retries, polls.

Blocks are committed by hand (each closes market 0 again, which changes nothing) and the
latency function loses exactly the messages a test names, so every timing below is known.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sim.chain.blocks import Block, CloseTx
from sim.host.catchup import FETCH_RETRY_S, SYNC_INTERVAL_S, TIP_FIRST_PUSH, TIP_PUSH_WINDOW
from sim.host.instant import InstantHost, tiny_world
from sim.scenario import Scenario

HOP = 0.1
BLOCK_S = 2.0
REPLICAS = (0, 1, 2, 3)
LAGGARD = 3

Lose = Callable[[str, int, int], bool]


def _host(lose: Lose) -> InstantHost:
    scenario = Scenario.model_validate(
        {
            "name": "unit",
            "seed": 3,
            "duration_s": 1000.0,
            "network": {"nodes": 6, "topology": "complete", "block_interval_s": BLOCK_S},
            "market": {"count": 1, "close_s": 5.0, "resolve_s": 6.0},
            "traders": {"informed": 0, "noise": 1},
            "settlement": {"reporters": len(REPLICAS)},
        }
    )
    world = tiny_world(scenario, reporters=REPLICAS, trader_nodes=(5,))

    def latency(kind: str, src: int, dst: int) -> float | None:
        return None if lose(kind, src, dst) else HOP

    host = InstantHost(scenario, world, latency=latency)
    host.start(catch_up=True)
    return host


def _block(host: InstantHost, proposer: int = 0) -> Block:
    block = Block(len(host.blocks), host.now, proposer, (CloseTx(0),))
    host.commit(block)
    return block


def _applied_at(host: InstantHost, node: int, height: int, *, until: float) -> float:
    """The first time on the host's clock when ``node``'s replica has applied ``height``."""
    step = HOP / 2
    while host.now < until:
        if host.replicas[node].next_height > height:
            return host.now
        host.run(until=host.now + step)
    return float("inf")


def _applies_exactly_at(host: InstantHost, node: int, height: int, t: float) -> bool:
    """``node``'s replica applies ``height`` at ``t``: not a nanosecond before, and at ``t``."""
    host.run(until=t - 1e-9)
    before = host.replicas[node].next_height > height
    host.run(until=t)
    return not before and host.replicas[node].next_height > height


def test_a_later_block_reveals_the_gap_and_the_missing_one_is_fetched() -> None:
    host = _host(lambda kind, _s, dst: kind == "block" and dst == LAGGARD and host.now < 1.0)
    _block(host)  # block 0 never reaches the laggard
    host.run(until=1.0)
    assert host.replicas[LAGGARD].next_height == 0
    _block(host)  # block 1 arrives at 1.1: the laggard learns height 1 exists
    # it waits one block interval, then asks a holder (one hop) who answers (one hop)
    assert _applies_exactly_at(host, LAGGARD, 1, 1.0 + HOP + BLOCK_S + 2 * HOP)
    assert host.net.stats.sent["fetch"] == 2  # a request and the block, no more
    assert host.replicas[LAGGARD].exchange.state_hash() == host.exchange.state_hash()


def test_a_fetch_that_is_lost_is_retried_with_another_holder() -> None:
    asked: list[int] = []

    def lose(kind: str, src: int, dst: int) -> bool:
        if kind == "block" and dst == LAGGARD and host.now < 1.0:
            return True
        if kind == "fetch" and src == LAGGARD:
            asked.append(dst)
            return len(asked) == 1  # the first holder asked never hears the request
        return False

    host = _host(lose)
    _block(host)
    host.run(until=1.0)
    _block(host)
    assert _applies_exactly_at(host, LAGGARD, 1, 1.0 + HOP + BLOCK_S + FETCH_RETRY_S + 2 * HOP)
    assert len(asked) == 2 and asked[0] != asked[1]  # the retry rotates to another holder


def test_without_a_later_block_the_pushed_tip_reveals_the_gap() -> None:
    host = _host(lambda kind, _s, dst: kind == "block" and dst == LAGGARD)
    _block(host)  # the last block: nothing later will reveal it, but its proposer pushes the tip
    pushed = TIP_FIRST_PUSH * BLOCK_S + HOP
    # the notice arrives, the laggard waits a grace, asks a holder, who answers
    assert _applies_exactly_at(host, LAGGARD, 0, pushed + BLOCK_S + 2 * HOP)
    assert host.catch_up is not None
    assert host.catch_up.caught_up == [(LAGGARD, pytest.approx(pushed + BLOCK_S + 2 * HOP))]


def test_the_tip_is_pushed_once_to_each_replica_and_only_while_the_chain_stays_quiet() -> None:
    host = _host(lambda _kind, _s, _dst: False)
    _block(host)
    host.run(until=TIP_FIRST_PUSH * BLOCK_S + 1.0)
    once = host.net.stats.sent["tip"]
    assert once == 2 * (len(REPLICAS) - 1)  # a notice to each other replica, and its ack
    host.run(until=TIP_PUSH_WINDOW * BLOCK_S + 100.0)
    assert host.net.stats.sent["tip"] == once  # every notice acknowledged: none sent again
    quiet = host.net.stats.sent["tip"]
    gap = TIP_FIRST_PUSH * BLOCK_S / 2
    for _ in range(5):  # blocks closer together than the first push: each is its own notice
        _block(host)
        host.run(until=host.now + gap)
    host.run(until=host.now + gap + 0.5)
    assert host.net.stats.sent["tip"] == quiet + once  # only the last one was pushed, once
    assert host.catch_up is not None and host.catch_up.caught_up == []  # nobody lagged


def test_a_lost_notice_is_sent_again_after_a_doubling_wait_until_acknowledged() -> None:
    notices: list[float] = []

    def lose(kind: str, src: int, dst: int) -> bool:
        if kind == "tip" and dst == LAGGARD:
            notices.append(host.now)
            return len(notices) <= 2  # the first two notices are lost
        return kind == "block" and dst == LAGGARD

    host = _host(lose)
    _block(host)
    first = TIP_FIRST_PUSH * BLOCK_S
    third = first + first + 2 * first  # pushes at 1, 2 and 4 times the first wait
    assert _applies_exactly_at(host, LAGGARD, 0, third + HOP + BLOCK_S + 2 * HOP)
    host.run(until=TIP_PUSH_WINDOW * BLOCK_S + 100.0)
    assert notices == pytest.approx([first, 2 * first, 4 * first])  # acked: no fourth


def test_a_replica_that_never_acknowledges_is_left_to_the_polls_after_the_window() -> None:
    notices: list[float] = []

    def lose(kind: str, src: int, dst: int) -> bool:
        if kind == "tip" and dst == LAGGARD:
            notices.append(host.now)
            return True
        return False

    host = _host(lose)
    _block(host)
    host.run(until=10 * TIP_PUSH_WINDOW * BLOCK_S)
    first = TIP_FIRST_PUSH * BLOCK_S
    doubling = [first * 2**k for k in range(8) if first * 2**k <= TIP_PUSH_WINDOW * BLOCK_S]
    assert notices == pytest.approx(doubling)  # 2, 4, 8, 16, 32 s after the block, then no more


def test_without_a_later_block_or_a_pushed_tip_the_status_poll_reveals_the_gap() -> None:
    host = _host(lambda kind, _s, dst: kind in ("block", "tip") and dst == LAGGARD)
    _block(host)  # the last block: nothing later will reveal it
    t = _applied_at(host, LAGGARD, 0, until=3 * SYNC_INTERVAL_S)
    # some poll reaches a holder and comes back, then the fetch takes a grace and two hops
    assert SYNC_INTERVAL_S < t <= 2 * SYNC_INTERVAL_S + BLOCK_S + 4 * HOP
    assert host.net.stats.sent["sync"] > 0


def test_a_crashed_holder_is_not_asked() -> None:
    asked: list[int] = []

    def lose(kind: str, src: int, dst: int) -> bool:
        if kind == "fetch" and src == LAGGARD:
            asked.append(dst)
        return kind == "block" and dst == LAGGARD and host.now < 1.0

    host = _host(lose)
    _block(host)
    host.run(until=1.0)
    host.net.crash(0)
    host.net.crash(1)
    _block(host, proposer=2)
    _applied_at(host, LAGGARD, 1, until=10.0)
    assert asked and set(asked) == {2}


def test_a_replica_that_holds_every_block_fetches_nothing() -> None:
    host = _host(lambda *_: False)
    for _ in range(3):
        _block(host)
        host.run(until=host.now + BLOCK_S)
    host.run(until=2 * SYNC_INTERVAL_S)
    assert "fetch" not in host.net.stats.sent
    assert all(r.next_height == 3 for r in host.replicas.values())
