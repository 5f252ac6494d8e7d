"""The native backend: delta-spark's own `format("delta")` (a cluster, Databricks, a laptop with the jars).

A table is a path (any URI Spark reaches) or a name in Spark's catalog (`catalog.schema.table`).
What Delta itself guarantees is used rather than re-implemented (docs/decisions.md, "Native Delta"):

- Reads are pinned: the version a run first sees of a table is the one every read of it uses.
- Writes are idempotent and conflict like the delta-rs commits: each carries the Delta transaction
  identifier `seqrisk` with the version the run read plus one (`txnAppId`/`txnVersion`). A
  seqrisk run that committed to the table since makes Delta skip this write, and one committing
  at the same moment makes it fail with a concurrent-modification error: either way the write is
  not committed and `ConcurrentWriteError` says so.
- A write's result (version, rows, files) is its own commit's, found by a write id in the commit's
  `userMetadata`, never "the latest commit".
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, cast

from delta import exceptions as delta_errors
from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from seqrisk import faults
from seqrisk.lake import uri_files
from seqrisk.lake.tables import (
    APP_ID,
    HISTORY_SCANNED,
    UNREAD,
    Backend,
    ConcurrentWriteError,
    DeltaTables,
    TableWrite,
    WriteResult,
    conflict_message,
    is_table_name,
    seqrisk_metadata,
)

DEFAULT_RETENTION_HOURS = 168  # delta-spark refuses a shorter VACUUM unless its check is off for that call
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
# VACUUM lists a table's folders in as many tasks as this setting says. Spark's default, 10,000, made
# each vacuum of a small table take minutes on 2 cores (delta-io/delta#220); capped at 4 tasks per core.
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
LISTING_TASKS_PER_CORE = 4
WRITE_ID = "write_id"  # in userMetadata: finds this write's own commit
CONFLICTS = (  # Delta's optimistic-concurrency failures (siblings in delta.exceptions, not subclasses of one)
    delta_errors.ConcurrentAppendException,
    delta_errors.ConcurrentDeleteDeleteException,
    delta_errors.ConcurrentDeleteReadException,
    delta_errors.ConcurrentTransactionException,
    delta_errors.ConcurrentWriteException,
    delta_errors.DeltaConcurrentModificationException,
    delta_errors.MetadataChangedException,
    delta_errors.ProtocolChangedException,
)


@dataclass
class NativeDeltaTables(DeltaTables):
    """Delta tables through delta-spark."""

    backend: ClassVar[Backend] = "native"

    def _exists(self, path: str) -> bool:
        if is_table_name(path):
            return self.spark.catalog.tableExists(path)
        return DeltaTable.isDeltaTable(self.spark, path)

    def version(self, path: str) -> int:
        return int(self._history(path, 1).collect()[0]["version"])

    def _read(self, path: str, where: Mapping[str, Sequence[str]] | None) -> DataFrame:
        pinned = self.read_version(path)
        if pinned is None:  # first read (or the table was absent when first looked at): pin the version there now
            pinned = self.version(path)
            self.remember_read(path, pinned)
        if is_table_name(path):
            df = self.spark.sql(f"SELECT * FROM {path} VERSION AS OF {pinned}")
        else:
            df = self.spark.read.format("delta").option("versionAsOf", pinned).load(path)
        for column, values in (where or {}).items():
            df = df.filter(F.col(column).cast("string").isin(list(values)))
        return df

    def commit_metadata(self, path: str) -> dict[str, str]:
        """Read from the commits themselves, so a lake written by either backend answers the same."""
        for info in self._commit_infos(path):
            found = seqrisk_metadata(info)
            if found is not None:
                return found
        return {}

    def vacuum(self, path: str, retain_hours: int) -> int:
        table = self._handle(path)
        location = table.detail().collect()[0]["location"]

        def files() -> int:  # every Parquet file in the table's location, live or not
            return self.spark.read.format("binaryFile").option("recursiveFileLookup", True).load(location).select("path").count()

        before = files()
        listing = min(
            int(cast(str, self.spark.conf.get(LISTING_PARALLELISM))),  # a SQL setting with a default: never None
            LISTING_TASKS_PER_CORE * self.spark.sparkContext.defaultParallelism,
        )
        settings = {LISTING_PARALLELISM: str(listing)}
        if retain_hours < DEFAULT_RETENTION_HOURS:
            settings[RETENTION_CHECK] = "false"
        with _settings(self.spark, settings):
            table.vacuum(float(retain_hours))
        return before - files()

    def publish(self, *writes: TableWrite, run_id: str) -> list[WriteResult]:
        """Each table in its own commit, in order; a table that conflicts stops the rest (`ConcurrentWriteError`)."""
        bases = self.base_versions(writes)
        results: list[WriteResult] = []
        for i, write in enumerate(writes):
            if i:
                faults.point("between_commits")
            base = bases[write.path]
            try:
                read = self.current_version(write.path) if base is UNREAD else base
                results.append(self._write(write, run_id, read))  # type: ignore[arg-type]
            except ConcurrentWriteError as err:
                raise ConcurrentWriteError(str(err), committed=results) from err.__cause__
        return results

    def _write(self, write: TableWrite, run_id: str, base: int | None) -> WriteResult:
        if write.mode == "append" and base is not None and write.df.isEmpty():
            return WriteResult(write.path, 0, 0, None)  # nothing to add: no commit (a transaction id would make an empty one)
        location = self._location(write, base) if is_table_name(write.path) else write.path
        write_id = uuid.uuid4().hex
        writer = (
            write.df.write.format("delta")
            .mode(write.mode)
            .option("maxRecordsPerFile", self.max_records_per_file)
            .option("userMetadata", json.dumps({"run_id": run_id, WRITE_ID: write_id, **write.metadata}))
            .option("txnAppId", APP_ID)
            .option("txnVersion", 0 if base is None else base + 1)
            .option("mergeSchema", "true")  # a newer contract's added columns join the table in this commit
        )
        if write.partition_by:
            writer = writer.partitionBy(*write.partition_by)
        if write.replace is not None:
            writer = writer.option("replaceWhere", replace_where(write.replace))
        faults.point("before_commit")
        parquet = {key: value for key, value in write.options.items() if key.startswith("parquet.")}
        try:
            with _settings(self.spark, parquet):  # Delta's writer takes Parquet's settings from the session, not from options
                writer.save(location)
        except CONFLICTS as err:
            raise ConcurrentWriteError(conflict_message(write.path, base, self.current_version(write.path))) from err
        return self._result(write.path, location, write_id, base)

    def _location(self, write: TableWrite, base: int | None) -> str:
        """Where a catalog table keeps its files; a missing table is created first (empty: its schema, its partitioning).

        Writes then go to the location like any path, with their transaction id and metadata (a
        `saveAsTable` that creates a table drops both).
        """
        if not self.spark.catalog.tableExists(write.path):
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {write.path.rsplit('.', 1)[0]}")
            try:
                write.df.limit(0).write.format("delta").partitionBy(*write.partition_by).saveAsTable(write.path)
            except AnalysisException as err:
                if not self.spark.catalog.tableExists(write.path):
                    raise
                raise ConcurrentWriteError(conflict_message(write.path, base, self.current_version(write.path))) from err
        return self._detail(write.path)["location"]

    def _result(self, path: str, location: str, write_id: str, base: int | None) -> WriteResult:
        """This write's own commit; none means Delta skipped it: another seqrisk run committed since `base`."""
        for row in self._history(location, HISTORY_SCANNED).select("version", "userMetadata", "operationMetrics").collect():
            if row["userMetadata"] and json.loads(row["userMetadata"]).get(WRITE_ID) == write_id:
                metrics = row["operationMetrics"] or {}
                rows, files = int(metrics.get("numOutputRows", 0)), int(metrics.get("numFiles", 0))
                return WriteResult(path, rows, files, int(row["version"]))
        raise ConcurrentWriteError(conflict_message(path, base, self.current_version(path)))

    def _history(self, path: str, limit: int) -> DataFrame:
        if is_table_name(path):  # DeltaTable.forName refuses three-part names in delta-spark 3.x
            return self.spark.sql(f"DESCRIBE HISTORY {path} LIMIT {limit}")
        return DeltaTable.forPath(self.spark, path).history(limit)

    def _handle(self, path: str) -> DeltaTable:
        """delta-spark's handle on a table by path, or by the location of a catalog name."""
        return DeltaTable.forPath(self.spark, self._detail(path)["location"] if is_table_name(path) else path)

    def _detail(self, name: str) -> Row:
        return self.spark.sql(f"DESCRIBE DETAIL {name}").collect()[0]

    def _commit_infos(self, path: str) -> Iterator[dict]:
        """The commitInfo of the latest commits, newest first: from the log's files for a path, else from the history."""
        if is_table_name(path):
            for row in self._history(path, HISTORY_SCANNED).select("userMetadata").collect():
                yield {"userMetadata": row["userMetadata"]}
            return
        latest = self.version(path)
        for version in range(latest, max(-1, latest - HISTORY_SCANNED), -1):
            log = uri_files.join(path, "_delta_log", f"{version:020d}.json")
            if not uri_files.exists(self.spark, log):
                break  # older commits were cleaned up (log retention)
            for line in uri_files.read_text(self.spark, log).splitlines():
                action = json.loads(line)
                if "commitInfo" in action:
                    yield action["commitInfo"]


@contextmanager
def _settings(spark: SparkSession, values: Mapping[str, str]) -> Iterator[None]:
    """Session settings for one call, restored afterwards."""
    before: dict[str, str | None] = {key: spark.conf.get(key, None) for key in values}
    for key, value in values.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def replace_where(replace: Mapping[str, Sequence[str]]) -> str:
    """delta-spark's `replaceWhere` predicate for the partitions a write replaces."""
    clauses = []
    for column, values in replace.items():
        quoted = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
        clauses.append(f"CAST(`{column}` AS STRING) IN ({quoted})" if values else "false")
    return " AND ".join(clauses)
