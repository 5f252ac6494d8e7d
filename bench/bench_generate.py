"""Events generated per second by `seqrisk generate` at several sizes (local Spark, this machine).

usage: python bench/bench_generate.py [--events 1e6 1e7] [--out /tmp/seqrisk-bench]
Prints one line per size: users, events, seconds (generation and writing), events per second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from seqrisk.config import load_config
from seqrisk.jobs.generate import run_generate
from seqrisk.spark import get_spark

REPO = Path(__file__).resolve().parents[1]
EVENTS_PER_USER = 41  # at the default 14 days (measured: 120,947 events for 3,000 users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, nargs="+", default=[1e6, 1e7])
    parser.add_argument("--out", default="/tmp/seqrisk-bench/generate")
    args = parser.parse_args()

    config = load_config(REPO / "conf" / "local.yaml")
    spark = get_spark(config.spark)
    print(f"cores: {os.cpu_count()}, spark master: {spark.sparkContext.master}")
    print(f"{'target':>10} {'users':>9} {'events':>11} {'seconds':>8} {'events/s':>10}")
    for target in args.events:
        users = int(target / EVENTS_PER_USER)
        sized = load_config(REPO / "conf" / "local.yaml", [f"generate.users={users}"])
        shutil.rmtree(args.out, ignore_errors=True)
        started = time.perf_counter()
        summary = run_generate(sized, out=args.out, spark=spark)
        seconds = time.perf_counter() - started
        print(f"{target:>10.0e} {users:>9,} {summary.events:>11,} {seconds:>8.1f} {summary.events / seconds:>10,.0f}", flush=True)
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
