"""Privacy attacks on federated training: gradient inversion and membership inference.

**Reconstruction.** For logistic regression the gradient of one record ``(x, y)`` is
``(p − y)·[x, 1]``, so ``x = ∇w / ∇b`` exactly; the same holds for a client's whole update
when all its local steps used that one record (every step's gradient is a multiple of
``[x, 1]``). The attack therefore computes the candidate ``x̂ = Δw / Δb`` from each update the
server saw and counts the client's records within a tolerance of it. Updates mixing several
records yield a candidate matching none of them, so the rate falls toward 0 with the batch size.
Under secure aggregation the server receives only the sum over clients: nothing per client
exists to invert, and the rate is 0 by construction.

**Membership inference** (Yeom et al., "Privacy Risk in Machine Learning", CSF 2018): the
loss-threshold attack calls a record a member when the final model's loss on it is below a
threshold. Sweeping the threshold gives the ROC curve against members (training records) and
fresh non-members from the same distributions; we report its AUC, the advantage
``max(TPR − FPR)`` (Yeom's membership advantage at the best threshold) and the curve itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sim.federated.dp import membership_advantage_bound
from sim.federated.model import Model
from sim.world.forecast import Dataset

__all__ = [
    "MembershipResult",
    "SecureSumObservation",
    "UpdateObservation",
    "loss_threshold_attack",
    "membership_advantage_bound",
    "membership_inference",
    "reconstruct_record",
    "reconstruction_rate",
    "recovered_records",
    "thin_roc",
]


@dataclass(frozen=True, slots=True, eq=False)
class UpdateObservation:
    """One client's update as the server received it (plain aggregation)."""

    client: int
    delta: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class SecureSumObservation:
    """All the server receives under secure aggregation: the sum of the round's payloads.

    ``update`` is the model update the server reads off that sum (the weighted mean of the
    survivors' deltas, or under DP the sum of their clipped deltas): what its attacks invert.
    """

    total: np.ndarray
    update: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class MembershipResult:
    """The loss-threshold attack's outcome.

    Attributes:
        auc: area under the ROC curve (0.5 = guessing).
        advantage: ``max(TPR − FPR)`` over all thresholds.
        fpr: false-positive rates of the ROC points, from (0, 0) to (1, 1).
        tpr: true-positive rates of the same points.
        members: number of member records attacked.
        nonmembers: number of non-member records attacked.
    """

    auc: float
    advantage: float
    fpr: np.ndarray
    tpr: np.ndarray
    members: int
    nonmembers: int


def reconstruct_record(delta: np.ndarray, *, min_bias: float = 1e-12) -> np.ndarray | None:
    """The record ``x̂ = Δw / Δb`` a single-record update would reveal (None if ``Δb ≈ 0``)."""
    db = float(delta[-1])
    if abs(db) <= min_bias * max(1.0, float(np.max(np.abs(delta[:-1])))):
        return None
    return delta[:-1] / db


def recovered_records(
    observed: Sequence[UpdateObservation] | SecureSumObservation,
    records: Mapping[int, np.ndarray],
    *,
    tol: float = 1e-6,
) -> set[tuple[int, int]]:
    """The ``(client, row)`` records the inversion recovers from one round's observation.

    Each client's update is inverted and compared with that client's rows. Under secure
    aggregation the server holds one sum: the same attack runs on it and is compared with
    every client's rows (the server does not know whose it would be), so it recovers a record
    only when the sum is in effect one record's update, as when a single survivor trained on one
    record. A record counts as recovered when ``|x − x̂| ≤ tol·max(1, |x|)`` (L2).
    """
    if isinstance(observed, SecureSumObservation):
        inversions = [(observed.update, sorted(records))]
    else:
        inversions = [(obs.delta, [obs.client]) for obs in observed]
    found: set[tuple[int, int]] = set()
    for delta, clients in inversions:
        guess = reconstruct_record(delta)
        if guess is None:
            continue
        for client in clients:
            x = records[client]
            distance = np.linalg.norm(x - guess, axis=1)
            close = distance <= tol * np.maximum(1.0, np.linalg.norm(x, axis=1))
            found.update((client, int(row)) for row in np.flatnonzero(close))
    return found


def reconstruction_rate(
    rounds: Sequence[Sequence[UpdateObservation] | SecureSumObservation],
    records: Mapping[int, np.ndarray],
) -> float:
    """Distinct records recovered in any round, over all clients' records.

    ``rounds`` holds what the server received in each completed round (NaN with none: the
    rate does not apply). A record recovered in several rounds counts once.
    """
    if not rounds:
        return float("nan")
    found = set().union(*(recovered_records(r, records) for r in rounds))
    total = sum(x.shape[0] for x in records.values())
    return len(found) / total if total else float("nan")


def loss_threshold_attack(
    member_losses: np.ndarray, nonmember_losses: np.ndarray
) -> MembershipResult:
    """ROC, AUC and advantage of "member iff loss ≤ τ" over every threshold ``τ``.

    Tied losses move together (one ROC point per distinct loss), so the AUC equals the
    Mann-Whitney probability that a random member's loss is below a random non-member's, ties
    counting one half.
    """
    m, n = len(member_losses), len(nonmember_losses)
    if m == 0 or n == 0:
        raise ValueError("need at least one member and one non-member")
    losses = np.concatenate([member_losses, nonmember_losses])
    is_member = np.concatenate([np.ones(m), np.zeros(n)])
    order = np.argsort(losses, kind="stable")
    sorted_losses = losses[order]
    hits = np.cumsum(is_member[order])
    # keep the last index of each run of equal losses: a threshold admits all ties at once
    last = np.flatnonzero(np.append(np.diff(sorted_losses) != 0, True))
    tpr = np.concatenate([[0.0], hits[last] / m])
    fpr = np.concatenate([[0.0], (last + 1 - hits[last]) / n])
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return MembershipResult(
        auc=auc,
        advantage=float(np.max(tpr - fpr)),
        fpr=fpr,
        tpr=tpr,
        members=m,
        nonmembers=n,
    )


def membership_inference(
    model: Model, params: np.ndarray, members: Dataset, nonmembers: Dataset
) -> MembershipResult:
    """Yeom et al.'s loss-threshold attack on the final model.

    Requires at least as many non-members as members, so the curve is not dominated by a few
    non-member losses.
    """
    if len(nonmembers) < len(members):
        raise ValueError(
            f"need at least as many non-members ({len(nonmembers)}) as members ({len(members)})"
        )
    return loss_threshold_attack(
        model.record_losses(params, members.x, members.y),
        model.record_losses(params, nonmembers.x, nonmembers.y),
    )


def thin_roc(result: MembershipResult, *, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve on an even FPR grid (for the ``fl_roc`` table): ``(fpr, tpr)``.

    TPR at each grid FPR is the best TPR the attack reaches at that FPR or below, i.e. the
    step curve's upper envelope, so thinning never overstates the attack.
    """
    grid = np.linspace(0.0, 1.0, points)
    index = np.searchsorted(result.fpr, grid, side="right") - 1
    return grid, result.tpr[index]
