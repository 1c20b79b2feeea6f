"""Statistics over finished runs, shared by ``veilcast compare``/``recommend`` and the dashboard.

A small pure package: it reads no files and imports neither ``sim``, ``market`` nor
``dashboard`` (an import-linter contract keeps it so), which lets the dashboard, which knows
only the results folder, use the very same intervals as the command line.

- :mod:`resultkit.intervals`: Student-t critical values, mean ± 95% interval, paired and Welch
  differences (standard library only).
- :mod:`resultkit.tables`: the same over polars frames of metric rows, per setting and metric.
- :mod:`resultkit.choice`: limits on the upper end of an interval, Pareto fronts, and the
  recommendation built from them.
- :mod:`resultkit.settings`: the baseline setting and short names for settings.
"""
