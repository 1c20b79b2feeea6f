"""Synthetic forecasting data for the federated agent: one logistic ground truth for everything.

The markets' true probabilities and the clients' training records come from the same ground
truth, a logistic model ``p = sigmoid(w·x + b)``, so a forecaster that learns ``w`` and ``b``
from the clients' records prices the markets well. Features of the market world and of the
held-out events follow the base distribution ``N(0, I)``.

Non-IID skew (``non_iid`` = ``s`` in [0, 1]) has the three forms of Kairouz et al., "Advances
and Open Problems in Federated Learning" (2021, section 3.1), all scaled by the one knob:

* **feature shift**: client ``c`` draws its features from ``N(μ_c, I)`` with
  ``μ_c = s · SHIFT_SCALE · z_c``, ``z_c ~ N(0, I)``;
* **concept shift** (same x, different y): client ``c``'s labels follow its own weights
  ``w_c = w + s · CONCEPT_SCALE · (|w|/√d) · u_c``, ``u_c ~ N(0, I)``, so ``P(y | x)`` differs
  between clients and their local optima pull apart (client drift);
* **label skew** (prior shift): client ``c``'s bias is ``b + s · LABEL_SKEW · v_c``,
  ``v_c ~ N(0, 1)``. For a logistic model, moving a client's class prior from ``π`` to ``π_c``
  with ``P(x | y)`` kept is exactly a bias shift by ``logit(π_c) − logit(π)``.

The perturbations are drawn whatever ``s`` is and then scaled, so worlds that differ only in
``non_iid`` are the same world at a different strength. The held-out events and the markets
follow the base truth ``(w, b)`` on ``N(0, I)``, the centre the clients are perturbed around.
``non_iid = 0`` gives every client the base distribution and the base truth.

:func:`forecast_world` draws everything of a run's forecasting world at once (from the world
seed): the ground truth, the markets' features, the clients' records and nodes, the coordinator,
the held-out events and the membership-inference non-members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

SHIFT_SCALE = 2.0
"""Standard deviation, per feature, of a client's mean shift at ``non_iid = 1``."""

CONCEPT_SCALE = 0.2
"""Per-coordinate std of a client's weight perturbation at ``non_iid = 1``, relative to ``w``'s."""

LABEL_SKEW = 0.5
"""Standard deviation of a client's bias (log-odds of its class prior) shift at ``non_iid = 1``."""

DEFAULT_SIGNAL = 2.0
"""Norm of the true weights: the standard deviation of the true logit under ``N(0, I)``."""


@dataclass(frozen=True, slots=True, eq=False)
class GroundTruth:
    """The world's logistic model: ``P(event) = sigmoid(weights · x + bias)``."""

    weights: np.ndarray
    bias: float

    @property
    def features(self) -> int:
        """Number of features."""
        return int(self.weights.shape[0])

    def probability(self, x: np.ndarray) -> np.ndarray:
        """True event probabilities for the rows of ``x``."""
        return sigmoid(x @ self.weights + self.bias)


@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    """Records ``x`` (rows), their 0/1 outcomes ``y`` and the true probabilities behind them."""

    x: np.ndarray
    y: np.ndarray
    probability: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class ClientData:
    """One client's private training records, the feature shift and the truth they follow."""

    client: int
    data: Dataset
    shift: np.ndarray
    truth: GroundTruth
    """The client's own labelling model (the base truth under concept shift and label skew)."""

    @property
    def samples(self) -> int:
        """Number of training records."""
        return len(self.data)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow and with full relative precision in the tails."""
    return np.exp(-np.logaddexp(0.0, -z))


def ground_truth(
    features: int, rng: np.random.Generator, *, signal: float = DEFAULT_SIGNAL
) -> GroundTruth:
    """Draw a ground truth with ``|weights| ≈ signal`` and a small bias.

    Weights are ``N(0, signal²/features)`` per coordinate so that the true logit of a base record
    has standard deviation about ``signal`` whatever the number of features: probabilities then
    spread over (0, 1) instead of piling up at 0.5 or at the ends.
    """
    if features < 1:
        raise ValueError(f"features must be positive, got {features}")
    weights = rng.normal(0.0, signal / np.sqrt(features), size=features)
    bias = float(rng.normal(0.0, 0.5))
    return GroundTruth(weights=weights, bias=bias)


def records(
    truth: GroundTruth, count: int, rng: np.random.Generator, *, shift: np.ndarray | None = None
) -> Dataset:
    """``count`` fresh records from ``N(shift, I)`` with outcomes drawn from the truth."""
    x = rng.standard_normal((count, truth.features))
    if shift is not None:
        x += shift
    probability = truth.probability(x)
    y = (rng.random(count) < probability).astype(np.float64)
    return Dataset(x=x, y=y, probability=probability)


def market_world(
    truth: GroundTruth, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix of ``count`` markets and their true probabilities (base distribution)."""
    x = rng.standard_normal((count, truth.features))
    return x, truth.probability(x)


def client_shifts(
    features: int, *, clients: int, non_iid: float, rng: np.random.Generator
) -> np.ndarray:
    """Per-client mean shifts, one row per client, scaled by ``non_iid`` (see module doc)."""
    if not 0.0 <= non_iid <= 1.0:
        raise ValueError(f"non_iid must lie in [0, 1], got {non_iid}")
    return non_iid * SHIFT_SCALE * rng.standard_normal((clients, features))


def client_datasets(
    truth: GroundTruth,
    *,
    clients: int,
    samples: int,
    non_iid: float,
    rng: np.random.Generator,
) -> list[ClientData]:
    """Each client's ``samples`` training records, skewed by ``non_iid``; ids are 0..clients-1."""
    shifts = client_shifts(truth.features, clients=clients, non_iid=non_iid, rng=rng)
    truths = client_truths(truth, clients=clients, non_iid=non_iid, rng=rng)
    return [
        ClientData(
            client=c,
            data=records(truths[c], samples, rng, shift=shifts[c]),
            shift=shifts[c],
            truth=truths[c],
        )
        for c in range(clients)
    ]


def client_truths(
    truth: GroundTruth, *, clients: int, non_iid: float, rng: np.random.Generator
) -> list[GroundTruth]:
    """Each client's labelling model: concept shift and label skew around ``truth`` (module doc)."""
    scale = non_iid * CONCEPT_SCALE * float(np.linalg.norm(truth.weights)) / np.sqrt(truth.features)
    concepts = scale * rng.standard_normal((clients, truth.features))
    priors = non_iid * LABEL_SKEW * rng.standard_normal(clients)
    return [
        GroundTruth(weights=truth.weights + concepts[c], bias=truth.bias + float(priors[c]))
        for c in range(clients)
    ]


def fresh_like(datasets: Sequence[ClientData], rng: np.random.Generator) -> Dataset:
    """As many new records as the clients hold, each client's from its own distribution.

    These are the non-members of a membership-inference test: drawn exactly like the training
    records (each client's own features and truth), but never seen in training.
    """
    parts = [records(c.truth, c.samples, rng, shift=c.shift) for c in datasets]
    return concat(parts)


def holdout(truth: GroundTruth, n: int, rng: np.random.Generator) -> Dataset:
    """``n`` held-out events from the base distribution (the markets' distribution)."""
    return records(truth, n, rng)


def concat(parts: Sequence[Dataset]) -> Dataset:
    """All records of ``parts`` in one dataset, in order."""
    if not parts:
        raise ValueError("nothing to concatenate")
    return Dataset(
        x=np.concatenate([p.x for p in parts]),
        y=np.concatenate([p.y for p in parts]),
        probability=np.concatenate([p.probability for p in parts]),
    )


def pooled(datasets: Sequence[ClientData]) -> Dataset:
    """Every client's records in one dataset (the centralized baseline's training set)."""
    return concat([c.data for c in datasets])


HOLDOUT_EVENTS = 10_000
"""Held-out events the federated model is scored on (``fl.model_brier``)."""


@dataclass(frozen=True, slots=True, eq=False)
class ForecastWorld:
    """Everything the world seed decides about the forecaster.

    Attributes:
        truth: the logistic ground truth shared by the markets and the training data.
        market_x: one feature row per market.
        market_probs: each market's true probability of its event (outcome 1).
        clients: each client's private records (client ``c`` is ``clients[c]``).
        client_nodes: the network node of each client.
        coordinator: the node that runs the federated rounds (and the forecaster trader).
        holdout: :data:`HOLDOUT_EVENTS` fresh events from the base distribution.
        nonmembers: fresh records drawn like the clients' own, never trained on.
        withdrawals: client → the round from which it withdraws consent
            (:func:`consent_withdrawals`; empty when nobody does).
    """

    truth: GroundTruth
    market_x: np.ndarray
    market_probs: np.ndarray
    clients: tuple[ClientData, ...]
    client_nodes: tuple[int, ...]
    coordinator: int
    holdout: Dataset
    nonmembers: Dataset
    withdrawals: Mapping[int, int] = field(default_factory=dict)


def consent_withdrawals(
    *, clients: int, fraction: float, rounds: int, rng: np.random.Generator
) -> dict[int, int]:
    """Which clients withdraw consent, and from which round (a stream of the world seed).

    ``floor(fraction·clients + 0.5)`` clients (the role-count rule), the first of a random
    permutation, so a larger fraction withdraws a superset; each withdraws from a round drawn
    uniformly from ``1 … rounds − 1`` (it may have taken part before: withdrawal is not
    erasure), or from round 0 when there is only one round. Drawn in full whatever the
    fraction, so the rounds do not depend on it.
    """
    order = rng.permutation(clients)
    at = rng.integers(1, rounds, size=clients) if rounds > 1 else np.zeros(clients, dtype=int)
    count = int(np.floor(fraction * clients + 0.5))
    return {int(order[i]): int(at[i]) for i in range(count)}


def forecast_world(
    *,
    features: int,
    clients: int,
    samples: int,
    non_iid: float,
    markets: int,
    nodes: int,
    rng: np.random.Generator,
) -> ForecastWorld:
    """Draw the forecasting world from ``rng`` (a stream of the world seed), in a fixed order.

    Clients sit on distinct nodes when there are enough (the scenario checks ``clients ≤
    nodes``); the coordinator is any node, possibly a client's too.
    """
    if clients > nodes:
        raise ValueError(f"{clients} clients need as many nodes, got {nodes}")
    truth = ground_truth(features, rng)
    market_x, market_probs = market_world(truth, markets, rng)
    data = client_datasets(truth, clients=clients, samples=samples, non_iid=non_iid, rng=rng)
    client_nodes = tuple(int(v) for v in rng.choice(nodes, clients, replace=False))
    coordinator = int(rng.integers(nodes))
    return ForecastWorld(
        truth=truth,
        market_x=market_x,
        market_probs=market_probs,
        clients=tuple(data),
        client_nodes=client_nodes,
        coordinator=coordinator,
        holdout=holdout(truth, HOLDOUT_EVENTS, rng),
        nonmembers=fresh_like(data, rng),
    )
