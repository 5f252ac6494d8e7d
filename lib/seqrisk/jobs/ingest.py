"""The ingest job: raw event files (CSV, JSON lines, Parquet) into the `events` and `quarantine` tables.

Every record read ends in exactly one place: `events`, dropped as a duplicate (of another record
in the input or of an event already in the table), or `quarantine` with its reason. Rerunning on
the same input changes no table but `ingest_runs`, which keeps every run's reconciliation per
source file (records = events written + duplicates + refused + quarantined).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from seqrisk.config import Config
from seqrisk.errors import SeqriskError
from seqrisk.ingest.readers import list_input_files, read_raw
from seqrisk.ingest.reconciliation import FileTally, ingest_runs, layout_for_write, new_events, tally_files
from seqrisk.ingest.validation import Limits, events_of, quarantine_of, validate
from seqrisk.jobs.report import line, report
from seqrisk.jobs.start import Job, start_job
from seqrisk.lake.contracts import conform
from seqrisk.lake.tables import ConcurrentWriteError, TableWrite, WriteResult

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


def run_ingest(config: Config, *, input_path: str, mapping_name: str, spark: SparkSession | None = None) -> IngestSummary:
    """Ingest the files at `input_path` (a file, a folder or a glob) with the named mapping."""
    mapping = config.mapping(mapping_name)
    job = start_job("ingest", config, spark)
    files = list_input_files(job.spark, input_path, config.ingest.success_marker)
    log.info("ingest: %d file(s) with mapping %r", len(files), mapping_name)
    summary = IngestSummary(job.run_id, len(files))

    limits = Limits(
        min_time=config.ingest.min_event_time,
        max_future=timedelta(hours=config.ingest.max_future_hours),
        max_price=config.ingest.max_price,
        max_field_chars=config.ingest.max_field_chars,
    )
    validated = validate(read_raw(job.spark, files, mapping), mapping, limits, mapping.id_namespace or mapping_name)
    validated = validated.persist(StorageLevel.DISK_ONLY)  # the writes and the counts read it; on disk, any size fits
    try:
        tallies = tally_files(validated)
        summary.records = sum(t.records for t in tallies.values())
        if summary.records == 0:
            log.warning("ingest: the input holds no records; no table was changed")
            return summary
        for tally in tallies.values():
            for reason, count in tally.quarantined.items():
                summary.quarantined[reason] = summary.quarantined.get(reason, 0) + count

        share, limit = summary.quarantined_total / summary.records, config.ingest.max_quarantine_share
        if limit is not None and share > limit:
            _refuse(job, validated, tallies, mapping_name, f"quarantined share {share:.2%} above ingest.max_quarantine_share {limit:.2%}")
            raise SeqriskError(
                f"ingest refused the input: {summary.quarantined_total:,} of {summary.records:,} records ({share:.2%}) "
                f"were quarantined, above ingest.max_quarantine_share ({limit:.2%}). The quarantine and "
                f"ingest_runs tables have this run's rows (run_id {job.run_id}); no event was written. "
                "Fix the input or the mapping and rerun"
            )

        added = dict.fromkeys(PUBLISHED, 0)
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                results = _publish(job, validated, tallies, mapping_name)
            except ConcurrentWriteError as err:
                if attempt == COMMIT_ATTEMPTS:
                    raise
                log.warning("ingest: %s; reading the tables again (attempt %d of %d)", err, attempt + 1, COMMIT_ATTEMPTS)
                results = err.committed
            for name, result in zip(PUBLISHED, results):
                added[name] += result.rows_added
            if len(results) == len(PUBLISHED):
                break
        summary.written = added["events"]
        summary.duplicates = summary.records - summary.quarantined_total - summary.written
        summary.already_quarantined = summary.quarantined_total - added["quarantine"]
        return summary
    finally:
        validated.unpersist()


PUBLISHED = ("quarantine", "events", "ingest_runs")  # in commit order


def _publish(job: Job, validated: DataFrame, tallies: dict[str, FileTally], mapping_name: str) -> list[WriteResult]:
    """Append the new events, the new quarantine records and the run's reconciliation, in `PUBLISHED` order."""
    events = new_events(job.lake.tables, job.lake.path("events"), events_of(validated, job.run_id), job.config.ingest.duplicate_check_days)
    events = events.persist(StorageLevel.DISK_ONLY)  # counted per file, then written
    try:
        written = {r["source_file"]: r["count"] for r in events.groupBy("source_file").count().collect()}  # a row per file
        runs = ingest_runs(job.spark, tallies, written, run_id=job.run_id, mapping=mapping_name, at=job.started_at)
        log.info("ingest: writing events, quarantine and ingest_runs")
        return job.lake.tables.publish(
            TableWrite(job.lake.path("quarantine"), conform(_new_quarantine(job, validated), "quarantine").coalesce(1), "append"),
            TableWrite(
                job.lake.path("events"),
                layout_for_write(conform(events.drop("source_file"), "events")),
                "append",
                partition_by=("event_date",),
            ),
            TableWrite(job.lake.path("ingest_runs"), conform(runs, "ingest_runs").coalesce(1), "append"),
            run_id=job.run_id,
        )
    finally:
        events.unpersist()


def _refuse(job: Job, validated: DataFrame, tallies: dict[str, FileTally], mapping_name: str, why: str) -> None:
    """Keep a refused run's quarantine and reconciliation; write no event."""
    runs = ingest_runs(job.spark, tallies, None, run_id=job.run_id, mapping=mapping_name, at=job.started_at, refused=why)
    job.lake.tables.publish(
        TableWrite(job.lake.path("quarantine"), conform(_new_quarantine(job, validated), "quarantine").coalesce(1), "append"),
        TableWrite(job.lake.path("ingest_runs"), conform(runs, "ingest_runs").coalesce(1), "append"),
        run_id=job.run_id,
    )


def _new_quarantine(job: Job, validated: DataFrame) -> DataFrame:
    """This run's rejected records that no earlier run has quarantined (the same file and record)."""
    quarantine = quarantine_of(validated, job.run_id, job.started_at)
    if job.lake.exists("quarantine"):
        quarantine = quarantine.join(job.lake.read("quarantine").select("record_id"), on="record_id", how="left_anti")
    return quarantine
