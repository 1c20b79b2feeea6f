"""Distributed key generation (Feldman VSS) and threshold decryption for keyper committees.

``n`` keypers, numbered ``1..n`` (their Shamir x-coordinates), threshold ``t``. Each dealer
``i`` draws a random polynomial ``f_i`` of degree ``t-1``, publishes Feldman commitments
``C_ik = a_ik·G`` and sends ``f_i(j)`` to keyper ``j``. A bad or missing share draws a
complaint ``(recipient, dealer)`` and excludes the dealer; the rest form the qualified set
``Q``. The epoch secret ``x = Σ_{i∈Q} f_i(0)`` is never held by anyone; the epoch public key is
``X = Σ_{i∈Q} C_i0``; keyper ``j`` holds ``x_j = Σ_{i∈Q} f_i(j)`` with public share
``X_j = x_j·G = Σ_k j^k·A_k`` where ``A_k = Σ_{i∈Q} C_ik``. When a batch closes, keypers reveal
``x_j``; anyone checks ``x_j·G == X_j`` and interpolates ``t`` valid shares into ``x``.

**Batched verification.** Checking every share on its own costs ``n²`` fixed-base and
``n²(t-1)`` variable-base multiplications. :func:`run_dkg` simulates all recipients' checks at
once with one random linear combination: with 64-bit weights ``ρ_j``,

    (Σ_j ρ_j x_j)·G  ==  Σ_k c_k·A_k,   c_k = Σ_j ρ_j j^k  (small integers, ~90 bits)

i.e. one fixed-base and ``t`` short public-scalar multiplications. If any ``x_j·G ≠ X_j`` the
two sides differ except with probability 2^-64. The weights are a Fiat-Shamir hash (SHAKE-256) of
``(A_0..A_{t-1}, x_1..x_n)``, everything the aggregate deviation depends on, so no dealer can
choose its deal to fit them. Only when the check fails does the fallback look for the culprit:
each recipient's aggregate check (Horner in the exponent with small ``j``), then, for the
recipients that fail, every dealer's share to them. Excluded dealers are removed and the
batch check repeated on the smaller ``Q``, so deviations that cancel between two dealers are
caught once one of them is gone. Deviations that cancel *within* ``Q`` for every recipient
leave a consistent key and are, correctly, not an error. With the check passed, the public
shares are ``x_j·G`` (``n`` fixed-base multiplications, cheaper than evaluating the committed
polynomial): per DKG ``n·t + n + 1`` fixed-base and ``t`` short multiplications in all.

**What a deployment performs.** The batched check is the simulator's shortcut, not what keypers
do. Deployed, dealer ``i`` encrypts ``f_i(j)`` to each other keyper ``j`` (:func:`seal_share`,
ECIES), and keyper ``j`` decrypts each share it receives and checks it against its dealer's
commitments on its own (:func:`open_share`); the aggregator evaluates the committed polynomial
for every public share (:func:`public_share`). :func:`exchange_ops` counts those operations, so
that a run meters the protocol's cost (it grows as ``n²``), not the shortcut's.

**Decryption shares** (TDH2, Shoup and Gennaro, 1998). Revealing ``x_j`` spends the key share:
after one batch anyone could decrypt everything sent to that key. Instead keyper ``j`` can
publish, for a ciphertext with ephemeral point ``E``, ``d_j = x_j·E`` with a Chaum–Pedersen
proof that ``log_G X_j = log_E d_j`` (:func:`decryption_share`, :mod:`market.proofs`). Anyone
checks each share against ``X_j`` (:func:`verify_decryption_share`), so a wrong one is named,
not merely skipped, and ``t`` valid ones combine by Lagrange interpolation in the exponent into
``x·E``, the ECIES shared point, which opens that ciphertext and no other
(:func:`threshold_decrypt`). The key share stays secret and serves any number of epochs.

Feldman DKG lets a rushing adversary bias the key's distribution (Gennaro et al., 1999); that
does not matter for a simulator. Keys here are simulation keys (see :mod:`market.crypto`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from Crypto.PublicKey.ECC import EccPoint

from market.crypto import (
    GENERATOR,
    P256_ORDER,
    POINT_BYTES,
    CryptoMeter,
    OpKind,
    RandBytes,
    base_mul,
    ecies_decrypt,
    ecies_encrypt,
    ecies_open,
    ecies_overhead,
    metering,
    point_bytes,
    point_from_bytes,
    point_mul,
    random_scalar,
)
from market.errors import CryptoError
from market.proofs import SCHNORR_PROOF_BYTES, dleq_prove, dleq_verify
from market.shamir import eval_poly, lagrange_at_zero, shamir_combine

_BATCH_TAG = b"veilcast/dkg/batch/v1|"
_SHARE_TAG = b"veilcast/dkg/share/v1|"
_DECRYPTION_TAG = b"veilcast/decryption-share/v1|"
_WEIGHT_BYTES = 8
_SCALAR_BYTES = 32

SEALED_SHARE_BYTES = ecies_overhead(0, _SCALAR_BYTES)
"""A dealer's share for one recipient, ECIES-encrypted (:func:`seal_share`)."""


@dataclass(frozen=True, slots=True)
class Deal:
    """One dealer's contribution to a DKG.

    Attributes:
        dealer: the dealer's keyper number (1..n).
        commitments: Feldman commitments ``a_k·G``, ``k = 0..t-1`` (public).
        shares: recipient -> ``f(recipient)`` (each sent privately to its recipient).
    """

    dealer: int
    commitments: tuple[EccPoint, ...]
    shares: dict[int, int]


@dataclass(frozen=True, slots=True)
class EpochKey:
    """The outcome of a DKG: the epoch's public key and every keyper's share.

    Attributes:
        public_key: ``X = x·G``; orders are encrypted to it.
        qualified: the dealers whose deals were accepted, ascending.
        complaints: ``(recipient, dealer)`` pairs of bad or missing shares, sorted.
        public_shares: keyper -> ``X_j = x_j·G``, to check revealed shares.
        secret_shares: keyper -> ``x_j`` (the simulator holds them all; a keyper its own).
        n: committee size.
        t: shares needed to recover ``x``.
    """

    public_key: EccPoint
    qualified: tuple[int, ...]
    complaints: tuple[tuple[int, int], ...]
    public_shares: dict[int, EccPoint]
    secret_shares: dict[int, int]
    n: int
    t: int


def _check_committee(n: int, t: int) -> None:
    if not 1 <= t <= n:
        raise ValueError(f"need 1 <= t <= n, got n={n}, t={t}")


def deal(
    dealer: int, *, n: int, t: int, randbytes: RandBytes, meter: CryptoMeter | None = None
) -> Deal:
    """Deal a random degree ``t-1`` polynomial: ``t`` commitments and ``n`` shares."""
    _check_committee(n, t)
    if not 1 <= dealer <= n:
        raise ValueError(f"dealer {dealer} is not a keyper of 1..{n}")
    coeffs = [random_scalar(randbytes) for _ in range(t)]
    with metering(meter) as tally:
        commitments = tuple(base_mul(a) for a in coeffs)
        tally.count("scalar_mult", t)
    shares = {j: eval_poly(coeffs, j, P256_ORDER) for j in range(1, n + 1)}
    return Deal(dealer=dealer, commitments=commitments, shares=shares)


def corrupt(deal: Deal, recipient: int) -> Deal:
    """A cheating dealer's deal: the share to ``recipient`` is off by one, all else unchanged."""
    if recipient not in deal.shares:
        raise ValueError(f"the deal has no share for keyper {recipient}")
    shares = dict(deal.shares)
    shares[recipient] = (shares[recipient] + 1) % P256_ORDER
    return replace(deal, shares=shares)


def _check_deals(deals: Sequence[Deal], n: int, t: int) -> None:
    dealers = [d.dealer for d in deals]
    if len(set(dealers)) != len(dealers) or not all(1 <= i <= n for i in dealers):
        raise ValueError(f"dealers must be distinct keypers of 1..{n}: {dealers}")
    for d in deals:
        if len(d.commitments) != t:
            raise ValueError(f"dealer {d.dealer} committed to {len(d.commitments)} != t={t}")


def _unusable_shares(deals: Sequence[Deal], n: int) -> list[tuple[int, int]]:
    """Complaints any recipient files without arithmetic: a missing or out-of-range share."""
    return [
        (j, d.dealer)
        for d in deals
        for j in range(1, n + 1)
        if not 0 <= d.shares.get(j, -1) < P256_ORDER
    ]


def _aggregate(members: Sequence[Deal], t: int) -> list[EccPoint]:
    """``A_k = Σ_i C_ik`` as fresh points (in-place adds on our own copies)."""
    agg = [members[0].commitments[k].copy() for k in range(t)]
    for d in members[1:]:
        for k in range(t):
            agg[k] += d.commitments[k]
    return agg


def _hashable(p: EccPoint) -> bytes:
    """``point_bytes``, or 33 zero bytes for infinity (a dealer may cancel the others' sum)."""
    try:
        return point_bytes(p)
    except ValueError:
        return bytes(33)


def _weights(agg: Sequence[EccPoint], shares: Mapping[int, int]) -> dict[int, int]:
    """Fiat-Shamir weights in ``[1, 2^64]`` from everything the aggregate check depends on."""
    h = hashlib.shake_256(_BATCH_TAG)  # one XOF call hashes the transcript and yields them all
    for p in agg:
        h.update(_hashable(p))
    keypers = sorted(shares)
    for j in keypers:
        h.update(j.to_bytes(4, "big") + shares[j].to_bytes(32, "big"))
    stream, w = h.digest(_WEIGHT_BYTES * len(keypers)), _WEIGHT_BYTES
    return {
        j: 1 + int.from_bytes(stream[i * w : (i + 1) * w], "big") for i, j in enumerate(keypers)
    }


def _batch_check(agg: Sequence[EccPoint], shares: Mapping[int, int], tally: CryptoMeter) -> bool:
    """One random linear combination of every recipient's aggregate check."""
    rho = _weights(agg, shares)
    lhs = base_mul(sum(rho[j] * x for j, x in shares.items()))
    rhs = point_mul(agg[0], sum(rho.values()))
    for k in range(1, len(agg)):
        rhs += point_mul(agg[k], sum(r * j**k for j, r in rho.items()))
    tally.count("hash")
    tally.count("scalar_mult", 1 + len(agg))
    return lhs == rhs


def _eval_committed(points: Sequence[EccPoint], j: int, tally: CryptoMeter) -> EccPoint:
    """``Σ_k j^k·points[k]`` by Horner's rule: ``t-1`` multiplications by the small ``j``."""
    acc = points[-1]
    for p in reversed(points[:-1]):
        acc = point_mul(acc, j) + p
    tally.count("scalar_mult", len(points) - 1)
    return acc


def _find_cheaters(
    members: Sequence[Deal], agg: Sequence[EccPoint], shares: Mapping[int, int], tally: CryptoMeter
) -> list[tuple[int, int]]:
    """The fallback: per-recipient checks, then per-dealer checks for the failing recipients."""
    found = []
    for j, x_j in sorted(shares.items()):
        if base_mul(x_j, meter=tally) == _eval_committed(agg, j, tally):
            continue
        for d in members:
            if base_mul(d.shares[j], meter=tally) != _eval_committed(d.commitments, j, tally):
                found.append((j, d.dealer))
    return found


def run_dkg(deals: Sequence[Deal], *, n: int, t: int, meter: CryptoMeter | None = None) -> EpochKey:
    """Verify the deals, file complaints, fix the qualified set and derive the epoch key.

    Raises ``ValueError`` for malformed input (a dealer outside ``1..n`` or repeated, a deal
    without ``t`` commitments) and ``CryptoError`` if no dealer qualifies.
    """
    _check_committee(n, t)
    _check_deals(deals, n, t)
    by_dealer = {d.dealer: d for d in deals}
    complaints = _unusable_shares(deals, n)
    qualified = set(by_dealer) - {i for _, i in complaints}
    with metering(meter) as tally:
        while True:
            if not qualified:
                raise CryptoError("no dealer qualified: the epoch has no key")
            members = [by_dealer[i] for i in sorted(qualified)]
            agg = _aggregate(members, t)
            shares = {j: sum(d.shares[j] for d in members) % P256_ORDER for j in range(1, n + 1)}
            if _batch_check(agg, shares, tally):
                break
            cheats = _find_cheaters(members, agg, shares, tally)
            if not cheats:  # unreachable: a failed combination implies a failed recipient
                raise CryptoError("batch check failed but no share is wrong")
            complaints += cheats
            qualified -= {i for _, i in cheats}
        public_shares = {j: base_mul(x_j) for j, x_j in shares.items()}
        tally.count("scalar_mult", n)
    return EpochKey(
        public_key=agg[0],
        qualified=tuple(sorted(qualified)),
        complaints=tuple(sorted(set(complaints))),
        public_shares=public_shares,
        secret_shares=shares,
        n=n,
        t=t,
    )


def verify_secret_share(
    key: EpochKey, keyper: int, share: int, *, meter: CryptoMeter | None = None
) -> bool:
    """Whether ``share`` is keyper's true share: ``share·G == X_keyper`` (one multiplication)."""
    public = key.public_shares.get(keyper)
    if public is None or not 0 <= share < P256_ORDER:
        return False
    return base_mul(share, meter=meter) == public


def combine_secret(
    key: EpochKey, shares: Mapping[int, int], *, meter: CryptoMeter | None = None
) -> int:
    """Recover the epoch secret from revealed shares, skipping wrong ones.

    Shares are checked in keyper order until ``t`` valid ones are found (a wrong share is
    excluded, not fatal); the ones after that are not needed and not checked. Raises
    ``CryptoError`` if fewer than ``t`` shares are valid.
    """
    valid: list[tuple[int, int]] = []
    with metering(meter) as tally:
        for j in sorted(shares):
            if len(valid) == key.t:
                break
            if verify_secret_share(key, j, shares[j], meter=tally):
                valid.append((j, shares[j]))
        if len(valid) < key.t:
            raise CryptoError(f"only {len(valid)} valid shares, {key.t} needed")
        return shamir_combine(valid, meter=tally)


def _share_aad(epoch: int, dealer: int, recipient: int) -> bytes:
    """Binds a sealed share to its epoch, dealer and recipient: a share cannot be replayed."""
    return (
        _SHARE_TAG
        + epoch.to_bytes(8, "big")
        + dealer.to_bytes(4, "big")
        + recipient.to_bytes(4, "big")
    )


def seal_share(
    deal: Deal,
    recipient: int,
    public: EccPoint,
    *,
    epoch: int,
    randbytes: RandBytes,
    meter: CryptoMeter | None = None,
) -> bytes:
    """The dealer's share for ``recipient``, encrypted to the recipient's key ``public``."""
    return ecies_encrypt(
        public,
        deal.shares[recipient].to_bytes(_SCALAR_BYTES, "big"),
        randbytes=randbytes,
        aad=_share_aad(epoch, deal.dealer, recipient),
        meter=meter,
    )


def open_share(
    blob: bytes,
    *,
    secret: int,
    epoch: int,
    dealer: int,
    recipient: int,
    commitments: Sequence[EccPoint],
    meter: CryptoMeter | None = None,
) -> int | None:
    """What the recipient does with a sealed share: decrypt it and check it (Feldman).

    Returns the share when ``share·G == Σ_k recipient^k·C_k``; None when it does not decrypt
    or does not match its dealer's commitments, which is a complaint against the dealer.
    """
    with metering(meter) as tally:
        try:
            plain = ecies_decrypt(
                secret, blob, aad=_share_aad(epoch, dealer, recipient), meter=tally
            )
        except CryptoError:
            return None
        share = int.from_bytes(plain, "big")
        if len(plain) != _SCALAR_BYTES or share >= P256_ORDER:
            return None
        if base_mul(share, meter=tally) != _eval_committed(commitments, recipient, tally):
            return None
        return share


def public_share(
    agg: Sequence[EccPoint], keyper: int, *, meter: CryptoMeter | None = None
) -> EccPoint:
    """``X_j = Σ_k j^k·A_k`` from the aggregate commitments: what anyone can compute."""
    with metering(meter) as tally:
        return _eval_committed(agg, keyper, tally)


def exchange_ops(n: int, t: int) -> dict[OpKind, int]:
    """Operations one DKG's share exchange costs the committee as deployed (dealing apart).

    Every ordered pair of keypers moves one sealed share: the dealer's ECIES encryption (an
    ephemeral key and an ECDH: two multiplications, a KDF, an AEAD call), the recipient's
    decryption (one multiplication, a KDF, an AEAD call) and its Feldman check (one fixed-base
    and ``t-1`` short multiplications). The aggregator then evaluates ``n`` public shares
    (``t-1`` short multiplications each). Dealing's ``t`` commitments per dealer are counted by
    :func:`deal`. Tests check these counts against :func:`seal_share`, :func:`open_share` and
    :func:`public_share` run for real.
    """
    _check_committee(n, t)
    pairs = n * (n - 1)
    return {"scalar_mult": pairs * (3 + t) + n * (t - 1), "kdf": 2 * pairs, "aead": 2 * pairs}


DECRYPTION_SHARE_BYTES = 4 + POINT_BYTES + SCHNORR_PROOF_BYTES
"""A decryption share on the wire: keyper, the point ``x_j·E``, its Chaum–Pedersen proof."""


@dataclass(frozen=True, slots=True)
class DecryptionShare:
    """Keyper ``keyper``'s share ``x_j·E`` of one ciphertext's decryption, and its proof.

    ``point`` is compressed (33 bytes), as it travels.
    """

    keyper: int
    point: bytes
    proof: bytes


@dataclass(frozen=True, slots=True)
class Decryption:
    """A ciphertext opened by ``t`` valid decryption shares.

    Attributes:
        plaintext: what it hid.
        used: the keypers whose shares were combined, ascending.
        invalid: the keypers whose shares failed their proof (named, not merely skipped).
    """

    plaintext: bytes
    used: tuple[int, ...]
    invalid: tuple[int, ...]


def _decryption_context(keyper: int, ciphertext: bytes) -> bytes:
    """Binds a share's proof to its keyper and its ciphertext, not just to ``E``."""
    return _DECRYPTION_TAG + keyper.to_bytes(4, "big") + hashlib.sha256(ciphertext).digest()


def decryption_share(
    key: EpochKey,
    keyper: int,
    ciphertext: bytes,
    *,
    randbytes: RandBytes,
    meter: CryptoMeter | None = None,
) -> DecryptionShare:
    """Keyper ``keyper``'s share of ``ciphertext``'s decryption; its key share stays secret.

    ``CryptoError`` if the ciphertext's ephemeral point is not on the curve.
    """
    ephemeral = point_from_bytes(ciphertext[:POINT_BYTES])
    point, proof = dleq_prove(
        key.secret_shares[keyper],
        ephemeral,
        public=key.public_shares[keyper],
        context=_decryption_context(keyper, ciphertext),
        randbytes=randbytes,
        meter=meter,
    )
    return DecryptionShare(keyper, point_bytes(point), proof)


def forged_share(share: DecryptionShare) -> DecryptionShare:
    """A cheating keyper's share: its point moved by ``G``, its proof unchanged (so it fails)."""
    return replace(share, point=point_bytes(point_from_bytes(share.point) + GENERATOR))


def verify_decryption_share(
    key: EpochKey, ciphertext: bytes, share: DecryptionShare, *, meter: CryptoMeter | None = None
) -> bool:
    """Whether ``share`` is ``x_j·E`` for keyper ``j``'s public share ``X_j``: anyone can check."""
    public = key.public_shares.get(share.keyper)
    if public is None:
        return False
    try:
        ephemeral = point_from_bytes(ciphertext[:POINT_BYTES])
        shared = point_from_bytes(share.point)
    except CryptoError:
        return False
    return dleq_verify(
        public,
        ephemeral,
        shared,
        share.proof,
        context=_decryption_context(share.keyper, ciphertext),
        meter=meter,
    )


def threshold_decrypt(
    key: EpochKey,
    ciphertext: bytes,
    shares: Sequence[DecryptionShare],
    *,
    aad: bytes = b"",
    meter: CryptoMeter | None = None,
) -> Decryption:
    """Open ``ciphertext`` from ``t`` valid decryption shares: ``x·E = Σ λ_j·d_j``.

    Shares are checked in keyper order until ``t`` are valid; each one that fails is named in
    ``invalid``. ``CryptoError`` if fewer than ``t`` are valid (or the ciphertext does not open).
    """
    valid: list[DecryptionShare] = []
    invalid: list[int] = []
    with metering(meter) as tally:
        for share in sorted(shares, key=lambda s: s.keyper):
            if len(valid) == key.t:
                break
            if any(v.keyper == share.keyper for v in valid):
                continue  # a keyper's second share counts once
            if verify_decryption_share(key, ciphertext, share, meter=tally):
                valid.append(share)
            else:
                invalid.append(share.keyper)
        if len(valid) < key.t:
            raise CryptoError(f"only {len(valid)} valid decryption shares, {key.t} needed")
        plaintext = ecies_open(combine_shares(valid, meter=tally), ciphertext, aad=aad, meter=tally)
    return Decryption(plaintext, tuple(s.keyper for s in valid), tuple(invalid))


def combine_shares(
    shares: Sequence[DecryptionShare], *, meter: CryptoMeter | None = None
) -> EccPoint:
    """``x·E = Σ λ_j·d_j`` over shares of distinct keypers (checked ones: this checks nothing).

    ``ValueError`` for no share or a keyper twice;
    ``CryptoError`` for a share whose point is not on the curve.
    """
    weights = lagrange_at_zero([s.keyper for s in shares])
    points = [point_from_bytes(s.point) for s in shares]
    with metering(meter) as tally:
        shared = point_mul(points[0], weights[0], meter=tally)
        for point, weight in zip(points[1:], weights[1:], strict=True):
            shared = shared + point_mul(point, weight, meter=tally)
        return shared
