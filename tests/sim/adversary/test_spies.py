"""The spies' first-spy estimator: known answers, and what it finds under each propagation."""

from __future__ import annotations

import copy
import math
import random
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from simpy import Environment

import sim
from sim.adversary.spies import first_spy, first_stem_spy, sender_scores
from sim.net.fastflood import EventSpread, LatencyGraph, diffuse
from sim.net.network import Flood, SimNetwork, Topology
from sim.runs.runner import RunResult
from tests.conftest import SMALL
from tests.sim.net.probe import Probe

# a line 0-1-2-3-4 with a slow shortcut 0-3: from 0, arrivals 0, .01, .02, .03, .04
LINE = Topology(
    (
        ((1, 0.01), (3, 0.1)),
        ((0, 0.01), (2, 0.01)),
        ((1, 0.01), (3, 0.01)),
        ((0, 0.1), (2, 0.01), (4, 0.01)),
        ((3, 0.01),),
    )
)


def _network() -> SimNetwork:
    return SimNetwork(Environment(), LINE, loss=0.0, rng=random.Random(1))


def _spies(*nodes: int) -> np.ndarray:
    return np.array(sorted(nodes), dtype=np.int64)


@pytest.mark.parametrize("computed", [False, True])
def test_first_spy_names_the_node_the_first_spy_heard_it_from(computed: bool) -> None:
    net = _network()
    if computed:
        flood: Flood = diffuse(net, LatencyGraph(LINE), 0, Probe("o", 1), to=lambda *_: None)
    else:
        flood = net.flood(0, Probe("o", 1), to=lambda *_: None)
    net.env.run()
    assert first_spy(flood, _spies(3, 4), until=1.0) == (True, 2)  # 3 hears it from 2 at .03
    assert first_spy(flood, _spies(1, 4), until=1.0) == (True, 0)  # a neighbour of the origin
    assert first_spy(flood, _spies(3, 4), until=0.025) == (False, -1)  # after the run's end
    assert first_spy(flood, _spies(), until=1.0) == (False, -1)


def test_the_per_edge_variant_only_uses_what_spies_received_on_a_stem() -> None:
    net = _network()
    spread = EventSpread(net, 0, Probe("o", 1), to=lambda *_: None)
    env = net.env
    spread.reach(0, -1)
    env.timeout(0.01).callbacks.append(lambda _e: spread.reach(1, 0, stem=True))
    env.timeout(0.02).callbacks.append(lambda _e: spread.reach(2, 1, stem=True))
    env.timeout(0.03).callbacks.append(lambda _e: spread.fluff(2))  # 2 diffuses it
    env.run()
    assert spread.stem_from == {1: 0, 2: 1}
    assert first_stem_spy(spread, frozenset({2, 4}), until=1.0) == 1
    assert first_stem_spy(spread, frozenset({1, 2}), until=1.0) == 0
    assert first_stem_spy(spread, frozenset({3, 4}), until=1.0) == -1  # saw only the diffusion
    assert first_spy(spread, _spies(3, 4), until=1.0) == (True, 2)  # first-spy still names one
    assert first_stem_spy(spread, frozenset({2}), until=0.015) == -1


def test_precision_and_recall_by_hand() -> None:
    # orders from 1, 1, 2, 3 and one from the spy 9; named 1, 2, 2, nobody, 9's neighbour 5
    origins, named = [1, 1, 2, 3, 9], [1, 2, 2, -1, 5]
    precision, recall = sender_scores(origins, named, spies=frozenset({9}))
    assert recall == 2 / 4  # the spy's own order does not count
    assert precision == (1 / 1 + 1 / 2) / 2  # node 1: 1 of 1 right, node 2: 1 of 2 right
    assert sender_scores([1, 2], [2, 1], spies=frozenset({9})) == (0.0, 0.0)
    saw_nothing = sender_scores([1, 2], [-1, -1], spies=frozenset({9}))
    assert math.isnan(saw_nothing[0]) and saw_nothing[1] == 0.0  # named nobody: no precision


def test_with_no_spies_the_scores_are_nan_not_zero() -> None:
    precision, recall = sender_scores([1, 2, 3], [1, 2, 3], spies=frozenset())
    assert math.isnan(precision) and math.isnan(recall)


# --- whole runs -------------------------------------------------------------------------------


def _scenario(propagation: str, *, spy_fraction: float = 0.1, seed: int = 2) -> dict[str, Any]:
    scenario = copy.deepcopy(SMALL) | {"seed": seed}
    scenario["network"] |= {"nodes": 60, "degree": 4, "propagation": propagation}
    scenario["traders"] |= {"informed": 10, "noise": 20}
    scenario["adversary"] = {"spy_fraction": spy_fraction}
    return scenario


@pytest.fixture(scope="module")
def runs() -> dict[str, RunResult]:
    return {p: sim.run(_scenario(p)) for p in ("diffusion", "dandelion")}


@pytest.mark.slow
def test_first_spy_beats_the_spy_fraction_under_diffusion(runs: dict[str, RunResult]) -> None:
    m = runs["diffusion"].metrics()
    assert m["privacy.sender_recall"] > 2.5 * 0.1
    assert m["privacy.sender_precision"] > 0.3
    assert "privacy.sender_recall_per_edge" not in m  # no stems: the variant does not apply


@pytest.mark.slow
def test_dandelion_brings_recall_down_to_about_the_spy_fraction(
    runs: dict[str, RunResult],
) -> None:
    diffusion, dandelion = runs["diffusion"].metrics(), runs["dandelion"].metrics()
    assert 0.0 < dandelion["privacy.sender_recall"] < 2 * 0.1
    assert dandelion["privacy.sender_recall"] < diffusion["privacy.sender_recall"] / 2
    assert dandelion["privacy.sender_precision"] < diffusion["privacy.sender_precision"] / 2
    assert 0.0 < dandelion["privacy.sender_recall_per_edge"] <= 2 * 0.1


@pytest.mark.slow
def test_the_table_counts_each_traders_linked_orders(runs: dict[str, RunResult]) -> None:
    for result in runs.values():
        table = result.tables["sender_estimates"]
        orders = result.tables["orders"]
        assert table.height == 30 and table["orders"].sum() == orders.height
        assert (table["attributed"] <= table["seen"]).all()
        assert (table["seen"] <= table["orders"]).all()
        recall = table["attributed"].sum() / table["orders"].sum()  # every trader is honest
        assert recall == pytest.approx(result.metric("privacy.sender_recall"))
    # fixed link latencies: diffusion links every order of a trader, or none of them
    diffusion = runs["diffusion"].tables["sender_estimates"]
    linked = diffusion.filter(pl.col("attributed") > 0)
    assert linked.height > 0 and (linked["attributed"] == linked["seen"]).all()
    # stems are reshuffled every epoch: some traders are linked only some of the time
    dandelion = runs["dandelion"].tables["sender_estimates"]
    partly = dandelion.filter((pl.col("attributed") > 0) & (pl.col("attributed") < pl.col("seen")))
    assert partly.height > 0


@pytest.mark.slow
def test_with_no_spies_nobody_is_named_and_the_metrics_are_nan() -> None:
    result = sim.run(_scenario("dandelion", spy_fraction=0.0))
    m = result.metrics()
    for name in ("sender_precision", "sender_recall", "sender_recall_per_edge"):
        assert math.isnan(m[f"privacy.{name}"])
    table = result.tables["sender_estimates"]
    assert table["orders"].sum() > 0
    assert table["attributed"].null_count() == table["seen"].null_count() == table.height


@pytest.mark.slow
def test_the_same_seed_gives_the_same_spies_and_estimates(runs: dict[str, RunResult]) -> None:
    again = sim.run(_scenario("dandelion"))
    first = runs["dandelion"]
    for name in ("sender_estimates", "nodes"):
        assert_frame_equal(again.tables[name], first.tables[name], check_exact=True)
    keys = [k for k in first.metrics() if k.startswith("privacy.sender")]
    assert [again.metric(k) for k in keys] == [first.metric(k) for k in keys]


@pytest.mark.slow
def test_orders_that_never_diffuse_are_not_judged(small: dict[str, Any]) -> None:
    small["privacy"]["order_flow"] = "operator"
    small["adversary"] = {"spy_fraction": 0.2}
    metrics = sim.run(small).metrics()
    assert math.isnan(metrics["privacy.sender_recall"])
    assert math.isnan(metrics["privacy.sender_precision"])
