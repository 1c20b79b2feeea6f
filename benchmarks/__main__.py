"""``make bench``: the fixed scenarios of the issues, against floors measured in the same run.

``python -m benchmarks [--quick] [--only NAME ...]``; names: core, crypto, orderflow, fl,
settlement, propagation, sweep, and ``flower`` where Flower's simulation engine is importable
(:mod:`benchmarks.peers.flower_fedavg`; veilcast does not depend on it). Figures are printed;
record them in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from datetime import date

from benchmarks import crypto_floor, fl, orderflow, propagation, settlement, sweep
from benchmarks.core import core_benchmark
from benchmarks.peers import flower_fedavg


def _crypto(quick: bool) -> None:
    print("\n== cryptography: ours against pycryptodome alone ==")
    crypto_floor.main()


def _fl(quick: bool) -> None:
    print("\n== federated learning: plain and secure rounds against their floors ==")
    fl.main(["5"] if quick else [])


def _flower(quick: bool) -> None:
    flower_fedavg.main(["5", "1"] if quick else [])


BENCHMARKS: dict[str, Callable[[bool], object]] = {
    "core": lambda quick: core_benchmark(quick=quick),
    "crypto": _crypto,
    "orderflow": lambda quick: orderflow.run_benchmark(quick=quick),
    "fl": _fl,
    "settlement": settlement.run,
    "propagation": propagation.run,
    "sweep": sweep.run,
}
if flower_fedavg.FLWR_AVAILABLE:  # an optional peer, run only where it is installed
    BENCHMARKS["flower"] = _flower


def main() -> None:
    """Run the chosen benchmarks (all by default) and print their figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller scenarios, for a smoke run")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=list(BENCHMARKS))
    args = parser.parse_args()
    print(
        f"veilcast benchmarks, {date.today()}, Python {platform.python_version()}, "
        f"{platform.machine()}, {platform.node()}"
    )
    for name in args.only:
        BENCHMARKS[name](args.quick)


if __name__ == "__main__":
    main()
