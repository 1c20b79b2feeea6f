"""FedAvg and DP-FedAvg: sampling, weighting, clipping and noise."""

from __future__ import annotations

import numpy as np
import pytest

from sim.federated.strategy import ClientResult, FedAvg, FLConfig


def test_fedavg_is_the_sample_weighted_mean_update() -> None:
    strategy = FedAvg(client_fraction=0.5, weight_unit=100.0)
    params = np.array([1.0, -1.0, 0.5])
    results = [
        ClientResult(0, np.array([0.3, 0.0, -0.6]), samples=100),
        ClientResult(1, np.array([-0.3, 0.6, 0.0]), samples=200),
        ClientResult(2, np.array([0.9, 0.3, 0.3]), samples=100),
    ]
    # by hand: weights 1, 2, 1 (sum 4)
    # w·Δ sums: [0.3 - 0.6 + 0.9, 0 + 1.2 + 0.3, -0.6 + 0 + 0.3] = [0.6, 1.5, -0.3]
    expected = params + np.array([0.6, 1.5, -0.3]) / 4
    got = strategy.aggregate(params, results, population=10, rng=np.random.default_rng(0))
    np.testing.assert_allclose(got, [1.15, -0.625, 0.425])
    np.testing.assert_allclose(got, expected)
    # the payload carries the weight, so the sum alone suffices (as under secure aggregation)
    np.testing.assert_allclose(strategy.payload(results[1]), [-0.6, 1.2, 0.0, 2.0])
    # nobody contributed: parameters stay
    empty = strategy.apply_sum(params, np.zeros(4), population=10, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(empty, params)


def test_poisson_sampling_rate_and_independence() -> None:
    strategy = FedAvg(client_fraction=0.3)
    rng = np.random.default_rng(11)
    clients = list(range(500))
    rounds = [strategy.configure(r, clients, rng) for r in range(40)]
    sizes = np.array([len(s) for s in rounds])
    # Binomial(500, 0.3): mean 150, sd ≈ 10.2; the mean of 40 rounds has sd ≈ 1.6
    assert abs(sizes.mean() - 150) < 6
    assert sizes.std() > 4  # the count varies: not a fixed-size sample
    assert all(list(s) == sorted(set(s)) and set(s) <= set(clients) for s in rounds)
    # each client's inclusion frequency is about q, and two rounds are not the same sample
    counts = np.bincount(np.concatenate(rounds), minlength=500)
    assert abs(counts.mean() / 40 - 0.3) < 0.02
    assert rounds[0] != rounds[1]
    assert strategy.configure(0, [], rng) == ()


def test_dp_fedavg_clips_each_update_and_noises_the_sum() -> None:
    strategy = FedAvg(client_fraction=0.25, noise_multiplier=2.0, clip=1.0)
    params = np.zeros(2)
    big = ClientResult(0, np.array([3.0, 4.0]), samples=50)  # norm 5 -> clipped to 1
    small = ClientResult(1, np.array([0.3, 0.4]), samples=500)  # norm 0.5 -> kept, weight 1
    np.testing.assert_allclose(strategy.payload(big), [0.6, 0.8])
    np.testing.assert_allclose(strategy.payload(small), [0.3, 0.4])
    got = strategy.aggregate(params, [big, small], population=8, rng=np.random.default_rng(3))
    noise = np.random.default_rng(3).normal(0.0, 2.0 * 1.0, size=2)
    # fixed denominator: the expected count q·N = 2, whatever the realised count
    np.testing.assert_allclose(got, (np.array([0.9, 1.2]) + noise) / 2.0)


def test_dp_noise_has_std_sigma_times_clip() -> None:
    strategy = FedAvg(client_fraction=0.5, noise_multiplier=1.5, clip=0.4)
    rng = np.random.default_rng(4)
    draws = np.array(
        [strategy.apply_sum(np.zeros(50), np.zeros(50), population=2, rng=rng) for _ in range(200)]
    )
    # population 2 at q = 0.5: divided by 1, so the draws are the noise itself
    assert draws.std() == pytest.approx(1.5 * 0.4, rel=0.03)
    assert abs(draws.mean()) < 0.01


def test_config_validates_and_maps_to_the_strategy() -> None:
    config = FLConfig(dp_noise_multiplier=1.1, dp_clip=0.5, client_fraction=0.2)
    strategy = FedAvg.from_config(config)
    assert strategy.dp and config.dp
    assert (strategy.noise_multiplier, strategy.clip, strategy.client_fraction) == (1.1, 0.5, 0.2)
    assert strategy.payload_bound() == 0.5
    assert FedAvg.from_config(FLConfig()).payload_bound() == FLConfig().secagg_bound
    for bad in ({"client_fraction": 0.0}, {"dropout": 1.0}, {"non_iid": -0.1}, {"dp_delta": 1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FLConfig(**bad)
