"""Settlement runs: BFT and optimistic, under Byzantine and crashed reporters, loss, partitions.

Every run here also passes :func:`audit`: the canonical chain replayed from genesis with an
independent keyring (public keys recomputed from the secrets, no shared cache) reaches the same
state, every market is paid out at most once and only on a certificate that verifies (or an
undisputed proposal whose liveness ended), and no bond leaves escrow before its market is final.
"""

from __future__ import annotations

import copy
import math
import random
from functools import partial
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import sim as api
from market.accounts import BOND_ESCROW, TREASURY, reporter_account
from market.crypto import base_mul
from market.exchange import Exchange
from market.types import MICRO
from sim.chain.blocks import SettleTx, apply_tx
from sim.runs.runner import build, compute_metrics
from sim.runs.simulation import Simulation
from sim.scenario import expand, parse_scenario
from sim.settlement import SettlementProtocol
from sim.settlement.rules import Keyring, certificate_ok, settlement_ok

pytestmark = pytest.mark.slow  # every test here runs whole simulations, sweeps or the CLI

RESOLVE = 6000.0
TIMEOUT = 30.0


def _simulate(scenario: dict[str, Any]) -> tuple[Simulation, dict[str, float], SettlementProtocol]:
    spec = expand(parse_scenario(scenario))[0]
    run = build(spec)
    run.run()
    metrics = compute_metrics(run)
    protocol = next(c for c in run.components if isinstance(c, SettlementProtocol))
    return run, metrics, protocol


def final_outcomes(exchange: Exchange) -> dict[int, int]:
    """Each settled market's outcome, from the steps that settled it."""
    out = {}
    for step in exchange.applied:
        if step.kind == "certificate":
            out[step.market] = step.outcome
        elif step.kind == "expire":
            out[step.market] = exchange.requests[step.market][-1].outcome
    return out


def audit(run: Simulation, protocol: SettlementProtocol) -> list[bytes]:
    """Replay the chain independently; check payouts, certificates and bonds.

    Returns the replayed state's hash at every height: before block 0, after it, and so on.
    """
    public = {node: base_mul(secret) for node, secret in protocol.keys.secrets.items()}
    fresh = Keyring(public)
    check = partial(settlement_ok, keyring=fresh, quorum=protocol.quorum)
    exchange = run.start_state.copy()
    terms = exchange.terms
    states = [exchange.state_hash()]
    for block, _ in run.blocks:
        for tx in block.txs:
            if not isinstance(tx, SettleTx):
                apply_tx(exchange, tx, settlement_ok=check, t=block.t)
                continue
            s = tx.settlement
            settled, before = exchange.ledger.is_settled(s.market), exchange.state_hash()
            requests = exchange.requests.get(s.market, ())
            apply_tx(exchange, tx, settlement_ok=check, t=block.t)
            if s.kind == "evidence":  # accountability: taken on a settled market too
                continue
            if settled:  # no payout twice: a settled market's steps change nothing
                assert exchange.state_hash() == before
            elif exchange.ledger.is_settled(s.market):  # this step paid out: justify it
                if s.kind == "certificate":
                    assert certificate_ok(s, keyring=fresh, quorum=protocol.quorum)
                else:
                    assert s.kind == "expire" and terms is not None
                    assert not requests[-1].disputed
                    assert block.t >= requests[-1].t + terms.liveness
        states.append(exchange.state_hash())
    assert states[-1] == run.exchange.state_hash()
    held = sum(
        r.bond * (2 if r.disputed else 1)
        for market, requests in exchange.requests.items()
        if not exchange.ledger.is_settled(market)
        for r in requests
    )
    assert exchange.ledger.cash(BOND_ESCROW) == held
    return states


def _honest_live_replicas_hold_a_prefix_of_the_chain(run: Simulation, states: list[bytes]) -> None:
    """Every reporter neither Byzantine nor down is in the chain's state at its own height: a
    replica may lag (loss delays it) but never diverges. ``states`` come from :func:`audit`."""
    for node, replica in run.replicas.items():
        if node not in run.faulty_replicas:
            assert replica.exchange.state_hash() == states[replica.next_height], node


def _honest_live_replicas_match_the_chain(run: Simulation, *, margin_s: float = 60.0) -> None:
    """Every reporter neither Byzantine nor down holds every block older than ``margin_s`` (a
    block closed just before the horizon may still be on its way), and at the tip its state is
    the chain's."""
    live = [r for node, r in run.replicas.items() if node not in run.faulty_replicas]
    assert live
    settled = sum(1 for block, _ in run.blocks if block.t <= run.scenario.duration_s - margin_s)
    for replica in live:
        assert replica.next_height >= settled
        if replica.next_height == len(run.blocks):
            assert replica.exchange.state_hash() == run.exchange.state_hash()


@pytest.fixture
def settle(small: dict[str, Any]) -> dict[str, Any]:
    """The small scenario with room after resolve for many rounds (7 reporters: f = 2, q = 5)."""
    small["duration_s"] = 7800.0
    small["settlement"] |= {"round_timeout_s": TIMEOUT, "liveness_s": 300.0}
    return small


# --- BFT ----------------------------------------------------------------------------------------


def test_honest_reporters_settle_every_market_on_a_verified_certificate(
    settle: dict[str, Any],
) -> None:
    run, m, protocol = _simulate(settle)
    assert m["settlement.correct_fraction"] == 1.0 and m["settlement.finalized_fraction"] == 1.0
    assert 0 < m["settlement.latency_s"] <= TIMEOUT
    stats = run.net.stats
    assert m["settlement.messages"] == stats.sent["vote"] > 0
    assert m["ledger.conservation_error"] == 0 and m["ledger.replica_divergence"] == 0
    assert final_outcomes(run.exchange) == dict(enumerate(run.world.outcomes))
    for step in run.exchange.applied:
        assert len(step.signatures) >= protocol.quorum == 5
    audit(run, protocol)
    _honest_live_replicas_match_the_chain(run)


def test_with_fewer_than_a_third_byzantine_every_market_settles_true(
    settle: dict[str, Any],
) -> None:
    settle["settlement"]["byzantine_fraction"] = 0.29  # floor(7 * 0.29 + 0.5) = 2 <= f
    settle["market"]["count"] = 3
    run, m, protocol = _simulate(settle)
    assert len(protocol.plan.byzantine) == 2 and run.faulty_replicas == protocol.plan.byzantine
    assert m["settlement.correct_fraction"] == 1.0 and m["settlement.finalized_fraction"] == 1.0
    table = api.run(settle).tables["settlement_steps"]
    # the Byzantine reporters voted, replayed and forged; the checks caught them
    for reason in ("non_reporter", "bad_signature"):
        assert table[f"rejected_{reason}"].sum() > 0, reason
    assert table["refused_settlements"].sum() > 0  # forged certificates, refused by the chain
    assert m["ledger.conservation_error"] == 0 and m["ledger.replica_divergence"] == 0
    audit(run, protocol)
    _honest_live_replicas_match_the_chain(run)


def test_a_third_or_more_byzantine_shows_no_finality(settle: dict[str, Any]) -> None:
    settle["settlement"]["byzantine_fraction"] = 0.43  # 3 of 7: 4 honest < q = 5
    settle["duration_s"] = RESOLVE + 8 * TIMEOUT
    run, m, protocol = _simulate(settle)
    assert m["settlement.finalized_fraction"] == 0.0 and m["settlement.correct_fraction"] == 0.0
    assert math.isnan(m["settlement.latency_s"])
    rows = api.run(settle).tables["settlement_steps"]
    assert rows.height >= 2 * 4  # round after round, timeouts growing, for each market
    assert rows["round"].to_list() == list(range(rows.height // 2)) * 2
    votes = rows["votes"].str.json_decode()
    assert (votes.list.max() <= 4).all()  # 4 honest votes, or 3 colluding: never 5
    for reason in ("non_reporter", "bad_signature"):
        assert rows[f"rejected_{reason}"].sum() > 0, reason
    assert not run.exchange.applied and m["ledger.conservation_error"] == 0
    audit(run, protocol)


def test_two_thirds_byzantine_settle_the_wrong_outcome_and_the_run_says_so(
    settle: dict[str, Any],
) -> None:
    settle["settlement"]["byzantine_fraction"] = 0.72  # 5 of 7 = q: they certify alone
    run, m, protocol = _simulate(settle)
    assert m["settlement.finalized_fraction"] == 1.0 and m["settlement.correct_fraction"] == 0.0
    wrong = final_outcomes(run.exchange)
    assert all(wrong[i] != o for i, o in enumerate(run.world.outcomes))
    table = api.run(settle).tables["settlement"].filter(pl.col("finalized"))
    assert table["correct"].to_list() == [False, False]
    # the honest replicas agree with the chain, wrong as it is: nothing is hidden or lost
    assert m["ledger.replica_divergence"] == 0 and m["ledger.conservation_error"] == 0
    audit(run, protocol)
    _honest_live_replicas_match_the_chain(run)


def test_loss_and_a_partition_delay_settlement_until_it_heals(settle: dict[str, Any]) -> None:
    settle["network"]["loss"] = 0.1
    baseline = _simulate(settle)[1]
    heal = RESOLVE + 200.0
    # three reporters cut off: neither side has 5 honest reporters
    settle["faults"] = {"partitions": [{"reporters": [0, 1, 2], "start_s": RESOLVE - 100.0,
                                        "end_s": heal}]}  # fmt: skip
    run, m, protocol = _simulate(settle)
    assert m["settlement.correct_fraction"] == 1.0 and m["settlement.finalized_fraction"] == 1.0
    finals = [t for t in api.run(settle).tables["settlement"]["t_final"].to_list() if t]
    assert len(finals) == 2 and all(heal < t <= heal + 2 * TIMEOUT for t in finals)
    assert m["settlement.latency_s"] > baseline["settlement.latency_s"] + 100
    assert run.net.stats.lost["vote"] > 0
    assert m["ledger.replica_divergence"] == 0 and m["ledger.conservation_error"] == 0
    audit(run, protocol)
    _honest_live_replicas_match_the_chain(run)


def test_a_reporter_cut_off_from_the_certificate_goes_on_voting_until_its_replica_holds_it(
    settle: dict[str, Any],
) -> None:
    """Stopping is each reporter's own knowledge, not the simulator's: two reporters cut off
    while the other five (a quorum) settle cannot see the block, so they keep sending their
    votes after the chain holds it, and stop once the partition heals and they fetch it."""
    heal = RESOLVE + 600.0
    settle["faults"] = {"partitions": [{"reporters": [5, 6], "start_s": RESOLVE - 100.0,
                                        "end_s": heal}]}  # fmt: skip
    run, m, protocol = _simulate(settle)
    assert m["settlement.finalized_fraction"] == 1.0 and m["settlement.correct_fraction"] == 1.0
    assert all(r.t_final < heal for r in protocol.rows() if r.finalized)  # settled meanwhile
    assert not protocol.voting.gossiping and m["ledger.replica_lag_blocks"] == 0
    audit(run, protocol)
    _honest_live_replicas_match_the_chain(run)
    settle["duration_s"] = heal - 100.0  # stop the same run while the two are still cut off
    run, m, protocol = _simulate(settle)
    assert m["settlement.finalized_fraction"] == 1.0
    cut_off = {protocol.reporters[5], protocol.reporters[6]}
    assert protocol.voting.gossiping == cut_off
    assert all(run.replicas[node].next_height < len(run.blocks) for node in cut_off)


def test_a_restarted_reporter_catches_up_by_height(settle: dict[str, Any]) -> None:
    settle["faults"] = {"crashes": [{"reporter": 3, "at_s": 5000.0, "restart_s": 6500.0}]}
    run, m, protocol = _simulate(settle)
    node = sorted(run.validators)[3]
    assert node not in run.faulty_replicas and not run.net.down  # back, and counted again
    assert run.net.stats.sent["fetch"] > 0
    assert m["settlement.finalized_fraction"] == 1.0 and m["ledger.replica_divergence"] == 0
    _honest_live_replicas_match_the_chain(run)
    audit(run, protocol)


def test_crashed_reporters_stop_and_are_left_out_of_divergence(settle: dict[str, Any]) -> None:
    settle["settlement"]["crash_fraction"] = 0.29  # 2 of 7: 5 = q remain
    run, m, protocol = _simulate(settle)
    crashed = protocol.plan.crashed
    assert len(crashed) == 2 and crashed <= run.faulty_replicas and crashed <= run.net.down
    assert not crashed & protocol.plan.byzantine
    assert m["settlement.finalized_fraction"] == 1.0 and m["settlement.correct_fraction"] == 1.0
    assert m["ledger.replica_divergence"] == 0
    audit(run, protocol)
    _honest_live_replicas_match_the_chain(run)


# --- optimistic ---------------------------------------------------------------------------------


def _cash(run: Simulation, node: int) -> float:
    return run.exchange.ledger.cash(reporter_account(node)) / MICRO


def test_an_undisputed_proposal_settles_after_liveness_and_returns_its_bond(
    settle: dict[str, Any],
) -> None:
    settle["settlement"]["protocol"] = "optimistic"
    run, m, protocol = _simulate(settle)
    assert m["settlement.correct_fraction"] == 1.0 and m["settlement.finalized_fraction"] == 1.0
    assert 300.0 <= m["settlement.latency_s"] <= 300.0 + 4 * 2.0  # liveness, then a block
    assert all(_cash(run, n) == 2000.0 for n in run.validators)
    assert run.exchange.ledger.cash(BOND_ESCROW) == 0 and run.exchange.ledger.cash(TREASURY) == 0
    assert [s.kind for s in run.exchange.applied].count("propose") == 2
    audit(run, protocol)


def test_honest_disputers_correct_a_wrong_proposal_and_the_attacker_loses_its_bond(
    settle: dict[str, Any],
) -> None:
    settle["settlement"] |= {"protocol": "optimistic", "byzantine_fraction": 0.29}
    settle["market"]["count"] = 4
    run, m, protocol = _simulate(settle)
    assert m["settlement.correct_fraction"] == 1.0 and m["settlement.finalized_fraction"] == 1.0
    table = api.run(settle).tables["settlement_steps"]
    attacked = table.filter((pl.col("round") == 0) & (pl.col("proposed") != pl.col("true_outcome")))
    assert attacked.height > 0 and attacked["disputes"].to_list() == [1] * attacked.height
    assert (attacked["bond_slashed"] == 750.0).all()
    liars = set(attacked["leader"].to_list())
    assert liars <= protocol.plan.byzantine
    for node in liars:
        assert _cash(run, node) < 2000.0
    honest = [n for n in run.validators if n not in protocol.plan.byzantine]
    assert sum(_cash(run, n) for n in honest) > 2000.0 * len(honest)  # disputers' awards
    assert run.exchange.ledger.cash(TREASURY) == 375.0 * MICRO * table["disputes"].sum()
    assert m["ledger.conservation_error"] == 0 and m["ledger.replica_divergence"] == 0
    audit(run, protocol)
    _honest_live_replicas_match_the_chain(run)


def test_a_second_dispute_goes_to_a_vote_of_all_reporters(settle: dict[str, Any]) -> None:
    # rich attackers: they dispute the honest re-proposal too, so the reporters vote
    settle["settlement"] |= {"protocol": "optimistic", "byzantine_fraction": 0.29,
                             "endowment": 5000.0}  # fmt: skip
    run, m, protocol = _simulate(settle)
    assert m["settlement.correct_fraction"] == 1.0 and m["settlement.finalized_fraction"] == 1.0
    table = api.run(settle).tables["settlement_steps"]
    votes = table.filter(pl.col("step") == "vote")
    assert votes.height >= 2 and votes["round"].min() == 2  # after requests 0 and 1
    assert (votes.filter(pl.col("finalized"))["certificate_size"] >= protocol.quorum).all()
    assert (table.filter(pl.col("step") == "proposal")["disputes"] == 1).all()
    assert sorted(s.kind for s in run.exchange.applied).count("certificate") == 2
    assert m["ledger.conservation_error"] == 0 and run.exchange.ledger.cash(BOND_ESCROW) == 0
    audit(run, protocol)


# --- tables, reproducibility --------------------------------------------------------------------


def test_the_table_has_a_row_per_market_and_round_and_nulls_where_nothing_applies(
    settle: dict[str, Any],
) -> None:
    settle["settlement"]["byzantine_fraction"] = 0.29
    table = api.run(settle).tables["settlement_steps"]
    assert table.select("market", "round").is_unique().all()
    assert sorted(table["market"].unique().to_list()) == [0, 1]
    open_rows = table.filter(~pl.col("finalized"))
    assert (
        open_rows["t_final"].null_count() == open_rows["correct"].null_count() == open_rows.height
    )
    assert (
        table["rejected_votes"] == table.select(pl.col("^rejected_.*_.*$")).sum_horizontal()
    ).all()
    assert table["protocol"].unique().to_list() == ["bft"]


@pytest.mark.parametrize("protocol", ["bft", "optimistic"])
def test_the_settlement_table_has_one_row_per_market_with_the_outcome_the_chain_paid(
    settle: dict[str, Any], protocol: str
) -> None:
    settle["settlement"] |= {"byzantine_fraction": 0.29, "protocol": protocol}
    run, _, proto = _simulate(settle)
    tables = proto.tables("r")
    table, steps = tables["settlement"], tables["settlement_steps"]
    assert table["market"].to_list() == list(range(settle["market"]["count"]))
    paid = final_outcomes(run.exchange)  # from the steps the chain applied
    assert dict(table.filter(pl.col("finalized")).select("market", "outcome").iter_rows()) == paid
    totals = steps.group_by("market").agg(pl.len(), pl.col("disputes").sum()).sort("market")
    assert table["rounds"].to_list() == totals["len"].to_list()
    assert table["disputes"].to_list() == totals["disputes"].to_list()
    if protocol == "optimistic":
        assert table["disputes"].sum() > 0 and table["bond_slashed"].drop_nulls().len() > 0


def test_the_same_seed_gives_the_same_settlement_bytes_with_faults(settle: dict[str, Any]) -> None:
    settle["settlement"] |= {"byzantine_fraction": 0.29, "crash_fraction": 0.15}
    settle["network"]["loss"] = 0.05
    settle["faults"] = {"partitions": [{"nodes": [0, 1, 2], "start_s": 5990.0, "end_s": 6100.0}]}
    a, b = api.run(settle), api.run(copy.deepcopy(settle))
    for name in ("settlement", "messages"):
        assert_frame_equal(a.tables[name], b.tables[name], check_exact=True)
    c = api.run(settle, seed=12)
    assert not a.tables["messages"].drop("run_id").equals(c.tables["messages"].drop("run_id"))


# --- the property: random fault schedules --------------------------------------------------------


def schedule(seed: int) -> dict[str, Any]:
    """A small scenario with a random fault schedule drawn from ``seed``."""
    rng = random.Random(seed)
    reporters = rng.randint(4, 7)
    resolve, end = 900.0, 2700.0

    def window(lo: float, hi: float) -> tuple[float, float]:
        start = rng.uniform(lo, hi)
        return start, min(start + rng.uniform(20.0, 400.0), end - 600.0)

    partitions = []
    for _ in range(rng.randint(0, 2)):
        start, stop = window(resolve - 300.0, resolve + 300.0)
        partitions.append({"reporters": rng.sample(range(reporters), rng.randint(1, reporters - 1)),
                           "nodes": rng.sample(range(16), rng.randint(0, 3)),
                           "start_s": start, "end_s": stop})  # fmt: skip
    crashes = []
    for _ in range(rng.randint(0, 2)):
        start, stop = window(resolve - 200.0, resolve + 300.0)
        crash: dict[str, Any] = {"reporter": rng.randrange(reporters), "at_s": start}
        if rng.random() < 0.7:
            crash["restart_s"] = stop
        crashes.append(crash)
    byzantine = rng.choice([0.0, 0.2, 0.3])
    return {
        "name": "prop", "seed": seed, "duration_s": end,
        "network": {"nodes": 16, "degree": 4, "loss": rng.choice([0.0, 0.05, 0.15])},
        "market": {"count": 2, "liquidity_b": 30.0, "close_s": 600.0, "resolve_s": resolve},
        "traders": {"informed": 3, "noise": 3, "orders_per_hour": 12.0, "budget": 100.0},
        "settlement": {"reporters": reporters, "protocol": rng.choice(["bft", "optimistic"]),
                       "byzantine_fraction": byzantine, "crash_fraction": rng.choice([0.0, 0.2]),
                       "round_timeout_s": 20.0, "liveness_s": 200.0, "bond": 100.0,
                       "endowment": 400.0},
        "faults": {"partitions": partitions, "crashes": crashes},
    }  # fmt: skip


@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_random_fault_schedules_never_lose_money_diverge_or_pay_without_proof(seed: int) -> None:
    """The optimistic oracle's money and replicas under random faults (BFT's safety and
    liveness have their own property: ``test_bft_property``). Examples are drawn afresh."""
    world = schedule(seed)
    world["settlement"]["protocol"] = "optimistic"
    run, m, protocol = _simulate(world)
    assert m["ledger.conservation_error"] == 0 and m["ledger.payout_error"] == 0
    assert m["ledger.replica_divergence"] == 0
    _honest_live_replicas_match_the_chain(run)
    audit(run, protocol)


def test_a_replica_hears_of_blocks_its_neighbours_only_fetched() -> None:
    run, m, _ = _simulate(schedule(839414))  # a partition splits a block's diffusion
    assert m["ledger.replica_divergence"] == 0
    _honest_live_replicas_match_the_chain(run)
