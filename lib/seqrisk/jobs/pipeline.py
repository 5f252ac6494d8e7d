"""The pipeline job: generate (or take raw input), ingest, sessionize, train, score, evaluate, in order.

With MLflow on and labels at hand, `promote` runs after `train`, and `score` uses the champion
(`models:/NAME@champion`): a retrained model that is worse does not score. All steps share one Spark session. Without `--input` it runs on the embedded synthetic data (what
`make demo` does); with `--input` and `--mapping` it ingests your files, and evaluates only when
`--labels` is given. It ends with where everything is, the headline metrics and the riskiest users.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from seqrisk.config import Config
from seqrisk.errors import SeqriskError
from seqrisk.jobs.evaluate import run_evaluate
from seqrisk.jobs.generate import run_generate
from seqrisk.jobs.ingest import run_ingest
from seqrisk.jobs.promote import run_promote
from seqrisk.jobs.report import line, report
from seqrisk.jobs.score import run_score
from seqrisk.jobs.sessionize import run_sessionize
from seqrisk.jobs.train import run_train
from seqrisk.lake import uri_files
from seqrisk.lake.lake import Lake
from seqrisk.registry import tracking
from seqrisk.spark import get_spark

TOP_USERS = 10
Summary = TypeVar("Summary", bound=Any)  # a job's summary (each has `report()`)


@dataclass
class PipelineSummary:
    seconds: dict[str, float] = field(default_factory=dict)
    tables_root: str = ""
    delta_backend: str = ""
    model_dir: str = ""
    promotion: str | None = None
    report_dir: str | None = None
    headline: str | None = None
    riskiest: list[dict] = field(default_factory=list)

    def report(self) -> str:
        where = [
            line("tables", f"{self.tables_root} (events, quarantine, sessions, windows, session_risk, user_risk)"),
            line("Delta through", self.delta_backend),
            line("trained model", self.model_dir),
            *([line("promotion", self.promotion)] if self.promotion else []),
            *([line("report", f"{self.report_dir}/report.md (metrics.json, plots)")] if self.report_dir else []),
        ]
        users = [
            f"  {u['user_id']:<14}{u['n_sessions']:>9}{u['high_risk_sessions']:>6}{u['max_risk_pct']:>9.2f}  {u['action']:<13}{', '.join(u['top_reasons']) or '-'}"
            for u in self.riskiest
        ]
        return report(
            "pipeline: done in " + ", ".join(f"{k} {v:.0f}s" for k, v in self.seconds.items()),
            *where,
            *(["", self.headline] if self.headline else []),
            "",
            f"The {len(self.riskiest)} riskiest users:",
            f"  {'user':<14}{'sessions':>9}{'high':>6}{'max pct':>9}  {'action':<13}reasons",
            *users,
        )


def run_pipeline(
    config: Config,
    *,
    input_path: str | None = None,
    mapping: str | None = None,
    labels: str | None = None,
    spark: SparkSession | None = None,
) -> PipelineSummary:

    if (input_path is None) != (mapping is None):
        raise SeqriskError("give --input and --mapping together, or neither (the synthetic data)")
    spark = spark or get_spark(config.spark)
    summary = PipelineSummary(tables_root=config.tables.root)

    def step(name: str, run: Callable[[], Summary], echo: bool = True) -> Summary:
        started = time.perf_counter()
        result = run()
        summary.seconds[name] = time.perf_counter() - started
        if echo:  # each step's report as soon as it is done
            print(result.report() + "\n", flush=True)
        return result

    if input_path is None or mapping is None:  # neither (checked above): the synthetic data
        generated = step("generate", lambda: run_generate(config, spark=spark))
        input_path, mapping = uri_files.join(generated.out, "events"), "generated"
        labels = labels or uri_files.join(generated.out, "labels.csv")
    step("ingest", lambda: run_ingest(config, input_path=input_path, mapping_name=mapping, spark=spark))
    step("sessionize", lambda: run_sessionize(config, spark=spark))
    trained = step("train", lambda: run_train(config, spark=spark))
    summary.model_dir = trained.model_dir
    if labels and trained.registered:
        promoted = step("promote", lambda: run_promote(config, labels=labels, spark=spark))
        summary.promotion = f"{promoted.verdict}: {promoted.reason}"
        champion = config.score.model_copy(update={"model": f"{tracking.REGISTRY_SCHEME}{trained.registered.name}@{promoted.alias}"})
        config = config.model_copy(update={"score": champion})
    scored = step("score", lambda: run_score(config, spark=spark))
    if labels:
        evaluated = step("evaluate", lambda: run_evaluate(config, labels=labels, spark=spark), echo=False)  # the summary shows it
        summary.report_dir = evaluated.report_dir
        summary.headline = evaluated.report()
    lake = Lake.open(spark, config.tables)
    summary.delta_backend = lake.tables.backend
    summary.riskiest = riskiest_users(lake, scored.as_of_date)
    return summary


def riskiest_users(lake: Lake, as_of) -> list[dict]:
    """The top users of the run's user_risk partition (a `limit`: bounded)."""
    users = lake.read("user_risk", where={"as_of_date": [as_of.isoformat()]})
    top = users.orderBy(F.desc("max_risk_pct"), F.desc("high_risk_sessions"), "user_id").limit(TOP_USERS)
    return [
        r.asDict() for r in top.select("user_id", "n_sessions", "high_risk_sessions", "max_risk_pct", "action", "top_reasons").collect()
    ]
