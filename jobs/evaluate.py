"""spark-submit entry point: `spark-submit jobs/evaluate.py --conf C --labels PATH [--report DIR] [--model REF]`."""

import sys

from seqrisk.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
