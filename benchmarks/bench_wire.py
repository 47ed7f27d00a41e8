"""Codec figures: decode + encode per message (the same as ``pyslurmrpc bench --only codec``)."""

import sys

from pyslurmrpc.bench import main

if __name__ == "__main__":
    sys.exit(main(["--only", "codec", *sys.argv[1:]]))
