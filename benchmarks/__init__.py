"""veilcast's benchmarks: ``make bench`` (``python -m benchmarks``).

Figures are printed as ratios against floors measured in the same run (bare simpy, the crypto
primitives alone), because the machine is shared and absolute seconds vary by ±15%.
"""
