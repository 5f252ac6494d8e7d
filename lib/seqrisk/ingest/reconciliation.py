"""What an ingest run writes besides the events' rows: duplicates dropped, per-file reconciliation, the table layout."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seqrisk.lake.contracts import INGEST_RUNS
from seqrisk.lake.tables import DeltaTables

log = logging.getLogger("seqrisk")


def new_events(tables: DeltaTables, events_path: str, events: DataFrame, check_days: int | None = None) -> DataFrame:
    """Events with duplicates dropped: one row per `event_id`, and none already in the table.

    The table's ids are read whole (`check_days` None: exactly once, whatever the dates), or
    only for the input's dates and `check_days` days on either side (a bounded read at scale;
    a given id that comes back with a time further away is then written twice).

    Shuffle: by `event_id` (dedupe and anti-join share it). Of the copies of one id, the one
    with the earliest content (then source file) is kept, so the choice does not depend on
    partitioning or on the order files are listed in. Columns beyond the events schema (the
    `source_file`) come along.
    """
    order = F.struct(
        "event_time",
        "user_id",
        "event_type",
        "session_id",
        "item_id",
        "category",
        "price",
        F.to_json("attributes"),
        "source_file",
    )
    unique = events.groupBy("event_id").agg(F.min_by(F.struct(*events.columns), order).alias("event")).select("event.*")
    if not tables.exists(events_path):
        return unique
    where = None
    if check_days is not None:
        dates = {row["event_date"] for row in events.select("event_date").distinct().collect()}  # a row per day
        near = {d + timedelta(days=k) for d in dates for k in range(-check_days, check_days + 1)}
        where = {"event_date": sorted(d.isoformat() for d in near)}
    known = tables.read(events_path, where=where).select("event_id")
    return unique.join(known, on="event_id", how="left_anti")


@dataclass
class FileTally:
    """One source file's records: how many, how many good, how many quarantined for each reason."""

    records: int = 0
    good: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)


def tally_files(validated: DataFrame) -> dict[str, FileTally]:
    """Per source file, `validate`'s outcome counted (a row per file and reason reaches the driver)."""
    tallies: dict[str, FileTally] = {}
    for row in validated.groupBy("source_file", "reason").count().collect():
        tally = tallies.setdefault(row["source_file"], FileTally())
        tally.records += row["count"]
        if row["reason"] is None:
            tally.good += row["count"]
        else:
            tally.quarantined[row["reason"]] = row["count"]
    return tallies


def ingest_runs(
    spark: SparkSession,
    tallies: dict[str, FileTally],
    written: dict[str, int] | None,
    *,
    run_id: str,
    mapping: str,
    at: datetime,
    refused: str | None = None,
) -> DataFrame:
    """The run's rows of `ingest_runs`: one per source file; `written` is None for a refused run."""
    rows = []
    for source_file, tally in sorted(tallies.items()):
        events_written = 0 if written is None else written.get(source_file, 0)
        rows.append(
            (
                run_id,
                source_file,
                mapping,
                tally.records,
                events_written,
                0 if written is None else tally.good - events_written,
                tally.good if written is None else 0,
                sum(tally.quarantined.values()),
                tally.quarantined,
                "ok" if refused is None else f"refused: {refused}",
                at,
            )
        )
    return spark.createDataFrame(rows, INGEST_RUNS)


def layout_for_write(events: DataFrame) -> DataFrame:
    """Files per date, with each user's events together and in time order (what sessionize reads).

    Shuffle: by (`event_date`, `user_id`).
    """
    return events.repartition("event_date", "user_id").sortWithinPartitions("event_date", "user_id", "event_time")
