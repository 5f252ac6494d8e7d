"""The delta-rs backend: Spark writes the Parquet files, one `deltalake` commit per table publishes them.

For a machine without Delta's jars (`tables.delta: delta-rs`). Spark writes each table's files in
parallel into `<root>/_staging/<run_id>/<table>/`; the driver moves them into the table folder and
commits them with the `deltalake` package against the version the run read (a Delta transaction
identifier, app id `seqrisk`, makes two such commits conflict). Reads list the table's current
files from the Delta log. This backend works on local paths (`file://` or plain).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.transaction import AddAction, CommitProperties, RemoveAction, Transaction, create_table_with_add_actions
from pyspark.sql import DataFrame
from pyspark.sql.types import StructType

from seqrisk import faults
from seqrisk.errors import SeqriskError
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
    seqrisk_metadata,
)

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
STAGING = "_staging"  # under the lake's root: <run_id>/<table>/, Spark's Parquet files before they move
BLIND_COMMIT_ATTEMPTS = 5  # a write to a table its run never read commits against the newest version, again if it loses a race


@dataclass(frozen=True)
class _StagedFile:
    relative_path: str
    size: int
    rows: int


@dataclass
class DeltaRsTables(DeltaTables):
    """Delta tables through Spark's Parquet writer and `deltalake` commits."""

    backend: ClassVar[Backend] = "delta-rs"

    def _exists(self, path: str) -> bool:
        local = _local(path)
        return os.path.isdir(local) and DeltaTable.is_deltatable(local)

    def version(self, path: str) -> int:
        return DeltaTable(_local(path)).version()

    def commit_metadata(self, path: str) -> dict[str, str]:
        for commit in DeltaTable(_local(path)).history(HISTORY_SCANNED):
            found = seqrisk_metadata(commit)
            if found is not None:
                return found
        return {}

    def vacuum(self, path: str, retain_hours: int) -> int:
        """Also deletes files no commit ever listed (moved in by a run killed before its commit)
        once they are older than `retain_hours`, so a run still in progress keeps its files."""
        removed = DeltaTable(_local(path)).vacuum(retention_hours=retain_hours, dry_run=False, enforce_retention_duration=False, full=True)
        return len(removed)

    def _read(self, path: str, where: Mapping[str, Sequence[str]] | None) -> DataFrame:
        table = DeltaTable(_local(path))
        self.remember_read(path, table.version())
        schema = StructType.fromJson(json.loads(table.schema().to_json()))
        filters = [(column, "in", [str(v) for v in values]) for column, values in (where or {}).items()]
        files = [_local(uri) for uri in table.file_uris(file_pruning_predicate=filters or None)]
        if not files:
            return self.spark.createDataFrame([], schema)
        # basePath lets Spark take the partition columns' values from the Hive-style folders.
        df = self.spark.read.schema(schema).option("basePath", _local(path)).parquet(*files)
        return df.select(*schema.fieldNames())

    def publish(self, *writes: TableWrite, run_id: str) -> list[WriteResult]:
        """All Parquet files are written first and the commits come last, one after another, so a
        job that fails while Spark is writing leaves every table as it was. A table another run
        committed to since this run read it is not written: its files and those of the tables
        after it are deleted, and `ConcurrentWriteError` says which table.
        """
        bases = self.base_versions(writes)
        staged = [self._stage(w, run_id) for w in writes]
        faults.point("before_commit")
        results: list[WriteResult] = []
        for i, (write, files) in enumerate(zip(writes, staged)):
            if i:
                faults.point("between_commits")
            try:
                results.append(self._commit(write, files, run_id, bases[write.path]))
            except ConcurrentWriteError as err:
                for later, later_files in zip(writes[i:], staged[i:]):
                    _delete_uncommitted(later.path, later_files)
                raise ConcurrentWriteError(str(err), committed=results) from err.__cause__
        return results

    def _stage(self, write: TableWrite, run_id: str) -> list[_StagedFile]:
        """Spark writes the Parquet files; they are moved into the table folder, not yet committed."""
        table_dir = Path(_local(write.path))
        staging = table_dir.parent / STAGING / run_id / table_dir.name
        if staging.exists():
            shutil.rmtree(staging)
        writer = write.df.write.mode("overwrite").option("maxRecordsPerFile", self.max_records_per_file).options(**write.options)
        if write.partition_by:
            writer = writer.partitionBy(*write.partition_by)
        writer.parquet(str(staging))
        faults.point("staged")

        staged = []
        for source in sorted(staging.rglob("*.parquet")):
            relative = source.relative_to(staging)
            rows = pq.read_metadata(source).num_rows
            if rows == 0:  # Spark writes one empty file for an empty DataFrame
                continue
            target = table_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            staged.append(_StagedFile(relative.as_posix(), target.stat().st_size, rows))
        shutil.rmtree(staging.parent, ignore_errors=True)  # `_staging/` stays: another run may be writing there now
        return staged

    def _commit(self, write: TableWrite, files: list[_StagedFile], run_id: str, base: int | None | object) -> WriteResult:
        """Commit against `base`; a blind write (a table this run never read) against the version there now."""
        if base is not UNREAD:
            return self._commit_against(write, files, run_id, base)  # type: ignore[arg-type]
        for _ in range(BLIND_COMMIT_ATTEMPTS - 1):
            try:
                return self._commit_against(write, files, run_id, self.current_version(write.path))
            except ConcurrentWriteError:
                pass  # another run committed in between: again, against the newer version
        return self._commit_against(write, files, run_id, self.current_version(write.path))

    def _commit_against(self, write: TableWrite, files: list[_StagedFile], run_id: str, base: int | None) -> WriteResult:
        path = _local(write.path)
        now_ms = int(time.time() * 1000)
        actions = [
            AddAction(
                path=f.relative_path,  # delta-rs percent-encodes it in the log
                size=f.size,
                partition_values=_partition_values(f.relative_path, write.partition_by),
                modification_time=now_ms,
                data_change=True,
                stats=json.dumps({"numRecords": f.rows}),
            )
            for f in files
        ]
        schema = Schema.from_json(write.df.schema.json())
        partition_by = list(write.partition_by) or None
        rows = sum(f.rows for f in files)
        properties = CommitProperties(
            custom_metadata={"userMetadata": json.dumps({"run_id": run_id, **write.metadata})},  # where delta-spark keeps it
            app_transactions=[Transaction(app_id=APP_ID, version=0 if base is None else base + 1)],
        )
        if base is None:
            if DeltaTable.is_deltatable(path):
                raise ConcurrentWriteError(conflict_message(write.path, None, DeltaTable(path).version()))
            try:
                create_table_with_add_actions(path, schema, actions, mode="error", partition_by=partition_by, commit_properties=properties)
            except DeltaError as err:
                if not DeltaTable.is_deltatable(path):
                    raise
                raise ConcurrentWriteError(conflict_message(write.path, None, DeltaTable(path).version())) from err
            return WriteResult(write.path, rows, len(files), DeltaTable(path).version())

        table = DeltaTable(path, version=base)  # delta-rs checks the commits since this version
        if write.mode == "append" and not actions:
            return WriteResult(write.path, 0, 0, None)  # nothing to add: the table stays as it is
        filters = None
        if write.replace is not None:
            filters = [(column, "in", [str(v) for v in values]) for column, values in write.replace.items()]
            if not actions and not table.file_uris(file_pruning_predicate=filters):
                return WriteResult(write.path, 0, 0, None)
        try:
            changes: list[AddAction | RemoveAction] = list(actions)
            table.create_write_transaction(
                changes,
                mode=write.mode,
                schema=schema,
                partition_by=partition_by,
                partition_filters=filters,
                commit_properties=properties,
            )
        except CommitFailedError as err:
            raise ConcurrentWriteError(conflict_message(write.path, base, DeltaTable(path).version())) from err
        return WriteResult(write.path, rows, len(files), DeltaTable(path).version())

    def vacuum_uncommitted(self, path: str, retain_hours: int) -> int:
        """Delete a table folder's files once `retain_hours` old, when its first commit never came.

        Such a folder (Parquet files, no `_delta_log`) is what a run killed before creating the
        table leaves; no reader sees it. Returns how many files went.
        """
        folder = Path(_local(path))
        if not folder.is_dir() or (folder / "_delta_log").exists():
            return 0
        cutoff = time.time() - retain_hours * 3600
        old = [f for f in folder.rglob("*") if f.is_file() and f.stat().st_mtime < cutoff]
        for f in old:
            f.unlink()
        for sub in sorted((d for d in folder.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
            if not any(sub.iterdir()):
                sub.rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()
        return len(old)

    def vacuum_staging(self, root: str, retain_hours: int) -> int:
        """Delete what killed runs left in `<root>/_staging/`, once `retain_hours` old.

        A run's folder is as old as its newest file, so a run still writing keeps its folder.
        """
        staging = Path(_local(root)) / STAGING
        if not staging.is_dir():
            return 0
        cutoff = time.time() - retain_hours * 3600
        removed = 0
        for run in sorted(staging.iterdir()):
            try:
                newest = max([run.stat().st_mtime, *(f.stat().st_mtime for f in run.rglob("*"))])
            except FileNotFoundError:
                continue  # the run finished meanwhile and removed its folder
            if newest < cutoff:
                shutil.rmtree(run)
                removed += 1
        with contextlib.suppress(OSError):  # only when empty: a run that starts now keeps it
            staging.rmdir()
        return removed


def _local(path: str) -> str:
    """A local filesystem path for the delta-rs backend (which this project uses offline only)."""
    parsed = urllib.parse.urlparse(path)
    if parsed.scheme == "file":
        return urllib.parse.unquote(parsed.path)
    if parsed.scheme == "":
        return os.path.abspath(path)
    raise SeqriskError(f"{path}: the delta-rs table backend works on local paths only; on a cluster use delta-spark (tables.delta=native)")


def _partition_values(relative_path: str, partition_by: Sequence[str]) -> dict[str, str | None]:
    """Partition values from Spark's Hive-style folders, e.g. ``event_date=2024-05-01/part-0.parquet``."""
    values: dict[str, str | None] = {}
    for part in relative_path.split("/")[:-1]:
        key, _, value = part.partition("=")
        value = urllib.parse.unquote(value)
        values[urllib.parse.unquote(key)] = None if value == HIVE_NULL else value
    missing = set(partition_by) - set(values)
    if missing:
        raise RuntimeError(f"staged file {relative_path} has no folder for partition columns {sorted(missing)}")
    return {column: values[column] for column in partition_by}


def _delete_uncommitted(path: str, files: list[_StagedFile]) -> None:
    for f in files:
        Path(_local(path), f.relative_path).unlink(missing_ok=True)
