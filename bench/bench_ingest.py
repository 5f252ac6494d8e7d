"""Ingest against a plain Spark load of the same CSV files, and a rerun that finds every event a duplicate.

usage: python bench/bench_ingest.py [--events 1e6] [--work DIR] [--set KEY=VALUE ...]

For each size: generate that many events as CSV (not timed), then time, on the same files and the
same machine, one after the other:
  plain   Spark reads the CSV lines, splits them with the mapping's columns, parses the times, drops
          exact duplicate lines and writes Parquet partitioned by date: the least an ingest does
  ingest  `seqrisk ingest` into an empty lake: reasons and quarantine, event ids with their
          occurrence in the file, deduplication, the per-file reconciliation, Delta commits
  rerun   `seqrisk ingest` of the same files again: every event is a duplicate, found against the
          whole events table; no table but ingest_runs changes
and print the seconds and ingest's ratio to plain (above 1: ingest is slower).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from pyspark.sql import functions as F

from seqrisk.config import load_config
from seqrisk.ingest.validation import parse_time
from seqrisk.jobs.generate import run_generate
from seqrisk.jobs.ingest import run_ingest
from seqrisk.spark import get_spark

REPO = Path(__file__).resolve().parents[1]
EVENTS_PER_USER = 41  # what the generator's defaults give, as in bench_sessionize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, nargs="+", default=[1e6])
    parser.add_argument("--work", default="/tmp/seqrisk-bench/ingest")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, e.g. spark.shuffle_partitions=32")
    args = parser.parse_args()

    work = Path(args.work)
    base = load_config(REPO / "conf" / "local.yaml", args.set)
    spark = get_spark(base.spark)
    print(f"cores: {os.cpu_count()}, spark master: {spark.sparkContext.master}")
    print(f"{'events':>11} {'plain s':>8} {'ingest s':>9} {'ratio':>6} {'rerun s':>8}", flush=True)
    for target in (int(n) for n in args.events):
        shutil.rmtree(work, ignore_errors=True)
        config = load_config(
            REPO / "conf" / "local.yaml", [*args.set, f"tables.root={work / 'lake'}", f"generate.users={max(1, target // EVENTS_PER_USER)}"]
        )
        generated = run_generate(config, out=str(work / "raw"), spark=spark)
        raw = str(work / "raw" / "events")

        started = time.perf_counter()
        _plain_load(spark, config.mapping("generated").names or [], raw, str(work / "plain"))
        plain_s = time.perf_counter() - started

        started = time.perf_counter()
        first = run_ingest(config, input_path=raw, mapping_name="generated", spark=spark)
        ingest_s = time.perf_counter() - started

        started = time.perf_counter()
        again = run_ingest(config, input_path=raw, mapping_name="generated", spark=spark)
        rerun_s = time.perf_counter() - started
        assert first.written == generated.events and again.written == 0, (first, again)
        print(f"{generated.events:>11,} {plain_s:>8.1f} {ingest_s:>9.1f} {ingest_s / plain_s:>6.2f} {rerun_s:>8.1f}", flush=True)


def _plain_load(spark, names: list[str], raw: str, out: str) -> None:
    schema = ", ".join(f"{n} string" for n in names)
    rows = spark.read.text(raw).select(F.from_csv("value", schema).alias("r")).select("r.*")
    events = rows.withColumn("event_time", parse_time(F.col("event_time"), "iso")).withColumn("event_date", F.to_date("event_time"))
    events.dropDuplicates().repartition("event_date", "user_id").write.mode("overwrite").partitionBy("event_date").parquet(out)


if __name__ == "__main__":
    main()
