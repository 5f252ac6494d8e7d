"""spark-submit entry point: `spark-submit jobs/train.py --conf C [--dry-run]`."""

import sys

from seqrisk.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
