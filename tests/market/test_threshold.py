"""market.threshold: Feldman DKG, cheater detection, threshold recovery, reproducibility."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from typing import Any

import pytest
from Crypto.PublicKey.ECC import EccPoint

from market.crypto import (
    P256_ORDER,
    CryptoMeter,
    base_mul,
    ecies_decrypt,
    ecies_encrypt,
    keypair,
    point_bytes,
    point_from_bytes,
)
from market.errors import CryptoError
from market.shamir import shamir_combine
from market.threshold import (
    Deal,
    DecryptionShare,
    EpochKey,
    combine_secret,
    corrupt,
    deal,
    decryption_share,
    exchange_ops,
    forged_share,
    open_share,
    public_share,
    run_dkg,
    seal_share,
    threshold_decrypt,
    verify_decryption_share,
    verify_secret_share,
)


def deals_for(n: int, t: int, seed: int) -> list[Deal]:
    randbytes = random.Random(seed).randbytes
    return [deal(i, n=n, t=t, randbytes=randbytes) for i in range(1, n + 1)]


def point_sum(points: list[EccPoint]) -> EccPoint:
    total = points[0]
    for p in points[1:]:
        total = total + p
    return total


def committed_value(commitments: tuple[EccPoint, ...], j: int) -> EccPoint:
    """Σ_k j^k·C_k the naive way, independent of the module's Horner and batching."""
    return point_sum([c * (j**k) for k, c in enumerate(commitments)])


def dealt_secret(d: Deal, t: int) -> int:
    """f_i(0), recovered from the dealer's own shares."""
    return shamir_combine([(j, d.shares[j]) for j in range(1, t + 1)])


def assert_key_works(key: EpochKey, deals: list[Deal]) -> int:
    """x = Σ_{i∈Q} f_i(0), x·G = X = Σ_{i∈Q} C_i0, and every keyper's shares are consistent."""
    by_dealer = {d.dealer: d for d in deals}
    x = combine_secret(key, key.secret_shares)
    assert base_mul(x) == key.public_key
    assert x == sum(dealt_secret(by_dealer[i], key.t) for i in key.qualified) % P256_ORDER
    assert key.public_key == point_sum([by_dealer[i].commitments[0] for i in key.qualified])
    for j, x_j in key.secret_shares.items():
        agg = tuple(
            point_sum([by_dealer[i].commitments[k] for i in key.qualified]) for k in range(key.t)
        )
        assert key.public_shares[j] == base_mul(x_j) == committed_value(agg, j)
    return x


def test_deal_is_a_feldman_sharing() -> None:
    d = deal(3, n=5, t=3, randbytes=random.Random(1).randbytes)
    assert d.dealer == 3
    assert len(d.commitments) == 3
    assert sorted(d.shares) == [1, 2, 3, 4, 5]
    for j, s in d.shares.items():
        assert base_mul(s) == committed_value(d.commitments, j)
    assert base_mul(dealt_secret(d, 3)) == d.commitments[0]


def test_honest_dkg_any_t_shares_recover_the_key() -> None:
    n, t = 5, 3
    deals = deals_for(n, t, seed=2)
    key = run_dkg(deals, n=n, t=t)
    assert key.qualified == (1, 2, 3, 4, 5)
    assert key.complaints == ()
    assert (key.n, key.t) == (n, t)
    x = assert_key_works(key, deals)
    for subset in itertools.combinations(range(1, n + 1), t):
        assert combine_secret(key, {j: key.secret_shares[j] for j in subset}) == x
    for subset in itertools.combinations(range(1, n + 1), t - 1):
        with pytest.raises(CryptoError):
            combine_secret(key, {j: key.secret_shares[j] for j in subset})
        assert shamir_combine([(j, key.secret_shares[j]) for j in subset]) != x


def test_cheating_dealer_is_caught_and_excluded_and_key_still_works() -> None:
    n, t = 7, 4
    for dealer, victim in ((1, 1), (4, 6), (7, 2)):
        deals = deals_for(n, t, seed=3)
        deals[dealer - 1] = corrupt(deals[dealer - 1], victim)
        key = run_dkg(deals, n=n, t=t)
        assert key.complaints == ((victim, dealer),)
        assert key.qualified == tuple(i for i in range(1, n + 1) if i != dealer)
        assert_key_works(key, deals)


def test_deviations_that_cancel_for_one_recipient_are_still_caught() -> None:
    # dealer 2 is +1 to keyper 3 and to keyper 5; dealer 4 is -1 to keyper 3: keyper 3's sum is
    # right, so only once dealer 2 is gone does dealer 4's bad share show
    n, t = 6, 3
    deals = deals_for(n, t, seed=4)
    deals[1] = corrupt(corrupt(deals[1], 3), 5)
    shares = dict(deals[3].shares)
    shares[3] = (shares[3] - 1) % P256_ORDER
    deals[3] = replace(deals[3], shares=shares)
    key = run_dkg(deals, n=n, t=t)
    assert key.qualified == (1, 3, 5, 6)
    assert (5, 2) in key.complaints
    assert (3, 4) in key.complaints
    assert_key_works(key, deals)


def test_missing_share_is_a_complaint() -> None:
    n, t = 4, 2
    deals = deals_for(n, t, seed=5)
    shares = {j: s for j, s in deals[0].shares.items() if j != 2}
    deals[0] = replace(deals[0], shares=shares)
    key = run_dkg(deals, n=n, t=t)
    assert key.complaints == ((2, 1),)
    assert key.qualified == (2, 3, 4)
    assert_key_works(key, deals)


def test_partial_dealer_set_and_no_qualified_dealer() -> None:
    n, t = 5, 3
    deals = deals_for(n, t, seed=6)[:2]  # only keypers 1 and 2 dealt
    key = run_dkg(deals, n=n, t=t)
    assert key.qualified == (1, 2)
    assert sorted(key.secret_shares) == [1, 2, 3, 4, 5]
    assert_key_works(key, deals)
    with pytest.raises(CryptoError, match="no dealer"):
        run_dkg([corrupt(deals[0], 4)], n=n, t=t)


def test_wrong_revealed_share_is_rejected_and_skipped() -> None:
    n, t = 5, 3
    key = run_dkg(deals_for(n, t, seed=7), n=n, t=t)
    x = combine_secret(key, key.secret_shares)
    revealed = dict(key.secret_shares)
    revealed[1] = (revealed[1] + 1) % P256_ORDER
    revealed[2] = 12345
    assert not verify_secret_share(key, 1, revealed[1])
    assert not verify_secret_share(key, 2, revealed[2])
    assert verify_secret_share(key, 3, revealed[3])
    assert not verify_secret_share(key, 9, revealed[3])  # not a keyper
    assert not verify_secret_share(key, 3, revealed[3] + P256_ORDER)  # out of range
    assert combine_secret(key, revealed) == x  # keypers 3, 4, 5 suffice
    del revealed[5]
    with pytest.raises(CryptoError, match="only 2 valid"):
        combine_secret(key, revealed)


def test_dkg_is_reproducible_from_the_seed() -> None:
    n, t = 5, 3
    one = run_dkg(deals_for(n, t, seed=8), n=n, t=t)
    two = run_dkg(deals_for(n, t, seed=8), n=n, t=t)
    three = run_dkg(deals_for(n, t, seed=9), n=n, t=t)
    assert point_bytes(one.public_key) == point_bytes(two.public_key)
    assert one.secret_shares == two.secret_shares
    assert [point_bytes(p) for p in one.public_shares.values()] == [
        point_bytes(p) for p in two.public_shares.values()
    ]
    assert point_bytes(one.public_key) != point_bytes(three.public_key)


def test_orders_encrypted_to_the_epoch_key_open_with_the_combined_secret() -> None:
    n, t = 5, 3
    key = run_dkg(deals_for(n, t, seed=10), n=n, t=t)
    randbytes = random.Random(77).randbytes
    blob = ecies_encrypt(key.public_key, b"buy 3 YES", randbytes=randbytes, pad_to=64, aad=b"e1")
    x = combine_secret(key, {j: key.secret_shares[j] for j in (2, 4, 5)})
    assert ecies_decrypt(x, blob, aad=b"e1") == b"buy 3 YES"
    other = run_dkg(deals_for(n, t, seed=11), n=n, t=t)
    with pytest.raises(CryptoError):
        ecies_decrypt(combine_secret(other, other.secret_shares), blob, aad=b"e1")


def test_edge_thresholds() -> None:
    for n, t in ((1, 1), (4, 1), (4, 4)):
        deals = deals_for(n, t, seed=12)
        key = run_dkg(deals, n=n, t=t)
        assert_key_works(key, deals)
        bad = list(deals)
        bad[-1] = corrupt(bad[-1], 1)
        if n > 1:
            assert run_dkg(bad, n=n, t=t).complaints == ((1, n),)


def test_malformed_input_raises_value_error() -> None:
    deals = deals_for(4, 2, seed=13)
    with pytest.raises(ValueError):
        deal(1, n=3, t=4, randbytes=random.Random().randbytes)
    with pytest.raises(ValueError):
        deal(5, n=4, t=2, randbytes=random.Random().randbytes)
    with pytest.raises(ValueError):
        run_dkg([deals[0], deals[0]], n=4, t=2)
    with pytest.raises(ValueError):
        run_dkg(deals, n=4, t=3)  # commitments of degree 1, not 2
    with pytest.raises(ValueError):
        corrupt(deals[0], 9)


def _verification_ops(n: int, t: int, seed: int) -> int:
    randbytes = random.Random(seed).randbytes
    deals = [deal(i, n=n, t=t, randbytes=randbytes) for i in range(1, n + 1)]
    meter = CryptoMeter()
    run_dkg(deals, n=n, t=t, meter=meter)
    assert meter.cpu_s > 0  # timed as well as counted
    return meter.total_ops()


def test_batched_verification_grows_linearly_not_quadratically() -> None:
    # every recipient's check folded into one random combination: the cost grows with n + t,
    # where checking each of the n^2 shares alone would grow with n^2 t
    sizes = [(n, max(1, (7 * n) // 10)) for n in (5, 10, 20, 40)]
    ops = [_verification_ops(n, t, seed=n) for n, t in sizes]
    for (n, t), count in zip(sizes, ops, strict=True):
        assert count < n * n  # far below even one multiplication per share
        assert count <= 3 * (n + t)
    for small, large in itertools.pairwise(ops):
        assert large < 2.5 * small  # doubling n about doubles the work


def test_a_cheating_dealer_costs_the_fallback_and_combining_stops_at_t() -> None:
    n, t = 10, 7
    randbytes = random.Random(14).randbytes
    deals = [deal(i, n=n, t=t, randbytes=randbytes) for i in range(1, n + 1)]
    honest_meter = CryptoMeter()
    key = run_dkg(deals, n=n, t=t, meter=honest_meter)
    combine = CryptoMeter()
    combine_secret(key, key.secret_shares, meter=combine)
    few = CryptoMeter()
    chosen = dict(list(key.secret_shares.items())[:t])
    combine_secret(key, chosen, meter=few)
    assert combine.ops == few.ops  # all n offered, only t checked and used
    deals[5] = corrupt(deals[5], 2)
    cheat_meter = CryptoMeter()
    assert run_dkg(deals, n=n, t=t, meter=cheat_meter).complaints == ((2, 6),)
    assert cheat_meter.total_ops() > honest_meter.total_ops()  # the per-recipient fallback


@pytest.mark.parametrize(("n", "t"), [(4, 2), (7, 5), (9, 1)])
def test_the_deployed_share_exchange_costs_what_exchange_ops_counts(n: int, t: int) -> None:
    # run the exchange as keypers would, each its own part, and count what it performed
    randbytes = random.Random(n * 10 + t).randbytes
    deals = [deal(i, n=n, t=t, randbytes=randbytes) for i in range(1, n + 1)]
    keys = {j: keypair(randbytes) for j in range(1, n + 1)}
    meter = CryptoMeter()
    for d in deals:
        for j in range(1, n + 1):
            if j == d.dealer:
                continue  # a dealer keeps its own share
            blob = seal_share(d, j, keys[j][1], epoch=3, randbytes=randbytes, meter=meter)
            opened = open_share(
                blob,
                secret=keys[j][0],
                epoch=3,
                dealer=d.dealer,
                recipient=j,
                commitments=d.commitments,
                meter=meter,
            )
            assert opened == d.shares[j]
    key = run_dkg(deals, n=n, t=t)
    agg = [point_sum([d.commitments[k] for d in deals]) for k in range(t)]
    for j in range(1, n + 1):
        assert public_share(agg, j, meter=meter) == key.public_shares[j]
    assert meter.ops == exchange_ops(n, t)


def test_a_sealed_share_opens_only_as_sent_and_only_if_it_matches_its_commitments() -> None:
    n, t = 5, 3
    randbytes = random.Random(8).randbytes
    deals = [deal(i, n=n, t=t, randbytes=randbytes) for i in range(1, n + 1)]
    secret, public = keypair(randbytes)
    good: dict[str, Any] = {
        "secret": secret,
        "epoch": 1,
        "dealer": 2,
        "recipient": 4,
        "commitments": deals[1].commitments,
    }
    blob = seal_share(deals[1], 4, public, epoch=1, randbytes=randbytes)
    assert open_share(blob, **good) == deals[1].shares[4]
    for change in ({"epoch": 2}, {"dealer": 3}, {"recipient": 5}, {"secret": secret + 1}):
        assert open_share(blob, **(good | change)) is None
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    assert open_share(tampered, **good) is None
    cheat = seal_share(corrupt(deals[1], 4), 4, public, epoch=1, randbytes=randbytes)
    assert open_share(cheat, **good) is None  # decrypts, but fails the Feldman check


# -- decryption shares (TDH2) ---------------------------------------------------------------


def _sealed_to(key: EpochKey, message: bytes, seed: int) -> bytes:
    return ecies_encrypt(key.public_key, message, randbytes=random.Random(seed).randbytes)


def _shares(key: EpochKey, blob: bytes, keypers: list[int]) -> list[DecryptionShare]:
    randbytes = random.Random(99).randbytes
    return [decryption_share(key, j, blob, randbytes=randbytes) for j in keypers]


def test_any_t_decryption_shares_open_the_ciphertext_and_the_shared_point_is_x_times_e() -> None:
    n, t = 5, 3
    key = run_dkg(deals_for(n, t, seed=21), n=n, t=t)
    blob = _sealed_to(key, b"buy 10 of outcome 1", 1)
    x = combine_secret(key, key.secret_shares)  # an independent route: the secret itself
    for subset in itertools.combinations(range(1, n + 1), t):
        shares = _shares(key, blob, list(subset))
        for share in shares:  # each is x_j·E, checkable by anyone against X_j
            expected = point_from_bytes(blob[:33]) * key.secret_shares[share.keyper]
            assert share.point == point_bytes(expected)
        opened = threshold_decrypt(key, blob, shares)
        assert opened.plaintext == b"buy 10 of outcome 1" == ecies_decrypt(x, blob)
        assert opened.used == subset and opened.invalid == ()


def test_t_minus_one_shares_do_not_open_it_and_a_forged_share_is_named() -> None:
    n, t = 5, 3
    key = run_dkg(deals_for(n, t, seed=22), n=n, t=t)
    blob = _sealed_to(key, b"an order", 2)
    with pytest.raises(CryptoError):
        threshold_decrypt(key, blob, _shares(key, blob, [1, 2]))
    shares = _shares(key, blob, [1, 2, 3, 4])
    cheating = [forged_share(shares[0]), *shares[1:]]
    opened = threshold_decrypt(key, blob, cheating)
    assert opened.invalid == (1,) and opened.used == (2, 3, 4)
    assert opened.plaintext == b"an order"
    with pytest.raises(CryptoError):  # two cheaters of four leave too few valid shares
        threshold_decrypt(
            key, blob, [forged_share(shares[0]), forged_share(shares[1]), *shares[2:]]
        )


def test_a_share_opens_only_its_own_ciphertext_so_a_key_share_serves_many_epochs() -> None:
    n, t = 4, 2
    key = run_dkg(deals_for(n, t, seed=23), n=n, t=t)
    first, second = _sealed_to(key, b"first", 3), _sealed_to(key, b"second", 4)
    shares = _shares(key, first, [1, 2])
    assert threshold_decrypt(key, first, shares).plaintext == b"first"
    # the same keypers' shares of the first ciphertext prove nothing about the second
    assert not any(verify_decryption_share(key, second, s) for s in shares)
    assert threshold_decrypt(key, second, _shares(key, second, [3, 4])).plaintext == b"second"
    # a share claimed by another keyper fails (the proof binds the keyper)
    [share] = _shares(key, first, [1])
    assert not verify_decryption_share(key, first, replace(share, keyper=2))


def test_decryption_shares_are_metered() -> None:
    n, t = 4, 3
    key = run_dkg(deals_for(n, t, seed=24), n=n, t=t)
    blob = _sealed_to(key, b"x", 5)
    prover = CryptoMeter()
    shares = [
        decryption_share(key, j, blob, randbytes=random.Random(j).randbytes, meter=prover)
        for j in (1, 2, 3)
    ]
    assert prover.ops == {"scalar_mult": 3 * 3, "hash": 3 * 2}
    opener = CryptoMeter()
    threshold_decrypt(key, blob, shares, meter=opener)
    # three proofs of four multiplications, three multiplications by λ_j, one KDF, one AEAD
    assert opener.ops == {"scalar_mult": 3 * 4 + 3, "hash": 3, "kdf": 1, "aead": 1}
