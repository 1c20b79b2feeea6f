"""The four order-flow modes, the front-runner and what leaks: small scenarios, real crypto."""

from __future__ import annotations

import copy
import math
from typing import Any

import polars as pl
import pytest

import sim
from market.types import Order, decode_compact, encode_compact
from resultkit.intervals import mean_interval, paired_difference
from sim.runs.runner import build, compute_metrics
from sim.scenario import expand, parse_scenario

pytestmark = pytest.mark.slow  # every test here runs whole simulations, sweeps or the CLI

MODES = ["transparent", "operator", "commit_reveal", "threshold"]


def _scenario(base: dict[str, Any], **sections: dict[str, Any]) -> dict[str, Any]:
    scenario = copy.deepcopy(base)
    for section, keys in sections.items():
        scenario.setdefault(section, {}).update(keys)
    return scenario


def _run(base: dict[str, Any], **sections: dict[str, Any]) -> dict[str, float]:
    return sim.run(_scenario(base, **sections)).metrics()


@pytest.fixture
def one_market(small: dict[str, Any]) -> dict[str, Any]:
    """One market that noise moves, so informed traders keep trading their side: history tells.

    (Kelly bettors trade again only when the price strays from their belief; in a market too
    deep for noise to move they would place one order each.)
    """
    small["market"] |= {"count": 1, "liquidity_b": 100.0}
    small["traders"] |= {"informed": 10, "noise": 10, "signal_draws": 3}
    small["privacy"]["order_flow"] = "threshold"
    return small


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_conserves_money_and_replicas_agree(small: dict[str, Any], mode: str) -> None:
    m = _run(small, privacy={"order_flow": mode}, adversary={"frontrunner": True})
    assert m["ledger.conservation_error"] == 0
    assert m["ledger.replica_divergence"] == 0
    assert m["market.orders_executed"] > 50


def test_privacy_costs_crypto_in_the_expected_order(small: dict[str, Any]) -> None:
    ops = [_run(small, privacy={"order_flow": mode})["cost.crypto_ops"] for mode in MODES]
    transparent, operator, commit_reveal, threshold = ops
    # one ECDH each way per order < that plus a key generation per epoch; commit-reveal adds
    # hashes only, but one on every node that applies a reveal, so it need not stay below the
    # operator's count (its per-node count is tested on the instant host)
    assert transparent < operator < threshold
    assert transparent < commit_reveal < threshold


def test_the_same_world_in_every_mode(small: dict[str, Any]) -> None:
    worlds = []
    for mode in MODES:
        scenario = copy.deepcopy(small)
        scenario["privacy"]["order_flow"] = mode
        tables = sim.run(scenario).tables
        worlds.append(
            (
                tables["edges"].drop("run_id"),
                tables["markets"].select("true_prob", "won"),
                tables["traders"].select("trader", "node", "kind"),
            )
        )
    for edges, markets, traders in worlds[1:]:
        assert edges.equals(worlds[0][0])
        assert markets.equals(worlds[0][1])
        assert traders.equals(worlds[0][2])


def test_transparent_front_running_extracts_value_from_victims(small: dict[str, Any]) -> None:
    result = sim.run(small | {"adversary": {"frontrunner": True, "spy_fraction": 0.2}})
    m = result.metrics()
    assert m["mev.extracted"] > 0
    assert m["mev.victim_loss"] > 0
    assert m["privacy.direction_inference_acc"] > 0.95
    orders = result.tables["orders"]
    assert orders.filter(pl.col("frontrun")).height > 0
    assert orders.filter(pl.col("kind") == "frontrunner").height > 0
    # users' and the adversary's executed orders are counted apart, and add up
    executed = orders.filter(pl.col("status") == "executed")
    own = executed.filter(pl.col("kind") == "frontrunner")
    assert m["adversary.orders_executed"] == own.height > 0
    assert m["market.orders_executed"] == executed.height - own.height
    assert m["adversary.volume"] == pytest.approx(own["cost"].abs().sum())
    assert m["mev.sandwiches"] + m["mev.failed_attempts"] > 0


def test_commit_reveal_front_running_is_a_free_option_only_when_deposits_are_small(
    small: dict[str, Any],
) -> None:
    # the front-runner keeps speculative commitments and reveals one ahead of each victim it
    # reads; the options it does not use lapse and forfeit their deposits
    cheap, dear = [], []
    for seed in (1, 2, 3, 4):
        world = small | {"seed": seed}
        attack = {"frontrunner": True, "spy_fraction": 0.2}
        cheap.append(_run(world, privacy={"order_flow": "commit_reveal", "deposit": 0.01},
                          adversary=attack))  # fmt: skip
        dear.append(_run(world, privacy={"order_flow": "commit_reveal", "deposit": 5.0},
                         adversary=attack))  # fmt: skip
    assert mean_interval(m["mev.extracted"] for m in cheap).low > 0
    assert mean_interval(m["mev.victim_loss"] for m in cheap).low > 0
    assert mean_interval(m["mev.extracted"] for m in dear).high < 0
    assert all(m["privacy.direction_inference_acc"] > 0.9 for m in cheap)  # reveals are read


def test_an_operator_that_front_runs_reads_everything(small: dict[str, Any]) -> None:
    # an honest operator: the spies on the orders' paths see envelopes, never content
    spec = expand(
        parse_scenario(
            _scenario(small, privacy={"order_flow": "operator"}, adversary={"spy_fraction": 0.3})
        )
    )[0]
    honest = build(spec)
    honest.run()
    orders = honest.records.orders
    assert sum(r.adv_seen_t == r.adv_seen_t for r in orders) > len(orders) / 4  # not NaN
    assert all(r.adv_read_t != r.adv_read_t for r in orders)  # NaN: never read
    assert compute_metrics(honest)["privacy.early_decrypt_fraction"] == 0
    rogue = _run(small, privacy={"order_flow": "operator"}, adversary={"operator_frontruns": True})
    assert rogue["privacy.early_decrypt_fraction"] > 0.95
    assert rogue["mev.extracted"] > 0


def test_threshold_below_the_threshold_nothing_is_read_early(one_market: dict[str, Any]) -> None:
    m = _run(one_market, adversary={"frontrunner": True, "colluding_keypers": 2})
    assert m["privacy.early_decrypt_fraction"] == 0
    assert m["mev.extracted"] == 0


def test_threshold_at_the_threshold_decrypts_early_and_front_runs(
    one_market: dict[str, Any],
) -> None:
    m = _run(one_market, adversary={"frontrunner": True, "colluding_keypers": 3})
    assert m["privacy.early_decrypt_fraction"] == 1
    assert m["mev.extracted"] > 0
    assert m["privacy.direction_inference_acc"] > 0.95


def test_address_reuse_gives_direction_away_and_unlinkable_senders_hide_it(
    one_market: dict[str, Any],
) -> None:
    linked, unlinked = [], []
    for seed in (1, 2, 3, 4, 5):
        world = one_market | {"seed": seed}
        linked.append(_run(world, adversary={"spy_fraction": 0.0}))
        unlinked.append(
            _run(world, adversary={"spy_fraction": 0.0}, privacy={"unlinkable_senders": True})
        )
    name = "privacy.direction_inference_advantage"
    # over five worlds: a reused address gives direction away, a one-time address does not
    assert mean_interval(m[name] for m in linked).low > 0.05
    hidden = mean_interval(m[name] for m in unlinked)
    assert hidden.low > -0.08 and hidden.high < 0.08, hidden
    gain = paired_difference(a[name] - b[name] for a, b in zip(linked, unlinked, strict=True))
    assert gain.low > 0, gain
    mi = paired_difference(
        a["privacy.signal_mi_bits"] - b["privacy.signal_mi_bits"]
        for a, b in zip(linked, unlinked, strict=True)
    )
    assert mi.low > 0, mi


def test_unpadded_ciphertext_sizes_leak_and_padding_removes_it(one_market: dict[str, Any]) -> None:
    hidden = {"spy_fraction": 0.0}
    padded = _run(one_market, adversary=hidden, privacy={"unlinkable_senders": True})
    bare = _run(
        one_market, adversary=hidden, privacy={"unlinkable_senders": True, "pad_to_bytes": 0}
    )
    assert bare["privacy.direction_inference_advantage"] > 0.2
    assert bare["privacy.direction_inference_advantage"] > (
        padded["privacy.direction_inference_advantage"] + 0.2
    )


def test_threshold_orders_clear_in_batches_at_one_price(one_market: dict[str, Any]) -> None:
    orders = sim.run(one_market).tables["orders"].filter(pl.col("status") == "executed")
    assert orders["batch_id"].null_count() == 0
    reference = orders.group_by("batch_id", "outcome").agg(
        uniform=pl.col("price").sort_by("shares").last()
    )
    # one uniform price per outcome and batch, up to each order's rounding to a micro-unit
    gaps = orders.join(reference, on=["batch_id", "outcome"]).select(
        ((pl.col("price") - pl.col("uniform")).abs() * pl.col("shares")).alias("gap")
    )
    assert gaps["gap"].max() <= 2e-6
    assert reference.height < orders.height  # some batches really did hold several orders
    assert orders["wire_bytes"].n_unique() == 1  # padded: every ciphertext the same size


def test_transparent_metrics_that_do_not_apply_are_nan(small: dict[str, Any]) -> None:
    m = _run(small)
    assert math.isnan(m["privacy.early_decrypt_fraction"])
    assert "mev.extracted" not in m  # no front-runner in the run


@pytest.mark.parametrize(
    "order",
    [
        Order(1, 2, 0, 0, 5_000_000, 700_000),
        Order(70_000, 2**40, 3, 1, -123_456_789, 990_000, 10_000),
    ],
)
def test_compact_encoding_round_trips_and_omits_zero_fields(order: Order) -> None:
    data = encode_compact(order)
    assert decode_compact(data) == order
    assert len(encode_compact(Order(1, 2, 0, 0, 1, 1))) < len(
        encode_compact(Order(1, 2, 0, 1, 1, 1))
    )


def test_a_batch_without_enough_shares_is_never_executed_in_plaintext(
    one_market: dict[str, Any],
) -> None:
    one_market["network"] |= {"loss": 0.45, "degree": 3}
    result = sim.run(one_market)
    orders = result.tables["orders"]
    failed = orders.filter(pl.col("reason") == "undecryptable")
    assert failed.height > 0  # shares lost on the way to the aggregator: those epochs fail
    assert failed["t_executed"].null_count() == failed.height
    assert result.metric("privacy.failed_batch_fraction") > 0
    assert result.metric("ledger.conservation_error") == 0
