"""The sessionize job: `events` into `sessions`, `windows` and the vocabulary (DESIGN.md, "Tables").

A full run learns the vocabulary from all events; `--from/--to` recomputes only sessions starting
in that range (reading `sessionize.lookback_days` back and a day ahead) with the saved vocabulary.
How sessions and windows are built, and the shuffles by name: `seqrisk.sessions.sessionize`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seqrisk.config import Config
from seqrisk.jobs.report import line, report
from seqrisk.jobs.start import Job, date_range, start_job
from seqrisk.lake.contracts import conform
from seqrisk.lake.lake import Lake
from seqrisk.lake.tables import TableWrite
from seqrisk.sessions import vocabulary_store
from seqrisk.sessions.sessionize import SessionRules, assign_sessions, build_sessions, cut_windows, learn_vocabulary
from seqrisk.sessions.vocabulary import Vocabulary

log = logging.getLogger("seqrisk")


@dataclass
class SessionizeSummary:
    run_id: str
    dates: str
    events: int = 0
    sessions: int = 0
    windows: int = 0
    vocabulary_size: int = 0
    vocabulary_learned: bool = False
    unchanged: bool = False
    events_per_session: tuple = ()  # median, p90, max
    duration_s: tuple = ()  # median, p90, max
    gap_median_s: float = 0.0  # median over sessions of their median gap
    event_cap: int = 0  # sessionize.max_events
    at_event_cap: int = 0  # sessions that reached it: a longer one went on as further pieces

    def report(self) -> str:
        vocab = "learned" if self.vocabulary_learned else "reused"
        shapes = []
        if self.events_per_session:
            shapes = [
                line("events per session", "median {:,} / p90 {:,} / max {:,}".format(*self.events_per_session)),
                line("duration (s)", "median {:,.0f} / p90 {:,.0f} / max {:,.0f}".format(*self.duration_s)),
                line("gap (s)", f"median {self.gap_median_s:,.1f}"),
            ]
        if self.at_event_cap:
            shapes.append(
                line("at the event cap", f"{self.at_event_cap:,} sessions of {self.event_cap:,} events")
                + ": a longer session goes on as further pieces, each scored apart (sessionize.max_events)"
            )
        return report(
            f"sessionize {self.run_id}: {self.dates}",
            line("events read", self.events),
            line("sessions", self.sessions),
            line("windows", self.windows),
            line("vocabulary", self.vocabulary_size) + f" tokens ({vocab})",
            *shapes,
            *(["  tables unchanged: the output equals what they already hold"] if self.unchanged else []),
        )


def run_sessionize(
    config: Config,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    spark: SparkSession | None = None,
) -> SessionizeSummary:
    """Build sessions and windows for all dates, or recompute only `date_from`..`date_to`."""
    dates = date_range(date_from, date_to, "a full run")
    job = start_job("sessionize", config, spark)
    tables, settings = job.lake.tables, config.sessionize
    rules = SessionRules.from_config(settings)
    ranged = date_from is not None
    summary = SessionizeSummary(job.run_id, f"{date_from} to {date_to}" if ranged else "all dates")

    all_events = job.lake.read("events")
    if date_from is not None and date_to is not None:
        first_read = date_from - timedelta(days=settings.lookback_days)
        last_read = date_to + timedelta(days=1)  # sessions starting on --to may run past midnight
        events = all_events.filter(F.col("event_date").between(F.lit(first_read), F.lit(last_read)))
    else:
        events = all_events
    vocabulary, summary.vocabulary_learned = _vocabulary(config, job.lake, all_events, full_run=not ranged)
    summary.vocabulary_size = vocabulary.size

    log.info("sessionize: finding sessions")
    sessions = build_sessions(assign_sessions(events, rules), rules, job.run_id)
    if ranged:
        sessions = sessions.filter(F.col("session_date").between(F.lit(date_from), F.lit(date_to)))
    sessions = sessions.persist()
    # Persisted too: the windows are read by the unchanged-check and again by the write.
    windows = cut_windows(sessions, vocabulary, config.windows.length, config.windows.stride, job.run_id).persist()
    try:
        _describe(sessions, rules.max_events, summary)
        sessions_path, windows_path = job.lake.path("sessions"), job.lake.path("windows")
        where = {"session_date": dates} if dates is not None else None
        if (
            tables.holds(sessions_path, sessions, where)
            and tables.holds(windows_path, windows, where)
            and tables.commit_metadata(windows_path).get(vocabulary_store.SHA_KEY) == vocabulary.sha256
        ):
            summary.windows = windows.count()
            summary.unchanged = True
        else:
            summary.windows = _publish(job, config, sessions, windows, vocabulary, dates)
        if summary.vocabulary_learned:  # after the tables; their commit records its SHA-256 (vocabulary_store)
            vocabulary_store.save(job.spark, job.lake.path("vocabulary"), vocabulary)
        return summary
    finally:
        windows.unpersist()
        sessions.unpersist()


def _publish(job: Job, config: Config, sessions: DataFrame, windows: DataFrame, vocabulary: Vocabulary, dates: list[str] | None) -> int:
    """Overwrite sessions and windows (only `dates` when given); returns the windows written."""
    sessions_path, windows_path = job.lake.path("sessions"), job.lake.path("windows")
    replace = {"session_date": dates} if dates is not None else None
    row_group = str(config.windows.row_group_mb * 1024 * 1024)
    log.info("sessionize: writing sessions and windows")
    _, windows_result = job.lake.tables.publish(
        TableWrite(
            sessions_path,
            conform(sessions, "sessions").sortWithinPartitions("user_id", "session_start"),
            "overwrite",
            ("session_date",),
            replace,
        ),
        TableWrite(
            windows_path,
            conform(windows, "windows"),
            "overwrite",
            ("session_date",),
            replace,
            options={"parquet.block.size": row_group},
            metadata={vocabulary_store.SHA_KEY: vocabulary.sha256},
        ),
        run_id=job.run_id,
    )
    return windows_result.rows_added


def _describe(sessions: DataFrame, event_cap: int, summary: SessionizeSummary) -> None:
    """Counts and distributions for the report (one small aggregate)."""
    stats = sessions.agg(
        F.count("*"),
        F.sum("n_events"),
        F.percentile_approx("n_events", [0.5, 0.9]),
        F.max("n_events"),
        F.percentile_approx("duration_s", [0.5, 0.9]),
        F.max("duration_s"),
        F.percentile_approx("gap_median_s", 0.5),
        F.sum((F.col("n_events") >= event_cap).cast("int")),
    ).first()
    assert stats is not None  # an aggregate has one row
    summary.sessions, summary.events = stats[0], int(stats[1] or 0)
    if summary.sessions:
        summary.events_per_session = (*stats[2], stats[3])
        summary.duration_s = (*stats[4], stats[5])
        summary.gap_median_s = stats[6] or 0.0
        summary.event_cap, summary.at_event_cap = event_cap, stats[7]


def _vocabulary(config: Config, lake: Lake, events: DataFrame, *, full_run: bool) -> tuple[Vocabulary, bool]:
    """A full run learns the vocabulary from all events; a ranged run reuses the one the windows were cut with."""
    if not full_run:
        if lake.exists("windows"):
            return vocabulary_store.windows_vocabulary(lake), False
        log.info("sessionize: no windows table yet; learning the vocabulary from all events")
    return learn_vocabulary(events, config.vocabulary, config.windows.gap_buckets_s), True
