"""Zero-knowledge proofs on P-256: sender-bound ciphertexts and verifiable decryption shares.

**Sender-bound ciphertexts.** An ECIES ciphertext (:func:`market.crypto.ecies_encrypt`) starts
with its ephemeral point ``E = e·G``. Only whoever encrypted it knows ``e``. A sealed order
carries a non-interactive Schnorr proof of knowledge of ``e`` (Schnorr, 1991; made
non-interactive by Fiat and Shamir, 1986) whose challenge hashes the whole ciphertext, the
sender's address and the epoch: the construction of TDH1 (Shoup and Gennaro, 1998, section 4),
which makes a threshold cryptosystem secure against chosen ciphertexts. Someone who copies the
ciphertext and submits it under another address cannot produce a proof for that address
without ``e``, so the copy is rejected before it reaches a batch.

Proof: pick ``k``, ``A = k·G``, ``c = H(E, A, ciphertext, sender, epoch) mod q``,
``z = k + c·e mod q``; send ``(c, z)``. Verify: ``A' = z·G − c·E`` and ``c == H(E, A', ...)``.
Proving a sealed order costs one fixed-base multiplication (``E`` is already in the ciphertext)
and two hashes (nonce and challenge); verifying, one fixed-base and one variable-base
multiplication and a hash: 64 bytes on the wire.

**Verifiable decryption shares.** A keyper holding the key share ``s`` with public share
``Y = s·G`` publishes ``D = s·R`` for a ciphertext's ephemeral point ``R`` and proves, without
revealing ``s``, that ``log_G Y = log_R D``: a Chaum–Pedersen proof of equal discrete logs
(Chaum and Pedersen, 1992), non-interactive by Fiat–Shamir, as TDH2's decryption shares are
(Shoup and Gennaro, 1998). ``k`` random, ``A1 = k·G``, ``A2 = k·R``,
``c = H(Y, R, D, A1, A2, context)``, ``z = k + c·s``; the verifier recomputes
``A1 = z·G − c·Y`` and ``A2 = z·R − c·D``. Proving costs two multiplications, verifying four.

The nonce ``k`` is hedged: a hash of the secret, the statement and fresh random bytes, so it
never repeats for two statements even if the random source does (a repeated ``k`` for two
challenges gives the secret away: ``e = (z1 − z2) / (c1 − c2)``).
"""

from __future__ import annotations

import hashlib

from Crypto.PublicKey.ECC import EccPoint

from market.crypto import (
    P256_ORDER,
    POINT_BYTES,
    CryptoMeter,
    RandBytes,
    base_mul,
    metering,
    point_bytes,
    point_from_bytes,
    point_mul,
)
from market.errors import CryptoError

SCHNORR_PROOF_BYTES = 64
"""A Schnorr proof on the wire: the challenge and the response, 32 bytes each."""

_CHALLENGE_TAG = b"veilcast/schnorr/challenge/v1|"
_NONCE_TAG = b"veilcast/schnorr/nonce/v1|"
_SENDER_TAG = b"veilcast/sealed-order/v1|"
_DLEQ_TAG = b"veilcast/chaum-pedersen/challenge/v1|"
_DLEQ_NONCE_TAG = b"veilcast/chaum-pedersen/nonce/v1|"
_SCALAR = 32


def _challenge(public: bytes, commitment: EccPoint, context: bytes) -> int:
    """``H(public, commitment, context) mod q``; ``public`` is its compressed encoding."""
    digest = hashlib.sha256(_CHALLENGE_TAG + public + point_bytes(commitment) + context).digest()
    return int.from_bytes(digest, "big") % P256_ORDER


def _hedged_nonce(tag: bytes, secret: int, statement: bytes, randbytes: RandBytes) -> int:
    """A nonce in ``[1, q)`` from the secret, the statement and 32 fresh random bytes."""
    seed = hashlib.sha512(tag + secret.to_bytes(_SCALAR, "big") + statement + randbytes(32))
    return int.from_bytes(seed.digest(), "big") % (P256_ORDER - 1) + 1


def _pack(c: int, z: int) -> bytes:
    return c.to_bytes(_SCALAR, "big") + z.to_bytes(_SCALAR, "big")


def _unpack(proof: bytes) -> tuple[int, int] | None:
    """A proof's challenge and response, or None for malformed bytes (never a valid proof)."""
    if len(proof) != SCHNORR_PROOF_BYTES:
        return None
    c, z = int.from_bytes(proof[:_SCALAR], "big"), int.from_bytes(proof[_SCALAR:], "big")
    return (c, z) if c < P256_ORDER and z < P256_ORDER else None


def schnorr_prove(
    secret: int,
    context: bytes,
    *,
    randbytes: RandBytes,
    public: bytes | None = None,
    meter: CryptoMeter | None = None,
) -> bytes:
    """A proof of knowing ``secret``, the discrete log of ``secret·G``, bound to ``context``.

    ``public`` is ``secret·G``'s compressed encoding when the caller has it (a ciphertext starts
    with it), which spares a multiplication; it must be right, or the proof will not verify.
    """
    if not 0 < secret < P256_ORDER:
        raise ValueError("secret scalar out of range")
    with metering(meter) as tally:  # counted in bulk: the multiplications run unmetered
        if public is None:
            public = point_bytes(base_mul(secret))
            tally.count("scalar_mult")
        k = _hedged_nonce(_NONCE_TAG, secret, context, randbytes)
        c = _challenge(public, base_mul(k), context)
        tally.count("scalar_mult")
        tally.count("hash", 2)
        return _pack(c, (k + c * secret) % P256_ORDER)


def schnorr_verify(
    public: EccPoint,
    context: bytes,
    proof: bytes,
    *,
    encoded: bytes | None = None,
    meter: CryptoMeter | None = None,
) -> bool:
    """Whether ``proof`` shows knowledge of the discrete log of ``public``, for ``context``.

    ``encoded`` is ``public``'s compressed encoding when the caller has it (it is hashed).
    """
    if (unpacked := _unpack(proof)) is None:
        return False
    c, z = unpacked
    with metering(meter) as tally:  # counted in bulk: the multiplications run unmetered
        commitment = base_mul(z) + (-point_mul(public, c))
        tally.count("scalar_mult", 2)
        tally.count("hash")
        try:
            return _challenge(encoded or point_bytes(public), commitment, context) == c
        except ValueError:  # the commitment is the point at infinity: no valid proof gives it
            return False


def sender_context(ciphertext: bytes, sender: int, epoch: int) -> bytes:
    """What a sealed order's proof binds: the whole ciphertext, the sender and the epoch."""
    return _SENDER_TAG + sender.to_bytes(8, "big") + epoch.to_bytes(8, "big") + ciphertext


def prove_sender(
    ephemeral: int,
    ciphertext: bytes,
    *,
    sender: int,
    epoch: int,
    randbytes: RandBytes,
    meter: CryptoMeter | None = None,
) -> bytes:
    """The proof that ``sender`` made ``ciphertext`` (it knows the ephemeral secret inside)."""
    context = sender_context(ciphertext, sender, epoch)
    public = ciphertext[:POINT_BYTES]  # E = e·G, as the ciphertext carries it
    return schnorr_prove(ephemeral, context, randbytes=randbytes, public=public, meter=meter)


def verify_sender(
    ciphertext: bytes,
    proof: bytes,
    *,
    sender: int,
    epoch: int,
    meter: CryptoMeter | None = None,
) -> bool:
    """Whether ``proof`` binds ``ciphertext`` to ``sender`` and ``epoch``.

    False for a malformed ciphertext (its ephemeral point not on the curve) as for a bad proof.
    """
    encoded = ciphertext[:POINT_BYTES]
    try:
        ephemeral_point = point_from_bytes(encoded)
    except CryptoError:
        return False
    context = sender_context(ciphertext, sender, epoch)
    return schnorr_verify(ephemeral_point, context, proof, encoded=encoded, meter=meter)


def dleq_prove(
    secret: int,
    base: EccPoint,
    *,
    public: EccPoint,
    context: bytes,
    randbytes: RandBytes,
    meter: CryptoMeter | None = None,
) -> tuple[EccPoint, bytes]:
    """``D = secret·base`` and a proof that ``log_G public = log_base D`` (``public = secret·G``).

    ``public`` is the prover's known public point (a keyper's public share): the proof will
    not verify unless it is ``secret·G``.
    """
    if not 0 < secret < P256_ORDER:
        raise ValueError("secret scalar out of range")
    with metering(meter) as tally:  # counted in bulk: the multiplications run unmetered
        shared = point_mul(base, secret)
        k = _hedged_nonce(_DLEQ_NONCE_TAG, secret, point_bytes(base) + context, randbytes)
        c = _dleq_challenge((public, base, shared, base_mul(k), point_mul(base, k)), context)
        tally.count("scalar_mult", 3)
        tally.count("hash", 2)
        return shared, _pack(c, (k + c * secret) % P256_ORDER)


def dleq_verify(
    public: EccPoint,
    base: EccPoint,
    shared: EccPoint,
    proof: bytes,
    *,
    context: bytes,
    meter: CryptoMeter | None = None,
) -> bool:
    """Whether ``proof`` shows ``log_G public = log_base shared``, for ``context``."""
    if (unpacked := _unpack(proof)) is None:
        return False
    c, z = unpacked
    with metering(meter) as tally:
        first = base_mul(z) + (-point_mul(public, c))
        second = point_mul(base, z) + (-point_mul(shared, c))
        tally.count("scalar_mult", 4)
        tally.count("hash")
        try:
            return _dleq_challenge((public, base, shared, first, second), context) == c
        except ValueError:  # a commitment at infinity: no valid proof gives one
            return False


def _dleq_challenge(points: tuple[EccPoint, ...], context: bytes) -> int:
    """``H(Y, R, D, A1, A2, context) mod q`` over the points' compressed encodings."""
    encoded = b"".join(point_bytes(p) for p in points)
    digest = hashlib.sha256(_DLEQ_TAG + encoded + context).digest()
    return int.from_bytes(digest, "big") % P256_ORDER
