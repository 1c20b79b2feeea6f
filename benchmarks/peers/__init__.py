"""Other frameworks on the benchmarks' workloads, measured in the same run (optional).

Each peer needs a framework veilcast does not depend on; a peer whose framework is missing
says so and exits, and ``python -m benchmarks`` runs it only when the framework is importable.
"""
