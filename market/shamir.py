"""Shamir secret sharing over a prime field (by default the P-256 group order).

pycryptodome's built-in ``Shamir`` shares only 16-byte secrets; sharing a curve scalar is a
few lines of modular arithmetic: shares are ``(x, f(x))`` of a random polynomial whose constant
term is the secret, and Lagrange interpolation at 0 recovers it from any ``k`` of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from market.crypto import P256_ORDER, CryptoMeter, RandBytes, metering

__all__ = ["eval_poly", "lagrange_at_zero", "shamir_combine", "shamir_split"]


def _uniform_mod(randbytes: RandBytes, modulus: int) -> int:
    # 16 extra bytes make the reduction bias below 2^-128
    return int.from_bytes(randbytes((modulus.bit_length() + 7) // 8 + 16), "big") % modulus


def eval_poly(coeffs: Sequence[int], x: int, modulus: int) -> int:
    """``sum(coeffs[k] * x**k) mod modulus`` by Horner's rule."""
    acc = 0
    for c in reversed(coeffs):
        acc = (acc * x + c) % modulus
    return acc


def shamir_split(
    secret: int,
    *,
    n: int,
    k: int,
    randbytes: RandBytes,
    modulus: int = P256_ORDER,
    meter: CryptoMeter | None = None,
) -> list[tuple[int, int]]:
    """Shamir shares ``(x, f(x))`` at ``x = 1..n`` of a random degree ``k-1`` polynomial.

    ``modulus`` must be prime (the default is the P-256 group order); any ``k`` shares
    reconstruct ``secret`` and ``k-1`` reveal nothing about it.
    """
    if not 1 <= k <= n < modulus:
        raise ValueError("need 1 <= k <= n < modulus")
    if not 0 <= secret < modulus:
        raise ValueError("secret out of range")
    with metering(meter) as tally:
        tally.count("shamir")
        coeffs = [secret] + [_uniform_mod(randbytes, modulus) for _ in range(k - 1)]
        return [(x, eval_poly(coeffs, x, modulus)) for x in range(1, n + 1)]


def shamir_combine(
    shares: Sequence[tuple[int, int]],
    *,
    modulus: int = P256_ORDER,
    meter: CryptoMeter | None = None,
) -> int:
    """Lagrange interpolation at 0 of the given shares (all of them are used).

    ``ValueError`` on no shares, a duplicate x or an x that is 0 mod ``modulus``.
    """
    weights = lagrange_at_zero([x for x, _ in shares], modulus=modulus)
    with metering(meter) as tally:
        tally.count("shamir")
        return sum(w * y for w, (_, y) in zip(weights, shares, strict=True)) % modulus


def lagrange_at_zero(xs: Sequence[int], *, modulus: int = P256_ORDER) -> list[int]:
    """The Lagrange coefficients ``λ_i = Π_{j≠i} x_j / (x_j − x_i)`` that interpolate at 0.

    ``Σ λ_i·f(x_i) = f(0)`` for any polynomial of degree below ``len(xs)``: on scalars (Shamir)
    as on points in the exponent (threshold decryption). ``ValueError`` on no x, a duplicate x
    or an x that is 0 mod ``modulus``.
    """
    xs = [x % modulus for x in xs]
    if not xs or len(set(xs)) != len(xs) or 0 in xs:
        raise ValueError("shares need distinct, non-zero x-coordinates")
    weights = []
    for i, xi in enumerate(xs):
        num = den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * xj % modulus
                den = den * (xj - xi) % modulus
        weights.append(num * pow(den, -1, modulus) % modulus)
    return weights
