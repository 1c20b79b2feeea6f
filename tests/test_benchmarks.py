"""The benchmarks measure what they say: floors counted as deployed, ratios from the same run.

Figures are not checked (they depend on the machine); the structure that makes them honest is.
"""

from __future__ import annotations

import ast
import inspect
import random
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks import __main__ as bench_main
from benchmarks import crypto_floor, fl
from benchmarks.peers import flower_fedavg
from market.crypto import CryptoMeter
from sim.federated.training import Session, run_round

TINY = replace(
    fl.SCENARIO,
    clients=8,
    features=3,
    samples_per_client=20,
    rounds=3,
    client_fraction=1.0,
    dropout=0.25,
)


@pytest.mark.slow
def test_every_crypto_figure_is_measured_on_both_sides_where_it_has_two() -> None:
    figures = crypto_floor.measure(repeats=3)
    assert all(seconds > 0 for seconds in figures.values())
    for op in ("sender_prove", "sender_verify", "decryption_share", "share_verify", "dkg"):
        assert f"floor.{op}" in figures and f"ours.{op}" in figures


def test_the_floor_agrees_each_pair_key_at_both_ends_once() -> None:
    agreed = fl.AgreedEnds()
    holders, epochs = [0, 1, 2, 3], dict.fromkeys(range(4), 0)
    pairs = 4 * 3 // 2
    # a channel key and a mask key per pair, each agreed by both of its ends
    assert agreed.agree(holders, epochs) == 2 * 2 * pairs
    assert agreed.agree(holders, epochs) == 0  # reused across rounds
    # client 0's mask key rotated: its three mask keys are agreed again, at both ends
    assert agreed.agree(holders, epochs | {0: 1}) == 2 * 3


def test_the_floor_counts_what_the_simulator_meters_round_by_round() -> None:
    """`make bench`'s floor and the run's `cost.crypto_ops` count the same work, kind by kind."""
    data, _ = fl.world(TINY, seed=3)
    meter = CryptoMeter()
    session = Session.start(
        TINY, data, rng=np.random.default_rng(3), randbytes=random.Random(3).randbytes,
        meter=meter,
    )  # fmt: skip
    params, agreed = session.model.init(session.rng), fl.AgreedEnds()
    dim = session.strategy.payload_size(session.model.size)
    dropped_rounds = 0
    for r in range(TINY.rounds):
        epochs = {c: k.epoch for c, k in session.keys.items()}
        before = dict(meter.ops)
        params, outcome, _ = run_round(session, params, r)
        work = fl.secure_work(outcome, epochs, agreed, dim=dim)
        assert work is not None, "the tiny world's rounds all complete"
        spent = {kind: n - before.get(kind, 0) for kind, n in meter.ops.items()}
        assert {k: n for k, n in spent.items() if n} == {k: n for k, n in work.ops().items() if n}
        dropped_rounds += work.dropped > 0
    assert dropped_rounds >= 1  # the rotation and the server's re-agreement were exercised


def test_the_crypto_floor_times_every_part_of_the_work() -> None:
    work = fl.SecureWork(
        agreements=12, server_agreements=2, keygens=1, holders=4, survivors=2, dropped=1, dim=5
    )
    floor = fl.time_crypto_floor(work, fl.FloorKeys.make(), random.Random(0).randbytes)
    assert floor.keys_s > 0 and floor.shares_s > 0 and floor.masks_s > 0
    assert floor.total_s == floor.keys_s + floor.shares_s + floor.masks_s


def test_a_ratio_is_each_round_over_its_own_floor() -> None:
    rng = np.random.default_rng(0)
    subject, floor = rng.uniform(1, 2, 9), rng.uniform(1, 2, 9)
    ratio = fl.Paired(subject, floor).ratio()
    assert ratio == pytest.approx(float(np.median(subject / floor)))
    # scale-free: a remembered constant on either side would break this
    assert fl.Paired(7 * subject, 7 * floor).ratio() == pytest.approx(ratio)
    assert fl.Paired(subject, 2 * floor).ratio() == pytest.approx(ratio / 2)


def _float_literals(source: str) -> list[float]:
    tree = ast.parse(textwrap.dedent(source))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, float)
    ]


def test_no_remembered_figure_enters_the_ratios() -> None:
    module = ast.parse(Path(fl.__file__).read_text())
    constants = {
        target.id: node.value.value
        for node in module.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, float)
    }
    # the targets are the only float constants of the module, and the ratio code has none
    assert constants == {"PLAIN_TARGET": 2.0, "SECURE_TARGET": 1.5}
    for code in (fl.measure, fl.Paired.ratio, fl.timed_rounds):
        assert _float_literals(inspect.getsource(code)) == [], code.__qualname__
    # the peer's ratios divide same-run medians: no float there but the millisecond scale
    for code in (flower_fedavg.main, flower_fedavg._plain, flower_fedavg._secure):
        assert set(_float_literals(inspect.getsource(code))) <= {1e3}, code.__qualname__


@pytest.mark.skipif(flower_fedavg.FLWR_AVAILABLE, reason="flwr is installed here")
def test_the_flower_peer_says_what_it_needs_and_stays_out_of_make_bench() -> None:
    with pytest.raises(SystemExit, match=r"pip install 'flwr\[simulation\]'"):
        flower_fedavg.main([])
    assert "flower" not in bench_main.BENCHMARKS
