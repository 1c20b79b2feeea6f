"""veilcast's simulation: scenarios in, results out.

For notebooks::

    import sim
    result = sim.run("scenarios/quickstart.toml")        # or a dict, or a Scenario
    result.tables["prices"]                              # polars frames
    result.metrics()["market.brier"]

``run`` writes nothing unless ``out`` is given; the CLI (``veilcast``) is a thin layer over it.
"""

from sim.api import run, run_all

__all__ = ["run", "run_all"]
