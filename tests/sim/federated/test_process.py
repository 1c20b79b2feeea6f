"""The forecaster trained over the simulated network: rounds, messages, privacy, trading, seeds."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from dp_accounting import GaussianDpEvent, PoissonSampledDpEvent, SelfComposedDpEvent
from dp_accounting.rdp import RdpAccountant
from polars.testing import assert_frame_equal

import sim
from sim.federated.dp import epsilon
from sim.federated.process import FederatedForecaster
from sim.runs.runner import RunResult, build
from sim.scenario import expand, parse_scenario
from sim.world.build import build_world
from tests.conftest import SMALL

FEATURES = 6
SAMPLES = 100
ROUNDS = 5
FORECASTER = {
    "enabled": True,
    "clients": 20,
    "rounds": ROUNDS,
    "features": FEATURES,
    "samples_per_client": SAMPLES,
}
FL_KINDS = {"fl_model", "fl_keys", "fl_roster", "fl_shares", "fl_share_fwd", "fl_masked"}
FL_KINDS |= {"fl_unmask", "fl_reveal"}


def scenario(**forecaster: Any) -> dict[str, Any]:
    """The small scenario with the forecaster enabled (20 clients, 5 rounds), keys overridden."""
    data = copy.deepcopy(SMALL)
    data["forecaster"] = FORECASTER | forecaster
    return data


def without_perf(result: RunResult) -> dict[str, float]:
    return {k: v for k, v in result.metrics().items() if not k.startswith("perf.")}


def messages(result: RunResult) -> dict[str, tuple[int, int]]:
    """Sent transmissions and bytes per ``fl_*`` kind (every hop of a relay counts)."""
    frame = result.tables["messages"].filter(pl.col("kind").str.starts_with("fl_"))
    return {k: (s, b) for k, s, b in frame.select("kind", "sent", "bytes").iter_rows()}


@pytest.fixture(scope="module")
def secure() -> RunResult:
    return sim.run(scenario())


@pytest.fixture(scope="module")
def plain() -> RunResult:
    return sim.run(scenario(secure_aggregation=False))


@pytest.mark.slow
def test_a_run_with_the_forecaster_conserves_money_and_replicas_agree(secure: RunResult) -> None:
    m = secure.metrics()
    assert m["ledger.conservation_error"] == 0
    assert m["ledger.replica_divergence"] == 0
    assert m["settlement.finalized_fraction"] == 1.0


@pytest.mark.slow
def test_fl_rounds_has_one_row_per_round_run_back_to_back(secure: RunResult) -> None:
    rounds = secure.tables["fl_rounds"]
    assert rounds["round"].to_list() == list(range(ROUNDS))
    assert set(rounds["status"]) <= {"completed", "aborted"}
    assert "completed" in set(rounds["status"])
    for row in rounds.iter_rows(named=True):
        assert (row["reason"] is None) == (row["status"] == "completed")
        assert 0 <= row["survivors"] <= row["sampled"] <= 20
        assert row["t_end"] > row["t_start"]
        assert math.isinf(row["epsilon"])  # no DP
    assert math.isnan(secure.metric("fl.mia_advantage_bound"))  # no DP, no bound
    # each round starts when the previous one closes, the first at time 0
    assert rounds["t_start"].to_list() == [0.0, *rounds["t_end"].to_list()[:-1]]
    assert rounds["brier"][-1] == secure.metric("fl.model_brier")
    assert any(r < s for r, s in zip(rounds["survivors"], rounds["sampled"], strict=True))
    # nothing is lost: a round ends once the survivors answered (a dropout is noticed at once),
    # long before the 60 s timeout
    assert ((rounds["t_end"] - rounds["t_start"]) < 10.0).all()


@pytest.mark.slow
def test_the_federated_model_beats_the_untrained_one(secure: RunResult) -> None:
    m = secure.metrics()
    # all-zero parameters predict 1/2 everywhere: a Brier score of exactly 1/4 on any events
    assert m["fl.model_brier"] < 0.25 - 0.03
    assert secure.tables["fl_rounds"]["brier"][0] < 0.25
    # the pooled baseline trains on everything: at least as good, up to SGD noise
    assert m["fl.centralized_brier"] < m["fl.model_brier"] + 0.01


@pytest.mark.slow
def test_secure_aggregation_over_the_network_gives_the_plain_model(
    secure: RunResult, plain: RunResult
) -> None:
    a, b = secure.tables["fl_rounds"], plain.tables["fl_rounds"]
    assert a["sampled"].to_list() == b["sampled"].to_list()
    assert a["survivors"].to_list() == b["survivors"].to_list()
    np.testing.assert_allclose(a["loss"].to_numpy(), b["loss"].to_numpy(), atol=1e-6)
    assert secure.metric("fl.model_brier") == pytest.approx(
        plain.metric("fl.model_brier"), abs=1e-6
    )
    # the secure rounds take longer: four waits instead of one
    assert a["t_end"][-1] > b["t_end"][-1]


@pytest.mark.slow
def test_messages_carry_every_stage_with_their_real_sizes(
    secure: RunResult, plain: RunResult
) -> None:
    seen, bare = messages(secure), messages(plain)
    assert set(seen) == FL_KINDS
    assert set(bare) == {"fl_model", "fl_update"}
    params = FEATURES + 1
    # 16-byte header; a model is 7 float64; a plain update adds its weight; a masked input is
    # the same 8 numbers as ring words; a key advert two compressed P-256 points
    assert bare["fl_model"][1] == bare["fl_model"][0] * (16 + 8 * params)
    assert bare["fl_update"][1] == bare["fl_update"][0] * (16 + 8 * (params + 1))
    assert seen["fl_masked"][1] == seen["fl_masked"][0] * (16 + 4 * (params + 1))
    assert seen["fl_keys"][1] == seen["fl_keys"][0] * (16 + 2 * 33)
    # shares dwarf the rest: n−1 sealed envelopes of 104 bytes each, per holder
    assert seen["fl_shares"][1] / seen["fl_shares"][0] > 104 * 5
    # the real cryptography is metered into the run (two key pairs per client, at least)
    assert secure.metric("cost.crypto_ops") - plain.metric("cost.crypto_ops") >= 2 * 20


@pytest.mark.slow
def test_dp_epsilon_is_what_dp_accounting_reports_for_the_same_event() -> None:
    sigma, q, delta = 1.1, 0.5, 1e-5
    result = sim.run(scenario(dp_noise_multiplier=sigma, secure_aggregation=False))
    accountant = RdpAccountant()
    accountant.compose(
        SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(sigma)), ROUNDS)
    )
    expected = accountant.get_epsilon(delta)
    assert result.metric("fl.dp_epsilon") == pytest.approx(expected, rel=1e-9)
    # the bound any membership test must respect at that (ε, δ), and the attack within it
    e = math.exp(expected)
    bound = result.metric("fl.mia_advantage_bound")
    assert bound == pytest.approx((e - 1 + 2 * delta) / (e + 1), rel=1e-9)
    assert result.metric("fl.mia_advantage") <= bound
    per_round = result.tables["fl_rounds"]["epsilon"].to_list()
    assert per_round == pytest.approx(
        [
            epsilon(sampling_rate=q, noise_multiplier=sigma, rounds=r, delta=delta)
            for r in (1, 2, 3, 4, 5)
        ]
    )
    assert per_round == sorted(per_round) and per_round[0] > 0


@pytest.mark.slow
def test_secure_aggregation_leaves_nothing_to_reconstruct() -> None:
    single = {"batch_size": 1, "local_steps": 1, "dropout": 0.0}
    exposed = sim.run(scenario(secure_aggregation=False, **single))
    hidden = sim.run(scenario(**single))
    # a one-record step reveals that record exactly (x = Δw/Δb), in every round it is observed:
    # the rate counts distinct records over all rounds, so it exceeds one round's 1 / SAMPLES
    rate = exposed.metric("fl.reconstruction_rate")
    per_round = exposed.tables["fl_rounds"]["records_reconstructed"].drop_nulls()
    assert rate > 1 / SAMPLES
    assert per_round.max() >= 1 and round(rate * FORECASTER["clients"] * SAMPLES) <= per_round.sum()
    assert hidden.metric("fl.reconstruction_rate") == 0.0  # the sums of many clients hide them


@pytest.mark.slow
def test_minibatch_updates_mix_records_beyond_recovery(secure: RunResult, plain: RunResult) -> None:
    assert plain.metric("fl.reconstruction_rate") == 0.0
    assert secure.metric("fl.reconstruction_rate") == 0.0
    for result in (secure, plain):
        roc = result.tables["fl_roc"]
        assert roc["fpr"][0] == 0.0 and roc["fpr"][-1] == 1.0 and roc["tpr"][-1] == 1.0
        assert roc["tpr"].to_list() == sorted(roc["tpr"].to_list())
        # the advantage is the exact curve's max TPR − FPR; the thinned curve keeps the best
        # TPR at each grid FPR or below, so it sits within one grid step (0.01) below it
        thinned = float((roc["tpr"] - roc["fpr"]).max())
        assert thinned <= result.metric("fl.mia_advantage") <= thinned + 0.01


@pytest.mark.slow
def test_the_same_seed_gives_the_same_rounds_and_metrics(secure: RunResult) -> None:
    again = sim.run(scenario())
    for name in ("fl_rounds", "fl_roc", "orders"):
        assert_frame_equal(secure.tables[name], again.tables[name], check_exact=True)
    assert without_perf(again) == pytest.approx(without_perf(secure), nan_ok=True)
    other = sim.run(scenario(), seed=SMALL["seed"] + 1)
    assert other.tables["fl_rounds"]["sampled"].to_list() != (
        secure.tables["fl_rounds"]["sampled"].to_list()
    )


@pytest.mark.slow
def test_the_forecaster_trades_toward_its_model_after_training(secure: RunResult) -> None:
    trained_at = secure.tables["fl_rounds"]["t_end"][-1]
    orders = secure.tables["orders"].filter(pl.col("kind") == "forecaster")
    assert orders.height > 0 and orders["t_submit"].min() == trained_at
    # its belief in each market is fixed once trained: every buy of outcome 1 pays at most p,
    # every buy of outcome 0 at most 1 − p
    beliefs: dict[int, float] = {}
    for market, outcome, limit in orders.select("market", "outcome", "limit_price").iter_rows():
        p = limit if outcome == 1 else 1.0 - limit
        assert beliefs.setdefault(market, p) == pytest.approx(p, abs=2e-6)
    won = secure.tables["markets"].filter(pl.col("outcome") == 1)
    events = dict(won.select("market", "won").iter_rows())
    # fl.market_brier is that belief against the realised event (the binary (p − o)² form);
    # the forecaster traded every market, so the check covers them all and cannot skip itself
    assert len(beliefs) == won.height == secure.tables["markets"]["market"].n_unique()
    expected = np.mean([(p - float(events[m])) ** 2 for m, p in beliefs.items()])
    assert secure.metric("fl.market_brier") == pytest.approx(expected, abs=1e-5)
    # every market settled, so its profit is what its winning shares paid minus what it spent
    done = orders.filter(pl.col("status") == "executed")
    winners = done.join(secure.tables["markets"], on=["market", "outcome"]).filter(pl.col("won"))
    pnl = winners["shares"].sum() - done["cost"].sum()
    assert secure.metric("traders.forecaster_pnl") == pytest.approx(pnl, abs=1e-5)


@pytest.mark.slow
def test_lost_messages_end_rounds_at_the_timeout() -> None:
    data = scenario(secure_aggregation=False, round_timeout_s=5.0)
    data["network"] |= {"loss": 0.3}
    result = sim.run(data)
    rounds = result.tables["fl_rounds"]
    assert rounds.height == ROUNDS
    spans = (rounds["t_end"] - rounds["t_start"]).to_list()
    assert max(spans) == pytest.approx(5.0)  # some round waited for a lost update
    assert all(s <= 5.0 + 1e-9 for s in spans)
    assert result.metric("ledger.conservation_error") == 0


@pytest.mark.slow
def test_a_round_cut_off_by_the_end_of_the_run_is_recorded() -> None:
    data = scenario(secure_aggregation=False)
    data["network"] |= {"latency_ms": {"median": 1000.0, "sigma": 0.0}}  # 1 s on every link
    data |= {"duration_s": 20.0}
    data["market"] |= {"close_s": 18.0, "resolve_s": 19.0}
    rounds = sim.run(data).tables["fl_rounds"]
    last = rounds.row(-1, named=True)
    assert (last["status"], last["reason"], last["t_end"]) == ("aborted", "horizon", None)
    assert last["t_start"] < 20.0
    assert rounds.height == last["round"] + 1 < ROUNDS
    done = rounds.head(-1)
    assert done.height >= 1 and set(done["status"]) == {"completed"}
    # there and back over whole 1 s hops: a closed round lasts an even number of seconds
    for span in (done["t_end"] - done["t_start"]).to_list():
        assert span >= 2 and span == pytest.approx(2 * round(span / 2))


def test_the_markets_and_the_training_data_share_one_ground_truth() -> None:
    on = expand(parse_scenario(scenario()))[0]
    off = expand(parse_scenario(scenario(enabled=False)))[0]
    assert on.world_seed == off.world_seed
    with_fl, without = (
        build_world(on.scenario, on.world_seed),
        build_world(off.scenario, off.world_seed),
    )
    assert without.forecast is None
    forecast = with_fl.forecast
    assert forecast is not None
    p = forecast.truth.probability(forecast.market_x)
    assert with_fl.true_probs == tuple((1.0 - float(q), float(q)) for q in p)
    for client in forecast.clients:  # each client's labels follow its own perturbed truth
        np.testing.assert_array_equal(
            client.data.probability, client.truth.probability(client.data.x)
        )
    spread = np.array([c.truth.weights for c in forecast.clients]) - forecast.truth.weights
    assert np.abs(spread.mean(axis=0)).max() < 4 * spread.std() / np.sqrt(len(spread))
    assert len(forecast.holdout) == 10_000
    assert len(set(forecast.client_nodes)) == 20
    # everything else of the world is drawn as without the forecaster
    for field in ("topology", "spies", "reporters", "keypers", "operator", "plan"):
        assert getattr(with_fl, field) == getattr(without, field), field
    # the forecasting world depends on the world seed only
    again = build_world(on.scenario, on.world_seed).forecast
    assert again is not None
    np.testing.assert_array_equal(again.clients[3].data.x, forecast.clients[3].data.x)


@pytest.mark.slow
def test_a_client_whose_mask_key_was_revealed_draws_a_new_one() -> None:
    spec = expand(parse_scenario(scenario(dropout=0.3)))[0]
    run = build(spec)
    run.run()
    [forecaster] = [c for c in run.components if isinstance(c, FederatedForecaster)]
    assert len(forecaster.outcomes) == ROUNDS
    revealed = dict.fromkeys(range(20), 0)
    for outcome in forecaster.outcomes:
        if outcome.status == "completed":  # no loss: every sampled client was a member
            for client in set(outcome.sampled) - set(outcome.survivors):
                revealed[client] += 1
    assert sum(revealed.values()) > 0
    assert {c: k.epoch for c, k in forecaster.session.keys.items()} == revealed


@pytest.mark.slow
def test_a_secure_round_that_clamps_is_flagged_in_fl_rounds(plain: RunResult) -> None:
    """A tight ``secagg_bound`` clamps coordinates: counted per round, and the model drifts."""
    tight = sim.run(scenario(secagg_bound=0.05))
    rounds = tight.tables["fl_rounds"]
    done = rounds.filter(pl.col("status") == "completed")
    assert done.height and (done["clamped"] > 0).all()
    assert rounds.filter(pl.col("status") == "aborted")["clamped"].null_count() == (
        rounds.height - done.height
    )
    assert plain.tables["fl_rounds"]["clamped"].null_count() == plain.tables["fl_rounds"].height
    assert abs(tight.metric("fl.model_brier") - plain.metric("fl.model_brier")) > 1e-4


@pytest.mark.slow
def test_mia_auc_is_the_members_against_fresh_records_mann_whitney_statistic() -> None:
    """Recompute ``fl.mia_auc`` over every (member, non-member) pair from the final model.

    Members are every client's training records; non-members are the world's fresh records,
    which must differ from them (attacking members against members would give 0.5 here and a
    different number from the recomputation).
    """
    spec = expand(parse_scenario(scenario()))[0]
    run = build(spec)
    run.run()
    [forecaster] = [c for c in run.components if isinstance(c, FederatedForecaster)]
    auc = forecaster.metrics()["fl.mia_auc"]
    assert auc == sim.run(scenario()).metric("fl.mia_auc")  # the run reports the same number
    model, world = forecaster.session.model, forecaster.forecast
    members = np.concatenate([c.data.x for c in world.clients])
    labels = np.concatenate([c.data.y for c in world.clients])
    inside = model.record_losses(forecaster.params, members, labels)
    outside = model.record_losses(forecaster.params, world.nonmembers.x, world.nonmembers.y)
    assert not np.isin(world.nonmembers.x, members).any()
    below = (inside[:, None] < outside[None, :]).mean()
    ties = (inside[:, None] == outside[None, :]).mean()
    assert auc == pytest.approx(below + ties / 2, abs=1e-12)


@pytest.mark.slow
def test_dp_epsilon_counts_every_round_started_aborted_ones_too() -> None:
    """An aborted round released noise (and sampled clients): it is charged like the rest."""
    sigma, q, delta = 1.1, 0.5, 1e-5
    result = sim.run(scenario(dp_noise_multiplier=sigma, dropout=0.6))
    rounds = result.tables["fl_rounds"]
    completed = int((rounds["status"] == "completed").sum())
    assert 0 < completed < rounds.height == ROUNDS  # some rounds aborted
    charged = epsilon(sampling_rate=q, noise_multiplier=sigma, rounds=ROUNDS, delta=delta)
    fewer = epsilon(sampling_rate=q, noise_multiplier=sigma, rounds=completed, delta=delta)
    assert result.metric("fl.dp_epsilon") == pytest.approx(charged, rel=1e-12)
    assert result.metric("fl.dp_epsilon") > fewer
    assert rounds["epsilon"][-1] == pytest.approx(charged, rel=1e-12)
