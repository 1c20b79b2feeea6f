"""market.aead: RFC 8439 known answers, every tamper rejected, metering."""

from __future__ import annotations

import pytest

from market.aead import TAG_BYTES, decrypt_and_verify, encrypt_and_digest
from market.crypto import CryptoMeter
from market.errors import CryptoError

H = bytes.fromhex

# RFC 8439 §2.8.2, "Example and Test Vector for AEAD_CHACHA20_POLY1305"
SUNSCREEN = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
    b"future, sunscreen would be it."
)
RFC_2_8_2 = {
    "key": H("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
    "nonce": H("070000004041424344454647"),
    "aad": H("50515253c0c1c2c3c4c5c6c7"),
    "ciphertext": H(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
        "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
        "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
        "3ff4def08e4b7a9de576d26586cec64b6116"
    ),
    "tag": H("1ae10b594f09e26a7e902ecbd0600691"),
}

# RFC 8439 Appendix A.5, "ChaCha20-Poly1305 AEAD Decryption"
RFC_A_5 = {
    "key": H("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0"),
    "nonce": H("000000000102030405060708"),
    "aad": H("f33388860000000000004e91"),
    "ciphertext": H(
        "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2"
        "4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf"
        "332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855"
        "9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4"
        "b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e"
        "af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a"
        "0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10"
        "49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29"
        "a6ad5cb4022b02709b"
    ),
    "tag": H("eead9d67890cbb22392336fea1851f38"),
}
INTERNET_DRAFTS = (
    "Internet-Drafts are draft documents valid for a maximum of six months and may be "
    "updated, replaced, or obsoleted by other documents at any time. It is inappropriate to "
    "use Internet-Drafts as reference material or to cite them other than as "
    "/\u201cwork in progress./\u201d"
).encode()


def flip(blob: bytes, bit: int) -> bytes:
    out = bytearray(blob)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_rfc8439_2_8_2_encrypts_to_the_published_ciphertext_and_tag() -> None:
    v = RFC_2_8_2
    assert encrypt_and_digest(v["key"], SUNSCREEN, nonce=v["nonce"], aad=v["aad"]) == (
        v["ciphertext"],
        v["tag"],
    )
    opened = decrypt_and_verify(v["key"], v["ciphertext"], v["tag"], nonce=v["nonce"], aad=v["aad"])
    assert opened == SUNSCREEN


def test_rfc8439_a_5_decrypts_to_the_published_plaintext() -> None:
    v = RFC_A_5
    opened = decrypt_and_verify(v["key"], v["ciphertext"], v["tag"], nonce=v["nonce"], aad=v["aad"])
    assert opened == INTERNET_DRAFTS


def test_every_flipped_bit_of_ciphertext_tag_aad_or_nonce_is_rejected() -> None:
    v = RFC_2_8_2
    key, nonce, aad, ciphertext, tag = v["key"], v["nonce"], v["aad"], v["ciphertext"], v["tag"]
    for bit in range(len(ciphertext) * 8):
        with pytest.raises(CryptoError):
            decrypt_and_verify(key, flip(ciphertext, bit), tag, nonce=nonce, aad=aad)
    for bit in range(TAG_BYTES * 8):
        with pytest.raises(CryptoError):
            decrypt_and_verify(key, ciphertext, flip(tag, bit), nonce=nonce, aad=aad)
    for bit in range(len(aad) * 8):
        with pytest.raises(CryptoError):
            decrypt_and_verify(key, ciphertext, tag, nonce=nonce, aad=flip(aad, bit))
    for bit in range(len(nonce) * 8):
        with pytest.raises(CryptoError):
            decrypt_and_verify(key, ciphertext, tag, nonce=flip(nonce, bit), aad=aad)
    with pytest.raises(CryptoError):
        decrypt_and_verify(flip(key, 0), ciphertext, tag, nonce=nonce, aad=aad)
    with pytest.raises(CryptoError):
        decrypt_and_verify(key, ciphertext, tag, nonce=nonce)  # the associated data left out
    with pytest.raises(CryptoError):
        decrypt_and_verify(key, ciphertext[:-1], tag, nonce=nonce, aad=aad)  # truncated
    with pytest.raises(CryptoError):
        decrypt_and_verify(key, ciphertext, tag[:12], nonce=nonce, aad=aad)  # short tag


def test_round_trips_and_sizes() -> None:
    key, nonce = bytes(range(32)), bytes(12)
    for size in (0, 1, 63, 64, 65, 300):
        plaintext = bytes(i % 251 for i in range(size))
        ciphertext, tag = encrypt_and_digest(key, plaintext, nonce=nonce, aad=b"h")
        assert len(ciphertext) == size and len(tag) == TAG_BYTES
        assert decrypt_and_verify(key, ciphertext, tag, nonce=nonce, aad=b"h") == plaintext
    # a different nonce under the same key gives an unrelated ciphertext
    a, _ = encrypt_and_digest(key, bytes(64), nonce=bytes(12))
    b, _ = encrypt_and_digest(key, bytes(64), nonce=bytes(11) + b"\x01")
    assert a != b


def test_bad_key_or_nonce_sizes_raise_value_error() -> None:
    for key, nonce in ((bytes(16), bytes(12)), (bytes(32), bytes(8)), (bytes(32), bytes(24))):
        with pytest.raises(ValueError):
            encrypt_and_digest(key, b"x", nonce=nonce)
        with pytest.raises(ValueError):
            decrypt_and_verify(key, b"x", bytes(TAG_BYTES), nonce=nonce)


def test_meter_counts_each_call_once_failed_or_not() -> None:
    meter = CryptoMeter()
    key, nonce = bytes(32), bytes(12)
    ciphertext, tag = encrypt_and_digest(key, b"share", nonce=nonce, meter=meter)
    decrypt_and_verify(key, ciphertext, tag, nonce=nonce, meter=meter)
    with pytest.raises(CryptoError):
        decrypt_and_verify(key, ciphertext, flip(tag, 3), nonce=nonce, meter=meter)
    assert meter.ops == {"aead": 3}
    assert meter.cpu_s > 0
