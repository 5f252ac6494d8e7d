"""The whole pipeline on native Delta (delta-spark) against the delta-rs commits, side by side in one run.

usage: python bench/bench_backends.py [--events 1e6] [--work DIR] [--set KEY=VALUE ...]

Generates the events once (not timed), warms both paths up on a small slice of them (class loading,
Python workers: not timed), then for each backend, one after the other on the same raw files and
the same machine, times every job of the pipeline from an empty lake: ingest, sessionize, train,
score, evaluate (MLflow off), and prints the seconds per job and the ratio of native to delta-rs
(above 1: native is slower).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from seqrisk.config import load_config
from seqrisk.jobs.evaluate import run_evaluate
from seqrisk.jobs.generate import run_generate
from seqrisk.jobs.ingest import run_ingest
from seqrisk.jobs.score import run_score
from seqrisk.jobs.sessionize import run_sessionize
from seqrisk.jobs.train import run_train
from seqrisk.spark import get_spark

REPO = Path(__file__).resolve().parents[1]
EVENTS_PER_USER = 41  # what the generator's defaults give, as in bench_sessionize
BACKENDS = ("native", "delta-rs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, default=1e6)
    parser.add_argument("--work", default="/tmp/seqrisk-bench/backends")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, e.g. train.epochs=2")
    args = parser.parse_args()

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    users = max(1, int(args.events) // EVENTS_PER_USER)
    common = [*args.set, "mlflow.tracking_uri=null", f"generate.users={users}"]
    base = load_config(REPO / "conf" / "local.yaml", common)
    spark = get_spark(base.spark)
    generated = run_generate(base, out=str(work / "raw"), spark=spark)
    print(f"cores: {os.cpu_count()}, spark master: {spark.sparkContext.master}, {generated.events:,} events of {users:,} users")

    small = [*args.set, "mlflow.tracking_uri=null", "generate.users=300", "train.epochs=1", "train.steps_per_epoch=2"]
    run_generate(load_config(REPO / "conf" / "local.yaml", small), out=str(work / "warmup" / "raw"), spark=spark)
    for backend in BACKENDS:  # warm-up on a small data set, not timed
        _pipeline(spark, work / "warmup", backend, small)
    seconds = {backend: _pipeline(spark, work, backend, common) for backend in BACKENDS}
    print(f"{'job':<11}" + "".join(f"{b + ' s':>12}" for b in BACKENDS) + f"{'ratio':>8}")
    for job in seconds[BACKENDS[0]]:
        native, delta_rs = (seconds[b][job] for b in BACKENDS)
        print(f"{job:<11}{native:>12.1f}{delta_rs:>12.1f}{native / delta_rs:>8.2f}")


def _pipeline(spark, work: Path, backend: str, common: list[str]) -> dict[str, float]:
    """Seconds per job of one pipeline from an empty lake on `backend`, over the raw events under `work`."""
    lake, models = work / f"lake-{backend}", work / f"models-{backend}"
    config = load_config(REPO / "conf" / "local.yaml", [*common, f"tables.delta={backend}", f"tables.root={lake}", f"model.dir={models}"])
    steps = {
        "ingest": lambda: run_ingest(config, input_path=str(work / "raw" / "events"), mapping_name="generated", spark=spark),
        "sessionize": lambda: run_sessionize(config, spark=spark),
        "train": lambda: run_train(config, spark=spark),
        "score": lambda: run_score(config, spark=spark),
        "evaluate": lambda: run_evaluate(
            config, labels=str(work / "raw" / "labels.csv"), report_dir=str(work / f"report-{backend}"), spark=spark
        ),
    }
    seconds = {}
    for job, run in steps.items():
        started = time.perf_counter()
        run()
        seconds[job] = time.perf_counter() - started
    seconds["pipeline"] = sum(seconds.values())
    return seconds


if __name__ == "__main__":
    main()
