"""The cryptography's floor: pycryptodome alone, next to the same work through market.crypto.

Each ``floor.*`` figure times pycryptodome directly, with nothing of ours around it; each
``ours.*`` figure does the same job through :mod:`market.crypto` / :mod:`market.threshold`, so
``ours / floor`` is what our wrappers (metering, validation, encoding) cost. Figures are medians
of ``repeats`` timed calls, in seconds per operation.

* ``ecdh``: ``key_agreement`` with the raw x-coordinate as "KDF" vs :func:`ecdh_key` (public-
  scalar path plus HKDF-SHA256): ours can be *below* the floor, by design.
* ``aead_encrypt`` / ``aead_decrypt``: AES-256-GCM of 256 bytes.
* ``base_mul``: ``G*k``; ``point_mul``: ``P*Integer(k, public=True)``, a 256-bit scalar.
* ``dkg`` (n=10, t=7): the scalar multiplications a batched Feldman DKG cannot avoid:
  ``n·t`` commitments ``a·G``, ``n`` public shares ``x_j·G``, and one batch check (one ``G``
  multiplication and ``t`` ~90-bit public ones) vs ``n`` :func:`deal` and one :func:`run_dkg`.
  ``dkg_naive`` is the floor of checking every share on its own (``n²`` ``G``
  multiplications and ``n²(t-1)`` small ones), to show what batching saves.
* ``sign`` / ``verify``: ECDSA P-256, RFC 6979; the floor reuses one key object.
* ``ecies_encrypt`` / ``ecies_decrypt`` (ours only): a 32-byte order padded to 64 bytes.
* ``sender_prove`` / ``sender_verify``: a sealed order's Schnorr proof (:mod:`market.proofs`)
  against the multiplications it needs and nothing else: ``k·G`` to prove; ``z·G`` and the
  public-scalar ``c·E`` to verify (ours also decodes ``E`` from the ciphertext and hashes).
* ``decryption_share`` / ``share_verify``: a keyper's TDH2 share ``x_j·E`` with its
  Chaum–Pedersen proof, against its multiplications: ``x_j·E``, ``k·G``, ``k·E`` to make;
  ``z·G``, ``c·X_j``, ``z·E``, ``c·d_j`` to check.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Math.Numbers import Integer
from Crypto.Protocol.DH import key_agreement
from Crypto.PublicKey import ECC
from Crypto.Signature import DSS

from market import crypto, proofs, threshold

N, T = 10, 7
MESSAGE = bytes(range(256))
Call = Callable[[], object]


def _paired(floor: Call | None, ours: Call | None, repeats: int) -> list[float | None]:
    """Median seconds of each call, timed alternately so that load bursts hit both alike."""
    samples: list[list[float]] = [[], []]
    for _ in range(repeats):
        for fn, out in zip((floor, ours), samples, strict=True):
            if fn is not None:
                start = time.perf_counter()
                fn()
                out.append(time.perf_counter() - start)
    return [statistics.median(out) if out else None for out in samples]


def _dkg_floor(r: random.Random, generator: ECC.EccPoint) -> None:
    """The scalar multiplications of a batched DKG, and nothing else."""
    order = crypto.P256_ORDER
    points = [generator * r.randrange(1, order) for _ in range(N * T)]
    for _ in range(N + 1):
        generator * r.randrange(1, order)
    for k in range(T):
        weight = sum(r.getrandbits(64) * j**k for j in range(1, N + 1))
        points[k] * Integer(weight, public=True)  # type: ignore[operator]


def _dkg_naive_floor(r: random.Random, generator: ECC.EccPoint) -> None:
    """Per-share Feldman checks: ``s·G`` against Horner in the exponent, for all n² shares."""
    order = crypto.P256_ORDER
    commitments = [[generator * r.randrange(1, order) for _ in range(T)] for _ in range(N)]
    for dealt in commitments:
        for j in range(1, N + 1):
            generator * r.randrange(1, order)
            acc = dealt[-1]
            for c in reversed(dealt[:-1]):
                acc = acc * Integer(j, public=True) + c  # type: ignore[operator]


def _dkg_ours(r: random.Random) -> None:
    deals = [threshold.deal(i, n=N, t=T, randbytes=r.randbytes) for i in range(1, N + 1)]
    threshold.run_dkg(deals, n=N, t=T)


def measure(repeats: int = 200) -> dict[str, float]:
    """Seconds per operation (medians), ``floor.<op>`` and ``ours.<op>`` for each operation.

    The floor and ours of one operation are timed alternately, call by call.
    """
    r = random.Random(2024)
    order = crypto.P256_ORDER
    a, b, k = (r.randrange(1, order) for _ in range(3))
    priv_a = ECC.construct(curve="P-256", d=a)
    pub_b = ECC.construct(curve="P-256", d=b).public_key()
    # an affine G: pycryptodome's fixed-base tables only recognise a point with Z = 1, and the
    # pointQ of d = 1 is a projective result of a multiplication (7x slower as a base)
    generator = ECC.EccPoint(*ECC.construct(curve="P-256", d=1).pointQ.xy, "P-256")
    point_b = pub_b.pointQ
    key, nonce = r.randbytes(32), r.randbytes(12)
    ct, tag = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(MESSAGE)
    blob = crypto.aead_encrypt(key, MESSAGE, nonce=nonce)
    signer = DSS.new(priv_a, "deterministic-rfc6979")
    pub_a = priv_a.public_key()
    signature = crypto.sign(a, MESSAGE)
    sealed = crypto.ecies_encrypt(point_b, MESSAGE[:32], randbytes=r.randbytes, pad_to=64)
    dkg_repeats, naive_repeats = max(3, repeats // 10), max(2, repeats // 40)
    ephemeral = r.randrange(1, order)
    order_blob = crypto.ecies_encrypt(
        point_b, MESSAGE[:32], randbytes=r.randbytes, pad_to=64, ephemeral=ephemeral
    )
    proof = proofs.prove_sender(ephemeral, order_blob, sender=7, epoch=3, randbytes=r.randbytes)
    e_point, c = crypto.base_mul(ephemeral), r.randrange(1, order)
    committee = threshold.run_dkg(
        [threshold.deal(i, n=N, t=T, randbytes=r.randbytes) for i in range(1, N + 1)], n=N, t=T
    )
    x_1, x_pub = committee.secret_shares[1], committee.public_shares[1]
    share = threshold.decryption_share(committee, 1, order_blob, randbytes=r.randbytes)
    share_point = crypto.point_from_bytes(share.point)

    def public_mul(point: ECC.EccPoint) -> object:
        return point * Integer(c, public=True)  # type: ignore[operator]

    gcm = AES.MODE_GCM
    cases: dict[str, tuple[Call | None, Call | None, int]] = {
        "ecdh": (
            lambda: key_agreement(static_priv=priv_a, static_pub=pub_b, kdf=bytes),
            lambda: crypto.ecdh_key(a, point_b, info=b"bench"),
            repeats,
        ),
        "aead_encrypt": (
            lambda: AES.new(key, gcm, nonce=nonce).encrypt_and_digest(MESSAGE),
            lambda: crypto.aead_encrypt(key, MESSAGE, nonce=nonce),
            repeats,
        ),
        "aead_decrypt": (
            lambda: AES.new(key, gcm, nonce=nonce).decrypt_and_verify(ct, tag),
            lambda: crypto.aead_decrypt(key, blob),
            repeats,
        ),
        "base_mul": (lambda: generator * k, lambda: crypto.base_mul(k), repeats),
        "point_mul": (
            lambda: point_b * Integer(k, public=True),  # type: ignore[operator]
            lambda: crypto.point_mul(point_b, k),
            repeats,
        ),
        "sign": (
            lambda: signer.sign(SHA256.new(MESSAGE)),
            lambda: crypto.sign(a, MESSAGE),
            repeats,
        ),
        "verify": (
            lambda: DSS.new(pub_a, "fips-186-3").verify(SHA256.new(MESSAGE), signature),
            lambda: crypto.verify(pub_a.pointQ, MESSAGE, signature),
            repeats,
        ),
        "ecies_encrypt": (
            None,
            lambda: crypto.ecies_encrypt(point_b, MESSAGE[:32], randbytes=r.randbytes, pad_to=64),
            repeats,
        ),
        "ecies_decrypt": (None, lambda: crypto.ecies_decrypt(b, sealed), repeats),
        "sender_prove": (
            lambda: generator * k,
            lambda: proofs.prove_sender(
                ephemeral, order_blob, sender=7, epoch=3, randbytes=r.randbytes
            ),
            repeats,
        ),
        "sender_verify": (
            lambda: generator * k + e_point * Integer(c, public=True),  # type: ignore[operator]
            lambda: proofs.verify_sender(order_blob, proof, sender=7, epoch=3),
            repeats,
        ),
        "decryption_share": (
            lambda: (e_point * x_1, generator * k, public_mul(e_point)),
            lambda: threshold.decryption_share(committee, 1, order_blob, randbytes=r.randbytes),
            repeats,
        ),
        "share_verify": (
            lambda: (
                generator * k,
                public_mul(x_pub),
                public_mul(e_point),
                public_mul(share_point),
            ),
            lambda: threshold.verify_decryption_share(committee, order_blob, share),
            repeats,
        ),
        "dkg": (lambda: _dkg_floor(r, generator), lambda: _dkg_ours(r), dkg_repeats),
        "dkg_naive": (lambda: _dkg_naive_floor(r, generator), None, naive_repeats),
    }
    figures: dict[str, float] = {}
    for op, (floor, ours, n) in cases.items():
        for side, seconds in zip(("floor", "ours"), _paired(floor, ours, n), strict=True):
            if seconds is not None:
                figures[f"{side}.{op}"] = seconds
    return figures


def main() -> None:
    """Print every figure in microseconds, with the ratio ours / floor."""
    figures = measure()
    ops = sorted({name.split(".", 1)[1] for name in figures})
    print(f"{'operation':<16}{'floor µs':>12}{'ours µs':>12}{'ours/floor':>12}")
    for op in ops:
        floor, ours = figures.get(f"floor.{op}"), figures.get(f"ours.{op}")
        ratio = f"{ours / floor:.2f}" if floor and ours else "-"
        cells = [f"{v * 1e6:12.1f}" if v is not None else f"{'-':>12}" for v in (floor, ours)]
        print(f"{op:<16}{''.join(cells)}{ratio:>12}")


if __name__ == "__main__":
    main()
