"""spark-submit entry point: `spark-submit jobs/generate.py --conf C [--out DIR]`."""

import sys

from seqrisk.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
