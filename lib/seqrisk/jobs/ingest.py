"""The ingest job: raw event files (CSV, JSON lines, Parquet) into the `events` and `quarantine` tables.

Every record read ends in exactly one place: `events`, dropped as a duplicate (of another record
in the input or of an event already in the table), or `quarantine` with its reason. Rerunning on
the same input changes no table.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Optional

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from seqrisk import faults
from seqrisk.config import Config
from seqrisk.events import Limits, events_of, quarantine_of, validate
from seqrisk.ingest import layout_for_write, list_input_files, new_events, read_raw
from seqrisk.jobs.report import line, report
from seqrisk.jobs.start import Job, start_job
from seqrisk.tables import ConcurrentWriteError, TableWrite, WriteResult

log = logging.getLogger("seqrisk")
COMMIT_ATTEMPTS = 3  # another ingest committing first makes this one read the tables again


@dataclass
class IngestSummary:
    run_id: str
    files: int
    records: int = 0
    written: int = 0
    duplicates: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    already_quarantined: int = 0  # rejected records a previous run had already put in quarantine

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def report(self) -> str:
        already = f"  ({self.already_quarantined:,} already in quarantine)" if self.already_quarantined else ""
        return report(
            f"ingest {self.run_id}: {self.files} file(s)",
            line("records read", self.records),
            line("events written", self.written),
            line("duplicates dropped", self.duplicates),
            line("quarantined", self.quarantined_total) + already,
            *(f"    {reason:<24}{count:>10,}" for reason, count in sorted(self.quarantined.items())),
        )


def run_ingest(
    config: Config, *, input_path: str, mapping_name: str, spark: Optional[SparkSession] = None
) -> IngestSummary:
    """Ingest the files at `input_path` (a file, a folder or a glob) with the named mapping."""
    mapping = config.mapping(mapping_name)
    job = start_job("ingest", config, spark)
    files = list_input_files(job.spark, input_path)
    log.info("ingest: %d file(s) with mapping %r", len(files), mapping_name)
    summary = IngestSummary(job.run_id, len(files))

    limits = Limits(
        min_time=config.ingest.min_event_time,
        max_time=job.started_at + timedelta(hours=config.ingest.max_future_hours),
        max_price=config.ingest.max_price,
    )
    validated = validate(read_raw(job.spark, files, mapping), mapping, limits)
    validated = validated.persist(StorageLevel.DISK_ONLY)  # two writes and the counts read it; on disk, any size fits
    try:
        counts = {row["reason"]: row["count"] for row in validated.groupBy("reason").count().collect()}
        summary.records = sum(counts.values())
        if summary.records == 0:
            log.warning("ingest: the input holds no records; no table was changed")
            return summary
        good = counts.pop(None, 0)
        summary.quarantined = counts
        faults.point("after_read")

        added = {job.lake.path("events"): 0, job.lake.path("quarantine"): 0}
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                results = _publish(job, validated)
            except ConcurrentWriteError as err:
                if attempt == COMMIT_ATTEMPTS:
                    raise
                log.warning("ingest: %s; reading the tables again (attempt %d of %d)", err, attempt + 1, COMMIT_ATTEMPTS)
                results = err.committed
            for result in results:
                added[result.path] += result.rows_added
            if len(results) == len(added):
                break
        summary.written = added[job.lake.path("events")]
        summary.duplicates = good - summary.written
        summary.already_quarantined = summary.quarantined_total - added[job.lake.path("quarantine")]
        return summary
    finally:
        validated.unpersist()


def _publish(job: Job, validated: DataFrame) -> list[WriteResult]:
    """Append the new events and the new quarantine records, each against the version it was checked against."""
    events_path, quarantine_path = job.lake.path("events"), job.lake.path("quarantine")
    events = new_events(job.lake.tables, events_path, events_of(validated, job.run_id))
    quarantine = quarantine_of(validated, job.run_id, job.started_at)
    if job.lake.exists("quarantine"):
        known = job.lake.read("quarantine").select("record_id")
        quarantine = quarantine.join(known, on="record_id", how="left_anti")

    log.info("ingest: writing events and quarantine")
    return job.lake.tables.publish(
        TableWrite(quarantine_path, quarantine.coalesce(1), "append"),
        TableWrite(events_path, layout_for_write(events), "append", partition_by=("event_date",)),
        run_id=job.run_id,
    )
