"""Secure aggregation after Bonawitz et al. (CCS 2017), as pure client and server steps.

The stages follow Flower's SecAgg+ (advertise keys, share keys, collect masked inputs, unmask)
on a complete graph: every member masks with every other member, as in Bonawitz et al.

The server learns the sum of the survivors' vectors and nothing else about any one of them
(honest-but-curious server, honest clients; no consistency round against an active server).

Ring and encoding: vectors are clamped to ``[-bound, bound]`` per coordinate and encoded as
signed fixed point in ``Z_{2^32}`` with scale ``s = (2^31 // n − 1) / bound`` for ``n`` masking
members, so the sum of ``n`` encodings stays in ``(−2^31, 2^31)`` and lifts back exactly:
the unmasked sum differs from the float sum by at most ``n / (2s)`` per coordinate.

Keys: each client has two long-term P-256 key pairs, a *channel* pair (encrypts shares in
transit, never revealed) and a *mask* pair. Pairwise keys are agreed by ECDH at each end of a
pair of clients (per mask-key epoch: two agreements per key, as deployed) and cached in
:class:`PairKeys`; a round's pairwise mask is the AES-CTR stream keyed by ``k_uv`` with the
round as nonce (:class:`MaskPrg`), so no per-round agreement is needed. SecAgg+ (Bell et al.
2020) differs: it agrees fresh keys every round, and only with ``O(log n)`` neighbours of a
sparse random graph, where this protocol masks over the complete graph.

One round, with ``U1`` the clients that advertised keys (the share holders), ``U2 ⊆ U1`` those
that distributed shares (the masking members) and ``S ⊆ U2`` the survivors:

1. :func:`share_keys`: client ``u`` draws a self-mask seed ``b_u`` and Shamir-shares ``b_u``
   and its mask secret ``s_u`` among all of ``U1`` (itself included, as in the paper), with
   threshold ``t = ⌊|U1|/2⌋ + 1``. Each share travels in an envelope sealed under the pair's
   channel key; ``u`` also publishes to the server a digest of every share and of ``b_u``.
2. :func:`mask_input`: ``y_u = x_u + PRG(b_u) + Σ_{v∈U2, v≠u} ±PRG(k_uv)`` (``+`` if ``u<v``).
3. :func:`unmask_request`: the server names survivors and dropped clients; fewer than ``t``
   survivors aborts the round.
4. :func:`reveal`: a survivor reveals its shares of ``b_u`` for survivors and of ``s_u`` for
   dropped clients, never both for one client, and answers one request per round only.
5. :func:`unmask`: the server checks revealed shares against their owner's digests until it
   has ``t`` valid ones (a tampered share is rejected and reported; too few valid shares
   abort), rebuilds each ``b_u`` and each dropped ``s_u``, recomputes the dropped clients'
   pairwise masks by ECDH with the survivors' public keys and removes all masks.

Before step 1 each client calls :func:`agree_keys` so that every ECDH of the round happens in
one phase (the later steps find the keys cached).

A dropped client's mask secret is now known to the server, so the client must draw a new mask
key pair (:func:`rotate_mask_key`) before it takes part again; its cached pair keys die with
the old epoch. Majority threshold: two disjoint sets of ``t`` holders cannot exist, so no
split of the holders can give the server both ``b_u`` and ``s_u``.

Envelopes are sealed with ChaCha20-Poly1305 (RFC 8439, :mod:`market.aead`) under the pair's
channel key, with the header (owner, holder, round) as associated data and a nonce rebuilt from
it, so an envelope costs its header, its 64 bytes and a 16-byte tag. Every sealing, opening,
digest and mask is counted in the caller's :class:`~market.crypto.CryptoMeter`.

Modules: the keys, pair keys, mask PRG, ring and envelopes are in
:mod:`sim.federated.secagg_crypto`, the roster and the message values in
:mod:`sim.federated.secagg_roster`; this module holds the protocol's steps and re-exports both.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from market.crypto import (
    P256_ORDER,
    CryptoMeter,
    RandBytes,
    ecdh_key,
    random_scalar,
)
from market.errors import CryptoError
from market.shamir import shamir_combine, shamir_split
from sim.federated.secagg_crypto import (
    MASK_INFO,
    MODULUS,
    RING_BITS,
    SCALAR_BYTES,
    ChannelKeys,
    ClientKeys,
    KeyAdvert,
    MaskPrg,
    PairKeys,
    Share,
    ShareEnvelope,
    ShareKind,
    clamped,
    client_keys,
    dequantise,
    fixed_point_scale,
    open_envelope,
    quantise,
    rotate_mask_key,
    seal,
    seed_digest,
    self_mask,
    share_digest,
)
from sim.federated.secagg_roster import (
    MIN_PARTICIPANTS,
    ClientRound,
    MaskedInput,
    Reveal,
    Roster,
    SecAggAbortError,
    SecureSum,
    ShareCommitment,
    UnmaskRequest,
    make_roster,
    threshold,
    with_members,
)

__all__ = [
    "MIN_PARTICIPANTS",
    "MODULUS",
    "RING_BITS",
    "ChannelKeys",
    "ClientKeys",
    "ClientRound",
    "KeyAdvert",
    "MaskPrg",
    "MaskedInput",
    "PairKeys",
    "Reveal",
    "Roster",
    "SecAggAbortError",
    "SecureSum",
    "Share",
    "ShareCommitment",
    "ShareEnvelope",
    "ShareKind",
    "UnmaskRequest",
    "agree_keys",
    "clamped",
    "client_keys",
    "dequantise",
    "fixed_point_scale",
    "make_roster",
    "mask_input",
    "open_envelope",
    "quantise",
    "receive_shares",
    "reveal",
    "rotate_mask_key",
    "seal",
    "seed_digest",
    "share_digest",
    "share_keys",
    "threshold",
    "unmask",
    "unmask_request",
    "with_members",
]


def agree_keys(keys: ClientKeys, roster: Roster, pairs: PairKeys) -> None:
    """Agree (or find cached) every channel and mask key ``keys.client`` needs this round.

    Calling this first keeps all key agreement in one phase; the later steps find the keys
    cached.
    """
    for holder in roster.holders:
        if holder != keys.client:
            pairs.channel(keys, roster.adverts[holder])
            pairs.mask(keys, roster.adverts[holder])


# --- the client's steps ----------------------------------------------------------------------


def share_keys(
    keys: ClientKeys,
    roster: Roster,
    *,
    randbytes: RandBytes,
    pairs: PairKeys,
    meter: CryptoMeter | None = None,
) -> tuple[ClientRound, list[ShareEnvelope], ShareCommitment]:
    """Step 1: draw ``b_u``, share ``b_u`` and ``s_u`` among the holders, seal, commit.

    ``meter`` counts the splits, the digests and the sealing.
    """
    me, rnd = keys.client, roster.round
    if roster.adverts.get(me) is None or roster.adverts[me].epoch != keys.epoch:
        raise ValueError(f"client {me} is not on the roster with its current keys")
    channel = {h: pairs.channel(keys, roster.adverts[h]) for h in roster.holders if h != me}
    seed = random_scalar(randbytes)
    n, t = len(roster.holders), roster.threshold
    seed_shares = shamir_split(seed, n=n, k=t, randbytes=randbytes, meter=meter)
    key_shares = shamir_split(keys.mask_secret, n=n, k=t, randbytes=randbytes, meter=meter)
    envelopes: list[ShareEnvelope] = []
    digests: dict[int, tuple[bytes, bytes]] = {}
    held: dict[int, tuple[Share, Share]] = {}
    for holder, s_share, k_share in zip(roster.holders, seed_shares, key_shares, strict=True):
        digests[holder] = (
            share_digest(rnd, me, holder, "seed", s_share, meter=meter),
            share_digest(rnd, me, holder, "key", k_share, meter=meter),
        )
        if holder == me:
            held[me] = (s_share, k_share)
            continue
        plaintext = s_share[1].to_bytes(SCALAR_BYTES, "big") + k_share[1].to_bytes(
            SCALAR_BYTES, "big"
        )
        envelopes.append(seal(channel[holder], me, holder, rnd, plaintext, meter=meter))
    state = ClientRound(keys=keys, roster=roster, seed=seed, held=held)
    commitment = ShareCommitment(me, rnd, seed_digest(rnd, me, seed, meter=meter), digests)
    return state, envelopes, commitment


def receive_shares(
    state: ClientRound,
    envelopes: Sequence[ShareEnvelope],
    *,
    pairs: PairKeys,
) -> ClientRound:
    """Step 1b: open the envelopes addressed to this client; ``CryptoError`` on any tamper.

    The openings are counted in ``pairs.meter``, with the agreements of the same channel keys.
    """
    me, roster = state.keys.client, state.roster
    channel = {e.owner: pairs.channel(state.keys, roster.adverts[e.owner]) for e in envelopes}
    held = dict(state.held)
    x = roster.x_of(me)
    for envelope in envelopes:
        if envelope.holder != me or envelope.round != roster.round:
            raise CryptoError(f"envelope for {envelope.holder}/round {envelope.round} sent to {me}")
        plaintext = open_envelope(channel[envelope.owner], envelope, meter=pairs.meter)
        seed_y = int.from_bytes(plaintext[:SCALAR_BYTES], "big")
        key_y = int.from_bytes(plaintext[SCALAR_BYTES:], "big")
        held[envelope.owner] = ((x, seed_y), (x, key_y))
    return replace(state, held=held)


def mask_input(
    state: ClientRound,
    vector: np.ndarray,
    *,
    pairs: PairKeys,
    meter: CryptoMeter | None = None,
    noise: np.ndarray | None = None,
) -> MaskedInput:
    """Step 2: ``y_u = encode(x_u) + z_u + PRG(b_u) + Σ ±PRG(k_uv)`` over the other members.

    ``noise`` is the client's integer share ``z_u`` of distributed DP noise (clients mode),
    added in the ring after the encoding and reduced modulo ``2^32`` like every term, never
    clamped: the reduction commutes with the sum, so the server's view is post-processing of
    the noisy sum of encodings.
    """
    keys, roster = state.keys, state.roster
    me = keys.client
    if me not in roster.members:
        raise ValueError(f"client {me} is not a masking member of round {roster.round}")
    if vector.shape != (roster.dim,):
        raise ValueError(f"expected a vector of length {roster.dim}, got shape {vector.shape}")
    peers = [v for v in roster.members if v != me]
    prgs = [pairs.mask(keys, roster.adverts[v]) for v in peers]
    y = quantise(vector, scale=roster.scale, bound=roster.bound)
    if noise is not None:
        y += (noise % MODULUS).astype(np.uint32)
    y += self_mask(state.seed, roster.round, roster.dim, meter)
    for v, prg in zip(peers, prgs, strict=True):
        mask = prg.mask(roster.round, roster.dim, meter=meter)
        if me < v:
            y += mask
        else:
            y -= mask
    return MaskedInput(me, roster.round, y, clamped(vector, bound=roster.bound))


def reveal(state: ClientRound, request: UnmaskRequest) -> tuple[ClientRound, Reveal]:
    """Step 4: reveal seed shares of survivors and key shares of the dropped.

    Refuses (``CryptoError``) a request that names a client as both, names non-members, leaves
    this client out of the survivors, or differs from a request already answered this round:
    any of these could hand the server both secrets of one client.
    """
    me, roster = state.keys.client, state.roster
    survivors, dropped = set(request.survivors), set(request.dropped)
    if request.round != roster.round or survivors & dropped:
        raise CryptoError("an unmask request must not name a client as survivor and dropped")
    if not survivors | dropped <= set(roster.members) or me not in survivors:
        raise CryptoError("an unmask request must split the members and include the revealer")
    if state.answered is not None and state.answered != request:
        raise CryptoError(f"client {me} already answered a different unmask request")
    seed_shares = {u: state.held[u][0] for u in request.survivors if u in state.held}
    key_shares = {u: state.held[u][1] for u in request.dropped if u in state.held}
    return replace(state, answered=request), Reveal(me, roster.round, seed_shares, key_shares)


# --- the server's steps ----------------------------------------------------------------------


def unmask_request(roster: Roster, arrived: Sequence[int]) -> UnmaskRequest:
    """Step 3: survivors are the members whose masked input arrived; abort below ``t``."""
    survivors = tuple(sorted(set(arrived) & set(roster.members)))
    if len(survivors) < roster.threshold:
        raise SecAggAbortError(
            "below_threshold", f"{len(survivors)} survivors < t={roster.threshold}"
        )
    dropped = tuple(m for m in roster.members if m not in set(survivors))
    return UnmaskRequest(roster.round, survivors, dropped)


def _rebuild(
    roster: Roster,
    owner: int,
    kind: ShareKind,
    *,
    offered: list[tuple[int, Share]],
    commitment: ShareCommitment,
    rejected: list[tuple[int, int, str]],
    meter: CryptoMeter | None,
) -> int:
    """Rebuild one secret from the first ``t`` offered shares that match their digests."""
    slot = 0 if kind == "seed" else 1
    valid: list[Share] = []
    for holder, share in offered:
        if len(valid) == roster.threshold:
            break
        expected = commitment.share_digests.get(holder, (b"", b""))[slot]
        if share[0] == roster.x_of(holder) and hmac.compare_digest(
            share_digest(roster.round, owner, holder, kind, share, meter=meter), expected
        ):
            valid.append(share)
        else:
            rejected.append((holder, owner, kind))
    if len(valid) < roster.threshold:
        raise SecAggAbortError("bad_shares", f"{len(valid)} valid {kind} shares of {owner}")
    return shamir_combine(valid, modulus=P256_ORDER, meter=meter)


def unmask(
    roster: Roster,
    request: UnmaskRequest,
    commitments: Mapping[int, ShareCommitment],
    inputs: Mapping[int, MaskedInput],
    reveals: Sequence[Reveal],
    *,
    meter: CryptoMeter | None = None,
) -> SecureSum:
    """Step 5: check the revealed shares, rebuild the secrets, remove every mask, decode."""
    answers = {r.holder: r for r in reveals if r.holder in request.survivors}
    if len(answers) < roster.threshold:
        raise SecAggAbortError("below_threshold", f"{len(answers)} reveals < t={roster.threshold}")
    rejected: list[tuple[int, int, str]] = []
    total = np.zeros(roster.dim, dtype=np.uint32)
    for u in request.survivors:
        total += inputs[u].masked
        offered = [(h, r.seed_shares[u]) for h, r in answers.items() if u in r.seed_shares]
        seed = _rebuild(
            roster,
            u,
            "seed",
            offered=offered,
            commitment=commitments[u],
            rejected=rejected,
            meter=meter,
        )
        digest = seed_digest(roster.round, u, seed, meter=meter)
        if not hmac.compare_digest(digest, commitments[u].seed_digest):
            raise SecAggAbortError("bad_shares", f"seed of {u} does not match its digest")
        total -= self_mask(seed, roster.round, roster.dim, meter)
    for u in request.dropped:
        offered = [(h, r.key_shares[u]) for h, r in answers.items() if u in r.key_shares]
        secret = _rebuild(
            roster,
            u,
            "key",
            offered=offered,
            commitment=commitments[u],
            rejected=rejected,
            meter=meter,
        )
        for v in request.survivors:
            key = ecdh_key(secret, roster.adverts[v].mask_public, info=MASK_INFO, meter=meter)
            # y_v carries +PRG(k_vu) when v < u and −PRG(k_vu) otherwise
            mask = MaskPrg.from_key(key).mask(roster.round, roster.dim, meter=meter)
            if v < u:
                total -= mask
            else:
                total += mask
    return SecureSum(
        total=dequantise(total, scale=roster.scale),
        survivors=request.survivors,
        dropped=request.dropped,
        rejected=tuple(rejected),
        clamped=sum(inputs[u].clamped for u in request.survivors),
    )
