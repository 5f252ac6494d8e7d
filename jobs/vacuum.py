"""spark-submit entry point: `spark-submit jobs/vacuum.py --conf C [--retain-hours H]`."""

import sys

from seqrisk.cli import main

if __name__ == "__main__":
    sys.exit(main(["vacuum", *sys.argv[1:]]))
