"""spark-submit entry point: `spark-submit jobs/pipeline.py --conf C [--input PATH --mapping NAME] [--labels PATH]`."""

import sys

from seqrisk.cli import main

if __name__ == "__main__":
    sys.exit(main(["pipeline", *sys.argv[1:]]))
