"""Issue 3's benchmark: the threshold mode of the core scenario against transparent and the floor.

The floor is what pycryptodome alone needs, measured in the same run, for the work the
simulator itself does (each replica's repeat of a check is metered, not recomputed): per
encrypted order one fixed-base multiplication (the ephemeral key), one ECDH and AES-GCM to
encrypt; ``keypers`` decryption shares with their Chaum–Pedersen proofs, the aggregator's check
of all of them, one replica check of the ``threshold`` published ones, their ``threshold``
Lagrange multiplications and AES-GCM to open; and for the run, each DKG (one, as a key share
is never spent) built from the primitives it cannot avoid. Targets: threshold wall ≤
transparent wall + 1.5 × that floor; its crypto time ≤ 1.5 × the floor.
"""

from __future__ import annotations

import copy
from typing import Any

from benchmarks.core import CORE
from benchmarks.crypto_floor import measure
from sim.api import run
from sim.scenario import parse_scenario


def _scenario(mode: str, quick: bool) -> dict[str, Any]:
    scenario: dict[str, Any] = copy.deepcopy(CORE)
    scenario["privacy"] = {"order_flow": mode}
    if quick:
        scenario |= {
            "duration_s": 7200.0,
            "market": {"count": 4, "close_s": 5400.0, "resolve_s": 6000.0},
        }
    return scenario


def _run(mode: str, quick: bool) -> tuple[dict[str, float], Any]:
    result = run(_scenario(mode, quick))
    return result.metrics(), result.tables["messages"]


def run_benchmark(*, quick: bool = False) -> dict[str, float]:
    """Run transparent and threshold on the core scenario; print and return the figures."""
    floor = measure(repeats=60 if quick else 200)
    plain, _ = _run("transparent", quick)
    sealed, messages = _run("threshold", quick)
    committee = parse_scenario(_scenario("threshold", quick)).privacy
    keypers, threshold = committee.keypers, committee.threshold
    dkg_messages = messages.filter(messages["kind"] == "dkg")["sent"].sum()
    dkgs = dkg_messages // (2 * keypers * (keypers - 1))
    orders = sealed["market.orders_executed"]
    per_order = (
        floor["floor.base_mul"]
        + floor["floor.ecdh"]
        + floor["floor.aead_encrypt"]
        + keypers * (floor["floor.decryption_share"] + floor["floor.share_verify"])
        + threshold * (floor["floor.share_verify"] + floor["floor.point_mul"])
        + floor["floor.aead_decrypt"]
    )
    floor_total = orders * per_order + dkgs * floor["floor.dkg"]
    # settlement signs and verifies votes in both runs: count only what the mode adds
    crypto = sealed["perf.crypto_cpu_s"] - plain["perf.crypto_cpu_s"]
    extra_wall = sealed["perf.wall_s"] - plain["perf.wall_s"]
    print("\n== order flow: threshold against transparent and the crypto floor ==")
    print(
        f"transparent wall {plain['perf.wall_s']:.2f} s   threshold wall "
        f"{sealed['perf.wall_s']:.2f} s   orders {orders:.0f}   DKGs {dkgs}"
    )
    print(
        f"crypto floor {floor_total:.2f} s ({per_order * 1e3:.2f} ms per order, "
        f"{floor['floor.dkg'] * 1e3:.2f} ms per DKG)   measured crypto {crypto:.2f} s   "
        f"ratio {crypto / floor_total:.2f} (target <= 1.5)"
    )
    print(
        f"threshold - transparent wall {extra_wall:.2f} s = {extra_wall / floor_total:.2f} x "
        f"the floor (target <= 1.5)   crypto per order {crypto / orders * 1e3:.2f} ms"
    )
    return {"crypto_ratio": crypto / floor_total, "wall_ratio": extra_wall / floor_total}
