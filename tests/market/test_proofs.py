"""market.proofs: Schnorr proofs binding sealed orders to senders; Chaum–Pedersen proofs."""

from __future__ import annotations

import hashlib
import random

from Crypto.PublicKey.ECC import EccPoint
from hypothesis import given, settings
from hypothesis import strategies as st

from market.crypto import (
    GENERATOR,
    P256_ORDER,
    CryptoMeter,
    base_mul,
    ecies_decrypt,
    ecies_encrypt,
    keypair,
    point_bytes,
)
from market.proofs import (
    SCHNORR_PROOF_BYTES,
    dleq_prove,
    dleq_verify,
    prove_sender,
    schnorr_prove,
    schnorr_verify,
    sender_context,
    verify_sender,
)

EPOCH_KEY = keypair(random.Random(1).randbytes)


def _sealed(seed: int, *, sender: int = 5, epoch: int = 9) -> tuple[int, bytes, bytes]:
    """A sealed order: its ephemeral secret, the ciphertext and the sender's proof."""
    randbytes = random.Random(seed).randbytes
    ephemeral = int.from_bytes(randbytes(32), "big") % (P256_ORDER - 1) + 1
    blob = ecies_encrypt(EPOCH_KEY[1], b"an order", randbytes=randbytes, ephemeral=ephemeral)
    proof = prove_sender(ephemeral, blob, sender=sender, epoch=epoch, randbytes=randbytes)
    return ephemeral, blob, proof


def _by_hand(ephemeral: int, blob: bytes, proof: bytes, sender: int, epoch: int) -> bool:
    """The verification equation written out with pycryptodome's own point arithmetic."""
    c, z = int.from_bytes(proof[:32], "big"), int.from_bytes(proof[32:], "big")
    public = GENERATOR * ephemeral
    commitment = GENERATOR * z + (-(public * c))
    digest = hashlib.sha256(
        b"veilcast/schnorr/challenge/v1|"
        + point_bytes(public)
        + point_bytes(commitment)
        + b"veilcast/sealed-order/v1|"
        + sender.to_bytes(8, "big")
        + epoch.to_bytes(8, "big")
        + blob
    ).digest()
    return int.from_bytes(digest, "big") % P256_ORDER == c


def test_a_sealed_orders_proof_verifies_and_its_ciphertext_still_decrypts() -> None:
    ephemeral, blob, proof = _sealed(2)
    assert blob[:33] == point_bytes(base_mul(ephemeral))  # E = e·G leads the ciphertext
    assert len(proof) == SCHNORR_PROOF_BYTES
    assert verify_sender(blob, proof, sender=5, epoch=9)
    assert _by_hand(ephemeral, blob, proof, 5, 9)
    assert ecies_decrypt(EPOCH_KEY[0], blob) == b"an order"


def test_a_copy_under_another_sender_or_epoch_fails() -> None:
    _, blob, proof = _sealed(3)
    assert not verify_sender(blob, proof, sender=6, epoch=9)  # the copycat's address
    assert not verify_sender(blob, proof, sender=5, epoch=10)  # replayed into another epoch
    _, other_blob, other_proof = _sealed(4)
    assert not verify_sender(other_blob, proof, sender=5, epoch=9)  # another statement
    assert verify_sender(other_blob, other_proof, sender=5, epoch=9)


def test_any_flipped_bit_of_the_ciphertext_or_the_proof_fails() -> None:
    _, blob, proof = _sealed(5)
    rng = random.Random(0)
    for _ in range(40):
        i = rng.randrange(len(blob))
        flipped = blob[:i] + bytes([blob[i] ^ (1 << rng.randrange(8))]) + blob[i + 1 :]
        assert not verify_sender(flipped, proof, sender=5, epoch=9)
    for i in range(0, SCHNORR_PROOF_BYTES, 7):
        flipped = proof[:i] + bytes([proof[i] ^ 1]) + proof[i + 1 :]
        assert not verify_sender(blob, flipped, sender=5, epoch=9)
    assert not verify_sender(blob, proof[:-1], sender=5, epoch=9)


def test_an_ephemeral_point_off_the_curve_fails_rather_than_raising() -> None:
    _, blob, proof = _sealed(6)
    for bad in (b"\x04" + blob[1:33], b"\x02" + bytes(32), b"\x02" + b"\xff" * 32):
        assert not verify_sender(bad + blob[33:], proof, sender=5, epoch=9)


def test_a_proof_for_someone_elses_secret_fails() -> None:
    # whoever copies the ciphertext knows some secret, just not e: its proof does not verify
    _, blob, _ = _sealed(7)
    forged = prove_sender(12345, blob, sender=6, epoch=9, randbytes=random.Random(8).randbytes)
    assert not verify_sender(blob, forged, sender=6, epoch=9)


def test_the_nonce_is_hedged_so_bad_randomness_cannot_repeat_it() -> None:
    # with a random source stuck on zeros, two statements still get two nonces; had they shared
    # one, e = (z1 - z2) / (c1 - c2) would give the secret away
    secret = 777
    stuck = bytes  # randbytes(n) -> n zero bytes
    one = schnorr_prove(secret, b"statement one", randbytes=stuck)
    two = schnorr_prove(secret, b"statement two", randbytes=stuck)
    (c1, z1), (c2, z2) = ((int.from_bytes(p[:32]), int.from_bytes(p[32:])) for p in (one, two))
    recovered = (z1 - z2) * pow(c1 - c2, -1, P256_ORDER) % P256_ORDER
    assert recovered != secret
    assert schnorr_verify(base_mul(secret), b"statement one", one)
    assert schnorr_verify(base_mul(secret), b"statement two", two)


def test_proving_and_verifying_are_metered() -> None:
    ephemeral, blob, _ = _sealed(9)
    prover, verifier = CryptoMeter(), CryptoMeter()
    proof = prove_sender(
        ephemeral, blob, sender=5, epoch=9, randbytes=random.Random(1).randbytes, meter=prover
    )
    assert verify_sender(blob, proof, sender=5, epoch=9, meter=verifier)
    # proving: A = k·G (E is read from the ciphertext), the nonce and challenge hashes;
    # verifying: z·G and c·E, and the challenge hash
    assert prover.ops == {"scalar_mult": 1, "hash": 2}
    assert verifier.ops == {"scalar_mult": 2, "hash": 1}


def test_the_context_binds_sender_and_epoch_at_fixed_widths() -> None:
    # no (sender, epoch) pair can be shifted into another: both have fixed 8-byte fields
    assert sender_context(b"c", 1, 256) != sender_context(b"c", 256, 1)
    assert len(sender_context(b"c", 1, 2)) == len(sender_context(b"c", 2**40, 2**40))


@settings(max_examples=25, deadline=None)
@given(
    secret=st.integers(min_value=1, max_value=P256_ORDER - 1),
    other=st.integers(min_value=1, max_value=P256_ORDER - 1),
    context=st.binary(max_size=64),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_proofs_verify_for_their_key_and_context_only(
    secret: int, other: int, context: bytes, seed: int
) -> None:
    proof = schnorr_prove(secret, context, randbytes=random.Random(seed).randbytes)
    assert schnorr_verify(base_mul(secret), context, proof)
    assert not schnorr_verify(base_mul(secret), context + b"!", proof)
    if other != secret:
        assert not schnorr_verify(base_mul(other), context, proof)


# -- Chaum–Pedersen: equal discrete logs ----------------------------------------------------


def _dleq(seed: int) -> tuple[int, EccPoint, EccPoint, EccPoint, bytes]:
    """A secret, its public point, a base R, D = secret·R and the proof."""
    r = random.Random(seed)
    secret = r.randrange(1, P256_ORDER)
    base = base_mul(r.randrange(1, P256_ORDER))
    public = base_mul(secret)
    shared, proof = dleq_prove(secret, base, public=public, context=b"ctx", randbytes=r.randbytes)
    return secret, public, base, shared, proof


def test_a_chaum_pedersen_proof_verifies_and_its_point_is_secret_times_base() -> None:
    secret, public, base, shared, proof = _dleq(1)
    assert shared == base * secret  # pycryptodome's own multiplication
    assert dleq_verify(public, base, shared, proof, context=b"ctx")
    meter = CryptoMeter()
    assert dleq_verify(public, base, shared, proof, context=b"ctx", meter=meter)
    assert meter.ops == {"scalar_mult": 4, "hash": 1}


def test_a_chaum_pedersen_proof_fails_for_any_other_statement() -> None:
    secret, public, base, shared, proof = _dleq(2)
    _, other_public, other_base, other_shared, _ = _dleq(3)
    assert not dleq_verify(public, base, shared + GENERATOR, proof, context=b"ctx")  # wrong D
    assert not dleq_verify(other_public, base, shared, proof, context=b"ctx")  # another key
    assert not dleq_verify(public, other_base, shared, proof, context=b"ctx")  # another R
    assert not dleq_verify(public, base, shared, proof, context=b"ctx2")  # another context
    for i in range(0, 64, 5):
        flipped = proof[:i] + bytes([proof[i] ^ 4]) + proof[i + 1 :]
        assert not dleq_verify(public, base, shared, flipped, context=b"ctx")
    # a prover who does not know log_G Y cannot prove D = log·R even with D right for its own
    liar, liar_proof = dleq_prove(
        secret + 1, base, public=public, context=b"ctx", randbytes=random.Random(4).randbytes
    )
    assert not dleq_verify(public, base, liar, liar_proof, context=b"ctx")
    assert other_shared != shared


@settings(max_examples=15, deadline=None)
@given(
    secret=st.integers(min_value=1, max_value=P256_ORDER - 1),
    base_log=st.integers(min_value=1, max_value=P256_ORDER - 1),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_chaum_pedersen_proofs_verify_for_their_statement(
    secret: int, base_log: int, seed: int
) -> None:
    base, public = base_mul(base_log), base_mul(secret)
    randbytes = random.Random(seed).randbytes
    shared, proof = dleq_prove(secret, base, public=public, context=b"p", randbytes=randbytes)
    assert dleq_verify(public, base, shared, proof, context=b"p")
    assert not dleq_verify(public, base, shared + GENERATOR, proof, context=b"p")
