"""``python -m sim`` is the ``veilcast`` command."""

import sys

from sim.runs.cli import main

sys.exit(main())
