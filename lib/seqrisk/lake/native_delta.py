"""The native backend: delta-spark's own `format("delta")`, where Delta's jars are on Spark's classpath.

A table is a path (any URI Spark reaches) or a name in Spark's catalog (`catalog.schema.table`).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Optional

from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seqrisk import faults
from seqrisk.lake.tables import (
    HISTORY_SCANNED,
    UNREAD,
    Backend,
    ConcurrentWriteError,
    DeltaTables,
    TableWrite,
    WriteResult,
    conflict_message,
    is_table_name,
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
        return int(self._handle(path).history(1).collect()[0]["version"])

    def _read(self, path: str, where: Optional[Mapping[str, Sequence[str]]]) -> DataFrame:
        self.remember_read(path, self.version(path))
        df = self.spark.read.table(path) if is_table_name(path) else self.spark.read.format("delta").load(path)
        for column, values in (where or {}).items():
            df = df.filter(F.col(column).cast("string").isin(list(values)))
        return df

    def commit_metadata(self, path: str) -> dict[str, str]:
        for row in self._handle(path).history(HISTORY_SCANNED).select("userMetadata").collect():
            found = json.loads(row["userMetadata"]) if row["userMetadata"] else {}
            if "run_id" in found:
                return found
        return {}

    def vacuum(self, path: str, retain_hours: int) -> int:
        def files() -> int:  # every Parquet file in the table's location, live or not
            location = self._handle(path).detail().collect()[0]["location"]
            return self.spark.read.format("binaryFile").option("recursiveFileLookup", True).load(location).select("path").count()

        before = files()
        self._handle(path).vacuum(float(retain_hours))
        return before - files()

    def publish(self, *writes: TableWrite, run_id: str) -> list[WriteResult]:
        faults.point("before_stage")
        bases = self.base_versions(writes)
        for w in writes:
            self._check_unchanged(w.path, bases[w.path])
        return [self._write(w, run_id) for w in writes]

    def _check_unchanged(self, path: str, base: Optional[int] | object) -> None:
        """delta-spark's writes are blind appends to its own conflict checker: compare versions first."""
        if base is UNREAD:
            return
        now = self.current_version(path)
        if now != base:
            raise ConcurrentWriteError(conflict_message(path, base, now))

    def _write(self, write: TableWrite, run_id: str) -> WriteResult:
        writer = (
            write.df.write.format("delta")
            .mode(write.mode)
            .option("maxRecordsPerFile", self.max_records_per_file)
            .option("userMetadata", json.dumps({"run_id": run_id, **write.metadata}))
            .options(**write.options)
        )
        if write.partition_by:
            writer = writer.partitionBy(*write.partition_by)
        if write.replace is not None:
            writer = writer.option("replaceWhere", replace_where(write.replace))
        if is_table_name(write.path):
            writer.saveAsTable(write.path)
        else:
            writer.save(write.path)
        last = self._handle(write.path).history(1).collect()[0]
        metrics = last["operationMetrics"] or {}
        return WriteResult(
            path=write.path,
            rows_added=int(metrics.get("numOutputRows", 0)),
            files_added=int(metrics.get("numFiles", 0)),
            version=int(last["version"]),
        )

    def _handle(self, path: str) -> DeltaTable:
        """delta-spark's handle on a table by path or by catalog name."""
        return DeltaTable.forName(self.spark, path) if is_table_name(path) else DeltaTable.forPath(self.spark, path)


def replace_where(replace: Mapping[str, Sequence[str]]) -> str:
    """delta-spark's `replaceWhere` predicate for the partitions a write replaces."""
    clauses = []
    for column, values in replace.items():
        quoted = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
        clauses.append(f"CAST(`{column}` AS STRING) IN ({quoted})" if values else "false")
    return " AND ".join(clauses)
