"""Ground truth, client data and the logistic model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.federated.model import LogisticRegression
from sim.world.forecast import (
    CONCEPT_SCALE,
    LABEL_SKEW,
    client_datasets,
    fresh_like,
    ground_truth,
    holdout,
    market_world,
    pooled,
    sigmoid,
)


def test_truth_drives_markets_and_training_data() -> None:
    rng = np.random.default_rng(1)
    truth = ground_truth(8, rng)
    x, p = market_world(truth, 50, rng)
    assert x.shape == (50, 8)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(x @ truth.weights + truth.bias))))
    data = client_datasets(truth, clients=3, samples=4000, non_iid=0.0, rng=rng)
    # labels follow the truth: mean outcome ≈ mean true probability on each client
    for client in data:
        assert set(np.unique(client.data.y)) <= {0.0, 1.0}
        assert abs(client.data.y.mean() - client.data.probability.mean()) < 0.03
        np.testing.assert_allclose(client.data.probability, truth.probability(client.data.x))


def test_non_iid_skews_features_and_labels() -> None:
    truth = ground_truth(10, np.random.default_rng(2))

    def spread(non_iid: float) -> tuple[float, float]:
        data = client_datasets(
            truth, clients=30, samples=300, non_iid=non_iid, rng=np.random.default_rng(3)
        )
        means = np.array([c.data.x.mean(axis=0) for c in data])
        rates = np.array([c.data.y.mean() for c in data])
        return float(np.linalg.norm(means, axis=1).mean()), float(rates.std())

    iid_shift, iid_labels = spread(0.0)
    skew_shift, skew_labels = spread(1.0)
    # at non_iid=0 a client's mean is sampling noise only: |mean| ≈ sqrt(10/300) ≈ 0.18
    assert iid_shift < 0.3
    assert skew_shift > 3.0  # 1.5 * sqrt(10) ≈ 4.7
    assert skew_labels > 2 * iid_labels
    with pytest.raises(ValueError, match="non_iid"):
        client_datasets(truth, clients=2, samples=5, non_iid=1.5, rng=np.random.default_rng(0))


def test_data_is_reproducible_and_nonmembers_are_fresh() -> None:
    def draw() -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(9)
        truth = ground_truth(5, rng)
        data = client_datasets(truth, clients=4, samples=20, non_iid=0.5, rng=rng)
        return pooled(data).x, holdout(truth, 100, rng).y

    a, b = draw(), draw()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    rng = np.random.default_rng(4)
    truth = ground_truth(5, rng)
    data = client_datasets(truth, clients=4, samples=20, non_iid=0.5, rng=rng)
    others = fresh_like(data, rng)
    assert len(others) == len(pooled(data))
    assert not np.isin(others.x, pooled(data).x).any()


def test_sigmoid_is_stable_at_extremes() -> None:
    z = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    s = sigmoid(z)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, [0.0, 1 / (1 + math.exp(30)), 0.5, 1 / (1 + math.exp(-30)), 1.0])


def test_loss_and_gradient_known_answers() -> None:
    model = LogisticRegression(3)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 3))
    y = (rng.random(20) < 0.5).astype(float)
    zero = model.init(rng)
    assert zero.shape == (4,)
    assert model.loss(zero, x, y) == pytest.approx(math.log(2))
    # at θ = 0 every p is 1/2, so the gradient is [xᵀ(1/2 − y)/n, mean(1/2 − y)]
    np.testing.assert_allclose(
        model.gradient(zero, x, y), np.append(x.T @ (0.5 - y) / 20, np.mean(0.5 - y))
    )
    params = rng.normal(size=4)
    eps = 1e-6
    numeric = np.array(
        [
            (model.loss(params + eps * e, x, y) - model.loss(params - eps * e, x, y)) / (2 * eps)
            for e in np.eye(4)
        ]
    )
    np.testing.assert_allclose(model.gradient(params, x, y), numeric, rtol=1e-6, atol=1e-8)
    # no overflow for huge logits: the loss of a confidently wrong record is its logit
    huge = np.array([1000.0, 0.0, 0.0, 0.0])
    assert model.record_losses(huge, np.array([[1.0, 0, 0]]), np.array([0.0]))[0] == 1000.0


def test_local_sgd_with_full_batches_is_gradient_descent() -> None:
    model = LogisticRegression(4, l2=0.1)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(10, 4))
    y = (rng.random(10) < 0.5).astype(float)
    start = rng.normal(size=5)
    expected = start.copy()
    for _ in range(3):
        expected = expected - 0.2 * model.gradient(expected, x, y)
    got = model.local_sgd(start, x, y, steps=3, lr=0.2, batch=64, rng=np.random.default_rng(0))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert start is not got  # the input stays untouched
    again = model.local_sgd(start, x, y, steps=7, lr=0.1, batch=3, rng=np.random.default_rng(1))
    same = model.local_sgd(start, x, y, steps=7, lr=0.1, batch=3, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(again, same)


def test_sgd_learns_the_truth() -> None:
    rng = np.random.default_rng(7)
    truth = ground_truth(6, rng)
    data = pooled(client_datasets(truth, clients=1, samples=20000, non_iid=0.0, rng=rng))
    model = LogisticRegression(6)
    params = model.local_sgd(model.init(rng), data.x, data.y, steps=4000, lr=0.2, batch=64, rng=rng)
    np.testing.assert_allclose(params[:-1], truth.weights, atol=0.15)
    assert params[-1] == pytest.approx(truth.bias, abs=0.15)


def test_non_iid_gives_each_client_its_own_concept_and_label_prior() -> None:
    """Concept shift and label skew grow linearly with non_iid around the base truth."""
    truth = ground_truth(16, np.random.default_rng(5))

    def truths(non_iid: float) -> tuple[np.ndarray, np.ndarray]:
        data = client_datasets(
            truth, clients=200, samples=2, non_iid=non_iid, rng=np.random.default_rng(6)
        )
        return (
            np.array([c.truth.weights for c in data]) - truth.weights,
            np.array([c.truth.bias for c in data]) - truth.bias,
        )

    weights, biases = truths(0.0)
    assert not weights.any() and not biases.any()  # IID: every client follows the base truth
    half_w, half_b = truths(0.5)
    full_w, full_b = truths(1.0)
    np.testing.assert_allclose(full_w, 2 * half_w)  # the same world at twice the strength
    np.testing.assert_allclose(full_b, 2 * half_b)
    per_coordinate = CONCEPT_SCALE * np.linalg.norm(truth.weights) / np.sqrt(16)
    assert full_w.std() == pytest.approx(per_coordinate, rel=0.1)
    assert full_b.std() == pytest.approx(LABEL_SKEW, rel=0.15)
