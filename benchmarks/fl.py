"""Federated-learning benchmark: plain and secure rounds, each against a floor timed beside it.

Scenario: 100 clients, 20 features, 200 records each, 50 rounds, Poisson sampling at 0.5,
5 local steps of batch 32, 10% dropout. Rounds are timed one by one
(:func:`~sim.federated.training.run_round`), and each is followed at once by its floor, so load
from other processes on a shared machine hits both alike. Holdout scoring is not part of a round.

* **Plain round** against the **numpy floor** (:func:`numpy_floor_s`): the same FedAvg
  arithmetic on the same survivors (their local SGD and the weighted average) in a bare numpy
  loop, with nothing else. Target: within 2×.
* **Secure round** against the numpy floor plus the **crypto floor** (:func:`time_crypto_floor`):
  the cryptography the protocol cannot avoid, counted as a deployment runs it
  (:class:`SecureWork`) and done with pycryptodome's primitives alone: one ECDH at each end of
  every new pair key and the server's for each dropped client with each survivor, HKDF, the
  AES-CTR expansion of every mask and its addition, Shamir splits and reconstructions, the
  ChaCha20-Poly1305 envelopes of the shares, the share digests, and new key pairs for the
  clients whose mask secret was revealed. Target: within 1.5×.

Ratios are medians over rounds of each round's seconds over its own floor's: no figure from
another run or another day enters them. The floors' HKDF and digests use the standard library's
HMAC and SHA-256 (as :mod:`market.crypto` does): pycryptodome's HKDF costs about ten times more,
and a slower floor would flatter the ratio. The floors' ECDH is pycryptodome's public-scalar
multiplication, the path the simulator takes.

Run: ``python -m benchmarks.fl [rounds]``. The side-by-side run against Flower's simulation
engine is :mod:`benchmarks.peers.flower_fedavg` (needs ``flwr[simulation]``).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from time import perf_counter
from typing import Any

import numpy as np
from Crypto.Cipher import AES, ChaCha20_Poly1305
from Crypto.Math.Numbers import Integer
from Crypto.PublicKey import ECC

from sim.federated.model import LogisticRegression
from sim.federated.secagg import MIN_PARTICIPANTS, threshold
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
PLAIN_TARGET = 2.0
"""A plain round may take at most this many times its numpy floor."""
SECURE_TARGET = 1.5
"""A secure round may take at most this many times its numpy and crypto floors together."""

# P-256's group order (FIPS 186-4 D.1.2.3), the field of the Shamir shares
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SCALAR_BYTES = 48  # a scalar drawn as 48 random bytes reduced, as market.crypto draws it
_SHARE_BYTES = 64  # an envelope carries two 32-byte shares
_KEY_POOL = 64  # distinct key pairs the floor's ECDH cycles through (no warm repeated pair)
RandBytes = Callable[[int], bytes]


def world(config: FLConfig, seed: int) -> tuple[list[ClientData], Dataset]:
    """The clients' records and a 10,000-record holdout, from ``seed``."""
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


# --- what a secure round must do, counted as deployed -----------------------------------------


@dataclass(slots=True)
class AgreedEnds:
    """The pair-key ends a deployment has agreed so far, kept apart from the simulator's cache.

    A pair key is agreed at each end (``u`` computes ``s_u·P_v``, ``v`` computes ``s_v·P_u``)
    and reused across rounds; a mask key is new when either end's mask key was rotated.
    """

    channels: set[tuple[int, int]] = field(default_factory=set)
    masks: set[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=set)

    def agree(self, holders: Sequence[int], epochs: dict[int, int]) -> int:
        """Record the round's pair keys among ``holders``; how many ECDH ends were new."""
        new = 0
        for u in holders:
            for v in holders:
                if u == v:
                    continue
                mask_end = ((u, epochs[u]), (v, epochs[v]))
                if (u, v) not in self.channels:
                    self.channels.add((u, v))
                    new += 1
                if mask_end not in self.masks:
                    self.masks.add(mask_end)
                    new += 1
        return new


@dataclass(frozen=True, slots=True)
class SecureWork:
    """The cryptographic work of one completed secure round with ``holders`` clients.

    In the in-process driver every sampled client advertises keys and shares its secrets
    (``holders`` = masking members); ``survivors`` send a masked input, the others dropped.

    Attributes:
        agreements: the clients' ECDH ends of pair keys not agreed before (two per pair key).
        server_agreements: the server's ECDH of each dropped client's revealed key with each
            survivor's public key.
        keygens: new mask key pairs of the dropped clients, whose secret the server now holds.
        holders, survivors, dropped: the round's roster sizes.
        dim: words of a payload vector.
    """

    agreements: int
    server_agreements: int
    keygens: int
    holders: int
    survivors: int
    dropped: int
    dim: int

    @property
    def threshold(self) -> int:
        """Shares needed to rebuild a secret."""
        return threshold(self.holders)

    @property
    def splits(self) -> int:
        """Shamir splits: a self-mask seed and a mask key per holder, into ``holders`` shares."""
        return 2 * self.holders

    @property
    def combines(self) -> int:
        """Reconstructions from ``threshold`` shares: a seed per survivor, a key per dropped."""
        return self.survivors + self.dropped

    @property
    def envelopes(self) -> int:
        """Share envelopes, each sealed by its owner and opened by its holder."""
        return self.holders * (self.holders - 1)

    @property
    def digests(self) -> int:
        """SHA-256 digests: of both shares per holder and the seed, published by each holder;
        ``threshold`` share digests per reconstruction and a seed digest per survivor, checked
        by the server."""
        published = self.holders * (2 * self.holders + 1)
        return published + self.combines * self.threshold + self.survivors

    @property
    def pair_masks(self) -> int:
        """AES-CTR pairwise masks: each survivor's with every other member, and the server's
        for each dropped client with each survivor."""
        return self.survivors * (self.holders - 1) + self.server_agreements

    @property
    def self_masks(self) -> int:
        """HKDF-keyed AES-CTR self masks: added by each survivor, removed by the server."""
        return 2 * self.survivors

    def ops(self) -> dict[str, int]:
        """The same work in :class:`~market.crypto.CryptoMeter` kinds, to compare with a run."""
        ecdh = self.agreements + self.server_agreements
        return {
            "scalar_mult": ecdh + self.keygens,
            "kdf": ecdh + self.self_masks,
            "prg": self.pair_masks + self.self_masks,
            "aead": 2 * self.envelopes,
            "hash": self.digests,
            "shamir": self.splits + self.combines,
        }


def secure_work(
    outcome: RoundOutcome, epochs: dict[int, int], agreed: AgreedEnds, *, dim: int
) -> SecureWork | None:
    """What ``outcome``'s round had to compute, given the mask-key ``epochs`` it started with.

    None for an aborted round (left out of both sides of the ratio). Updates ``agreed``.
    """
    holders = sorted(outcome.sampled)
    if outcome.status != "completed":
        if len(holders) >= MIN_PARTICIPANTS:  # below it the roster aborts before agreeing
            agreed.agree(holders, epochs)
        return None
    survivors = len(outcome.survivors)
    dropped = len(holders) - survivors
    return SecureWork(
        agreements=agreed.agree(holders, epochs),
        server_agreements=dropped * survivors,
        keygens=dropped,
        holders=len(holders),
        survivors=survivors,
        dropped=dropped,
        dim=dim,
    )


# --- the floors -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class FloorKeys:
    """Distinct P-256 key pairs for the floor's ECDH, made once (outside every timing)."""

    generator: ECC.EccPoint
    pairs: tuple[tuple[int, ECC.EccPoint], ...]

    @classmethod
    def make(cls, seed: int = 0) -> FloorKeys:
        """``_KEY_POOL`` key pairs from ``seed``, and an affine ``G`` for fixed-base tables."""
        r = random.Random(seed)
        # pycryptodome's fixed-base tables recognise only a point with Z = 1
        generator = ECC.EccPoint(*ECC.construct(curve="P-256", d=1).pointQ.xy, "P-256")
        secrets = [r.randrange(1, _ORDER) for _ in range(_KEY_POOL)]
        return cls(generator, tuple((s, generator * s) for s in secrets))


def _hkdf(ikm: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 with an empty salt, one 32-byte block (RFC 5869)."""
    return hmac.digest(hmac.digest(b"", ikm, "sha256"), info + b"\x01", "sha256")


def _ecdh(keys: FloorKeys, count: int, info: bytes) -> list[bytes]:
    """``count`` agreements: ``s·P`` on the public-scalar path, then HKDF of the x-coordinate."""
    pool = keys.pairs
    out = []
    for i in range(count):
        secret, _ = pool[i % len(pool)]
        point = pool[(i + 1) % len(pool)][1]
        shared = point * Integer(secret, public=True)  # type: ignore[operator]
        out.append(_hkdf(int(shared.x).to_bytes(32, "big"), info))
    return out


def _split(secret: int, n: int, t: int, randbytes: RandBytes) -> list[int]:
    """Shamir: a random polynomial of degree ``t − 1``, evaluated at ``1..n`` by Horner."""
    coeffs = [secret] + [
        int.from_bytes(randbytes(_SCALAR_BYTES), "big") % _ORDER for _ in range(t - 1)
    ]
    shares = []
    for x in range(1, n + 1):
        acc = 0
        for c in reversed(coeffs):
            acc = (acc * x + c) % _ORDER
        shares.append(acc)
    return shares


def _combine(xs: Sequence[int], ys: Sequence[int]) -> int:
    """Lagrange interpolation at 0."""
    total = 0
    for i, xi in enumerate(xs):
        num = den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * xj % _ORDER
                den = den * (xj - xi) % _ORDER
        total += ys[i] * num * pow(den, -1, _ORDER)
    return total % _ORDER


@dataclass(frozen=True, slots=True)
class CryptoFloor:
    """Seconds of one round's :class:`SecureWork` done with the primitives alone, by part."""

    keys_s: float
    """ECDH and HKDF of every agreement, and the new key pairs."""
    shares_s: float
    """Shamir splits and reconstructions, envelopes sealed and opened, digests."""
    masks_s: float
    """AES-CTR expansion of every mask and its addition into a vector."""

    @property
    def total_s(self) -> float:
        """All three parts."""
        return self.keys_s + self.shares_s + self.masks_s


def time_crypto_floor(work: SecureWork, keys: FloorKeys, randbytes: RandBytes) -> CryptoFloor:
    """Time ``work`` with pycryptodome's primitives (HMAC and SHA-256 from the standard library)."""
    n, t = work.holders, work.threshold
    start = perf_counter()
    agreed = _ecdh(keys, work.agreements + work.server_agreements, b"floor/pair-key")
    for i in range(work.keygens):
        keys.generator * keys.pairs[i % len(keys.pairs)][0]
    keys_s = perf_counter() - start
    key = agreed[0] if agreed else bytes(32)
    payload, aad = bytes(_SHARE_BYTES), bytes(24)
    start = perf_counter()
    splits = [
        _split(keys.pairs[i % len(keys.pairs)][0], n, t, randbytes) for i in range(work.splits)
    ]
    for i in range(work.envelopes):
        nonce = i.to_bytes(12, "big")
        sealer = ChaCha20_Poly1305.new(key=key, nonce=nonce)
        sealer.update(aad)
        ciphertext, tag = sealer.encrypt_and_digest(payload)
        opener = ChaCha20_Poly1305.new(key=key, nonce=nonce)
        opener.update(aad)
        opener.decrypt_and_verify(ciphertext, tag)
    for i in range(work.digests):
        hashlib.sha256(b"share" + i.to_bytes(32, "big") + key).digest()
    xs = list(range(1, t + 1))
    for i in range(work.combines):
        _combine(xs, splits[i % len(splits)][:t])
    shares_s = perf_counter() - start
    start = perf_counter()
    total = np.zeros(work.dim, dtype=np.uint32)
    width = 4 * work.dim
    for r in range(work.pair_masks):
        stream = AES.new(key, AES.MODE_CTR, nonce=r.to_bytes(8, "big")).encrypt(bytes(width))
        total += np.frombuffer(stream, dtype="<u4")
    for r in range(work.self_masks):
        subkey = _hkdf(key, b"self/%d" % r)
        stream = AES.new(subkey, AES.MODE_CTR, nonce=b"").encrypt(bytes(width))
        total -= np.frombuffer(stream, dtype="<u4")
    masks_s = perf_counter() - start
    return CryptoFloor(keys_s, shares_s, masks_s)


def numpy_floor_s(
    config: FLConfig, data: list[ClientData], params: np.ndarray, survivors: Sequence[int]
) -> float:
    """Seconds of a plain round's arithmetic alone: the survivors' local SGD and the average."""
    rng = np.random.default_rng(len(survivors))
    lr, batch = config.learning_rate, config.batch_size
    start = perf_counter()
    w, b = params[:-1], params[-1]
    dw, db, weight = np.zeros_like(w), 0.0, 0.0
    for c in survivors:
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


# --- same-run ratios --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Paired:
    """Per-round seconds of a subject and of its floor, each floor timed right after its round."""

    subject: np.ndarray
    floor: np.ndarray

    def ratio(self) -> float:
        """Median over rounds of subject / floor (a load burst spoils one round, not the run)."""
        return float(np.median(self.subject / self.floor))


@dataclass(frozen=True, slots=True, eq=False)
class TimedRun:
    """A run's rounds: per-round seconds with their floors, and what the rounds did."""

    seconds: Paired
    crypto: tuple[CryptoFloor, ...]
    work: tuple[SecureWork, ...]
    outcomes: tuple[RoundOutcome, ...]
    params: np.ndarray
    timer: PhaseTimer


def timed_rounds(config: FLConfig, data: list[ClientData], seed: int) -> TimedRun:
    """Run ``config`` round by round, each round followed by its floor.

    The floor is the numpy floor of the round's survivors, plus, with secure aggregation, the
    crypto floor of the round's :class:`SecureWork`. Aborted rounds are left out of the pairs.
    """
    timer = PhaseTimer()
    session = Session.start(
        config,
        data,
        rng=np.random.default_rng(seed),
        randbytes=random.Random(seed).randbytes,
        timer=timer,
    )
    dim = session.strategy.payload_size(session.model.size)
    params = session.model.init(session.rng)
    keys, randbytes, agreed = FloorKeys.make(seed), random.Random(seed + 1).randbytes, AgreedEnds()
    spent: list[float] = []
    floors: list[float] = []
    crypto: list[CryptoFloor] = []
    works: list[SecureWork] = []
    outcomes: list[RoundOutcome] = []
    for r in range(config.rounds):
        epochs = {c: k.epoch for c, k in session.keys.items()}
        start = perf_counter()
        new, outcome, _ = run_round(session, params, r)
        elapsed = perf_counter() - start
        outcomes.append(outcome)
        floor = numpy_floor_s(config, data, params, outcome.survivors)
        params = new
        if config.secure_aggregation:
            work = secure_work(outcome, epochs, agreed, dim=dim)
            if work is None:
                continue
            works.append(work)
            crypto.append(time_crypto_floor(work, keys, randbytes))
            floor += crypto[-1].total_s
        elif outcome.status != "completed":
            continue
        spent.append(elapsed)
        floors.append(floor)
    return TimedRun(
        Paired(np.array(spent), np.array(floors)),
        tuple(crypto),
        tuple(works),
        tuple(outcomes),
        params,
        timer,
    )


def measure(*, rounds: int = SCENARIO.rounds, seed: int = 0) -> dict[str, Any]:
    """Run the scenario plain and secure; per-round medians, ratios to floors, target checks."""
    config = replace(SCENARIO, rounds=rounds)
    data, test = world(config, seed)
    plain = timed_rounds(replace(config, secure_aggregation=False), data, seed)
    secure = timed_rounds(config, data, seed)
    timer, done = secure.timer, len(secure.work)
    model = LogisticRegression(config.features)
    deployed = sum(w.agreements + w.server_agreements for w in secure.work)
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
        "plain_round_s": float(np.median(plain.seconds.subject)),
        "numpy_floor_s": float(np.median(plain.seconds.floor)),
        "plain_over_numpy_floor": plain.seconds.ratio(),
        "secure_round_s": float(np.median(secure.seconds.subject)),
        "secure_first_round_s": float(secure.seconds.subject[0]),
        "secure_floor_s": float(np.median(secure.seconds.floor)),
        "secure_over_floor": secure.seconds.ratio(),
        "crypto_floor_split_s": {
            "ecdh_hkdf_keygen": float(np.median([c.keys_s for c in secure.crypto])),
            "shamir_envelopes_digests": float(np.median([c.shares_s for c in secure.crypto])),
            "masks": float(np.median([c.masks_s for c in secure.crypto])),
        },
        "secure_split_s": {
            "key_agreement": timer.key_agreement / rounds,
            "sharing": timer.sharing / rounds,
            "masking": timer.masking / rounds,
            "unmasking": timer.unmasking / rounds,
        },
        "ecdh_per_round_deployed": deployed / max(1, done),
        "ecdh_in_run_and_in_floor": (timer.agreements + timer.server_agreements, deployed),
        "completed_rounds": {"plain": len(plain.seconds.subject), "secure": done},
        "plain_target_met": plain.seconds.ratio() <= PLAIN_TARGET,
        "secure_target_met": secure.seconds.ratio() <= SECURE_TARGET,
        "final_brier": {
            "plain": brier(model, plain.params, test),
            "secure": brier(model, secure.params, test),
        },
    }


def main(argv: list[str]) -> None:
    """Print :func:`measure`'s numbers, one per line."""
    rounds = int(argv[0]) if argv else SCENARIO.rounds
    for key, value in measure(rounds=rounds).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main(sys.argv[1:])
