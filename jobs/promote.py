"""spark-submit entry point: `spark-submit jobs/promote.py --conf C --labels PATH [--alias champion] [--candidate REF] [--force]`."""

import sys

from seqrisk.cli import main

if __name__ == "__main__":
    sys.exit(main(["promote", *sys.argv[1:]]))
