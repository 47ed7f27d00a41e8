"""Pure-Python MUNGE encode/decode next to libmunge's C calls, against a throw-away munged.

Run: python benchmarks/bench_munge.py [-n N]  (the same as ``pyslurmrpc bench --only munge``).
"""

import sys

from pyslurmrpc.bench import main

if __name__ == "__main__":
    sys.exit(main(["--only", "munge", *sys.argv[1:]]))
