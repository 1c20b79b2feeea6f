"""market.crypto: published known answers, round trips, tamper cases, reproducibility, metering."""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter

import pytest
from Crypto.Cipher import AES
from Crypto.Hash import SHA256
from Crypto.Protocol.DH import key_agreement
from Crypto.Protocol.KDF import HKDF
from Crypto.PublicKey import ECC
from hypothesis import given, settings
from hypothesis import strategies as st

from market.crypto import (
    GENERATOR,
    P256_ORDER,
    P256_PRIME,
    CryptoMeter,
    aead_decrypt,
    aead_encrypt,
    base_mul,
    commit,
    derive_stream,
    ecdh_key,
    ecies_decrypt,
    ecies_encrypt,
    ecies_overhead,
    hkdf,
    keypair,
    keystream,
    open_commitment,
    pad,
    point_bytes,
    point_from_bytes,
    point_mul,
    sign,
    tagged_hash,
    unpad,
    verify,
)
from market.errors import CryptoError
from market.shamir import shamir_combine, shamir_split

H = bytes.fromhex
ECC_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B  # P-256's b (SEC 2)


def rng(seed: int = 1) -> random.Random:
    return random.Random(seed)


def flip(blob: bytes, bit: int) -> bytes:
    out = bytearray(blob)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- curve constants and point encoding ----------------------------------------------------------


def test_generator_and_order_match_pycryptodome_and_sec1() -> None:
    assert ECC.construct(curve="P-256", d=1).pointQ == GENERATOR
    assert base_mul(P256_ORDER - 1) == -GENERATOR  # (n-1)·G = -G, so n·G is infinity
    assert (GENERATOR * P256_ORDER).is_point_at_infinity()
    # SEC 2 / X9.62: the compressed P-256 base point (y is odd)
    assert point_bytes(GENERATOR) == H(
        "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    )


def test_point_encoding_round_trips_and_agrees_with_pycryptodome() -> None:
    r = rng(2)
    parities = set()
    for _ in range(12):
        secret, p = keypair(r.randbytes)
        enc = point_bytes(p)
        assert len(enc) == 33
        parities.add(enc[0])
        assert point_from_bytes(enc) == p
        key = ECC.construct(curve="P-256", d=secret)
        assert key.public_key().export_key(format="SEC1", compress=True) == enc
    assert parities == {2, 3}


def test_invalid_point_encodings_raise_crypto_error() -> None:
    good = point_bytes(GENERATOR)
    with pytest.raises(CryptoError):
        point_from_bytes(good[:-1])
    with pytest.raises(CryptoError):
        point_from_bytes(b"\x04" + good[1:])
    with pytest.raises(CryptoError):
        point_from_bytes(b"\x02" + P256_PRIME.to_bytes(32, "big"))
    # about half of all x are not on the curve: find one and check it is refused
    off_curve = 0
    for x in range(1, 50):
        rhs = (x**3 - 3 * x + ECC_B) % P256_PRIME
        if pow(rhs, (P256_PRIME - 1) // 2, P256_PRIME) != 1:
            off_curve += 1
            with pytest.raises(CryptoError):
                point_from_bytes(b"\x02" + x.to_bytes(32, "big"))
    assert off_curve > 5
    with pytest.raises(ValueError, match="infinity"):
        point_bytes(GENERATOR * 0)


def test_point_mul_is_scalar_multiplication() -> None:
    k = 0xC0FFEE
    assert point_mul(GENERATOR, k) == base_mul(k)
    assert point_mul(base_mul(3), 5) == base_mul(15)
    assert point_mul(GENERATOR, P256_ORDER + 2) == base_mul(2)


def test_keypair_is_reproducible_and_in_range() -> None:
    s1, p1 = keypair(rng(5).randbytes)
    s2, p2 = keypair(rng(5).randbytes)
    s3, _ = keypair(rng(6).randbytes)
    assert (s1, point_bytes(p1)) == (s2, point_bytes(p2))
    assert s1 != s3
    assert 0 < s1 < P256_ORDER
    assert ECC.construct(curve="P-256", d=s1).pointQ == p1


# --- HKDF and ECDH -------------------------------------------------------------------------------


# RFC 5869 Appendix A, test cases 1-3 (HKDF-SHA256): IKM, salt, info, OKM
HKDF_CASES = [
    (
        "0b" * 22,
        "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    (  # longer inputs and an 82-byte output (three HMAC blocks)
        bytes(range(0x50)).hex(),
        bytes(range(0x60, 0xB0)).hex(),
        bytes(range(0xB0, 0x100)).hex(),
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
        "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
        "cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
    (  # empty salt and info: the salt defaults to HashLen zero bytes
        "0b" * 22,
        "",
        "",
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ),
]


@pytest.mark.parametrize("case", HKDF_CASES)
def test_hkdf_rfc5869_test_cases(case: tuple[str, str, str, str]) -> None:
    ikm, salt, info, okm = case
    assert hkdf(H(ikm), salt=H(salt), info=H(info), length=len(H(okm))) == H(okm)


@settings(max_examples=30, derandomize=True, deadline=None)
@given(
    st.binary(min_size=1, max_size=80),
    st.binary(max_size=40),
    st.binary(max_size=40),
    st.integers(min_value=1, max_value=100),
)
def test_hkdf_equals_pycryptodome_hkdf(ikm: bytes, salt: bytes, info: bytes, n: int) -> None:
    ours = hkdf(ikm, salt=salt, info=info, length=n)
    theirs = HKDF(ikm, n, salt, SHA256, context=info)
    assert ours == theirs


def test_ecdh_is_symmetric_and_matches_pycryptodome_key_agreement() -> None:
    r = rng(3)
    a, big_a = keypair(r.randbytes)
    b, big_b = keypair(r.randbytes)
    k_ab = ecdh_key(a, big_b, info=b"ctx")
    assert k_ab == ecdh_key(b, big_a, info=b"ctx")
    assert len(k_ab) == 32
    assert ecdh_key(a, big_b, info=b"other") != k_ab
    reference = key_agreement(
        static_priv=ECC.construct(curve="P-256", d=a),
        static_pub=ECC.construct(curve="P-256", point_x=big_b.x, point_y=big_b.y),
        kdf=lambda z: HKDF(z, 32, b"", SHA256, context=b"ctx"),
    )
    assert k_ab == reference
    with pytest.raises(ValueError):
        ecdh_key(0, big_b, info=b"ctx")


# --- AES-256-GCM ---------------------------------------------------------------------------------

# McGrew & Viega, "The Galois/Counter Mode of Operation", Appendix B, test cases 14 and 16
GCM_CASES = [
    (  # test case 14: 256-bit zero key, one zero block, no AAD
        "00" * 32,
        "000000000000000000000000",
        "",
        "00" * 16,
        "cea7403d4d606b6e074ec5d3baf39d18",
        "d0d1c8a799996bf0265b98b5d48ab919",
    ),
    (  # test case 16: 256-bit key, 60-byte plaintext, 20-byte AAD
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
]


@pytest.mark.parametrize("case", GCM_CASES)
def test_aes_gcm_published_vectors(case: tuple[str, ...]) -> None:
    key, iv, aad, pt, ct, tag = case
    blob = aead_encrypt(H(key), H(pt), nonce=H(iv), aad=H(aad))
    assert blob == H(iv) + H(ct) + H(tag)
    assert aead_decrypt(H(key), blob, aad=H(aad)) == H(pt)


def test_aead_rejects_every_tamper() -> None:
    key, other = bytes(range(32)), bytes(32)
    blob = aead_encrypt(key, b"sealed bid: 42", nonce=b"n" * 12, aad=b"batch 7")
    for bit in range(len(blob) * 8):
        with pytest.raises(CryptoError):
            aead_decrypt(key, flip(blob, bit), aad=b"batch 7")
    with pytest.raises(CryptoError):
        aead_decrypt(key, blob, aad=b"batch 8")
    with pytest.raises(CryptoError):
        aead_decrypt(other, blob, aad=b"batch 7")
    with pytest.raises(CryptoError):
        aead_decrypt(key, blob[:27])
    with pytest.raises(ValueError):
        aead_encrypt(b"short", b"x", nonce=b"n" * 12)
    with pytest.raises(ValueError):
        aead_encrypt(key, b"x", nonce=b"n" * 8)


# --- padding and ECIES ---------------------------------------------------------------------------


def test_pad_unpad() -> None:
    assert pad(b"abc", 8) == b"abc\x80\x00\x00\x00\x00"
    assert pad(b"abc", 0) == b"abc"
    for data in (b"", b"\x00\x00", b"\x80", b"x\x80\x00"):
        assert unpad(pad(data, 10)) == data
        assert len(pad(data, 10)) == 10
    with pytest.raises(ValueError):
        pad(b"12345678", 8)  # no room for the marker
    with pytest.raises(ValueError):
        unpad(b"abc\x00\x00")
    with pytest.raises(ValueError):
        unpad(b"")


def test_ecies_round_trip_and_documented_size() -> None:
    r = rng(11)
    secret, public = keypair(r.randbytes)
    for plaintext in (b"", b"o" * 32, b"\x00\x80\x00", bytes(range(200))):
        for pad_to in (0, 256):
            blob = ecies_encrypt(
                public, plaintext, randbytes=r.randbytes, pad_to=pad_to, aad=b"epoch 3"
            )
            assert len(blob) == ecies_overhead(pad_to, len(plaintext))
            assert ecies_decrypt(secret, blob, aad=b"epoch 3") == plaintext
    assert ecies_overhead(0, 32) == 33 + 33 + 16
    assert ecies_overhead(64, 32) == 33 + 64 + 16


def test_ecies_padded_sizes_hide_lengths() -> None:
    r = rng(12)
    _, public = keypair(r.randbytes)
    sizes = {
        len(ecies_encrypt(public, b"x" * m, randbytes=r.randbytes, pad_to=96))
        for m in (0, 1, 40, 95)
    }
    assert sizes == {33 + 96 + 16}
    with pytest.raises(ValueError):
        ecies_encrypt(public, b"x" * 96, randbytes=r.randbytes, pad_to=96)
    with pytest.raises(ValueError):
        ecies_encrypt(public, b"x" * 100, randbytes=r.randbytes, pad_to=64)
    with pytest.raises(ValueError):
        ecies_overhead(64, 64)


def test_ecies_every_flipped_bit_wrong_key_and_aad_fail() -> None:
    r = rng(13)
    secret, public = keypair(r.randbytes)
    wrong, _ = keypair(r.randbytes)
    blob = ecies_encrypt(public, b"buy 5 YES @ 0.61", randbytes=r.randbytes, aad=b"a")
    # every bit, including the sign bit of the ephemeral point (-E has the same x)
    for bit in range(len(blob) * 8):
        with pytest.raises(CryptoError):
            ecies_decrypt(secret, flip(blob, bit), aad=b"a")
    with pytest.raises(CryptoError):
        ecies_decrypt(wrong, blob, aad=b"a")
    with pytest.raises(CryptoError):
        ecies_decrypt(secret, blob, aad=b"b")
    with pytest.raises(CryptoError):
        ecies_decrypt(secret, blob[:-1], aad=b"a")
    with pytest.raises(CryptoError):
        ecies_decrypt(secret, blob[:40], aad=b"a")


def test_ecies_is_reproducible_from_the_seed() -> None:
    _, public = keypair(rng(14).randbytes)
    one = ecies_encrypt(public, b"order", randbytes=rng(99).randbytes)
    two = ecies_encrypt(public, b"order", randbytes=rng(99).randbytes)
    three = ecies_encrypt(public, b"order", randbytes=rng(100).randbytes)
    assert one == two
    assert one != three


# --- commitments ---------------------------------------------------------------------------------


def test_commitment_opens_only_with_its_data_and_salt() -> None:
    salt = bytes(range(16))
    c = commit(b"YES", salt)
    assert len(c) == 32
    open_commitment(c, b"YES", salt)
    with pytest.raises(CryptoError):
        open_commitment(c, b"NO", salt)
    with pytest.raises(CryptoError):
        open_commitment(c, b"YES", bytes(16))
    with pytest.raises(CryptoError):
        open_commitment(flip(c, 5), b"YES", salt)
    with pytest.raises(CryptoError):
        open_commitment(c, b"YES", salt[:8])
    # moving a byte across the salt/data boundary changes the commitment
    assert commit(b"Y", salt + b"X") != commit(b"XY", salt)
    assert commit(b"YES", salt) != commit(b"YES", salt[::-1])
    with pytest.raises(ValueError):
        commit(b"YES", b"short")


# --- ECDSA ---------------------------------------------------------------------------------------

RFC6979_D = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721


def test_ecdsa_rfc6979_known_answer() -> None:
    # RFC 6979 A.2.5: P-256, SHA-256, message "sample"
    signature = sign(RFC6979_D, b"sample")
    assert signature == H(
        "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
        "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"
    )
    public = base_mul(RFC6979_D)
    assert public.xy == (
        0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6,
        0x7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299,
    )
    verify(public, b"sample", signature)


def test_ecdsa_deterministic_and_tamper_fails() -> None:
    r = rng(21)
    secret, public = keypair(r.randbytes)
    _, other = keypair(r.randbytes)
    message = b"batch 12 root"
    signature = sign(secret, message)
    assert signature == sign(secret, message)
    assert signature != sign(secret, message + b".")
    verify(public, message, signature)
    with pytest.raises(CryptoError):
        verify(public, message + b".", signature)
    with pytest.raises(CryptoError):
        verify(other, message, signature)
    for byte in (0, 17, 31, 32, 50, 63):
        with pytest.raises(CryptoError):
            verify(public, message, flip(signature, byte * 8 + 3))
    with pytest.raises(CryptoError):
        verify(public, message, signature[:-1])


# --- Shamir --------------------------------------------------------------------------------------


def test_shamir_combine_hand_computed() -> None:
    # f(x) = 7 + 2x + 3x^2 mod 101: f(1) = 12, f(2) = 23, f(3) = 40, f(4) = 63
    assert shamir_combine([(1, 12), (2, 23), (3, 40)], modulus=101) == 7
    assert shamir_combine([(4, 63), (2, 23), (3, 40)], modulus=101) == 7
    # two points of a line through (1, 12) and (2, 23) meet x = 0 at 1, not at 7
    assert shamir_combine([(1, 12), (2, 23)], modulus=101) == 1


def test_shamir_any_k_of_n_and_not_fewer() -> None:
    secret = 0x5EC12E7
    shares = shamir_split(secret, n=6, k=4, randbytes=rng(31).randbytes)
    assert [x for x, _ in shares] == [1, 2, 3, 4, 5, 6]
    for subset in itertools.combinations(shares, 4):
        assert shamir_combine(subset) == secret
    for subset in itertools.combinations(shares, 3):
        assert shamir_combine(subset) != secret
    assert shamir_combine(shares) == secret  # more than k is fine


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    st.integers(min_value=0, max_value=P256_ORDER - 1),
    st.integers(min_value=1, max_value=7),
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=0, max_value=2**32),
)
def test_shamir_property(secret: int, k: int, extra: int, seed: int) -> None:
    n = k + extra
    shares = shamir_split(secret, n=n, k=k, randbytes=rng(seed).randbytes)
    picked = random.Random(seed).sample(shares, k)
    assert shamir_combine(picked) == secret


def test_shamir_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        shamir_combine([(1, 5), (1, 6)])
    with pytest.raises(ValueError):
        shamir_combine([(1, 5), (1 + P256_ORDER, 6)])  # the same x mod the order
    with pytest.raises(ValueError):
        shamir_combine([(0, 5), (2, 6)])
    with pytest.raises(ValueError):
        shamir_combine([])
    with pytest.raises(ValueError):
        shamir_split(1, n=3, k=4, randbytes=rng().randbytes)
    with pytest.raises(ValueError):
        shamir_split(P256_ORDER, n=3, k=2, randbytes=rng().randbytes)


# --- the PRG -------------------------------------------------------------------------------------


def test_derive_stream_construction_and_properties() -> None:
    seed = bytes(range(32))
    long = derive_stream(seed, b"mask/3/7", 4096)
    assert len(long) == 4096
    assert derive_stream(seed, b"mask/3/7", 100) == long[:100]
    assert derive_stream(seed, b"mask/3/8", 100) != long[:100]
    assert derive_stream(bytes(32), b"mask/3/7", 100) != long[:100]
    assert derive_stream(seed, b"x", 0) == b""
    # the documented construction, from pycryptodome's own HKDF and AES block
    subkey = HKDF(seed, 32, b"", SHA256, context=b"veilcast/stream/v1|mask/3/7")
    assert long[:16] == AES.new(subkey, AES.MODE_ECB).encrypt(bytes(16))
    assert long[16:32] == AES.new(subkey, AES.MODE_ECB).encrypt((1).to_bytes(16, "big"))
    # byte frequencies of 64 KiB: chi-square with 255 d.o.f. far below its 1e-6 tail (~400)
    stream = derive_stream(seed, b"chi", 65536)
    counts = Counter(stream)
    chi2 = sum((counts.get(b, 0) - 256) ** 2 / 256 for b in range(256))
    assert chi2 < 400
    with pytest.raises(ValueError):
        derive_stream(b"short", b"x", 10)
    meter = CryptoMeter()
    derive_stream(seed, b"x", 10, meter=meter)
    assert meter.ops == {"kdf": 1, "prg": 1}


# NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt: initial counter block f0f1...feff
CTR_KEY = H("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
CTR_PLAINTEXT = H(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
)
CTR_CIPHERTEXT = H(
    "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
    "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
)


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def test_keystream_sp800_38a_ctr_aes256_vector() -> None:
    expected = xor(CTR_PLAINTEXT, CTR_CIPHERTEXT)
    # the counter block split as an 8-byte nonce and a 64-bit counter, or one 128-bit counter
    split = keystream(CTR_KEY, 64, nonce=H("f0f1f2f3f4f5f6f7"), counter=0xF8F9FAFBFCFDFEFF)
    whole = keystream(CTR_KEY, 64, nonce=b"", counter=int("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", 16))
    assert split == whole == expected


def test_keystream_properties() -> None:
    key = bytes(range(32))
    long = keystream(key, 1000, nonce=(7).to_bytes(8, "big"))
    assert len(long) == 1000
    assert keystream(key, 37, nonce=(7).to_bytes(8, "big")) == long[:37]  # a prefix
    assert keystream(key, 37, nonce=(8).to_bytes(8, "big")) != long[:37]  # another nonce
    assert keystream(bytes(32), 37, nonce=(7).to_bytes(8, "big")) != long[:37]  # another key
    assert keystream(key, 0, nonce=b"") == b""
    with pytest.raises(ValueError):
        keystream(bytes(16), 16, nonce=b"")  # AES-256 only
    with pytest.raises(ValueError):
        keystream(key, -1, nonce=b"")
    meter = CryptoMeter()
    keystream(key, 64, nonce=b"", meter=meter)
    assert meter.ops == {"prg": 1}


# --- tagged hashes -------------------------------------------------------------------------------


def test_tagged_hash_is_sha256_of_the_documented_encoding_and_separates_domains() -> None:
    tag, data = b"veilcast/secagg/seed/v1", bytes(range(48))
    reference = SHA256.new(bytes([len(tag)]) + tag + data).digest()
    assert tagged_hash(tag, data) == reference
    assert len(reference) == 32
    # moving a byte between the tag and the data changes the digest
    assert tagged_hash(tag + data[:1], data[1:]) != reference
    assert tagged_hash(b"other", data) != reference
    assert tagged_hash(tag, flip(data, 5)) != reference
    for bad in (b"", bytes(256)):
        with pytest.raises(ValueError):
            tagged_hash(bad, data)
    meter = CryptoMeter()
    tagged_hash(tag, data, meter=meter)
    assert meter.ops == {"hash": 1}


# --- metering ------------------------------------------------------------------------------------


def test_meter_counts_and_times_each_operation_once() -> None:
    r = rng(41)
    meter = CryptoMeter()
    secret, public = keypair(r.randbytes, meter=meter)
    assert meter.ops == {"scalar_mult": 1}
    blob = ecies_encrypt(public, b"hi", randbytes=r.randbytes, meter=meter)
    # ephemeral k·G, ECDH k·P, one HKDF, one AEAD
    assert meter.ops == {"scalar_mult": 3, "kdf": 1, "aead": 1}
    assert meter.cpu_s > 0
    ecies_decrypt(secret, blob, meter=meter)
    assert meter.ops == {"scalar_mult": 4, "kdf": 2, "aead": 2}
    with pytest.raises(CryptoError):
        ecies_decrypt(secret, flip(blob, 400), meter=meter)
    assert meter.ops["aead"] == 3  # the failed decryption's work is counted too
    sign(secret, b"m", meter=meter)
    verify(public, b"m", sign(secret, b"m"), meter=meter)
    commit(b"d", bytes(16), meter=meter)
    assert (meter.ops["sign"], meter.ops["verify"], meter.ops["hash"]) == (1, 1, 1)
    assert meter.total_ops() == sum(meter.ops.values()) == 14

    nested = CryptoMeter()
    started = time.perf_counter()
    ecies_encrypt(public, b"hi", randbytes=r.randbytes, meter=nested)
    wall = time.perf_counter() - started
    assert 0 < nested.cpu_s <= wall  # nested calls do not add their time twice
