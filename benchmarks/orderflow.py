"""Issue 3's benchmark: the threshold mode of the core scenario against transparent and the floor.

The floor is what pycryptodome alone needs, measured in the same run: per encrypted order one
fixed-base multiplication (the ephemeral key), two ECDH multiplications (encrypt and decrypt) and
AES-GCM both ways; per epoch that carries orders, one DKG built from the primitives it cannot
avoid and ``threshold`` share verifications. Targets: threshold wall ≤ transparent wall + 1.5 ×
the floor of its orders and key generations; its crypto time per order ≤ 1.5 × the floor.
"""

from __future__ import annotations

import copy
from typing import Any

from benchmarks.core import CORE
from benchmarks.crypto_floor import measure
from sim.api import run


def _run(mode: str, quick: bool) -> tuple[dict[str, float], Any]:
    scenario: dict[str, Any] = copy.deepcopy(CORE)
    scenario["privacy"] = {"order_flow": mode}
    if quick:
        scenario |= {
            "duration_s": 7200.0,
            "market": {"count": 4, "close_s": 5400.0, "resolve_s": 6000.0},
        }
    result = run(scenario)
    return result.metrics(), result.tables["messages"]


def run_benchmark(*, quick: bool = False) -> dict[str, float]:
    """Run transparent and threshold on the core scenario; print and return the figures."""
    floor = measure(repeats=60 if quick else 200)
    plain, _ = _run("transparent", quick)
    sealed, messages = _run("threshold", quick)
    keypers, threshold = 10, 7
    dkg_messages = messages.filter(messages["kind"] == "dkg")["sent"].sum()
    epochs = dkg_messages // (2 * keypers * (keypers - 1))
    orders = sealed["market.orders_executed"]
    per_order = (
        floor["floor.base_mul"]
        + 2 * floor["floor.ecdh"]
        + floor["floor.aead_encrypt"]
        + floor["floor.aead_decrypt"]
    )
    per_epoch = floor["floor.dkg"] + threshold * floor["floor.base_mul"]
    floor_total = orders * per_order + epochs * per_epoch
    # settlement signs and verifies votes in both runs: count only what the mode adds
    crypto = sealed["perf.crypto_cpu_s"] - plain["perf.crypto_cpu_s"]
    extra_wall = sealed["perf.wall_s"] - plain["perf.wall_s"]
    print("\n== order flow: threshold against transparent and the crypto floor ==")
    print(
        f"transparent wall {plain['perf.wall_s']:.2f} s   threshold wall "
        f"{sealed['perf.wall_s']:.2f} s   orders {orders:.0f}   epochs with a DKG {epochs}"
    )
    print(
        f"crypto floor {floor_total:.2f} s ({per_order * 1e3:.2f} ms per order, "
        f"{per_epoch * 1e3:.2f} ms per epoch)   measured crypto {crypto:.2f} s   "
        f"ratio {crypto / floor_total:.2f} (target <= 1.5)"
    )
    print(
        f"threshold - transparent wall {extra_wall:.2f} s = {extra_wall / floor_total:.2f} x "
        f"the floor (target <= 1.5)   crypto per order {crypto / orders * 1e3:.2f} ms"
    )
    return {"crypto_ratio": crypto / floor_total, "wall_ratio": extra_wall / floor_total}
