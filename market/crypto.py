"""Real cryptography for the simulated privacy layers, with reproducible simulation keys.

Everything here is genuine pycryptodome cryptography (P-256, ECDSA, AES-256-GCM, AES-CTR), but
**every key, nonce and coefficient comes from a caller-supplied ``randbytes`` derived from the
run's seed**, so a run is reproducible byte for byte. These are *simulation keys*: anyone who
knows the scenario can recompute them. Never use this module to protect anything real.

Choices made for speed, each fine inside a simulator and wrong for real use:

* Scalar multiplication of a non-generator point (ECDH, ECIES, DKG checks) uses pycryptodome's
  non-constant-time public-scalar path (``P * Integer(k, public=True)``), ~40% faster than the
  blinded constant-time one. A simulator has no timing side channel to protect.
* HKDF-SHA256 and SHA-256 come from the standard library (``hmac.digest``/``hashlib``): the
  same bytes as pycryptodome's ``HKDF(..., SHA256)`` (checked by the tests) at ~4 µs instead of
  ~40 µs. AES, ECC and ECDSA come from pycryptodome.

Every function takes ``meter=`` (a :class:`CryptoMeter`) and counts what it does: scalar
multiplications, AEAD calls, KDF and hash calls, signatures and verifications. Points are
pycryptodome ``EccPoint`` objects; they are mutable in place (``+=``, ``*=``, ``double()``), so
never apply in-place operators to a point you did not create, :data:`GENERATOR` above all.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Literal

from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Math.Numbers import Integer
from Crypto.PublicKey import ECC
from Crypto.PublicKey.ECC import EccPoint
from Crypto.Signature import DSS

from market.errors import CryptoError

if TYPE_CHECKING:
    from Crypto.Cipher._mode_gcm import GcmMode

RandBytes = Callable[[int], bytes]
"""A deterministic byte source, e.g. ``random.Random(seed).randbytes``."""

OpKind = Literal["scalar_mult", "aead", "kdf", "hash", "sign", "verify", "prg", "shamir"]

# NIST P-256 (FIPS 186-4 D.1.2.3), written down once: pycryptodome 4.4 has no public accessor.
P256_PRIME = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_P256_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_P256_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
_CURVE = "P-256"
_PRIME_INT = Integer(P256_PRIME, public=True)
_SQRT_EXP = Integer((P256_PRIME + 1) // 4, public=True)
GENERATOR: EccPoint = EccPoint(_P256_GX, _P256_GY, _CURVE)
"""The P-256 base point. Shared: never mutate it in place."""

POINT_BYTES = 33
AEAD_KEY_BYTES = 32
AEAD_NONCE_BYTES = 12
AEAD_TAG_BYTES = 16
SIGNATURE_BYTES = 64
COMMITMENT_BYTES = 32
MIN_SALT_BYTES = 16

_ECIES_INFO = b"veilcast/ecies/v1|"
_COMMIT_TAG = b"veilcast/commit/v1|"
_STREAM_INFO = b"veilcast/stream/v1|"
# Each ECIES key encrypts exactly one message (fresh ephemeral key), so a fixed nonce is safe.
_ECIES_NONCE = bytes(AEAD_NONCE_BYTES)
_PAD_MARK = 0x80


@dataclass(slots=True)
class CryptoMeter:
    """Counts cryptographic operations by kind and the seconds spent inside them.

    Attributes:
        ops: operation counts by kind (``"scalar_mult"``, ``"aead"``, ``"sign"``, ...).
            Point additions and modular arithmetic are timed but not counted.
        cpu_s: ``time.perf_counter()`` seconds spent inside metered functions.
    """

    ops: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0

    def count(self, kind: OpKind, n: int = 1) -> None:
        """Add ``n`` operations of ``kind``."""
        self.ops[kind] = self.ops.get(kind, 0) + n

    def total_ops(self) -> int:
        """All counted operations, every kind together."""
        return sum(self.ops.values())

    def merge(self, other: CryptoMeter) -> None:
        """Add another meter's counts and seconds to this one (e.g. per-node to per-run)."""
        for kind, n in other.ops.items():
            self.ops[kind] = self.ops.get(kind, 0) + n
        self.cpu_s += other.cpu_s


@contextmanager
def metering(meter: CryptoMeter | None) -> Iterator[CryptoMeter]:
    """Yield a fresh tally; on exit add its counts and the elapsed time to ``meter``.

    Metered functions pass the tally as ``meter=`` to the metered functions they call: the inner
    calls add their counts to it, and only the outermost call adds elapsed time to ``meter``, so
    nothing is counted twice. Counts survive an exception (the work was done).
    """
    tally = CryptoMeter()
    start = perf_counter()
    try:
        yield tally
    finally:
        if meter is not None:
            tally.cpu_s = perf_counter() - start  # the outer span: nested seconds lie inside it
            meter.merge(tally)


def random_scalar(randbytes: RandBytes) -> int:
    """A scalar in ``[1, order)``: 48 random bytes reduced, so the bias is below 2^-128."""
    return int.from_bytes(randbytes(48), "big") % (P256_ORDER - 1) + 1


def base_mul(k: int, *, meter: CryptoMeter | None = None) -> EccPoint:
    """``k·G`` with pycryptodome's fixed-base path (~50 µs); ``k`` is reduced mod the order."""
    if meter is None:  # hot path of the DKG, which counts its multiplications in bulk
        return GENERATOR * (k % P256_ORDER)
    with metering(meter) as tally:
        tally.count("scalar_mult")
        return GENERATOR * (k % P256_ORDER)


def point_mul(point: EccPoint, k: int, *, meter: CryptoMeter | None = None) -> EccPoint:
    """``k·P`` on the non-constant-time public-scalar path; cost grows with ``k``'s bit length.

    Fine inside a simulator (see the module docstring); ``k`` is reduced mod the order.
    """
    if meter is None:
        return point * Integer(k % P256_ORDER, public=True)  # type: ignore[operator]
    with metering(meter) as tally:
        tally.count("scalar_mult")
        return point_mul(point, k)


def keypair(randbytes: RandBytes, *, meter: CryptoMeter | None = None) -> tuple[int, EccPoint]:
    """A simulation key pair: secret scalar in ``[1, order)`` and its public point."""
    secret = random_scalar(randbytes)
    return secret, base_mul(secret, meter=meter)


def point_bytes(p: EccPoint) -> bytes:
    """Compressed SEC1 encoding (33 bytes); ``ValueError`` for the point at infinity."""
    x, y = p.xy
    if x == 0 and y == 0:  # pycryptodome's affine form of infinity; (0, 0) is not on P-256
        raise ValueError("the point at infinity has no compressed encoding")
    return bytes([2 | (y & 1)]) + x.to_bytes(32, "big")


def point_from_bytes(b: bytes) -> EccPoint:
    """Decode :func:`point_bytes`; ``CryptoError`` unless it is a valid P-256 point.

    The square root (p = 3 mod 4) is a public exponentiation in pycryptodome's C integers: ~3x
    faster than Python's ``pow`` and than ``ECC.import_key``'s constant-time one.
    """
    if len(b) != POINT_BYTES or b[0] not in (2, 3):
        raise CryptoError("not a compressed P-256 point")
    x = int.from_bytes(b[1:], "big")
    if x >= P256_PRIME:
        raise CryptoError("point x-coordinate out of range")
    rhs = (pow(x, 3, P256_PRIME) - 3 * x + _P256_B) % P256_PRIME
    y = int(pow(Integer(rhs, public=True), _SQRT_EXP, _PRIME_INT))
    if y * y % P256_PRIME != rhs:
        raise CryptoError("not a point of P-256")
    if y & 1 != b[0] & 1:
        y = P256_PRIME - y
    return EccPoint(x, y, _CURVE)


def hkdf(
    ikm: bytes,
    *,
    info: bytes,
    salt: bytes = b"",
    length: int = 32,
    meter: CryptoMeter | None = None,
) -> bytes:
    """HKDF-SHA256 (RFC 5869) from the standard library's HMAC: 10x faster than pycryptodome's."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-SHA256 output must be 1..8160 bytes")
    with metering(meter) as tally:
        tally.count("kdf")
        prk = hmac.digest(salt, ikm, "sha256")  # an empty salt equals HashLen zero bytes
        okm, block = b"", b""
        for counter in range(1, -(-length // 32) + 1):
            block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
            okm += block
        return okm[:length]


def ecdh_key(
    secret: int, public: EccPoint, *, info: bytes, meter: CryptoMeter | None = None
) -> bytes:
    """32-byte key: HKDF-SHA256 of the x-coordinate of ``secret·public`` (SP 800-56A's Z)."""
    if not 0 < secret < P256_ORDER:
        raise ValueError("secret scalar out of range")
    with metering(meter) as tally:
        shared = point_mul(public, secret, meter=tally)
        return hkdf(shared.xy[0].to_bytes(32, "big"), info=info, meter=tally)


def _gcm(key: bytes, nonce: bytes, aad: bytes) -> GcmMode:
    if len(key) != AEAD_KEY_BYTES:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    if len(nonce) != AEAD_NONCE_BYTES:
        raise ValueError("AES-GCM nonce must be 12 bytes")
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce)
    cipher.update(aad)
    return cipher


def aead_encrypt(
    key: bytes,
    plaintext: bytes,
    *,
    nonce: bytes,
    aad: bytes = b"",
    meter: CryptoMeter | None = None,
) -> bytes:
    """AES-256-GCM; returns ``nonce (12) | ciphertext | tag (16)``. Never reuse a (key, nonce)."""
    with metering(meter) as tally:
        tally.count("aead")
        cipher = _gcm(key, nonce, aad)
        ciphertext, tag = cipher.encrypt_and_digest(plaintext)
        return bytes(nonce) + ciphertext + tag


def aead_decrypt(
    key: bytes, blob: bytes, *, aad: bytes = b"", meter: CryptoMeter | None = None
) -> bytes:
    """Open :func:`aead_encrypt`'s blob; ``CryptoError`` if anything was tampered with."""
    if len(blob) < AEAD_NONCE_BYTES + AEAD_TAG_BYTES:
        raise CryptoError("AEAD blob too short")
    with metering(meter) as tally:
        tally.count("aead")
        cipher = _gcm(key, blob[:AEAD_NONCE_BYTES], aad)
        body, tag = blob[AEAD_NONCE_BYTES:-AEAD_TAG_BYTES], blob[-AEAD_TAG_BYTES:]
        try:
            return bytes(cipher.decrypt_and_verify(body, tag))
        except ValueError as exc:
            raise CryptoError("AEAD authentication failed") from exc


def pad(data: bytes, size: int) -> bytes:
    """``data | 0x80 | 0x00...`` of exactly ``size`` bytes (ISO/IEC 7816-4); 0 = no padding.

    ``ValueError`` if ``data`` plus the marker byte does not fit; do not unpad a size 0 result.
    """
    if size == 0:
        return data
    if len(data) + 1 > size:
        raise ValueError(f"{len(data)} bytes plus a marker do not fit in {size}")
    return data + bytes([_PAD_MARK]) + bytes(size - len(data) - 1)


def unpad(data: bytes) -> bytes:
    """Undo :func:`pad` (with ``size > 0``); ``ValueError`` if there is no marker."""
    body = data.rstrip(b"\x00")
    if not body or body[-1] != _PAD_MARK:
        raise ValueError("no padding marker")
    return body[:-1]


def ecies_overhead(pad_to: int, plaintext_len: int) -> int:
    """Size in bytes of :func:`ecies_encrypt`'s output for this padding and plaintext length.

    ``33 (ephemeral point) + body + 16 (tag)``, where the body is ``pad_to`` bytes, or the
    plaintext plus one marker byte when ``pad_to`` is 0. ``ValueError`` if it does not fit.
    """
    if plaintext_len < 0 or pad_to < 0:
        raise ValueError("sizes must be non-negative")
    if pad_to and plaintext_len + 1 > pad_to:
        raise ValueError(f"{plaintext_len} bytes plus a marker do not fit in pad_to={pad_to}")
    return POINT_BYTES + (pad_to or plaintext_len + 1) + AEAD_TAG_BYTES


def ecies_encrypt(
    public: EccPoint,
    plaintext: bytes,
    *,
    randbytes: RandBytes,
    pad_to: int = 0,
    aad: bytes = b"",
    ephemeral: int | None = None,
    meter: CryptoMeter | None = None,
) -> bytes:
    """Encrypt to ``public``: ephemeral key, ECDH, HKDF-SHA256, AES-256-GCM.

    ``ephemeral`` is the ephemeral secret when the caller needs it (to prove knowledge of it,
    :mod:`market.proofs`); by default a fresh one comes from ``randbytes``. Never pass the same
    one twice.

    Layout (:func:`ecies_overhead` gives the size)::

        E (33, compressed ephemeral point) | ciphertext of pad(plaintext) | tag (16)

    The AES key is ``ecdh_key(e, public, info="veilcast/ecies/v1|" + E)``: binding ``E`` into
    the KDF makes the sign bit of ``E`` matter too (``-E`` shares its x-coordinate), so no
    bit of the blob can be flipped unnoticed. The plaintext always carries a padding marker
    (the body is exactly ``pad_to`` bytes when ``pad_to`` > 0), so the receiver needs no size.
    """
    body = pad(plaintext, pad_to or len(plaintext) + 1)  # ValueError before any randomness
    with metering(meter) as tally:
        if ephemeral is None:
            ephemeral = random_scalar(randbytes)
        e_bytes = point_bytes(base_mul(ephemeral, meter=tally))
        key = ecdh_key(ephemeral, public, info=_ECIES_INFO + e_bytes, meter=tally)
        sealed = aead_encrypt(key, body, nonce=_ECIES_NONCE, aad=aad, meter=tally)
        return e_bytes + sealed[AEAD_NONCE_BYTES:]


def ecies_decrypt(
    secret: int, blob: bytes, *, aad: bytes = b"", meter: CryptoMeter | None = None
) -> bytes:
    """Decrypt :func:`ecies_encrypt`'s blob; ``CryptoError`` on any tamper or wrong key."""
    if len(blob) < POINT_BYTES + 1 + AEAD_TAG_BYTES:
        raise CryptoError("ECIES blob too short")
    if not 0 < secret < P256_ORDER:
        raise ValueError("secret scalar out of range")
    with metering(meter) as tally:
        shared = point_mul(point_from_bytes(blob[:POINT_BYTES]), secret, meter=tally)
        return ecies_open(shared, blob, aad=aad, meter=tally)


def ecies_open(
    shared: EccPoint, blob: bytes, *, aad: bytes = b"", meter: CryptoMeter | None = None
) -> bytes:
    """Decrypt :func:`ecies_encrypt`'s blob given the shared point ``secret·E`` itself.

    What threshold decryption needs: the keypers' decryption shares combine into ``secret·E``
    without anyone holding ``secret``. ``CryptoError`` on any tamper or wrong point.
    """
    if len(blob) < POINT_BYTES + 1 + AEAD_TAG_BYTES:
        raise CryptoError("ECIES blob too short")
    with metering(meter) as tally:
        e_bytes = blob[:POINT_BYTES]
        key = hkdf(shared.xy[0].to_bytes(32, "big"), info=_ECIES_INFO + e_bytes, meter=tally)
        body = aead_decrypt(key, _ECIES_NONCE + blob[POINT_BYTES:], aad=aad, meter=tally)
        try:
            return unpad(body)
        except ValueError as exc:
            raise CryptoError("ECIES plaintext has no padding marker") from exc


def commit(data: bytes, salt: bytes, *, meter: CryptoMeter | None = None) -> bytes:
    """Hiding, binding commitment: ``SHA-256("veilcast/commit/v1|" | len(salt) | salt | data)``.

    The salt length is encoded (4 bytes, big-endian) so that moving bytes between salt and data
    changes the commitment. Hiding needs an unguessable salt: at least 16 bytes from randbytes.
    """
    if len(salt) < MIN_SALT_BYTES:
        raise ValueError(f"a commitment salt needs at least {MIN_SALT_BYTES} bytes")
    with metering(meter) as tally:
        tally.count("hash")
        return hashlib.sha256(_COMMIT_TAG + len(salt).to_bytes(4, "big") + salt + data).digest()


def open_commitment(
    commitment: bytes, data: bytes, salt: bytes, *, meter: CryptoMeter | None = None
) -> None:
    """Check an opening; ``CryptoError`` if ``(data, salt)`` is not what was committed."""
    if len(salt) < MIN_SALT_BYTES or not hmac.compare_digest(
        commit(data, salt, meter=meter), commitment
    ):
        raise CryptoError("commitment does not open to this data and salt")


def tagged_hash(tag: bytes, data: bytes, *, meter: CryptoMeter | None = None) -> bytes:
    """``SHA-256(len(tag) | tag | data)`` (one length byte): a digest in the domain ``tag``.

    For binding digests of values that are already unguessable (secret shares, seeds); a value
    of low entropy needs :func:`commit`, whose salt hides it.
    """
    if not 0 < len(tag) < 256:
        raise ValueError("a hash tag is 1..255 bytes")
    with metering(meter) as tally:
        tally.count("hash")
        return hashlib.sha256(bytes([len(tag)]) + tag + data).digest()


def sign(secret: int, message: bytes, *, meter: CryptoMeter | None = None) -> bytes:
    """ECDSA P-256 over SHA-256 with deterministic nonces (RFC 6979); 64 bytes ``r | s``."""
    with metering(meter) as tally:
        tally.count("sign")
        key = ECC.construct(curve=_CURVE, d=secret)
        return DSS.new(key, "deterministic-rfc6979").sign(SHA256.new(message))


def verify(
    public: EccPoint, message: bytes, signature: bytes, *, meter: CryptoMeter | None = None
) -> None:
    """Check an ECDSA P-256/SHA-256 signature; ``CryptoError`` if it is not authentic."""
    if len(signature) != SIGNATURE_BYTES:
        raise CryptoError("an ECDSA P-256 signature is 64 bytes")
    with metering(meter) as tally:
        tally.count("verify")
        # EccKey(point=...) wraps the point without re-validating it (it is an EccPoint already)
        key = ECC.EccKey(curve=_CURVE, point=public)
        try:
            DSS.new(key, "fips-186-3").verify(SHA256.new(message), signature)
        except ValueError as exc:
            raise CryptoError("signature is not authentic") from exc


def derive_stream(key: bytes, label: bytes, n: int, *, meter: CryptoMeter | None = None) -> bytes:
    """``n`` pseudo-random bytes from a 32-byte seed: a PRG for secure-aggregation masks.

    The stream is AES-256-CTR (128-bit counter from 0) under the subkey
    ``HKDF-SHA256(key, info="veilcast/stream/v1|" + label)``, i.e. the encryption of ``n``
    zero bytes. Distinct labels give independent streams from one seed, and a shorter stream
    is a prefix of a longer one with the same key and label.
    """
    if len(key) != 32:
        raise ValueError("a stream seed is 32 bytes")
    if n < 0:
        raise ValueError("stream length must be non-negative")
    with metering(meter) as tally:
        subkey = hkdf(key, info=_STREAM_INFO + label, meter=tally)
        return keystream(subkey, n, nonce=b"", meter=tally)


def keystream(
    key: bytes, n: int, *, nonce: bytes, counter: int = 0, meter: CryptoMeter | None = None
) -> bytes:
    """``n`` bytes of AES-256-CTR keystream (pycryptodome's CTR mode): ``n`` zero bytes encrypted.

    Counter blocks are ``nonce | c`` with ``c`` big-endian in the ``16 − len(nonce)`` bytes left,
    from ``counter`` up by one per block (NIST SP 800-38A). A PRG from a key that is already a
    dedicated KDF output: distinct nonces give independent streams, and a shorter stream is a
    prefix of a longer one. ``nonce`` may be empty (one 128-bit counter) up to 15 bytes.
    """
    if len(key) != AEAD_KEY_BYTES:
        raise ValueError("an AES-256-CTR key is 32 bytes")
    if n < 0:
        raise ValueError("stream length must be non-negative")
    with metering(meter) as tally:
        tally.count("prg")
        cipher = AES.new(key, AES.MODE_CTR, nonce=nonce, initial_value=counter)
        return cipher.encrypt(bytes(n))
