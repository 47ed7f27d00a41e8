"""``python -m pyslurmrpc``: the same program as ``pyslurmrpc``."""

import sys

from .cli import main

sys.exit(main())
