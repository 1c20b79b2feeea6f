"""Consent withdrawal and per-client budgets: the filter's rules and what a run reports of them."""

from __future__ import annotations

import copy
import math
from typing import Any

import dp_accounting
import numpy as np
import pytest
from dp_accounting.rdp import RdpAccountant

import sim
from sim.federated.consent import ConsentLedger, worst_round_multiplier
from sim.federated.dp import RdpLedger, ddg_tau, share_sigma
from sim.federated.process import FederatedForecaster
from sim.federated.rounds import ClientNoise
from sim.federated.strategy import FedAvg, FLConfig
from sim.runs.runner import build
from sim.scenario import expand, parse_scenario
from sim.world.forecast import consent_withdrawals
from tests.conftest import SMALL

DELTA = 1e-5


def _independent_epsilon(multipliers: list[float]) -> float:
    """One client's ε: its rounds as plain Gaussians, composed by dp_accounting directly."""
    accountant = RdpAccountant()
    accountant.compose(
        dp_accounting.ComposedDpEvent([dp_accounting.GaussianDpEvent(m) for m in multipliers])
    )
    return accountant.get_epsilon(DELTA)


def _ledger(
    budget: float = math.inf, withdrawals: dict[int, int] | None = None, **settings: Any
) -> ConsentLedger:
    config = FLConfig(
        dp_noise_multiplier=2.0, client_fraction=0.3, client_epsilon_budget=budget, **settings
    )
    rdp = RdpLedger.for_rounds(sampling_rate=0.3, noise_multiplier=2.0)
    noise = ClientNoise(2.0, config.dp_clip, 3 * config.dp_clip, seed=0)
    worst = worst_round_multiplier(config, noise, members=40, dim=5)
    return ConsentLedger.for_config(config, rdp, withdrawals or {}, worst=worst)


def test_a_clients_epsilon_composes_only_its_rounds_unamplified() -> None:
    """A hand-built history: client 1 in rounds 0, 2 and 3 (one at a dropout-reduced σ)."""
    ledger = _ledger()
    ledger.charge(0, [1, 2], 2.0)
    ledger.charge(2, [1], 2.0)
    ledger.charge(3, [1, 3], 1.6)
    assert ledger.epsilon(1) == pytest.approx(_independent_epsilon([2.0, 2.0, 1.6]), rel=1e-9)
    assert ledger.epsilon(2) == pytest.approx(_independent_epsilon([2.0]), rel=1e-9)
    assert ledger.epsilon(4) == 0.0 and ledger.rounds(1) == 3 and ledger.rounds(4) == 0
    # the amplified value (sampling at q) would be far smaller: this is the participation rule
    amplified = RdpLedger.for_rounds(sampling_rate=0.3, noise_multiplier=2.0)
    assert ledger.epsilon(1) > 2 * amplified.epsilon_of([2.0, 2.0, 1.6], delta=DELTA)
    assert [(r, c) for r, c, _ in ledger.history] == [(0, 1), (0, 2), (2, 1), (3, 1), (3, 3)]


def test_a_client_stops_exactly_before_its_budget_would_be_exceeded() -> None:
    budget = 4.0
    ledger = _ledger(budget)
    rounds = 0
    for r in range(50):
        if 7 not in ledger.eligible(r, [7]):
            break
        ledger.charge(r, [7], 2.0)
        rounds += 1
    assert ledger.exhausted_at == {7: rounds}
    assert (
        _independent_epsilon([2.0] * rounds) <= budget < _independent_epsilon([2.0] * (rounds + 1))
    )
    assert 7 not in ledger.eligible(rounds + 5, [7])  # never again


def test_in_clients_mode_the_check_assumes_the_worst_surviving_noise() -> None:
    """One more round could keep only just over half the noise: σ·√½ is what the check charges."""
    ledger = _ledger(8.0, dp_noise_at="clients")
    assert ledger.worst == pytest.approx(2.0 * math.sqrt(0.5))
    charged: list[float] = []
    r = 0
    while 7 in ledger.eligible(r, [7]):
        ledger.charge(r, [7], 2.0)  # every member survived: σ
        charged.append(2.0)
        r += 1
    assert _independent_epsilon([*charged, 2.0 * math.sqrt(0.5)]) > 8.0
    assert _independent_epsilon(charged) <= 8.0


@pytest.mark.parametrize("sigma", [1e-6, 2.0])
def test_the_worst_round_is_a_floor_under_every_completed_round_even_where_tau_matters(
    sigma: float,
) -> None:
    """Brute force over every roster size up to 300 and every survivor count above half: no
    completed clients-mode round is accounted below the budget check's floor. At σ = 10^-6
    each member's discrete Gaussian is under one ring unit, Kairouz et al.'s τ no longer
    vanishes, and the floor takes it in (its weight, ``½τdσ²``, stays tiny: σ² shrinks faster
    than τ grows); at σ = 2 τ underflows and the floor is σ·√½ exactly."""
    config = FLConfig(dp_noise_multiplier=sigma, dp_noise_at="clients", secure_aggregation=True)
    bound = FedAvg.from_config(config).payload_bound()
    noise = ClientNoise(sigma, config.dp_clip, bound, seed=0)
    members, dim = 300, 40
    floor = worst_round_multiplier(config, noise, members=members, dim=dim)
    lowest = min(
        noise.multiplier(members=k, survivors=n, dim=dim)
        for k in range(3, members + 1)
        for n in range(k // 2 + 1, k + 1)
    )
    assert floor <= lowest
    share = share_sigma(sigma, sensitivity=noise.sensitivity(members, dim), members=members)
    if sigma < 1e-3:
        assert ddg_tau(share, members) > 0 and floor < sigma * math.sqrt(0.5)
    else:
        assert ddg_tau(share, members) == 0 and floor == sigma * math.sqrt(0.5)


def test_a_withdrawn_client_is_out_from_its_round_on() -> None:
    ledger = _ledger(withdrawals={3: 2})
    assert ledger.eligible(0, [1, 3]) == (1, 3)
    assert ledger.eligible(1, [1, 3]) == (1, 3)
    assert ledger.eligible(2, [1, 3]) == (1,)
    assert ledger.eligible(9, [1, 3]) == (1,) and ledger.withdrawn_at == {3: 2}


def test_a_budget_without_dp_is_refused() -> None:
    with pytest.raises(ValueError, match="needs DP"):
        ConsentLedger.for_config(
            FLConfig(client_epsilon_budget=1.0),
            RdpLedger.for_rounds(sampling_rate=0.5, noise_multiplier=0.0),
            {},
            worst=0.0,
        )


def test_withdrawals_are_nested_in_the_fraction_and_fall_after_round_zero() -> None:
    small = consent_withdrawals(clients=40, fraction=0.1, rounds=20, rng=np.random.default_rng(4))
    large = consent_withdrawals(clients=40, fraction=0.5, rounds=20, rng=np.random.default_rng(4))
    assert len(small) == 4 and len(large) == 20
    assert small.items() <= large.items()
    assert all(1 <= r < 20 for r in large.values())
    assert (
        consent_withdrawals(clients=40, fraction=0.0, rounds=20, rng=np.random.default_rng(4)) == {}
    )


# --- whole runs ---------------------------------------------------------------------------------

FORECASTER = {
    "enabled": True,
    "clients": 20,
    "rounds": 6,
    "features": 6,
    "samples_per_client": 60,
    "dp_noise_multiplier": 1.5,
}


def _scenario(**forecaster: Any) -> dict[str, Any]:
    data = copy.deepcopy(SMALL)
    data["forecaster"] = FORECASTER | forecaster
    return data


def _forecaster(**settings: Any) -> FederatedForecaster:
    run = build(expand(parse_scenario(_scenario(**settings)))[0])
    run.run()
    [forecaster] = [c for c in run.components if isinstance(c, FederatedForecaster)]
    return forecaster


@pytest.fixture(scope="module")
def consenting() -> FederatedForecaster:
    return _forecaster(withdraw_fraction=0.4, client_epsilon_budget=5.0)


@pytest.mark.slow
def test_a_withdrawn_client_is_never_sampled_again_and_the_tables_say_so(
    consenting: FederatedForecaster,
) -> None:
    tables = consenting.tables("r")
    clients, history = tables["fl_clients"], tables["fl_client_epsilon"]
    withdrawn = {
        c: at for c, at in clients.select("client", "withdrawn_at").iter_rows() if at is not None
    }
    assert len(withdrawn) == 8 == consenting.metrics()["fl.clients_withdrawn"]
    assert withdrawn == dict(consenting.forecast.withdrawals)
    for outcome in consenting.outcomes:
        late = {c for c, at in withdrawn.items() if outcome.round >= at}
        assert not late & set(outcome.sampled), outcome.round
    for r, c in history.select("round", "client").iter_rows():
        assert c not in withdrawn or r < withdrawn[c]
    # rounds taken part in = the rounds the client's update was in a completed round's sum
    taken = dict.fromkeys(range(20), 0)
    for o in consenting.outcomes:
        for c in o.survivors if o.status == "completed" else ():
            taken[c] += 1
    assert dict(clients.select("client", "rounds").iter_rows()) == taken


@pytest.mark.slow
def test_every_clients_epsilon_is_its_own_rounds_and_stays_within_budget(
    consenting: FederatedForecaster,
) -> None:
    clients = consenting.tables("r")["fl_clients"]
    spent: dict[int, list[float]] = {c: [] for c in range(20)}
    for o in consenting.outcomes:
        for c in o.survivors if o.status == "completed" else ():
            spent[c].append(o.multiplier)
    for c, eps, exhausted in clients.select("client", "epsilon", "exhausted_at").iter_rows():
        want = _independent_epsilon(spent[c]) if spent[c] else 0.0
        assert eps == pytest.approx(want, rel=1e-9)
        assert eps <= 5.0
        if exhausted is not None:  # one more round would have crossed it
            assert _independent_epsilon([*spent[c], 1.5]) > 5.0
    m = consenting.metrics()
    assert m["fl.clients_exhausted"] == clients["exhausted_at"].is_not_null().sum() > 0
    assert m["fl.client_epsilon_max"] == clients["epsilon"].max()
    assert m["fl.client_epsilon_mean"] == pytest.approx(clients["epsilon"].mean(), rel=1e-12)


@pytest.mark.slow
def test_withdrawn_mia_auc_attacks_the_withdrawn_clients_records_only(
    consenting: FederatedForecaster,
) -> None:
    """Mann–Whitney over (withdrawn record, fresh record) pairs, recomputed from the final model."""
    auc = consenting.metrics()["fl.withdrawn_mia_auc"]
    world, model = consenting.forecast, consenting.session.model
    gone = [world.clients[c] for c in world.withdrawals]
    x = np.concatenate([c.data.x for c in gone])
    y = np.concatenate([c.data.y for c in gone])
    inside = model.record_losses(consenting.params, x, y)
    outside = model.record_losses(consenting.params, world.nonmembers.x, world.nonmembers.y)
    below = (inside[:, None] < outside[None, :]).mean()
    ties = (inside[:, None] == outside[None, :]).mean()
    assert auc == pytest.approx(below + ties / 2, abs=1e-12)
    assert auc != consenting.metrics()["fl.mia_auc"]


@pytest.mark.slow
def test_a_budget_that_never_binds_and_no_withdrawal_change_nothing() -> None:
    unlimited = sim.run(_scenario())
    loose = sim.run(_scenario(client_epsilon_budget=1e6))
    for name in ("fl_rounds", "fl_clients", "fl_client_epsilon"):
        a = unlimited.tables[name].drop("run_id")
        b = loose.tables[name].drop("run_id")
        assert a.equals(b), name
    same = {k: v for k, v in unlimited.metrics().items() if not k.startswith("perf.")}
    other = {k: v for k, v in loose.metrics().items() if not k.startswith("perf.")}
    assert same.keys() == other.keys()
    # with no budget there is nothing to exhaust (NaN); a budget that never binds exhausts none
    assert math.isnan(same.pop("fl.clients_exhausted")) and other.pop("fl.clients_exhausted") == 0
    assert all(v == other[k] or (math.isnan(v) and math.isnan(other[k])) for k, v in same.items())
    assert math.isnan(same["fl.withdrawn_mia_auc"]) and math.isnan(same["fl.clients_withdrawn"])
    assert unlimited.tables["fl_clients"].height == 20
    assert (
        unlimited.tables["fl_rounds"]["epsilon_against"] == "everyone but the coordinator"
    ).all()


@pytest.mark.slow
def test_clients_mode_holds_the_coordinator_to_each_clients_own_epsilon() -> None:
    run = sim.run(_scenario(dp_noise_at="clients", dropout=0.0))
    server = sim.run(_scenario(dropout=0.0))
    rounds = run.tables["fl_rounds"]
    held = "everyone but the coordinator, which is held to each client's own epsilon"
    assert (rounds["epsilon_against"] == held).all()
    assert run.metric("fl.dp_epsilon") == server.metric("fl.dp_epsilon")
    assert (rounds["noise_multiplier"] == 1.5).all()
