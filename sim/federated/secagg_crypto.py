"""The cryptographic building blocks of secure aggregation (see :mod:`sim.federated.secagg`).

Long-term key pairs and their public adverts, pairwise keys agreed once per pair and cached
(:class:`PairKeys`), the AES-CTR mask PRG (:class:`MaskPrg`), the fixed-point ring ``Z_{2^32}``
and the sealed share envelopes with their digests. Nothing here knows about rounds' rosters or
who survived: :mod:`sim.federated.secagg` composes these into the protocol.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from Crypto.Cipher import AES
from Crypto.PublicKey.ECC import EccPoint

from market.crypto import (
    CryptoMeter,
    RandBytes,
    derive_stream,
    ecdh_key,
    keypair,
)
from market.errors import CryptoError

RING_BITS = 32
MODULUS = 1 << RING_BITS

_CHANNEL_INFO = b"veilcast/secagg/channel/v1"
MASK_INFO = b"veilcast/secagg/mask/v1"
_SHARE_DIGEST = b"veilcast/secagg/share/v1"
_SEED_DIGEST = b"veilcast/secagg/seed/v1"
_MAC_BYTES = 16
SCALAR_BYTES = 32

_HEADER = struct.Struct(">QQQ")
_DIGEST_HEAD = struct.Struct(">QQQQ")

Share = tuple[int, int]
ShareKind = Literal["seed", "key"]


@dataclass(frozen=True, slots=True, eq=False)
class KeyAdvert:
    """A client's public keys for one round (what ``U1`` publishes)."""

    client: int
    channel_public: EccPoint
    mask_public: EccPoint
    epoch: int


@dataclass(frozen=True, slots=True, eq=False)
class ClientKeys:
    """A client's long-term key pairs; ``epoch`` counts mask-key rotations."""

    client: int
    channel_secret: int
    channel_public: EccPoint
    mask_secret: int
    mask_public: EccPoint
    epoch: int = 0

    def advert(self) -> KeyAdvert:
        """The public half."""
        return KeyAdvert(self.client, self.channel_public, self.mask_public, self.epoch)


def client_keys(
    client: int, randbytes: RandBytes, *, meter: CryptoMeter | None = None
) -> ClientKeys:
    """Fresh channel and mask key pairs for ``client``."""
    channel_secret, channel_public = keypair(randbytes, meter=meter)
    mask_secret, mask_public = keypair(randbytes, meter=meter)
    return ClientKeys(client, channel_secret, channel_public, mask_secret, mask_public)


def rotate_mask_key(
    keys: ClientKeys, randbytes: RandBytes, *, meter: CryptoMeter | None = None
) -> ClientKeys:
    """A new mask key pair (next epoch), after the old secret was revealed to the server."""
    secret, public = keypair(randbytes, meter=meter)
    return replace(keys, mask_secret=secret, mask_public=public, epoch=keys.epoch + 1)


@dataclass(frozen=True, slots=True)
class ChannelKeys:
    """The subkeys of a pair's channel: one encrypts share envelopes, one authenticates them."""

    enc: bytes
    mac: bytes

    @classmethod
    def from_key(cls, key: bytes) -> ChannelKeys:
        """Independent subkeys of the channel key ``key`` (keyed BLAKE2b as a PRF)."""
        return cls(
            hashlib.blake2b(b"enc", key=key, digest_size=32).digest(),
            hashlib.blake2b(b"mac", key=key, digest_size=32).digest(),
        )


@dataclass(slots=True)
class PairKeys:
    """Pairwise keys agreed once per pair and reused across rounds.

    Channel keys are keyed by the pair of clients, mask keys by the pair of ``(client, epoch)``
    so a rotated key is never matched with a stale agreement. ECDH is symmetric, so one entry
    serves both ends: the simulation runs each agreement once where a deployment would run it
    once at each end.
    """

    meter: CryptoMeter | None = None
    agreements: int = 0
    _channels: dict[tuple[int, int], ChannelKeys] = field(default_factory=dict)
    _masks: dict[tuple[tuple[int, int], tuple[int, int]], MaskPrg] = field(default_factory=dict)

    def channel(self, own: ClientKeys, peer: KeyAdvert) -> ChannelKeys:
        """The channel subkeys of ``own`` and ``peer``."""
        a, b = sorted((own.client, peer.client))
        keys = self._channels.get((a, b))
        if keys is None:
            shared = ecdh_key(
                own.channel_secret, peer.channel_public, info=_CHANNEL_INFO, meter=self.meter
            )
            self.agreements += 1
            keys = self._channels[(a, b)] = ChannelKeys.from_key(shared)
        return keys

    def mask(self, own: ClientKeys, peer: KeyAdvert) -> MaskPrg:
        """The mask PRG of ``own`` and ``peer`` at their current epochs."""
        a, b = sorted(((own.client, own.epoch), (peer.client, peer.epoch)))
        prg = self._masks.get((a, b))
        if prg is None:
            shared = ecdh_key(own.mask_secret, peer.mask_public, info=MASK_INFO, meter=self.meter)
            self.agreements += 1
            prg = self._masks[(a, b)] = MaskPrg.from_key(shared)
        return prg

    def forget(self, client: int, epoch: int) -> None:
        """Drop the mask PRGs of ``client``'s old ``epoch`` (its secret is no longer secret)."""
        dead = [pair for pair in self._masks if (client, epoch) in pair]
        for pair in dead:
            del self._masks[pair]

    def __len__(self) -> int:
        return len(self._channels) + len(self._masks)


# --- fixed-point ring -------------------------------------------------------------------------


def fixed_point_scale(members: int, bound: float) -> float:
    """Scale ``s`` such that ``members`` encodings of values in ``[-bound, bound]`` never wrap."""
    return (2**31 // members - 1) / bound


def quantise(vector: np.ndarray, *, scale: float, bound: float) -> np.ndarray:
    """Clamp to ``[-bound, bound]``, round ``v·scale`` to an integer and reduce into the ring."""
    q = np.rint(np.clip(vector, -bound, bound) * scale).astype(np.int64)
    return (q % MODULUS).astype(np.uint32)


def dequantise(total: np.ndarray, *, scale: float) -> np.ndarray:
    """Lift a ring sum to the signed range ``[-2^31, 2^31)`` and undo the scale."""
    signed = total.astype(np.int64)
    signed[signed >= 2**31] -= MODULUS
    return signed / scale


def self_mask(seed: int, round_number: int, dim: int, meter: CryptoMeter | None) -> np.ndarray:
    stream = derive_stream(
        seed.to_bytes(SCALAR_BYTES, "big"), b"self/%d" % round_number, 4 * dim, meter=meter
    )
    return np.frombuffer(stream, dtype="<u4")


def counter_blocks(round_number: int, dim: int) -> bytes:
    """The CTR counter blocks of a round's mask: ``(round, 0), (round, 1), …`` (2 × 64 bits)."""
    blocks = (4 * dim + 15) // 16
    counters = np.empty((blocks, 2), dtype=">u8")
    counters[:, 0] = round_number
    counters[:, 1] = np.arange(blocks)
    return counters.tobytes()


@dataclass(frozen=True, slots=True, eq=False)
class MaskPrg:
    """The PRG of one pair's masks: AES-256-CTR under the pair's mask key, round as nonce.

    The pair key is already an HKDF output dedicated to masks (its ECDH ``info`` differs from
    the channel key's), so it is the AES key as is. Round ``r``'s mask is the keystream of the
    counter blocks :func:`counter_blocks` gives; the AES key schedule is kept, so a round costs
    one AES call per pair rather than a key derivation and a fresh cipher.
    """

    cipher: Any

    @classmethod
    def from_key(cls, key: bytes) -> MaskPrg:
        """The PRG of pair key ``key`` (32 bytes)."""
        return cls(AES.new(key, AES.MODE_ECB))

    def mask(self, round_number: int, dim: int, *, counters: bytes | None = None) -> np.ndarray:
        """Round ``round_number``'s mask: ``dim`` words of ``Z_{2^32}``.

        ``counters`` may pass :func:`counter_blocks` ``(round_number, dim)`` precomputed.
        """
        blocks = counters if counters is not None else counter_blocks(round_number, dim)
        return np.frombuffer(self.cipher.encrypt(blocks), dtype="<u4")[:dim]


@dataclass(frozen=True, slots=True)
class ShareEnvelope:
    """One owner's two shares for one holder, sealed under their channel key."""

    owner: int
    holder: int
    round: int
    ciphertext: bytes
    mac: bytes


# --- sealed envelopes and digests ------------------------------------------------------------


def _keystream(key: bytes, header: bytes, n: int) -> bytes:
    # BLAKE2b as a PRF in counter mode, 64 bytes per block (one block for a share envelope)
    stream = hashlib.blake2b(header + b"\0\0\0\0", key=key).digest()
    for i in range(1, (n + 63) // 64):
        stream += hashlib.blake2b(header + i.to_bytes(4, "big"), key=key).digest()
    return stream[:n]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _header(owner: int, holder: int, round_number: int) -> bytes:
    # unique per (channel key, message): one envelope per direction per round
    return _HEADER.pack(owner, holder, round_number)


def _mac(keys: ChannelKeys, header: bytes, ciphertext: bytes) -> bytes:
    return hashlib.blake2b(header + ciphertext, key=keys.mac, digest_size=_MAC_BYTES).digest()


def seal(
    keys: ChannelKeys, owner: int, holder: int, round_number: int, plaintext: bytes
) -> ShareEnvelope:
    """Encrypt-then-MAC ``plaintext`` for ``holder`` under the pair's channel subkeys."""
    header = _header(owner, holder, round_number)
    ciphertext = _xor(plaintext, _keystream(keys.enc, header, len(plaintext)))
    return ShareEnvelope(owner, holder, round_number, ciphertext, _mac(keys, header, ciphertext))


def open_envelope(keys: ChannelKeys, envelope: ShareEnvelope) -> bytes:
    """The plaintext of ``envelope``; ``CryptoError`` if any byte of it was changed."""
    header = _header(envelope.owner, envelope.holder, envelope.round)
    if not hmac.compare_digest(_mac(keys, header, envelope.ciphertext), envelope.mac):
        raise CryptoError(f"share envelope {envelope.owner}->{envelope.holder} fails its MAC")
    return _xor(envelope.ciphertext, _keystream(keys.enc, header, len(envelope.ciphertext)))


def share_digest(
    round_number: int, owner: int, holder: int, kind: ShareKind, share: Share
) -> bytes:
    """Binding digest of one share, published by its owner before anything is revealed."""
    x, y = share
    text = _SHARE_DIGEST + kind.encode() + _DIGEST_HEAD.pack(round_number, owner, holder, x)
    return hashlib.blake2b(text + y.to_bytes(SCALAR_BYTES, "big"), digest_size=32).digest()


def seed_digest(round_number: int, owner: int, seed: int) -> bytes:
    """Digest of a self-mask seed, checked after the seed is rebuilt."""
    return hashlib.sha256(b"%s|%d|%d|%d" % (_SEED_DIGEST, round_number, owner, seed)).digest()
