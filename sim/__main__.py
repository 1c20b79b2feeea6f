"""``python -m sim`` is the ``veilcast`` command."""

import sys

from sim.cli import main

sys.exit(main())
