"""spark-submit entry point: `spark-submit jobs/ingest.py --conf C --input PATH --mapping NAME`."""

import sys

from seqrisk.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
