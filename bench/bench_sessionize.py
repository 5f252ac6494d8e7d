"""Sessionization with Spark (seqrisk) against an equivalent DuckDB query, on the same events table.

usage: python bench/bench_sessionize.py [--events 1e6 1e7] [--work DIR] [--keep] [--steps spark duckdb job] [--cold]
                                       [--set KEY=VALUE ...]

For each size: generate and ingest that many events (not timed), then time, on the same Delta
`events` table and the same machine:
  spark   seqrisk's sessions step (assign_sessions + build_sessions), written as Parquet, timed after
          one untimed warm-up pass of the same plan (JVM JIT and code generation)
  duckdb  the same 30-minute gap sessions with ordered lists and features, COPY'd to Parquet
  job     the whole `seqrisk sessionize` job (sessions, vocabulary, windows, Delta commits)
and print the seconds and the Spark/DuckDB ratio (below 1: Spark is faster). DuckDB runs with its
advice for large aggregations (no insertion order, a spill folder, a memory limit); if it still runs
out of memory, that is printed as its result. An ingested lake is kept between runs (--keep).
At 100 M events, where DuckDB already ran out of memory at 10 M and JIT warm-up is noise, run
`--events 1e8 --steps spark job --cold`: `--steps` picks the timings, `--cold` skips the warm-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import duckdb
import duckdb_extension_delta

from seqrisk.config import load_config
from seqrisk.jobs.generate import run_generate
from seqrisk.jobs.ingest import run_ingest
from seqrisk.jobs.sessionize import run_sessionize
from seqrisk.lake.lake import Lake
from seqrisk.progress import enable_progress_logging, follow_stages
from seqrisk.sessions.sessionize import SessionRules, assign_sessions, build_sessions
from seqrisk.spark import get_spark

REPO = Path(__file__).resolve().parents[1]
EVENTS_PER_USER = 41
STEPS = ("spark", "duckdb", "job")

DUCKDB_SESSIONS = """
COPY (
  WITH e AS (
    SELECT user_id, event_time, event_id, event_type, item_id, category, price
    FROM delta_scan('{events}') WHERE session_id IS NULL
  ),
  g AS (
    SELECT *, epoch(event_time) - epoch(lag(event_time) OVER (PARTITION BY user_id ORDER BY event_time, event_id)) AS gap
    FROM e
  ),
  s AS (
    SELECT *, sum(CASE WHEN gap IS NULL OR gap > 1800 THEN 1 ELSE 0 END)
                OVER (PARTITION BY user_id ORDER BY event_time, event_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sn,
              CASE WHEN gap <= 1800 THEN gap END AS gap_in
    FROM g
  )
  SELECT user_id, sn, min(event_time) AS session_start, max(event_time) AS session_end, count(*) AS n_events,
         list(event_type ORDER BY event_time, event_id) AS event_types,
         list(gap_in ORDER BY event_time, event_id) AS gaps_s,
         list(event_time ORDER BY event_time, event_id) AS event_times,
         list(item_id ORDER BY event_time, event_id) AS item_ids,
         list(category ORDER BY event_time, event_id) AS categories,
         list(price ORDER BY event_time, event_id) AS prices,
         epoch(max(event_time)) - epoch(min(event_time)) AS duration_s,
         count(DISTINCT item_id) AS distinct_items, count(DISTINCT category) AS distinct_categories,
         count(DISTINCT event_type) AS distinct_event_types,
         sum(CASE WHEN event_type IN ('add_to_cart', 'cart') THEN 1 ELSE 0 END) AS cart_count,
         sum(CASE WHEN event_type IN ('purchase', 'buy') THEN 1 ELSE 0 END) AS purchase_count,
         coalesce(sum(CASE WHEN event_type IN ('purchase', 'buy') THEN price END), 0) AS purchase_value,
         avg(gap_in) AS gap_mean_s, stddev_samp(gap_in) AS gap_std_s, min(gap_in) AS gap_min_s,
         median(gap_in) AS gap_median_s, max(gap_in) AS gap_max_s,
         md5(list(event_type || coalesce(item_id, '') ORDER BY event_time, event_id)::VARCHAR) AS sequence_hash
  FROM s GROUP BY user_id, sn
) TO '{out}' (FORMAT parquet)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, nargs="+", default=[1e6, 1e7])
    parser.add_argument("--work", default="/tmp/seqrisk-bench/sessionize")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) each size's ingested lake")
    parser.add_argument("--duckdb-memory", default="16GB")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="what to time (default: all)")
    parser.add_argument("--cold", action="store_true", help="no untimed warm-up pass before the spark timing")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, e.g. spark.shuffle_partitions=32")
    args = parser.parse_args()
    spark_conf = load_config(REPO / "conf" / "local.yaml", args.set).spark
    spark = get_spark(spark_conf)
    enable_progress_logging()
    follow_stages(spark, "bench_sessionize", spark_conf.progress_seconds)
    extension = next(Path(duckdb_extension_delta.__file__).parent.glob("extensions/*/delta.duckdb_extension"))
    print(f"cores: {os.cpu_count()}, spark master: {spark.sparkContext.master}, duckdb {duckdb.__version__} threads: {os.cpu_count()}")
    print(f"{'events':>11} {'sessions':>9} {'spark s':>8} {'duckdb s':>9} {'ratio':>6} {'job s':>7}", flush=True)
    for target in args.events:
        work = Path(args.work) / f"{int(target)}"
        config = load_config(
            REPO / "conf" / "local.yaml", [*args.set, f"tables.root={work / 'lake'}", f"generate.users={int(target / EVENTS_PER_USER)}"]
        )
        lake = Lake.open(spark, config.tables)
        if not lake.exists("events"):
            shutil.rmtree(work, ignore_errors=True)
            run_generate(config, out=str(work / "raw"), spark=spark)
            run_ingest(config, input_path=str(work / "raw" / "events"), mapping_name="generated", spark=spark)
            shutil.rmtree(work / "raw")
        events = lake.read("events").count()

        spark_s = duck_s = job_s = None
        if "spark" in args.steps:
            rules = SessionRules.from_config(config.sessionize)
            sessions = build_sessions(assign_sessions(lake.read("events"), rules), rules, "bench")
            if not args.cold:
                sessions.write.format("noop").mode("overwrite").save()  # warm-up: JIT and code generation, untimed
            started = time.perf_counter()
            sessions.write.mode("overwrite").parquet(str(work / "spark_sessions"))
            spark_s = time.perf_counter() - started
            n_sessions = spark.read.parquet(str(work / "spark_sessions")).count()
        n_text = f"{n_sessions:>9,}" if spark_s is not None else f"{'-':>9}"
        print(f"{events:>11,} {n_text} {_seconds(spark_s)}", end=" ", flush=True)

        if "duckdb" in args.steps:
            duck_s = _duckdb_seconds(extension, work, args.duckdb_memory)
        ratio = f"{spark_s / duck_s:>6.2f}" if isinstance(spark_s, float) and isinstance(duck_s, float) else f"{'-':>6}"
        print(f"{_seconds(duck_s, 9)} {ratio}", end=" ", flush=True)

        if "job" in args.steps:
            started = time.perf_counter()
            run_sessionize(config, spark=spark)
            job_s = time.perf_counter() - started
        print(_seconds(job_s, 7), flush=True)
        for leftover in (
            "spark_sessions",
            "duckdb_sessions.parquet",
            "duckdb_tmp",
            "lake/sessions",
            "lake/windows",
            "lake/vocabulary.json",
        ):
            target = work / leftover
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _duckdb_seconds(extension: Path, work: Path, memory: str) -> float | str:
    """Seconds for the DuckDB query, or "OOM" when it runs out of `memory`."""
    con = duckdb.connect()
    for setting in (
        "SET TimeZone = 'UTC'",
        "SET preserve_insertion_order = false",
        f"SET temp_directory = '{work / 'duckdb_tmp'}'",
        f"SET memory_limit = '{memory}'",
    ):
        con.execute(setting)
    con.execute(f"LOAD '{extension}'")
    started = time.perf_counter()
    try:
        con.execute(DUCKDB_SESSIONS.format(events=work / "lake" / "events", out=work / "duckdb_sessions.parquet"))
        return time.perf_counter() - started
    except duckdb.OutOfMemoryException:
        return "OOM"
    finally:
        con.close()


def _seconds(value: float | str | None, width: int = 8) -> str:
    return f"{value:>{width}.1f}" if isinstance(value, float) else f"{value or '-':>{width}}"


if __name__ == "__main__":
    main()
