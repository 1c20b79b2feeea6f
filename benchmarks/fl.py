"""Federated-learning benchmark: wall time per round, plain versus secure aggregation.

Scenario: 100 clients, 20 features, 200 records each, 50 rounds, Poisson sampling at 0.5,
5 local steps of batch 32, 10% dropout. Reported per round (means over the run):

* ``plain_s``: a round with plain aggregation (sampling, local SGD, averaging, holdout score);
* ``secure_s``: the same round with secure aggregation, split into its phases;
* ``floor_s``: what secure aggregation cannot avoid, timed alone with pycryptodome right after
  each secure round: that round's ECDH agreements (clients' cache misses plus the server's
  recomputations for dropped clients), Shamir splits and combinations, share digests, and
  sealing and opening every share envelope;
* ``bare_numpy_s``: only the arithmetic of a plain round in a bare numpy loop, timed right
  after each plain round on the same survivors (local SGD and the weighted average).

Rounds are timed one by one (:func:`~sim.federated.training.run_round`), each followed by its
reference, so load from other processes on a shared machine hits both alike. Holdout scoring
is not part of a round here (Flower evaluates separately too).

Targets: ``secure_s ≤ 1.5·floor_s + plain_s`` and ``plain_s ≤ 2·bare_numpy_s``. Reference:
Flower 1.42 on the same work, 0.21 s per plain round and 3.9 s per SecAgg+ round.

Run: ``python -m benchmarks.fl [rounds]``.
"""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from time import perf_counter
from typing import Any

import numpy as np

from market.crypto import ecdh_key, keypair
from market.shamir import shamir_combine, shamir_split
from sim.federated.model import LogisticRegression
from sim.federated.secagg import ChannelKeys, open_envelope, seal, share_digest, threshold
from sim.federated.strategy import FLConfig, RoundOutcome
from sim.federated.training import PhaseTimer, Session, brier, run_round
from sim.world.forecast import ClientData, Dataset, client_datasets, ground_truth, holdout

SCENARIO = FLConfig(
    clients=100,
    features=20,
    samples_per_client=200,
    rounds=50,
    client_fraction=0.5,
    local_steps=5,
    batch_size=32,
)
FLOWER_PLAIN_S = 0.21
FLOWER_SECAGG_S = 3.9


def _world(config: FLConfig, seed: int) -> tuple[list[ClientData], Dataset]:
    rng = np.random.default_rng(seed)
    truth = ground_truth(config.features, rng)
    data = client_datasets(
        truth,
        clients=config.clients,
        samples=config.samples_per_client,
        non_iid=config.non_iid,
        rng=rng,
    )
    return data, holdout(truth, 10_000, rng)


def floor_round(outcome: RoundOutcome, agreements: int) -> tuple[float, float]:
    """Seconds of one round's unavoidable secure-aggregation work, timed alone: (ECDH, shares).

    ``agreements`` ECDH key agreements; then, with ``n`` participants and threshold ``t``:
    ``2n`` Shamir splits into ``n`` shares, ``n(n−1)`` envelopes sealed and opened, ``2n²``
    share digests published, and per participant (a seed per survivor, a key per dropped
    client) ``t`` digests checked and one combination of ``t`` shares.
    """
    source = random.Random(outcome.round).randbytes
    # distinct keys, as in the run: one repeated pair would flatter the floor (warm caches)
    pool = [(keypair(source)[0], keypair(source)[1]) for _ in range(min(agreements, 64))]
    secret = pool[0][0] if pool else keypair(source)[0]
    channel = ChannelKeys.from_key(bytes(32))
    n = len(outcome.sampled) if outcome.status == "completed" else 0
    start = perf_counter()
    for i in range(agreements):
        mine, theirs = pool[i % len(pool)]
        ecdh_key(mine, theirs, info=b"floor")
    ecdh_s = perf_counter() - start
    start = perf_counter()
    if n:
        t = threshold(n)
        shares = [shamir_split(secret, n=n, k=t, randbytes=source) for _ in range(2 * n)]
        for owner in range(n):
            for holder in range(n - 1):
                open_envelope(channel, seal(channel, owner, holder, outcome.round, bytes(64)))
        for i, split in enumerate(shares):
            for holder, share in enumerate(split):
                share_digest(outcome.round, i // 2, holder, "seed", share)
        for owner in range(n):
            for holder, share in enumerate(shares[owner][:t]):
                share_digest(outcome.round, owner, holder, "seed", share)
            shamir_combine(shares[owner][:t])
    return ecdh_s, perf_counter() - start


def bare_round(
    config: FLConfig, data: list[ClientData], params: np.ndarray, outcome: RoundOutcome
) -> float:
    """Seconds of a plain round's arithmetic alone: the survivors' local SGD and the average."""
    rng = np.random.default_rng(outcome.round)
    lr, batch = config.learning_rate, config.batch_size
    start = perf_counter()
    w, b = params[:-1], params[-1]
    dw, db, weight = np.zeros_like(w), 0.0, 0.0
    for c in outcome.survivors:
        x, y = data[c].data.x, data[c].data.y
        lw, lb = w.copy(), b
        for _ in range(config.local_steps):
            idx = rng.integers(0, len(y), batch)
            xb = x[idx]
            r = 1.0 / (1.0 + np.exp(-(xb @ lw + lb))) - y[idx]
            lw -= lr * (xb.T @ r) / batch
            lb -= lr * r.mean()
        dw += len(y) * (lw - w)
        db += len(y) * (lb - b)
        weight += len(y)
    if weight:
        w, b = w + dw / weight, b + db / weight
    return perf_counter() - start


def timed_rounds(
    config: FLConfig, data: list[ClientData], seed: int, timer: PhaseTimer | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[RoundOutcome]]:
    """Per-round seconds of the run and of its reference (floor if secure, else bare numpy).

    Returns round seconds, reference seconds (rounds × 2: floor ECDH and share handling, or
    bare numpy and 0), the final parameters and the outcomes.
    """
    timer = timer if timer is not None else PhaseTimer()
    session = Session.start(
        config,
        data,
        rng=np.random.default_rng(seed),
        randbytes=random.Random(seed).randbytes,
        timer=timer,
    )
    params = session.model.init(session.rng)
    spent: list[float] = []
    reference: list[tuple[float, float]] = []
    outcomes: list[RoundOutcome] = []
    for r in range(config.rounds):
        agreements = timer.agreements + timer.server_agreements
        start = perf_counter()
        new, outcome, _ = run_round(session, params, r)
        spent.append(perf_counter() - start)
        if config.secure_aggregation:
            done = timer.agreements + timer.server_agreements - agreements
            reference.append(floor_round(outcome, done))
        else:
            reference.append((bare_round(config, data, params, outcome), 0.0))
        params = new
        outcomes.append(outcome)
    return np.array(spent), np.array(reference), params, outcomes


def measure(*, rounds: int = SCENARIO.rounds, seed: int = 0) -> dict[str, Any]:
    """Run the scenario plain and secure; mean seconds per round and the target checks."""
    config = replace(SCENARIO, rounds=rounds)
    data, test = _world(config, seed)
    plain, bare, plain_params, _ = timed_rounds(
        replace(config, secure_aggregation=False), data, seed
    )
    timer = PhaseTimer()
    secure, floor, secure_params, outcomes = timed_rounds(config, data, seed, timer)
    plain_s, secure_s = float(plain.mean()), float(secure.mean())
    floor_s, bare_s = float(floor.sum(axis=1).mean()), float(bare[:, 0].mean())
    model = LogisticRegression(config.features)
    return {
        "scenario": {
            "clients": config.clients,
            "features": config.features,
            "samples_per_client": config.samples_per_client,
            "rounds": rounds,
            "client_fraction": config.client_fraction,
            "local_steps": config.local_steps,
            "batch_size": config.batch_size,
            "dropout": config.dropout,
        },
        "plain_s": plain_s,
        "secure_s": secure_s,
        "secure_first_round_s": float(secure[0]),
        "secure_median_round_s": float(np.median(secure)),
        "secure_split_s": {
            "key_agreement": timer.key_agreement / rounds,
            "sharing": timer.sharing / rounds,
            "masking": timer.masking / rounds,
            "unmasking": timer.unmasking / rounds,
            "training_and_rest": secure_s - timer.total() / rounds,
        },
        "agreements": {"clients": timer.agreements, "server": timer.server_agreements},
        "completed_rounds": sum(o.status == "completed" for o in outcomes),
        "floor_s": floor_s,
        "floor_split_s": {"ecdh": float(floor[:, 0].mean()), "shares": float(floor[:, 1].mean())},
        "ecdh_ms_in_run_vs_alone": (
            1e3 * timer.key_agreement / max(1, timer.agreements),
            1e3 * float(floor[:, 0].sum()) / max(1, timer.agreements + timer.server_agreements),
        ),
        "bare_numpy_s": bare_s,
        "secure_overhead_over_floor": (secure_s - plain_s) / floor_s,
        "plain_over_bare": plain_s / bare_s,
        "secure_target_met": secure_s <= 1.5 * floor_s + plain_s,
        "plain_target_met": plain_s <= 2.0 * bare_s,
        "speedup_vs_flower_plain": FLOWER_PLAIN_S / plain_s,
        "speedup_vs_flower_secagg": FLOWER_SECAGG_S / secure_s,
        "final_brier": {
            "plain": brier(model, plain_params, test),
            "secure": brier(model, secure_params, test),
        },
    }


def main(argv: list[str]) -> None:
    """Print :func:`measure`'s numbers, one per line."""
    rounds = int(argv[0]) if argv else SCENARIO.rounds
    for key, value in measure(rounds=rounds).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main(sys.argv[1:])
