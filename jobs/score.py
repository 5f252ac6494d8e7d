"""spark-submit entry point: `spark-submit jobs/score.py --conf C [--from YYYY-MM-DD --to YYYY-MM-DD]`."""

import sys

from seqrisk.cli import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
