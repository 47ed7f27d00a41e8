"""``python -m pyslurmrpc.decode``: the same as ``pyslurmrpc decode``."""

import sys

from .cli import main

sys.exit(main())
