"""``make bench``: the fixed scenarios of the issues, against floors measured in the same run."""

from __future__ import annotations

import argparse
import platform
from datetime import date

from benchmarks.core import core_benchmark
from benchmarks.orderflow import run_benchmark as orderflow_benchmark


def main() -> None:
    """Run every benchmark and print its figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller scenarios, for a smoke run")
    args = parser.parse_args()
    print(f"veilcast benchmarks, {date.today()}, {platform.python_version()}, {platform.machine()}")
    core_benchmark(quick=args.quick)
    orderflow_benchmark(quick=args.quick)


if __name__ == "__main__":
    main()
