"""Settlement under load (issue 4): BFT with 100 reporters, 50 markets and 10 % loss, and 50.

Each size is a network whose every node is a reporter (n nodes, degree 8, the sequencers too),
with 50 markets resolving at once and a few traders beforehand. Per size it prints: wall seconds,
markets settled, settlement messages sent (consensus bundles, hop by hop) and wall
milliseconds per settled market, the seconds spent inside signing and verifying
(``perf.crypto_cpu_s``, measured in the same run) and the mean latency from resolve to finality.

Tendermint consensus is all-to-all: every reporter's prevotes and precommits reach every node,
so messages grow as ``n²`` (here about ``2n`` bundles per round, each flooded to ``n`` nodes
times the degree). The benchmark runs ``n/2`` and ``n`` and shows the growth next to the 4× that
``n²`` predicts. Each signed message is verified once per run, however many nodes check it
(:class:`sim.settlement.rules.Keyring`), so the cryptography grows as ``n`` times the markets
(two votes and a share of a proposal each). ``quick`` runs 20 and 40 reporters on 10 markets.
"""

from __future__ import annotations

from typing import Any

from sim.api import run as run_scenario

SIZES = (50, 100)
QUICK_SIZES = (20, 40)
MARKETS, QUICK_MARKETS = 50, 10
LOSS = 0.1


def scenario(reporters: int, markets: int) -> dict[str, Any]:
    """The settlement-heavy scenario with ``reporters`` nodes, all of them reporters."""
    return {
        "name": "bench-settlement",
        "seed": 1,
        "duration_s": 2400.0,
        "network": {"nodes": reporters, "degree": 8, "loss": LOSS},
        "market": {"count": markets, "close_s": 1200.0, "resolve_s": 1800.0},
        "traders": {"informed": 10, "noise": 10, "orders_per_hour": 4.0},
        "settlement": {"protocol": "bft", "reporters": reporters, "round_timeout_s": 30.0},
    }


def measure(reporters: int, markets: int) -> dict[str, float]:
    """Run one size; its figures per settled market."""
    m = run_scenario(scenario(reporters, markets)).metrics()
    settled = round(m["settlement.finalized_fraction"] * markets)
    per = max(settled, 1)
    return {
        "reporters": float(reporters),
        "wall_s": m["perf.wall_s"],
        "settled": float(settled),
        "messages_per_market": m["settlement.messages"] / per,
        "ms_per_market": 1000.0 * m["perf.wall_s"] / per,
        "crypto_s": m["perf.crypto_cpu_s"],
        "crypto_ops": m["cost.crypto_ops"],
        "latency_s": m["settlement.latency_s"],
        "correct": m["settlement.correct_fraction"],
        "conservation_error": m["ledger.conservation_error"],
    }


def run(quick: bool) -> dict[str, float]:
    """Run both sizes; print and return the figures and the growth between them."""
    sizes, markets = (QUICK_SIZES, QUICK_MARKETS) if quick else (SIZES, MARKETS)
    print(
        f"\n== settlement: BFT, every node a reporter, degree 8, {markets} markets, "
        f"{LOSS:.0%} loss =="
    )
    print(
        f"{'reporters':>9} {'wall s':>7} {'settled':>8} {'msgs/market':>12} {'ms/market':>10} "
        f"{'crypto s':>9} {'crypto ops':>11} {'latency s':>10}"
    )
    rows = [measure(n, markets) for n in sizes]
    for r in rows:
        print(
            f"{r['reporters']:>9.0f} {r['wall_s']:>7.2f} {r['settled']:>4.0f}/{markets:<3d} "
            f"{r['messages_per_market']:>12,.0f} {r['ms_per_market']:>10.1f} "
            f"{r['crypto_s']:>9.2f} {r['crypto_ops']:>11,.0f} {r['latency_s']:>10.1f}"
        )
    small, large = rows
    predicted = (large["reporters"] / small["reporters"]) ** 2
    messages = large["messages_per_market"] / small["messages_per_market"]
    wall = large["wall_s"] / small["wall_s"]
    rest = (large["wall_s"] - large["crypto_s"]) / max(small["wall_s"] - small["crypto_s"], 1e-9)
    print(
        f"growth {small['reporters']:.0f} -> {large['reporters']:.0f} reporters: messages per "
        f"market x{messages:.2f} (n² predicts x{predicted:.2f}), wall x{wall:.2f}, "
        f"wall outside crypto x{rest:.2f}"
    )
    figures = {f"{key}_{r['reporters']:.0f}": value for r in rows for key, value in r.items()}
    return figures | {
        "messages_growth": messages,
        "predicted_growth": predicted,
        "wall_growth": wall,
    }


if __name__ == "__main__":
    run(quick=False)
