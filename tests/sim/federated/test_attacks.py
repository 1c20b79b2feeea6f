"""Gradient inversion and loss-threshold membership inference."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from resultkit.intervals import mean_interval
from sim.federated.attacks import (
    SecureSumObservation,
    UpdateObservation,
    loss_threshold_attack,
    membership_inference,
    reconstruct_record,
    reconstruction_rate,
    recovered_records,
    thin_roc,
)
from sim.federated.dp import membership_advantage_bound
from sim.federated.model import LogisticRegression
from sim.federated.strategy import FLConfig
from sim.federated.training import train
from sim.world.forecast import client_datasets, concat, fresh_like, ground_truth, holdout, pooled


def test_single_record_gradient_reveals_the_record_exactly() -> None:
    model = LogisticRegression(5)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 5))
    params = rng.normal(size=6)
    guess = reconstruct_record(model.gradient(params, x, np.array([1.0])))
    assert guess is not None
    np.testing.assert_allclose(guess, x[0], rtol=1e-12)
    # several local steps on the one record still point along [x, 1]
    local = model.local_sgd(params, x, np.array([0.0]), steps=5, lr=0.3, batch=1, rng=rng)
    again = reconstruct_record(local - params)
    assert again is not None
    np.testing.assert_allclose(again, x[0], rtol=1e-9)
    assert reconstruct_record(np.zeros(6)) is None


def test_reconstruction_rate_per_client_updates_versus_secure_sum() -> None:
    model = LogisticRegression(4)
    rng = np.random.default_rng(2)
    records = {c: rng.normal(size=(8, 4)) for c in range(3)}
    labels = (rng.random(8) < 0.5).astype(float)
    params = np.zeros(5)
    one_record = [  # client c trained on its first record only: the server recovers it
        UpdateObservation(
            c,
            model.local_sgd(params, records[c][:1], labels[:1], steps=1, lr=0.1, batch=1, rng=rng),
        )
        for c in records
    ]
    assert reconstruction_rate([one_record], records) == pytest.approx(3 / 24)
    whole_batch = [  # full-batch updates mix eight records: no record comes out
        UpdateObservation(
            c, model.local_sgd(params, records[c], labels, steps=1, lr=0.1, batch=8, rng=rng)
        )
        for c in records
    ]
    assert reconstruction_rate([whole_batch], records) == 0.0
    total = sum((o.delta for o in one_record), np.zeros(5))
    assert reconstruction_rate([SecureSumObservation(total, total)], records) == 0.0
    assert np.isnan(reconstruction_rate([], records))


def test_roc_auc_and_advantage_known_answer() -> None:
    # members' losses 1, 2, 2; non-members' 2, 3. Pairs (m, n) with m < n: (1,2) (1,3) (2,3) x2
    # = 4, ties (2,2) x2 count 1/2: AUC = (4 + 1) / 6
    result = loss_threshold_attack(np.array([1.0, 2.0, 2.0]), np.array([2.0, 3.0]))
    assert result.auc == pytest.approx(5 / 6)
    np.testing.assert_allclose(result.fpr, [0, 0, 0.5, 1.0])
    np.testing.assert_allclose(result.tpr, [0, 1 / 3, 1.0, 1.0])
    assert result.advantage == pytest.approx(0.5)  # threshold 2: TPR 1, FPR 1/2
    grid_fpr, grid_tpr = thin_roc(result, points=5)
    np.testing.assert_allclose(grid_fpr, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(grid_tpr, [1 / 3, 1 / 3, 1.0, 1.0, 1.0])


def test_mia_is_blind_against_a_model_that_never_saw_the_members() -> None:
    rng = np.random.default_rng(3)
    truth = ground_truth(10, rng)
    model = LogisticRegression(10)
    train_set = holdout(truth, 3000, rng)
    params = model.local_sgd(
        model.init(rng), train_set.x, train_set.y, steps=500, lr=0.2, batch=32, rng=rng
    )
    members, nonmembers = holdout(truth, 3000, rng), holdout(truth, 3000, rng)
    result = membership_inference(model, params, members, nonmembers)
    # AUC of two samples of one distribution: sd ≈ sqrt((1/m + 1/n)/12) ≈ 0.0075
    assert abs(result.auc - 0.5) < 0.03
    assert result.advantage < 0.06
    with pytest.raises(ValueError, match="non-members"):
        membership_inference(model, params, members, holdout(truth, 10, rng))


def test_mia_sees_an_overfit_model() -> None:
    rng = np.random.default_rng(4)
    truth = ground_truth(60, rng)
    members = holdout(truth, 40, rng)  # 40 records, 60 features: separable, memorised
    model = LogisticRegression(60)
    params = model.local_sgd(
        model.init(rng), members.x, members.y, steps=3000, lr=0.5, batch=40, rng=rng
    )
    result = membership_inference(model, params, members, holdout(truth, 400, rng))
    assert result.auc > 0.8
    assert result.advantage > 0.5


OVERFIT = FLConfig(
    clients=20, features=40, samples_per_client=8, non_iid=0.0, rounds=5,
    client_fraction=0.5, local_steps=30, learning_rate=0.5, batch_size=8, dropout=0.0,
    secure_aggregation=False, dp_noise_multiplier=8.0, dp_clip=1.0,
)  # fmt: skip
"""Few records per client and many local steps: a model that remembers its training records."""


def _attacked(config: FLConfig, seed: int) -> tuple[float, float]:
    """The loss-threshold advantage against the final model of world ``seed``, and its ε."""
    rng = np.random.default_rng(seed)
    truth = ground_truth(config.features, rng)
    data = client_datasets(truth, clients=20, samples=8, non_iid=0.0, rng=rng)
    result = train(
        config, data, holdout=holdout(truth, 500, rng), rng=np.random.default_rng(seed + 1),
        randbytes=random.Random(seed).randbytes,
    )  # fmt: skip
    nonmembers = concat([fresh_like(data, rng) for _ in range(4)])
    attack = membership_inference(LogisticRegression(40), result.params, pooled(data), nonmembers)
    return attack.advantage, result.epsilon


def test_dp_noise_cuts_the_measured_advantage_below_the_same_model_without_it() -> None:
    """DP's noise, not the setting, protects: paired against no-DP training on the same data.

    Over eight worlds the advantage without DP (0.16 on average) exceeds DP's (0.07) with the
    whole Student-t 95% interval of the paired difference (0.089 ± 0.023) above 0.03, and DP's
    stays below its (ε, δ) bound in every world. With the noise removed (clipping kept) the two
    models remember as much as each other and the difference vanishes, which the bound alone
    would not notice (it sits at 0.28, above both).
    """
    private, plain, bounds = [], [], []
    for seed in range(8):
        advantage, eps = _attacked(OVERFIT, seed)
        private.append(advantage)
        bounds.append(membership_advantage_bound(eps, OVERFIT.dp_delta))
        plain.append(_attacked(replace(OVERFIT, dp_noise_multiplier=0.0), seed)[0])
    assert 0.3 < eps < 1.0  # a meaningful bound, well below 1
    gain = mean_interval([b - a for a, b in zip(private, plain, strict=True)])
    assert gain.low > 0.03, gain
    assert all(a < b for a, b in zip(private, bounds, strict=True))


def test_a_secure_sum_that_is_one_records_update_gives_that_record_away() -> None:
    # the same inversion runs on the sum the server holds: with a single survivor that trained
    # on a single record, the sum is that record's update, and it matches no other client's
    model = LogisticRegression(4)
    rng = np.random.default_rng(3)
    records = {c: rng.normal(size=(8, 4)) for c in range(3)}
    params = np.zeros(5)
    alone = model.local_sgd(
        params, records[1][2:3], np.array([1.0]), steps=1, lr=0.1, batch=1, rng=rng
    )
    seen = SecureSumObservation(np.append(alone, 1.0), alone)
    assert recovered_records(seen, records) == {(1, 2)}
    assert reconstruction_rate([seen], records) == pytest.approx(1 / 24)
