"""Distributed DP (``dp_noise_at = "clients"``): sampler, shares, the sum and its accounting."""

from __future__ import annotations

import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting.rdp import RdpAccountant

from market.crypto import RandBytes
from sim.federated.dp import ddg_tau, discrete_gaussian, distributed_multiplier
from sim.federated.rounds import ClientNoise, close_round, secure_sum
from sim.federated.secagg import PairKeys, client_keys
from sim.federated.strategy import FedAvg, FLConfig
from sim.federated.training import train
from sim.world.forecast import client_datasets, ground_truth, holdout


def _randbytes(seed: int) -> RandBytes:
    return np.random.default_rng(seed).bytes


def test_discrete_gaussian_follows_its_mass_function() -> None:
    """Empirical frequencies of N_Z(0, σ²) against exp(−k²/2σ²)/Σ_j exp(−j²/2σ²)."""
    sigma, n = 1.7, 200_000
    draws = discrete_gaussian(n, sigma=sigma, rng=np.random.default_rng(3))
    support = np.arange(-12, 13)
    mass = np.exp(-(support**2) / (2 * sigma**2))
    mass /= mass.sum()
    counts = np.array([(draws == k).sum() for k in support])
    assert counts.sum() == n  # nothing beyond 7σ
    # every cell within 5 binomial standard deviations
    np.testing.assert_array_less(np.abs(counts - n * mass), 5 * np.sqrt(n * mass) + 1)
    assert draws.dtype == np.int64


def test_ddg_tau_is_the_papers_sum_and_vanishes_at_ring_scales() -> None:
    sigma, n = 0.6, 4
    hand = 10 * sum(math.exp(-2 * math.pi**2 * sigma**2 * k / (k + 1)) for k in (1, 2, 3))
    assert ddg_tau(sigma, n) == pytest.approx(hand, rel=1e-12)
    assert ddg_tau(1e5, 40) == 0.0
    assert ddg_tau(1.0, 1) == 0.0  # one participant: the sum is one discrete Gaussian


def test_effective_multiplier_is_sigma_when_all_survive_and_shrinks_with_dropouts() -> None:
    sigma = 1.3
    full = distributed_multiplier(sigma, sensitivity=1e7, members=10, survivors=10, dim=17)
    assert full == sigma
    part = distributed_multiplier(sigma, sensitivity=1e7, members=10, survivors=6, dim=17)
    assert part == pytest.approx(sigma * math.sqrt(0.6), rel=1e-12)
    # with a tau that does not vanish (tiny integer scale), the CDP bound of Kairouz et al.
    s, k, n, d = 0.8, 5, 5, 3
    share = sigma * 2.0 / math.sqrt(k)  # share_sigma with sensitivity 2
    tau = ddg_tau(share, n)
    eps2 = 2.0**2 / (n * share**2) + tau * d / 2
    small = distributed_multiplier(sigma, sensitivity=2.0, members=k, survivors=n, dim=d)
    assert tau > 0 and small == pytest.approx(1 / math.sqrt(eps2), rel=1e-12)
    del s


def _sum(
    noise: ClientNoise | None, inputs: dict[int, np.ndarray], sampled: list[int]
) -> np.ndarray:
    randbytes = _randbytes(11)
    keys = {c: client_keys(c, randbytes) for c in sampled}
    result = secure_sum(
        inputs,
        sampled,
        round_number=4,
        bound=noise.bound if noise else 1.0,
        keys=keys,
        pairs=PairKeys(),
        randbytes=randbytes,
        noise=noise,
    )
    return result.total


@pytest.mark.parametrize("dropped", [0, 3])
def test_the_unmasked_sum_carries_the_surviving_shares_of_the_noise(dropped: int) -> None:
    """Coordinator's sum − exact sum of the clipped inputs ~ N(0, σ²C²·survivors/k)."""
    sigma, clip, k, dim = 1.0, 1.0, 10, 400
    rng = np.random.default_rng(5)
    raw = rng.normal(size=(k, dim))
    clipped = {c: raw[c] / np.linalg.norm(raw[c]) * clip for c in range(k)}
    survivors = {c: clipped[c] for c in range(dropped, k)}
    noise = ClientNoise(sigma, clip, bound=clip * (1 + 8 * sigma), seed=99)
    residual = _sum(noise, survivors, list(range(k))) - sum(survivors.values())
    want = sigma * clip * math.sqrt((k - dropped) / k)
    # sample std of 400 normals: within 4 standard errors (σ/√(2·400) ≈ 3.5 %)
    assert float(np.std(residual)) == pytest.approx(want, rel=0.15)
    assert abs(float(np.mean(residual))) < 4 * want / math.sqrt(dim)
    # without client noise the same sum is exact up to fixed-point rounding
    exact = _sum(None, survivors, list(range(k))) - sum(survivors.values())
    assert float(np.max(np.abs(exact))) < 1e-6


def test_rounded_updates_stay_within_the_sensitivity_clients_noise_is_calibrated_to() -> None:
    """‖round(s·x)‖₂ ≤ s·C + √d/2 for every clipped x, the ring's own scale ``s`` included."""
    noise = ClientNoise(1.0, clip=1.0, bound=9.0, seed=0)
    members, dim = 7, 17
    scale = (2**31 // members - 1) / noise.bound  # the ring's fixed-point scale, by hand
    sensitivity = noise.sensitivity(members, dim)
    assert sensitivity == pytest.approx(scale * noise.clip + math.sqrt(dim) / 2, rel=1e-15)
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(2000):
        x = rng.normal(size=dim)
        x *= noise.clip / np.linalg.norm(x)
        worst = max(worst, float(np.linalg.norm(np.rint(x * scale))))
    # a clipped update on an axis: s·C = 34087041.89 here, which rounds up, past s·C
    axis = np.zeros(dim)
    axis[0] = noise.clip
    worst = max(worst, float(np.linalg.norm(np.rint(axis * scale))))
    assert worst > scale * noise.clip  # rounding can exceed the clip's image: Δ must cover it
    assert worst <= sensitivity


def _train(**settings: object) -> tuple[float, list[float], list[tuple[int, int, str]]]:
    config = FLConfig(clients=12, features=4, samples_per_client=30, rounds=6, **settings)  # type: ignore[arg-type]
    rng = np.random.default_rng(2)
    truth = ground_truth(config.features, rng)
    data = client_datasets(truth, clients=12, samples=30, non_iid=0.0, rng=rng)
    result = train(
        config,
        data,
        holdout=holdout(truth, 200, rng),
        rng=np.random.default_rng(8),
        randbytes=_randbytes(9),
    )
    shape = [(len(o.sampled), len(o.survivors), o.status) for o in result.outcomes]
    return result.epsilon, [o.multiplier for o in result.outcomes], shape


def test_without_dropout_clients_mode_spends_exactly_server_modes_epsilon() -> None:
    common = {"dp_noise_multiplier": 1.1, "dropout": 0.0, "client_fraction": 0.6}
    server, _, _ = _train(**common, dp_noise_at="server")
    clients, multipliers, _ = _train(**common, dp_noise_at="clients")
    assert math.isfinite(server) and clients == server
    assert set(multipliers) == {1.1}


def test_with_dropouts_clients_mode_is_accounted_at_the_surviving_noise() -> None:
    """Recompute ε with dp_accounting from each round's roster: σ·√(survivors/members)."""
    sigma, q, delta = 1.1, 0.6, 1e-5
    eps, _, shape = _train(
        dp_noise_multiplier=sigma, dropout=0.3, client_fraction=q, dp_noise_at="clients"
    )
    events = [
        dp_accounting.PoissonSampledDpEvent(
            q, dp_accounting.GaussianDpEvent(sigma * math.sqrt(kept / sampled))
        )
        if status == "completed"
        else dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
        for sampled, kept, status in shape
    ]
    assert any(kept < sampled for sampled, kept, status in shape if status == "completed")
    accountant = RdpAccountant()
    accountant.compose(dp_accounting.ComposedDpEvent(events))
    assert eps == pytest.approx(accountant.get_epsilon(delta), rel=1e-9)
    server, _, _ = _train(
        dp_noise_multiplier=sigma, dropout=0.3, client_fraction=q, dp_noise_at="server"
    )
    assert eps > server  # dropouts took their noise with them


def test_clients_mode_without_secure_aggregation_is_refused() -> None:
    with pytest.raises(ValueError, match="secure aggregation"):
        _train(dp_noise_multiplier=1.0, dp_noise_at="clients", secure_aggregation=False)


def test_a_sum_the_clients_noised_gets_no_second_noise_from_the_server() -> None:
    """close_round applies a clients-noised sum as is, but still noises an aborted round."""
    strategy = FedAvg(client_fraction=0.5, noise_multiplier=1.0, clip=1.0, noise_at="clients")
    params, total = np.zeros(50), np.full(50, 2.0)
    common = {"round_number": 0, "sampled": (1, 2, 3), "population": 4}
    new, outcome = close_round(
        strategy, params, total, survivors=(1, 2), rng=np.random.default_rng(0),
        client_multiplier=0.8, **common,
    )  # fmt: skip
    np.testing.assert_array_equal(new, total / (0.5 * 4))
    assert outcome.multiplier == 0.8
    server = FedAvg(client_fraction=0.5, noise_multiplier=1.0, clip=1.0)
    noised, outcome = close_round(
        server, params, total, survivors=(1, 2), rng=np.random.default_rng(0), **common
    )
    assert outcome.multiplier == 1.0
    assert float(np.std(noised * 2.0 - total)) == pytest.approx(1.0, rel=0.3)
    aborted, outcome = close_round(
        strategy, params, None, survivors=(), rng=np.random.default_rng(0), reason="no_survivors",
        **common,
    )  # fmt: skip
    assert outcome.multiplier == 1.0 and float(np.std(aborted * 2.0)) == pytest.approx(1.0, rel=0.3)
