"""Flower's simulation engine on the FL benchmark's plain workload, beside veilcast's round.

Both sides run the same work in the same process: 100 clients of 200 records, 20 features,
FedAvg with half the clients per round, 5 local steps of batch 32 of veilcast's logistic
regression (:meth:`~sim.federated.model.LogisticRegression.local_sgd`, so the arithmetic is
identical), no dropout, no evaluation. Flower (``flwr.simulation.run_simulation``: a
``ServerApp`` with Flower's own ``FedAvg`` and a ``ClientApp`` per client on Ray actors,
:mod:`benchmarks.peers.flower_apps`) samples exactly 50 clients a round; veilcast samples each
client with probability 0.5. A Flower round is timed inside its ``ServerApp``, from configuring
the round to the aggregated model (engine start-up is left out); veilcast's plain round is timed
round by round, once before Flower's run and once after, beside its numpy floor
(:func:`benchmarks.fl.numpy_floor_s`). The printed ratio is the median Flower round over the
median veilcast round, both measured in this run. Flower's engine polls for messages every
0.1 s on both sides (its in-memory grid's ``pull_interval`` and the Ray backend's queue loop),
so its round is latency-bound near 0.2 s: the ratio compares round times, not CPU work.

Then (``secagg_rounds``, default 3) the secure rounds: Flower's ``SecAggPlusWorkflow`` (fresh
keys every round) on the complete graph (every sampled client shares with every other, the
work veilcast's protocol does) and on SecAgg+'s sparse graph of ``⌈log2 50⌉ = 6`` neighbours,
against veilcast's secure round without dropout, timed before and after; veilcast agrees its
pair keys in its first round and reuses them, so both its first and its median round are shown.

Flower is not a veilcast dependency: install it in a separate virtual environment with this
project, e.g. ``python3.11 -m venv /tmp/flwr-venv && /tmp/flwr-venv/bin/pip install
'flwr[simulation]' -e . 'pycryptodome>=4'`` (flwr 1.42 pins pycryptodome below 4, which
veilcast's ``market.crypto`` outgrew; Flower's SecAgg+ Shamir, its one use, ran with 4.5), then
``/tmp/flwr-venv/bin/python -m benchmarks.peers.flower_fedavg [rounds] [secagg_rounds]`` from the
repository's root.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.fl import SCENARIO, timed_rounds, world
from sim.federated.model import LogisticRegression
from sim.federated.training import brier

try:
    import flwr
    from flwr.simulation import run_simulation

    from benchmarks.peers.flower_apps import (
        COMPLETE_GRAPH,
        PER_ROUND,
        SEED,
        WORKLOAD,
        apps,
        secagg_plus_apps,
    )
except ImportError as missing:
    if not (missing.name or "").startswith("flwr"):
        raise
    FLWR_AVAILABLE = False
else:
    FLWR_AVAILABLE = True

MISSING = (
    "benchmarks.peers.flower_fedavg needs Flower's simulation engine, which veilcast does not "
    "depend on. Install it in a separate virtual environment together with this project:\n"
    "  python3.11 -m venv /tmp/flwr-venv && "
    "/tmp/flwr-venv/bin/pip install 'flwr[simulation]' -e . 'pycryptodome>=4'\n"
    "then run /tmp/flwr-venv/bin/python -m benchmarks.peers.flower_fedavg [rounds]"
)
_ROOT = Path(__file__).resolve().parents[2]
SECAGG_ROUNDS = 3
"""SecAgg+ rounds to time: Flower's take tens of seconds each on the complete graph."""


def flower_rounds(
    rounds: int, *, secagg_shares: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of each of ``rounds`` Flower rounds (configure to aggregate), in one simulation,
    and the final global parameters; with ``secagg_shares``, Flower's SecAgg+ workflow."""
    spent: list[float] = []
    final: list[np.ndarray] = []
    if secagg_shares is None:
        server, client = apps(rounds, spent, final)
    else:
        server, client = secagg_plus_apps(rounds, spent, final, shares=secagg_shares)
    # Ray's workers import the client's module by name: give them the repository's root
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    run_simulation(server_app=server, client_app=client, num_supernodes=WORKLOAD.clients)
    if len(spent) != rounds:
        raise RuntimeError(f"Flower finished {len(spent)} of {rounds} rounds")
    return np.array(spent), final[0]


def veilcast_rounds(
    rounds: int, *, secure: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seconds of each veilcast round on the workload (plain, or with secure aggregation), of
    its floor, and the final global parameters."""
    config = replace(WORKLOAD, rounds=rounds, secure_aggregation=secure)
    data, _ = world(config, SEED)
    run = timed_rounds(config, data, SEED)
    return run.seconds.subject, run.seconds.floor, run.params


def _plain(rounds: int) -> None:
    """Flower's plain FedAvg round against veilcast's, veilcast timed before and after."""
    before, floor_before, ours_params = veilcast_rounds(rounds)
    flower, flower_params = flower_rounds(rounds)
    after, floor_after, _ = veilcast_rounds(rounds)
    model, test = LogisticRegression(WORKLOAD.features), world(WORKLOAD, SEED)[1]
    ours = np.concatenate([before, after])
    floor = np.concatenate([floor_before, floor_after])
    ours_s, flower_s = float(np.median(ours)), float(np.median(flower))
    print(f"\n== Flower {flwr.__version__} simulation engine against veilcast, plain FedAvg ==")
    print(
        f"workload: {WORKLOAD.clients} clients x {WORKLOAD.samples_per_client} records, "
        f"{WORKLOAD.features} features, {rounds} rounds, fraction {WORKLOAD.client_fraction}, "
        f"{WORKLOAD.local_steps} local steps of batch {WORKLOAD.batch_size}, no dropout"
    )
    print(
        f"veilcast plain round: median {ours_s * 1e3:.2f} ms (before {np.median(before) * 1e3:.2f}"
        f", after {np.median(after) * 1e3:.2f}); its numpy floor {np.median(floor) * 1e3:.2f} ms"
    )
    print(
        f"Flower round: median {flower_s * 1e3:.1f} ms, first {flower[0] * 1e3:.1f} ms, "
        f"min {flower.min() * 1e3:.1f} ms, {len(flower)} rounds"
    )
    print(
        f"final holdout Brier: veilcast {brier(model, ours_params, test):.4f}, "
        f"Flower {brier(model, flower_params, test):.4f} (same work, different client samples)"
    )
    print(f"Flower round / veilcast plain round: {flower_s / ours_s:.1f}x (same run)")


def _secure(rounds: int) -> None:
    """Flower's SecAgg+ rounds, on the complete graph and on a sparse one, against veilcast's
    secure rounds, veilcast timed before and after."""
    before, floor_before, _ = veilcast_rounds(rounds, secure=True)
    sparse_shares = math.ceil(math.log2(PER_ROUND)) + 1
    complete, _ = flower_rounds(rounds, secagg_shares=COMPLETE_GRAPH)
    sparse, _ = flower_rounds(rounds, secagg_shares=sparse_shares)
    after, floor_after, _ = veilcast_rounds(rounds, secure=True)
    first = float(np.median([before[0], after[0]]))
    ours = float(np.median(np.concatenate([before, after])))
    floor = float(np.median(np.concatenate([floor_before, floor_after])))
    print(f"\n== Flower {flwr.__version__} SecAgg+ against veilcast's secure aggregation ==")
    print(
        f"same workload, {rounds} rounds, no dropout; Flower agrees fresh keys every round, "
        "veilcast in its first round only (pair keys are reused)"
    )
    print(
        f"veilcast secure round: first {first:.3f} s, median {ours:.3f} s (its floor {floor:.3f} s)"
    )
    for name, seconds in (("complete graph", complete), (f"{sparse_shares} shares", sparse)):
        flower_s = float(np.median(seconds))
        print(
            f"Flower SecAgg+, {name}: median {flower_s:.2f} s, first {seconds[0]:.2f} s; "
            f"/ veilcast first round {flower_s / first:.1f}x, / veilcast median "
            f"{flower_s / ours:.1f}x (same run)"
        )


def main(argv: list[str]) -> None:
    """``[rounds] [secagg_rounds]``: run both sides and print medians and ratios from this run."""
    if not FLWR_AVAILABLE:
        raise SystemExit(MISSING)
    rounds = int(argv[0]) if argv else SCENARIO.rounds
    secagg_rounds = int(argv[1]) if len(argv) > 1 else SECAGG_ROUNDS
    logging.getLogger("flwr").setLevel(logging.WARNING)
    _plain(rounds)
    if secagg_rounds:
        _secure(secagg_rounds)


if __name__ == "__main__":
    main(sys.argv[1:])
