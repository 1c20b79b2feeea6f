"""The spies' first-spy estimator: known answers, and what it finds under each propagation."""

from __future__ import annotations

import copy
import math
import random
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from simpy import Environment

import sim
from resultkit.intervals import Interval, mean_interval, paired_difference
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


def test_the_first_stem_spy_variant_only_uses_what_spies_received_on_a_stem() -> None:
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
    # Fanti et al.: over the honest senders 1, 2, 3; node 3 is never named and scores 0
    assert precision == (1 / 1 + 1 / 2 + 0) / 3  # D(1) = 1 of 1, D(2) = 1 of 2, D(3) = 0
    assert recall == (1 / 2 + 1 / 1 + 0) / 3  # R(1) = 1 of 2, R(2) = 1 of 1, R(3) = 0 of 1
    assert sender_scores([1, 2], [2, 1], spies=frozenset({9})) == (0.0, 0.0)
    # recall is averaged per node, not pooled over orders (pooled it would be 3 / 4)
    assert sender_scores([1, 1, 1, 2], [1, 1, 1, -1], spies=frozenset({9}))[1] == (1 + 0) / 2
    # naming nobody is not undefined: every honest node scores 0
    assert sender_scores([1, 2], [-1, -1], spies=frozenset({9})) == (0.0, 0.0)


def test_with_one_order_per_node_the_scores_are_the_papers_formulas() -> None:
    # the paper's setting: each honest node sends one transaction, so recall is the share of
    # transactions mapped to their sender and precision averages 1{correct} / |mapped to v|
    origins, named = [0, 1, 2, 3], [0, 0, 2, 2]
    precision, recall = sender_scores(origins, named, spies=frozenset({7}))
    assert recall == 2 / 4
    assert precision == (1 / 2 + 0 + 1 / 2 + 0) / 4


def _brute_force(
    origins: list[int], named: list[int], spies: frozenset[int]
) -> tuple[float, float]:
    """The two averages written out node by node, from the definitions."""
    orders = [(o, n) for o, n in zip(origins, named, strict=True) if o not in spies]
    nodes = sorted({o for o, _ in orders})
    precisions, recalls = [], []
    for v in nodes:
        to_v = [o for o, n in orders if n == v]
        mine = [n for o, n in orders if o == v]
        precisions.append(sum(o == v for o in to_v) / len(to_v) if to_v else 0.0)
        recalls.append(sum(n == v for n in mine) / len(mine))
    return sum(precisions) / len(nodes), sum(recalls) / len(nodes)


@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(-1, 7)), min_size=1, max_size=40),
    st.frozensets(st.integers(0, 7), min_size=1, max_size=3),
)
def test_the_scores_match_the_definitions_written_out(
    pairs: list[tuple[int, int]], spies: frozenset[int]
) -> None:
    origins, named = [o for o, _ in pairs], [n for _, n in pairs]
    if all(o in spies for o in origins):
        return
    got = sender_scores(origins, named, spies=spies)
    want = _brute_force(origins, named, spies)
    assert got == pytest.approx(want, abs=1e-12)


def test_with_no_spies_the_scores_are_nan_not_zero() -> None:
    precision, recall = sender_scores([1, 2, 3], [1, 2, 3], spies=frozenset())
    assert math.isnan(precision) and math.isnan(recall)


# --- whole runs -------------------------------------------------------------------------------


def _scenario(
    propagation: str, *, spy_fraction: float = 0.1, seed: int = 2, delay_ms: float = 2000.0
) -> dict[str, Any]:
    scenario = copy.deepcopy(SMALL) | {"seed": seed}
    scenario["network"] |= {
        "nodes": 60,
        "degree": 4,
        "propagation": propagation,
        "diffusion_delay_ms": delay_ms,
    }
    scenario["traders"] |= {"informed": 10, "noise": 20}
    scenario["adversary"] = {"spy_fraction": spy_fraction}
    return scenario


WORLDS = (1, 2, 3, 4, 5, 6)
SPY_FRACTION = 0.1


@pytest.fixture(scope="module")
def worlds() -> dict[str, list[RunResult]]:
    """Every world (seed) once per setting: the claims below hold over all of them."""
    settings = {
        "diffusion": ("diffusion", 2000.0),
        "dandelion": ("dandelion", 2000.0),
        "diffusion-at-once": ("diffusion", 0.0),  # nodes forward without a delay
    }
    return {
        name: [sim.run(_scenario(p, seed=seed, delay_ms=d)) for seed in WORLDS]
        for name, (p, d) in settings.items()
    }


@pytest.fixture(scope="module")
def runs(worlds: dict[str, list[RunResult]]) -> dict[str, RunResult]:
    """One world of each propagation, for the checks of a single run's tables."""
    return {p: results[1] for p, results in worlds.items()}


def _interval(results: list[RunResult], name: str) -> Interval:
    return mean_interval(r.metric(name) for r in results)


@pytest.mark.slow
def test_first_spy_beats_the_spy_fraction_under_diffusion(
    worlds: dict[str, list[RunResult]],
) -> None:
    recall = _interval(worlds["diffusion"], "privacy.sender_recall")
    precision = _interval(worlds["diffusion"], "privacy.sender_precision")
    # a spy next to a sender often hears it first: recall well above the spies' share of nodes
    # (guessing among the 54 honest nodes would score about 1/54)
    assert recall.low > 1.5 * SPY_FRACTION, recall
    assert precision.low > 0.5 * SPY_FRACTION, precision
    m = worlds["diffusion"][0].metrics()
    assert "privacy.sender_recall_first_stem_spy" not in m  # no stems: the variant does not apply


@pytest.mark.slow
def test_forwarding_delays_weaken_the_first_spy(worlds: dict[str, list[RunResult]]) -> None:
    # with latencies alone each origin's first spy is fixed; random delays make it vary
    at_once, delayed = worlds["diffusion-at-once"], worlds["diffusion"]
    name = "privacy.sender_recall"
    gain = paired_difference(
        a.metric(name) - b.metric(name) for a, b in zip(at_once, delayed, strict=True)
    )
    assert gain.low > 0, gain


@pytest.mark.slow
def test_dandelion_brings_recall_down_to_about_the_spy_fraction(
    worlds: dict[str, list[RunResult]],
) -> None:
    diffusion, dandelion = worlds["diffusion"], worlds["dandelion"]
    recall = _interval(dandelion, "privacy.sender_recall")
    assert recall.low > 0.0 and recall.high < 2 * SPY_FRACTION, recall
    for name in ("privacy.sender_recall", "privacy.sender_precision"):
        gain = paired_difference(
            a.metric(name) - b.metric(name) for a, b in zip(diffusion, dandelion, strict=True)
        )
        assert gain.low > 0, (name, gain)  # the same world leaks less under Dandelion
    stem = _interval(dandelion, "privacy.sender_recall_first_stem_spy")
    assert stem.low > 0.0 and stem.high <= 2 * SPY_FRACTION, stem


@pytest.mark.slow
def test_the_table_counts_each_traders_linked_orders(runs: dict[str, RunResult]) -> None:
    for name, result in runs.items():
        table = result.tables["sender_estimates"]
        orders = result.tables["orders"]
        assert table.height == 30 and table["orders"].sum() == orders.height
        assert (table["attributed"] <= table["seen"]).all()
        assert (table["seen"] <= table["orders"]).all()
        # every trader is honest and sends from its own node: recall is its per-trader mean
        per_trader = table.filter(pl.col("orders") > 0)
        recall = (per_trader["attributed"] / per_trader["orders"]).mean()
        assert recall == pytest.approx(result.metric("privacy.sender_recall")), name

    def partly_linked(result: RunResult) -> pl.DataFrame:
        table = result.tables["sender_estimates"]
        return table.filter((pl.col("attributed") > 0) & (pl.col("attributed") < pl.col("seen")))

    # fixed link latencies and no delay: diffusion links every order of a trader, or none
    at_once = runs["diffusion-at-once"].tables["sender_estimates"]
    linked = at_once.filter(pl.col("attributed") > 0)
    assert linked.height > 0 and (linked["attributed"] == linked["seen"]).all()
    # random forwarding delays, or stems reshuffled every epoch: some traders are linked only
    # some of the time
    assert partly_linked(runs["diffusion"]).height > 0
    assert partly_linked(runs["dandelion"]).height > 0


@pytest.mark.slow
def test_with_no_spies_nobody_is_named_and_the_metrics_are_nan() -> None:
    result = sim.run(_scenario("dandelion", spy_fraction=0.0))
    m = result.metrics()
    for name in ("sender_precision", "sender_recall", "sender_recall_first_stem_spy"):
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
