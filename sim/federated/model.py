"""Models the federated agent can train: a small protocol and logistic regression in numpy.

Parameters are flat ``float64`` vectors so that every federated step (averaging, clipping,
quantising, masking) treats any model the same way. A second model only has to implement
:class:`Model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sim.world.forecast import sigmoid


class Model(Protocol):
    """What federated training needs from a model: pure functions of a flat parameter vector."""

    @property
    def size(self) -> int:
        """Length of the parameter vector."""
        ...

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """Initial parameters."""
        ...

    def predict_proba(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Event probabilities for the rows of ``x``."""
        ...

    def record_losses(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Loss of each record (used by membership inference)."""
        ...

    def loss(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
        """Mean training objective over the records."""
        ...

    def gradient(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of :meth:`loss` with respect to ``params``."""
        ...

    def local_sgd(
        self,
        params: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        *,
        steps: int,
        lr: float,
        batch: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Parameters after ``steps`` minibatch SGD steps from ``params`` (a new array)."""
        ...


@dataclass(frozen=True, slots=True)
class LogisticRegression:
    """Logistic regression with bias; parameters are ``[w_1, …, w_d, b]``.

    The objective is the mean log loss plus ``l2/2 · |w|²`` (the bias is not penalised).

    Attributes:
        features: number of input features ``d``.
        l2: ridge penalty on the weights.
    """

    features: int
    l2: float = 0.0

    @property
    def size(self) -> int:
        """``features + 1``: the weights and the bias."""
        return self.features + 1

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """All zeros (the loss is convex, so no symmetry to break); ``rng`` is unused."""
        del rng
        return np.zeros(self.size)

    def logits(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``x·w + b`` for each row."""
        return x @ params[:-1] + params[-1]

    def predict_proba(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``sigmoid(x·w + b)`` for each row."""
        return sigmoid(self.logits(params, x))

    def record_losses(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Log loss of each record, computed from the logit so it never takes ``log(0)``."""
        z = self.logits(params, x)
        return np.logaddexp(0.0, z) - y * z

    def loss(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
        """Mean log loss plus the ridge penalty."""
        penalty = 0.5 * self.l2 * float(params[:-1] @ params[:-1])
        return float(np.mean(self.record_losses(params, x, y))) + penalty

    def gradient(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``[xᵀ(p − y)/n + l2·w, mean(p − y)]``."""
        residual = self.predict_proba(params, x) - y
        grad = np.empty(self.size)
        grad[:-1] = x.T @ residual / len(y) + self.l2 * params[:-1]
        grad[-1] = residual.mean()
        return grad

    def local_sgd(
        self,
        params: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        *,
        steps: int,
        lr: float,
        batch: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Minibatch SGD: batches are consecutive slices of one random permutation per pass.

        Sampling without replacement within a pass means a client with ``batch ≥ n`` uses its
        whole dataset every step (full-batch gradient descent).
        """
        n = len(y)
        size = min(batch, n)
        w = params[:-1].copy()
        b = float(params[-1])
        order = rng.permutation(n)
        cursor = 0
        for _ in range(steps):
            if cursor + size > n:
                order = rng.permutation(n)
                cursor = 0
            idx = order[cursor : cursor + size]
            cursor += size
            xb = x[idx]
            residual = sigmoid(xb @ w + b) - y[idx]
            w -= lr * (xb.T @ residual / size + self.l2 * w)
            b -= lr * float(residual.mean())
        return np.append(w, b)
