"""The benchmarks run: a smoke test of the cryptography's floors (figures are not checked)."""

from __future__ import annotations

import pytest

from benchmarks import crypto_floor

pytestmark = pytest.mark.slow


def test_every_crypto_figure_is_measured_on_both_sides_where_it_has_two() -> None:
    figures = crypto_floor.measure(repeats=3)
    assert all(seconds > 0 for seconds in figures.values())
    for op in ("sender_prove", "sender_verify", "decryption_share", "share_verify", "dkg"):
        assert f"floor.{op}" in figures and f"ours.{op}" in figures
