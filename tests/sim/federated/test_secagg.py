"""Secure aggregation: correctness with and without dropouts, aborts, tampering, key caching,
masks that recompute bit for bit and cancel, and a meter that counts what the protocol does."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import numpy as np
import pytest
from Crypto.Cipher import AES, ChaCha20_Poly1305

from market.crypto import CryptoMeter, ecdh_key
from market.errors import CryptoError
from sim.federated.secagg import (
    ChannelKeys,
    ClientKeys,
    ClientRound,
    MaskedInput,
    MaskPrg,
    PairKeys,
    Reveal,
    Roster,
    SecAggAbortError,
    ShareCommitment,
    ShareEnvelope,
    UnmaskRequest,
    agree_keys,
    client_keys,
    dequantise,
    fixed_point_scale,
    make_roster,
    mask_input,
    open_envelope,
    quantise,
    receive_shares,
    reveal,
    seal,
    seed_digest,
    share_digest,
    share_keys,
    threshold,
    unmask,
    unmask_request,
)
from sim.federated.secagg_crypto import MASK_INFO
from sim.federated.training import PhaseTimer, secure_sum

DIM = 6
BOUND = 2.0


def keyring(n: int, seed: int = 1) -> tuple[dict[int, ClientKeys], random.Random]:
    source = random.Random(seed)
    return {c: client_keys(c, source.randbytes) for c in range(n)}, source


def vectors(clients: list[int], seed: int = 2) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c: rng.uniform(-BOUND, BOUND, DIM) for c in clients}


def tolerance(members: int) -> float:
    # each encoding rounds by at most 1/(2s)
    return members / (2 * fixed_point_scale(members, BOUND))


def test_sum_without_dropouts_equals_the_plain_sum() -> None:
    keys, source = keyring(7)
    inputs = vectors(list(keys))
    pairs = PairKeys()
    result = secure_sum(
        inputs, list(keys), round_number=0, bound=BOUND, keys=keys, pairs=pairs,
        randbytes=source.randbytes,
    )  # fmt: skip
    plain = sum(inputs.values())
    np.testing.assert_allclose(result.total, plain, rtol=0, atol=tolerance(7))
    assert result.survivors == tuple(range(7)) and result.dropped == () and result.rejected == ()
    assert tolerance(7) < 1e-7


def test_sum_with_dropouts_is_the_survivors_sum() -> None:
    keys, source = keyring(9)
    inputs = vectors(list(keys), seed=5)
    survivors = {c: v for c, v in inputs.items() if c not in (2, 7)}
    timer, meter = PhaseTimer(), CryptoMeter()
    result = secure_sum(
        survivors, list(keys), round_number=3, bound=BOUND, keys=keys, pairs=PairKeys(meter=meter),
        randbytes=source.randbytes, meter=meter, timer=timer,
    )  # fmt: skip
    np.testing.assert_allclose(result.total, sum(survivors.values()), atol=tolerance(9))
    assert result.dropped == (2, 7)
    # the server recomputes only the dropped clients' masks: each dropped key with each
    # survivor's public key, nothing more
    assert timer.server_agreements == len(result.dropped) * len(result.survivors)
    # every scalar multiplication is one of those agreements or a client's (nothing uncounted,
    # nothing counted twice), and every Shamir split (two per holder) and combination (a seed
    # per survivor, a mask key per dropped client) reached the meter
    assert meter.ops["scalar_mult"] == timer.agreements + timer.server_agreements
    assert meter.ops["shamir"] == 2 * len(keys) + len(result.survivors) + len(result.dropped)
    assert all(phase > 0 for phase in (timer.key_agreement, timer.masking, timer.unmasking))


def test_values_beyond_the_bound_are_clamped_and_negatives_survive_the_ring() -> None:
    scale = fixed_point_scale(4, 1.0)
    encoded = quantise(np.array([-0.25, 0.5, 3.0, -7.0]), scale=scale, bound=1.0)
    assert encoded.dtype == np.uint32
    np.testing.assert_allclose(dequantise(encoded, scale=scale), [-0.25, 0.5, 1.0, -1.0], atol=1e-8)
    # four extremes of the same sign still fit without wrapping
    total = quantise(np.full(3, -1.0), scale=scale, bound=1.0) * np.uint32(4)
    np.testing.assert_allclose(dequantise(total, scale=scale), -4.0, atol=1e-8)


def test_abort_below_threshold_and_with_too_few_clients() -> None:
    keys, source = keyring(7)
    assert threshold(7) == 4
    inputs = vectors([0, 1, 2])  # 4 of 7 dropped: 3 survivors < t = 4
    with pytest.raises(SecAggAbortError) as abort:
        secure_sum(
            inputs, list(keys), round_number=0, bound=BOUND, keys=keys, pairs=PairKeys(),
            randbytes=source.randbytes,
        )  # fmt: skip
    assert abort.value.reason == "below_threshold"
    with pytest.raises(SecAggAbortError) as few:
        make_roster(0, [keys[0].advert(), keys[1].advert()], dim=DIM, bound=BOUND)
    assert few.value.reason == "too_few_clients"


@dataclass
class HandRun:
    """A round driven phase by phase up to the reveals, so tests can tamper with any message."""

    roster: Roster
    request: UnmaskRequest
    commitments: dict[int, ShareCommitment]
    masked: dict[int, MaskedInput]
    reveals: list[Reveal]
    expected: np.ndarray
    states: dict[int, ClientRound]
    mail: dict[int, list[ShareEnvelope]]
    pairs: PairKeys


def run_to_reveal(n: int, dropped: set[int]) -> HandRun:
    keys, source = keyring(n, seed=4)
    pairs = PairKeys()
    roster = make_roster(1, [k.advert() for k in keys.values()], dim=DIM, bound=BOUND)
    states: dict[int, ClientRound] = {}
    commitments: dict[int, ShareCommitment] = {}
    mail: dict[int, list[ShareEnvelope]] = {c: [] for c in keys}
    for c in roster.holders:
        agree_keys(keys[c], roster, pairs)
        states[c], envelopes, commitments[c] = share_keys(
            keys[c], roster, randbytes=source.randbytes, pairs=pairs
        )
        for e in envelopes:
            mail[e.holder].append(e)
    states = {c: receive_shares(states[c], mail[c], pairs=pairs) for c in roster.holders}
    inputs = vectors(list(keys), seed=8)
    masked = {
        c: mask_input(states[c], inputs[c], pairs=pairs) for c in roster.members if c not in dropped
    }
    request = unmask_request(roster, list(masked))
    reveals = [reveal(states[c], request)[1] for c in request.survivors]
    expected = sum((inputs[c] for c in request.survivors), np.zeros(DIM))
    return HandRun(roster, request, commitments, masked, reveals, expected, states, mail, pairs)


def tamper(answer: Reveal, owner: int, kind: str) -> Reveal:
    """``answer`` with the share of ``owner``'s ``kind`` secret off by one."""
    shares = dict(answer.seed_shares if kind == "seed" else answer.key_shares)
    x, y = shares[owner]
    shares[owner] = (x, y + 1)
    if kind == "seed":
        return replace(answer, seed_shares=shares)
    return replace(answer, key_shares=shares)


def test_a_tampered_share_is_detected_and_discarded() -> None:
    hand = run_to_reveal(7, dropped={5})
    # survivor 0 lies about survivor 3's seed share and about dropped 5's key share
    forged = [tamper(tamper(hand.reveals[0], 3, "seed"), 5, "key"), *hand.reveals[1:]]
    result = unmask(hand.roster, hand.request, hand.commitments, hand.masked, forged)
    assert set(result.rejected) == {(0, 3, "seed"), (0, 5, "key")}
    np.testing.assert_allclose(result.total, hand.expected, atol=tolerance(7))
    # with only t answers, one forged share leaves too few valid ones: the round aborts rather
    # than combine a wrong secret
    short = forged[: hand.roster.threshold]
    with pytest.raises(SecAggAbortError) as abort:
        unmask(hand.roster, hand.request, hand.commitments, hand.masked, short)
    assert abort.value.reason == "bad_shares"


def test_a_tampered_envelope_is_refused() -> None:
    hand = run_to_reveal(5, dropped=set())
    envelope = hand.mail[1][0]
    flipped = bytes([envelope.ciphertext[0] ^ 1]) + envelope.ciphertext[1:]
    with pytest.raises(CryptoError, match="fails authentication"):
        receive_shares(hand.states[1], [replace(envelope, ciphertext=flipped)], pairs=hand.pairs)
    bad_tag = bytes([envelope.mac[-1] ^ 0x80]) + envelope.mac[1:]
    with pytest.raises(CryptoError, match="fails authentication"):
        receive_shares(hand.states[1], [replace(envelope, mac=bad_tag)], pairs=hand.pairs)
    with pytest.raises(CryptoError):
        receive_shares(hand.states[2], [envelope], pairs=hand.pairs)  # addressed to 1, not 2
    assert receive_shares(hand.states[1], [envelope], pairs=hand.pairs).held  # the intact one


def test_envelopes_round_trip_and_bind_their_header() -> None:
    keys = ChannelKeys.from_key(bytes(range(32)))
    for size in (0, 1, 64, 65, 200):
        plaintext = bytes(range(size % 256)) * (size // 256) + bytes(range(size % 256))
        envelope = seal(keys, 3, 4, 9, plaintext)
        assert len(envelope.ciphertext) == size
        assert open_envelope(keys, envelope) == plaintext
        if size:
            assert envelope.ciphertext != plaintext
    envelope = seal(keys, 3, 4, 9, bytes(64))
    forgeries = [replace(envelope, holder=5), replace(envelope, round=10)]
    forgeries.append(replace(envelope, owner=4, holder=3))  # the reverse direction's nonce
    for bit in range(8 * (len(envelope.ciphertext) + len(envelope.mac))):
        blob = bytearray(envelope.ciphertext + envelope.mac)
        blob[bit // 8] ^= 1 << (bit % 8)
        forgeries.append(replace(envelope, ciphertext=bytes(blob[:64]), mac=bytes(blob[64:])))
    for forged in forgeries:
        with pytest.raises(CryptoError):
            open_envelope(keys, forged)
    with pytest.raises(CryptoError):
        open_envelope(ChannelKeys.from_key(bytes(32)), envelope)  # another pair's key


def test_an_envelope_is_rfc8439_chacha20_poly1305_with_its_header_bound() -> None:
    key = bytes(range(32))
    envelope = seal(ChannelKeys.from_key(key), 7, 2, 5, b"s" * 64)
    # the documented construction, from pycryptodome directly: the nonce is the direction
    # (owner > holder, 32 bits) and the round (64 bits); the header is the associated data
    cipher = ChaCha20_Poly1305.new(key=key, nonce=(1).to_bytes(4, "big") + (5).to_bytes(8, "big"))
    cipher.update((7).to_bytes(8, "big") + (2).to_bytes(8, "big") + (5).to_bytes(8, "big"))
    assert (envelope.ciphertext, envelope.mac) == cipher.encrypt_and_digest(b"s" * 64)
    # on the wire: the 24-byte header, the plaintext's length and a 16-byte tag, no nonce
    assert (len(envelope.ciphertext), len(envelope.mac)) == (64, 16)
    for short in (ChannelKeys.from_key, MaskPrg.from_key):
        with pytest.raises(ValueError):
            short(bytes(16))


def test_a_client_never_reveals_both_secrets_of_one_client() -> None:
    hand = run_to_reveal(6, dropped={4})
    state, request = hand.states[0], hand.request
    both = replace(request, dropped=(*request.dropped, 1))
    with pytest.raises(CryptoError, match="survivor and dropped"):
        reveal(state, both)
    answered, first = reveal(state, request)
    assert set(first.seed_shares) == set(request.survivors) and set(first.key_shares) == {4}
    # a second request that calls survivor 1 dropped would hand over 1's mask key as well
    switched = replace(
        request, survivors=tuple(c for c in request.survivors if c != 1), dropped=(1, 4)
    )
    with pytest.raises(CryptoError, match="already answered"):
        reveal(answered, switched)
    assert reveal(answered, request)[1].seed_shares == first.seed_shares  # a resend is fine


def test_masked_inputs_hide_the_input() -> None:
    hand = run_to_reveal(5, dropped=set())
    inputs = vectors(list(range(5)), seed=8)
    scale = hand.roster.scale
    for c, y in hand.masked.items():
        plain = quantise(inputs[c], scale=scale, bound=BOUND)
        assert np.count_nonzero(y.masked == plain) == 0
        assert np.abs(dequantise(y.masked, scale=scale) - inputs[c]).max() > 1.0


def test_pair_keys_are_agreed_at_each_end_once_and_masks_change_per_round() -> None:
    keys, source = keyring(6)
    meter = CryptoMeter()
    pairs = PairKeys(meter=meter)
    inputs = vectors(list(keys))
    for r in range(3):
        secure_sum(
            inputs, list(keys), round_number=r, bound=BOUND, keys=keys, pairs=pairs,
            randbytes=source.randbytes,
        )  # fmt: skip
        if r == 0:
            first = meter.ops["scalar_mult"]
    # as deployed: each end of each of the 15 pairs agrees a channel and a mask key itself, in
    # the first round only (no dropouts: nothing rotates), and each agreement is one ECDH
    pair_count = len(keys) * (len(keys) - 1) // 2
    assert pairs.agreements == 2 * 2 * pair_count == len(pairs) == first
    assert meter.ops["scalar_mult"] == first and meter.ops["kdf"] == first
    for a, own in keys.items():
        for b, peer in keys.items():
            if a != b:  # two agreements, one key: both ends derived the same bytes
                assert pairs.channel(own, peer.advert()) is not pairs.channel(peer, own.advert())
                assert (
                    pairs.channel(own, peer.advert()).key == pairs.channel(peer, own.advert()).key
                )
                assert pairs.mask(own, peer.advert()).key == pairs.mask(peer, own.advert()).key
    assert pairs.agreements == 2 * 2 * pair_count
    prg = pairs.mask(keys[0], keys[1].advert())
    assert not np.array_equal(prg.mask(0, DIM), prg.mask(1, DIM))


def test_mask_prg_is_aes_ctr_with_the_round_as_nonce() -> None:
    key = bytes(range(32))
    prg = MaskPrg.from_key(key)
    for round_number in (0, 7, 2**40):
        reference = AES.new(
            key, AES.MODE_CTR, nonce=round_number.to_bytes(8, "big"), initial_value=0
        ).encrypt(bytes(4 * 9))
        np.testing.assert_array_equal(
            prg.mask(round_number, 9), np.frombuffer(reference, dtype="<u4")
        )


def test_masks_recompute_bit_exactly_and_cancel() -> None:
    hand = run_to_reveal(5, dropped=set())
    keys = {c: hand.states[c].keys for c in hand.roster.members}
    dim, rnd = hand.roster.dim, hand.roster.round
    net = np.zeros(dim, dtype=np.uint32)
    for u, own in keys.items():
        for v, peer in keys.items():
            if u == v:
                continue
            mask = hand.pairs.mask(own, peer.advert()).mask(rnd, dim)
            # the server's recomputation from u's revealed mask secret and v's public key
            again = ecdh_key(own.mask_secret, peer.mask_public, info=MASK_INFO)
            assert np.array_equal(MaskPrg.from_key(again).mask(rnd, dim), mask)
            net += mask if u < v else -mask
    assert not net.any()  # every pairwise mask cancels in Z_{2^32}
    # so the masked inputs sum to the plain encodings plus the self masks alone
    scale = hand.roster.scale
    plain = sum(
        (quantise(x, scale=scale, bound=BOUND) for x in vectors(list(keys), seed=8).values()),
        np.zeros(dim, dtype=np.uint32),
    )
    masked = sum((y.masked for y in hand.masked.values()), np.zeros(dim, dtype=np.uint32))
    assert not np.array_equal(masked, plain)
    result = unmask(hand.roster, hand.request, hand.commitments, hand.masked, hand.reveals)
    np.testing.assert_allclose(result.total, hand.expected, atol=tolerance(5))


def test_a_recovered_dropout_matches_the_mask_it_would_have_sent() -> None:
    hand = run_to_reveal(6, dropped={2, 4})
    result = unmask(hand.roster, hand.request, hand.commitments, hand.masked, hand.reveals)
    assert result.dropped == (2, 4) and 2 not in result.survivors
    np.testing.assert_allclose(result.total, hand.expected, atol=tolerance(6))
    # had 2 and 4 sent their inputs, the full sum would come out: the recovered masks are
    # exactly the ones their inputs carried
    inputs = vectors(list(range(6)), seed=8)
    full = dict(hand.masked)
    for c in (2, 4):
        full[c] = mask_input(hand.states[c], inputs[c], pairs=hand.pairs)
    everyone = unmask_request(hand.roster, list(full))
    reveals = [reveal(hand.states[c], everyone)[1] for c in everyone.survivors]
    total = unmask(hand.roster, everyone, hand.commitments, full, reveals).total
    np.testing.assert_allclose(total, sum(inputs.values()), atol=tolerance(6))


def test_the_meter_counts_every_sealing_opening_digest_and_mask() -> None:
    keys, source = keyring(6, seed=9)
    meter = CryptoMeter()
    pairs = PairKeys(meter=meter)
    roster = make_roster(2, [k.advert() for k in keys.values()], dim=DIM, bound=BOUND)
    for c in roster.holders:
        agree_keys(keys[c], roster, pairs)
    assert "aead" not in meter.ops and "hash" not in meter.ops  # agreement seals nothing
    state, envelopes, commitment = share_keys(
        keys[0], roster, randbytes=source.randbytes, pairs=pairs, meter=meter
    )
    assert meter.ops["aead"] == len(envelopes) == len(roster.holders) - 1  # one per envelope
    # a digest of both shares for every holder, and one of the seed
    assert meter.ops["hash"] == 2 * len(commitment.share_digests) + 1
    receiver = ClientRound(keys=keys[1], roster=roster, seed=1, held={})
    aead = meter.ops["aead"]
    receive_shares(receiver, [e for e in envelopes if e.holder == 1], pairs=pairs)
    assert meter.ops["aead"] == aead + 1  # opened through the pair keys' meter
    prg = meter.ops.get("prg", 0)
    mask_input(state, np.zeros(DIM), pairs=pairs, meter=meter)
    assert meter.ops["prg"] == prg + len(roster.members)  # a self mask and one per peer


def test_share_digests_bind_every_field() -> None:
    base = share_digest(3, 1, 2, "seed", (2, 77))
    assert share_digest(3, 1, 2, "seed", (2, 77)) == base
    for other in (
        share_digest(4, 1, 2, "seed", (2, 77)),
        share_digest(3, 0, 2, "seed", (2, 77)),
        share_digest(3, 1, 0, "seed", (2, 77)),
        share_digest(3, 1, 2, "key", (2, 77)),
        share_digest(3, 1, 2, "seed", (3, 77)),
        share_digest(3, 1, 2, "seed", (2, 78)),
    ):
        assert other != base
    assert seed_digest(3, 1, 5) != seed_digest(3, 1, 6) != seed_digest(4, 1, 6)


def test_same_randomness_gives_the_same_bytes() -> None:
    def masked_bytes() -> bytes:
        masked = run_to_reveal(5, dropped={1}).masked
        return b"".join(masked[c].masked.tobytes() for c in sorted(masked))

    assert masked_bytes() == masked_bytes()
