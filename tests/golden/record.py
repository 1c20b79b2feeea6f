"""Rewrite ``digests.json`` from the current code: ``python -m tests.golden.record``.

Only when a change is meant to alter results; the commit says why.
"""

from __future__ import annotations

import json
from pathlib import Path

from sim.api import run
from tests.golden.worlds import VARIANTS, outputs, scenario

HERE = Path(__file__).parent


def main() -> None:
    """Run every golden world and write the digests."""
    found = {name: outputs(run(scenario(name))) for name in VARIANTS}
    (HERE / "digests.json").write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(found)} golden worlds")


if __name__ == "__main__":
    main()
