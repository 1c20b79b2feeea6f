"""ChaCha20-Poly1305 (RFC 8439), pycryptodome's, for messages whose nonce is never sent.

:func:`market.crypto.aead_encrypt` (AES-256-GCM) carries its nonce in the blob. Here the caller
supplies a nonce it can rebuild from what travels anyway (secure aggregation derives it from an
envelope's owner, holder and round), so a sealed message costs exactly its tag: 16 bytes.

Secure aggregation seals and opens ``n(n−1)`` envelopes per round, each under its own pair's
key, so the cost of one call is what matters, and for a 64-byte message nearly all of it is
Python wrapping, not cryptography: ``ChaCha20_Poly1305.new`` builds two ChaCha20 objects and a
Poly1305 object and makes about a dozen foreign calls (~32 µs; AES-GCM ~65 µs). The default
path here makes the same RFC 8439 §2.8 construction from pycryptodome's own ChaCha20 and
Poly1305 C cores (``Crypto.Cipher.ChaCha20`` and ``Crypto.Hash.Poly1305`` through
``Crypto.Util._raw_api``), in one ChaCha20 call and one Poly1305 pass (~7 µs):

* the keystream of block 0 and the message from block 1 come from one ChaCha20 call over
  ``64 zero bytes | message``: its first 32 bytes are the one-time Poly1305 key (§2.6) and the
  rest is the ciphertext (or, opening, the plaintext);
* the tag is Poly1305 over ``aad | pad16 | ciphertext | pad16 | le64(len aad) | le64(len ct)``;
* opening compares tags with :func:`hmac.compare_digest` before returning the plaintext.

No arithmetic of either primitive is done here. Those C cores are pycryptodome internals, so
at import the fast path must reproduce ``ChaCha20_Poly1305``'s output on the RFC 8439 §2.8.2
vector, or this module falls back to ``ChaCha20_Poly1305.new`` (same bytes, slower).

Like :mod:`market.crypto`, keys here are simulation keys. A ``(key, nonce)`` pair must never
seal two different messages: the caller's nonce scheme is what guarantees it.
"""

from __future__ import annotations

import hmac
import struct
from time import perf_counter
from typing import Any

from Crypto.Cipher import ChaCha20, ChaCha20_Poly1305
from Crypto.Hash import Poly1305
from Crypto.Util import _raw_api

from market.crypto import CryptoMeter
from market.errors import CryptoError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

_BLOCK0 = bytes(64)  # ChaCha20 block 0: the Poly1305 one-time key (§2.6), then block 1 on
_LENGTHS = struct.Struct("<QQ")
_PADS = tuple(bytes(-i % 16) for i in range(16))


def _check(key: bytes, nonce: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError("ChaCha20-Poly1305 needs a 32-byte key")
    if len(nonce) != NONCE_BYTES:
        raise ValueError("an RFC 8439 ChaCha20-Poly1305 nonce is 12 bytes")


# --- pycryptodome's ChaCha20_Poly1305 object (the reference, and the fallback) ---------------


def _api_seal(key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    cipher = ChaCha20_Poly1305.new(key=key, nonce=nonce)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return bytes(ciphertext), bytes(tag)


def _api_open(key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes, tag: bytes) -> bytes | None:
    cipher = ChaCha20_Poly1305.new(key=key, nonce=nonce)
    cipher.update(aad)
    try:
        return bytes(cipher.decrypt_and_verify(ciphertext, tag))
    except ValueError:
        return None


# --- the same construction straight on pycryptodome's C cores --------------------------------

_CHACHA: Any = getattr(ChaCha20, "_raw_chacha20_lib", None)
_POLY: Any = getattr(Poly1305, "_raw_poly1305", None)
_void: Any = getattr(_raw_api, "VoidPointer", None)
_size: Any = getattr(_raw_api, "c_size_t", None)
_buffer: Any = getattr(_raw_api, "create_string_buffer", None)
_raw: Any = getattr(_raw_api, "get_raw_buffer", None)
if _size is not None:
    _KEY_SIZE, _NONCE_SIZE, _HALF_SIZE = _size(KEY_BYTES), _size(NONCE_BYTES), _size(16)


class _Scratch:
    """One state pointer and output buffers, reused by every call of one seal or open batch.

    Not shared between batches (nor threads): each batch makes its own.
    """

    __slots__ = ("state", "streams", "tag")

    def __init__(self) -> None:
        self.state = _void()
        self.tag = _buffer(TAG_BYTES)
        self.streams: dict[int, Any] = {}

    def chacha20(self, key: bytes, nonce: bytes, data: bytes) -> bytes:
        """``data`` XOR the ChaCha20 keystream of ``(key, nonce)`` from block 0."""
        n = len(data)
        out = self.streams.get(n)
        if out is None:
            if len(self.streams) >= 8:  # a context meant for messages of a few lengths
                self.streams.clear()
            out = self.streams[n] = _buffer(n)
        state = self.state
        if _CHACHA.chacha20_init(state.address_of(), key, _KEY_SIZE, nonce, _NONCE_SIZE):
            raise ValueError("pycryptodome could not start ChaCha20")
        try:
            err = _CHACHA.chacha20_encrypt(state.get(), data, out, _size(n))
        finally:
            _CHACHA.chacha20_destroy(state.get())
        if err:
            raise ValueError(f"pycryptodome ChaCha20 failed (error {err}): message too long?")
        return _raw(out)

    def poly1305(self, one_time_key: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        """The RFC 8439 §2.8 tag: Poly1305 over aad, ciphertext, their paddings and lengths."""
        data = b"".join(
            (
                aad,
                _PADS[len(aad) % 16],
                ciphertext,
                _PADS[len(ciphertext) % 16],
                _LENGTHS.pack(len(aad), len(ciphertext)),
            )
        )
        state, tag = self.state, self.tag
        r, s = one_time_key[:16], one_time_key[16:32]
        if _POLY.poly1305_init(state.address_of(), r, _HALF_SIZE, s, _HALF_SIZE):
            raise ValueError("pycryptodome could not start Poly1305")
        try:
            err = _POLY.poly1305_update(state.get(), data, _size(len(data)))
            err = err or _POLY.poly1305_digest(state.get(), tag, _HALF_SIZE)
        finally:
            _POLY.poly1305_destroy(state.get())
        if err:
            raise ValueError(f"pycryptodome Poly1305 failed (error {err})")
        return _raw(tag)

    def seal(self, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
        stream = self.chacha20(key, nonce, _BLOCK0 + plaintext)
        ciphertext = stream[64:]
        return ciphertext, self.poly1305(stream, aad, ciphertext)

    def open(
        self, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes, tag: bytes
    ) -> bytes | None:
        stream = self.chacha20(key, nonce, _BLOCK0 + ciphertext)
        if not hmac.compare_digest(self.poly1305(stream, aad, ciphertext), tag):
            return None
        return stream[64:]


def _core_seal(key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    return _Scratch().seal(key, nonce, aad, plaintext)


def _core_open(key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes, tag: bytes) -> bytes | None:
    return _Scratch().open(key, nonce, aad, ciphertext, tag)


def _core_agrees() -> bool:
    """Whether the C-core path runs here and gives ``ChaCha20_Poly1305``'s bytes (§2.8.2)."""
    if None in (_CHACHA, _POLY, _void, _size, _buffer, _raw):
        return False
    key = bytes(range(0x80, 0xA0))
    nonce, aad = (
        bytes.fromhex("070000004041424344454647"),
        bytes.fromhex("50515253c0c1c2c3c4c5c6c7"),
    )
    plaintext = bytes(range(114))
    try:
        sealed = _core_seal(key, nonce, aad, plaintext)
        opened = _core_open(key, nonce, aad, *sealed)
    except Exception:  # any failure of pycryptodome's internals: use its API instead
        return False
    return sealed == _api_seal(key, nonce, aad, plaintext) and opened == plaintext


FAST_PATH = _core_agrees()
"""True when sealing and opening run on pycryptodome's C cores (see the module docstring)."""


class Aead:
    """Seals and opens many messages, each under its own key and nonce, with one scratch state.

    For loops of short messages (secure aggregation's envelopes): the same bytes, checks and
    meter counts as :func:`encrypt_and_digest` and :func:`decrypt_and_verify` call by call
    (one ``"aead"`` per call, failed or not), without a new state pointer and output buffers
    per call. Not thread-safe: one per loop.
    """

    __slots__ = ("_open", "_seal", "meter")

    def __init__(self, meter: CryptoMeter | None = None) -> None:
        self.meter = meter
        if FAST_PATH:
            scratch = _Scratch()
            self._seal, self._open = scratch.seal, scratch.open
        else:
            self._seal, self._open = _api_seal, _api_open

    def encrypt_and_digest(
        self, key: bytes, plaintext: bytes, *, nonce: bytes, aad: bytes = b""
    ) -> tuple[bytes, bytes]:
        """``(ciphertext, tag)``: the ciphertext as long as ``plaintext``, the tag 16 bytes."""
        meter = self.meter
        if meter is None:  # the hot path of secure aggregation's sharing, unmetered
            _check(key, nonce)
            return self._seal(bytes(key), bytes(nonce), bytes(aad), bytes(plaintext))
        start = perf_counter()
        try:
            _check(key, nonce)
            return self._seal(bytes(key), bytes(nonce), bytes(aad), bytes(plaintext))
        finally:  # one operation, counted even if it failed (as market.crypto.metering does)
            meter.count("aead")
            meter.cpu_s += perf_counter() - start

    def decrypt_and_verify(
        self, key: bytes, ciphertext: bytes, tag: bytes, *, nonce: bytes, aad: bytes = b""
    ) -> bytes:
        """The plaintext; ``CryptoError`` if the ciphertext, tag, nonce, ``aad`` or key differ."""
        if len(tag) != TAG_BYTES:
            raise CryptoError("a Poly1305 tag is 16 bytes")
        meter = self.meter
        start = perf_counter()
        try:
            _check(key, nonce)
            plaintext = self._open(
                bytes(key), bytes(nonce), bytes(aad), bytes(ciphertext), bytes(tag)
            )
        finally:
            if meter is not None:
                meter.count("aead")
                meter.cpu_s += perf_counter() - start
        if plaintext is None:
            raise CryptoError("ChaCha20-Poly1305 authentication failed")
        return plaintext


def encrypt_and_digest(
    key: bytes,
    plaintext: bytes,
    *,
    nonce: bytes,
    aad: bytes = b"",
    meter: CryptoMeter | None = None,
) -> tuple[bytes, bytes]:
    """``(ciphertext, tag)``: the ciphertext as long as ``plaintext``, the tag 16 bytes."""
    return Aead(meter).encrypt_and_digest(key, plaintext, nonce=nonce, aad=aad)


def decrypt_and_verify(
    key: bytes,
    ciphertext: bytes,
    tag: bytes,
    *,
    nonce: bytes,
    aad: bytes = b"",
    meter: CryptoMeter | None = None,
) -> bytes:
    """The plaintext; ``CryptoError`` if the ciphertext, tag, nonce, ``aad`` or key differ."""
    return Aead(meter).decrypt_and_verify(key, ciphertext, tag, nonce=nonce, aad=aad)
