"""The cryptographic building blocks of secure aggregation (see :mod:`sim.federated.secagg`).

Long-term key pairs and their public adverts, pairwise keys agreed at each end of a pair and
cached (:class:`PairKeys`), the AES-CTR mask PRG (:class:`MaskPrg`), the fixed-point ring
``Z_{2^32}`` and the sealed share envelopes with their digests. Nothing here knows about rounds'
rosters or who survived: :mod:`sim.federated.secagg` composes these into the protocol.

No primitive is implemented here: ECDH and HKDF are :func:`market.crypto.ecdh_key`, the mask PRG
is :func:`market.crypto.keystream` (AES-256-CTR), envelopes are sealed with
:mod:`market.aead` (ChaCha20-Poly1305) and digests are :func:`market.crypto.tagged_hash`
(SHA-256). This module only says which keys, nonces and bytes go in.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from Crypto.PublicKey.ECC import EccPoint

from market.aead import decrypt_and_verify, encrypt_and_digest
from market.crypto import (
    CryptoMeter,
    RandBytes,
    derive_stream,
    ecdh_key,
    keypair,
    keystream,
    tagged_hash,
)
from market.errors import CryptoError

RING_BITS = 32
MODULUS = 1 << RING_BITS

_CHANNEL_INFO = b"veilcast/secagg/channel/v1"
MASK_INFO = b"veilcast/secagg/mask/v1"
_SHARE_DIGEST = b"veilcast/secagg/share/v1"
_SEED_DIGEST = b"veilcast/secagg/seed/v1"
SCALAR_BYTES = 32
KEY_BYTES = 32

_HEADER = struct.Struct(">QQQ")
_NONCE = struct.Struct(">IQ")
_DIGEST_HEAD = struct.Struct(">QQQQ")
_SEED_HEAD = struct.Struct(">QQ")

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
    """A pair's channel key: the ChaCha20-Poly1305 key of the envelopes between the two.

    It is an HKDF output dedicated to the channel (its ECDH ``info`` differs from the mask
    key's), so it is the AEAD key as is.
    """

    key: bytes

    @classmethod
    def from_key(cls, key: bytes) -> ChannelKeys:
        """The channel of pair key ``key`` (32 bytes)."""
        if len(key) != KEY_BYTES:
            raise ValueError("a channel key is 32 bytes")
        return cls(key)


@dataclass(slots=True)
class PairKeys:
    """Pairwise keys agreed once per pair and per end, and reused across rounds.

    Each end of a pair runs its own ECDH, as a deployment does: ``u`` computes ``s_u·P_v`` and
    ``v`` computes ``s_v·P_u``, so a pair costs two agreements per key (channel and mask), the
    same bytes at both ends. Entries are keyed by the ordered pair (this end, the peer): channel
    keys by the two clients, mask keys by ``(client, epoch)`` at both ends so a rotated key is
    never matched with a stale agreement. Reuse across rounds is the design (a round's masks
    are the AES-CTR stream with the round as nonce), unlike SecAgg+ (Bell et al. 2020), which
    agrees fresh keys every round.
    """

    meter: CryptoMeter | None = None
    agreements: int = 0
    """ECDH agreements run so far, counted once per end."""
    _channels: dict[tuple[int, int], ChannelKeys] = field(default_factory=dict)
    _masks: dict[tuple[tuple[int, int], tuple[int, int]], MaskPrg] = field(default_factory=dict)

    def channel(self, own: ClientKeys, peer: KeyAdvert) -> ChannelKeys:
        """``own``'s channel key with ``peer``, agreed by ``own`` on first use."""
        end = (own.client, peer.client)
        keys = self._channels.get(end)
        if keys is None:
            shared = ecdh_key(
                own.channel_secret, peer.channel_public, info=_CHANNEL_INFO, meter=self.meter
            )
            self.agreements += 1
            keys = self._channels[end] = ChannelKeys.from_key(shared)
        return keys

    def mask(self, own: ClientKeys, peer: KeyAdvert) -> MaskPrg:
        """``own``'s mask PRG with ``peer`` at their current epochs, agreed by ``own``."""
        end = ((own.client, own.epoch), (peer.client, peer.epoch))
        prg = self._masks.get(end)
        if prg is None:
            shared = ecdh_key(own.mask_secret, peer.mask_public, info=MASK_INFO, meter=self.meter)
            self.agreements += 1
            prg = self._masks[end] = MaskPrg.from_key(shared)
        return prg

    def forget(self, client: int, epoch: int) -> None:
        """Drop the mask PRGs of ``client``'s old ``epoch``, at both ends (no longer secret)."""
        dead = [end for end in self._masks if (client, epoch) in end]
        for end in dead:
            del self._masks[end]

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


def clamped(vector: np.ndarray, *, bound: float) -> int:
    """How many coordinates :func:`quantise` clamps: those with magnitude beyond ``bound``."""
    return int(np.count_nonzero(np.abs(vector) > bound))


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


@dataclass(frozen=True, slots=True, eq=False)
class MaskPrg:
    """The PRG of one pair's masks: AES-256-CTR under the pair's mask key, round as nonce.

    The pair key is already an HKDF output dedicated to masks (its ECDH ``info`` differs from
    the channel key's), so it is the AES key as is. Round ``r``'s mask is the keystream of the
    counter blocks ``(r, 0), (r, 1), …`` (2 × 64 bits, big-endian), little-endian words: no
    per-round key agreement or derivation, and each round's nonce is new.
    """

    key: bytes

    @classmethod
    def from_key(cls, key: bytes) -> MaskPrg:
        """The PRG of pair key ``key`` (32 bytes)."""
        if len(key) != KEY_BYTES:
            raise ValueError("a mask key is 32 bytes")
        return cls(key)

    def mask(self, round_number: int, dim: int, *, meter: CryptoMeter | None = None) -> np.ndarray:
        """Round ``round_number``'s mask: ``dim`` words of ``Z_{2^32}``."""
        nonce = round_number.to_bytes(8, "big")
        return np.frombuffer(keystream(self.key, 4 * dim, nonce=nonce, meter=meter), dtype="<u4")


@dataclass(frozen=True, slots=True)
class ShareEnvelope:
    """One owner's two shares for one holder, sealed under their channel key."""

    owner: int
    holder: int
    round: int
    ciphertext: bytes
    mac: bytes
    """The Poly1305 tag (16 bytes)."""


# --- sealed envelopes and digests ------------------------------------------------------------


def _nonce_and_header(owner: int, holder: int, round_number: int) -> tuple[bytes, bytes]:
    # The channel key belongs to the unordered pair, which sends one envelope per direction per
    # round: (direction, round) never repeats under one key. The header is the associated data,
    # so an envelope relabelled to another holder or round fails.
    nonce = _NONCE.pack(int(owner > holder), round_number)
    return nonce, _HEADER.pack(owner, holder, round_number)


def seal(
    keys: ChannelKeys,
    owner: int,
    holder: int,
    round_number: int,
    plaintext: bytes,
    *,
    meter: CryptoMeter | None = None,
) -> ShareEnvelope:
    """Seal ``plaintext`` for ``holder`` with ChaCha20-Poly1305 under the pair's channel key.

    The nonce is rebuilt from the header (which travels anyway), so the envelope costs its
    header, ``len(plaintext)`` and a 16-byte tag on the wire.
    """
    nonce, header = _nonce_and_header(owner, holder, round_number)
    ciphertext, tag = encrypt_and_digest(keys.key, plaintext, nonce=nonce, aad=header, meter=meter)
    return ShareEnvelope(owner, holder, round_number, ciphertext, tag)


def open_envelope(
    keys: ChannelKeys, envelope: ShareEnvelope, *, meter: CryptoMeter | None = None
) -> bytes:
    """The plaintext of ``envelope``; ``CryptoError`` if any byte or header field was changed."""
    nonce, header = _nonce_and_header(envelope.owner, envelope.holder, envelope.round)
    try:
        return decrypt_and_verify(
            keys.key, envelope.ciphertext, envelope.mac, nonce=nonce, aad=header, meter=meter
        )
    except CryptoError as exc:
        raise CryptoError(
            f"share envelope {envelope.owner}->{envelope.holder} of round {envelope.round}"
            " fails authentication"
        ) from exc


def share_digest(
    round_number: int,
    owner: int,
    holder: int,
    kind: ShareKind,
    share: Share,
    *,
    meter: CryptoMeter | None = None,
) -> bytes:
    """Binding digest of one share, published by its owner before anything is revealed."""
    x, y = share
    head = _DIGEST_HEAD.pack(round_number, owner, holder, x)
    return tagged_hash(
        _SHARE_DIGEST + b"|" + kind.encode(), head + y.to_bytes(SCALAR_BYTES, "big"), meter=meter
    )


def seed_digest(
    round_number: int, owner: int, seed: int, *, meter: CryptoMeter | None = None
) -> bytes:
    """Digest of a self-mask seed, checked after the seed is rebuilt."""
    data = _SEED_HEAD.pack(round_number, owner) + seed.to_bytes(SCALAR_BYTES, "big")
    return tagged_hash(_SEED_DIGEST, data, meter=meter)
