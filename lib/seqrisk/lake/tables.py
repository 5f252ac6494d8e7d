"""Delta table I/O behind one small surface (DESIGN.md, "Stack").

Two backends, chosen once per job:

- ``native``: delta-spark's own ``format("delta")``, where its jars are on the classpath. A table
  is a path, or a name in Spark's catalog (``catalog.schema.table``: Unity Catalog).
- ``delta-rs``: where they are not (an offline machine, CI). Spark writes the Parquet files in
  parallel into a staging folder; the driver moves them into the table folder and publishes them
  with one atomic Delta commit through the ``deltalake`` package. Reads list the table's current
  files from the Delta log. This backend works on local paths.

Either way the result is a real Delta table that delta-spark, delta-rs and DuckDB read alike.
No other module knows which backend is in use.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping, Optional, Sequence

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from seqrisk import faults
from seqrisk.errors import SeqriskError

Backend = Literal["native", "delta-rs"]
Mode = Literal["append", "overwrite"]
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
STAGING = "_staging"  # under the lake's root: <run_id>/<table>/, Spark's Parquet files before they move
HISTORY_SCANNED = 20  # commits `commit_metadata` looks back through for seqrisk's latest write
APP_ID = "seqrisk"  # the Delta transaction identifier every delta-rs commit carries: two of them conflict
BLIND_COMMIT_ATTEMPTS = 5  # a write to a table its run never read commits against the newest version, again if it loses a race
_DELTA_RS_COMMIT_FIELDS = frozenset({"operation", "engineInfo", "clientVersion", "isolationLevel", "userName", "userId"})
_PART = r"(?:[A-Za-z0-9_-]+|`[^`]+`)"
_TABLE_NAME = re.compile(rf"^{_PART}\.{_PART}\.{_PART}$")


def is_table_name(identifier: str) -> bool:
    """True for a catalog name (`catalog.schema.table`, parts optionally in backticks) rather than a path or URI."""
    return bool(_TABLE_NAME.match(identifier))


@dataclass(frozen=True)
class TableWrite:
    """One table's share of a job's output.

    ``mode="overwrite"`` with ``replace`` replaces only the listed partitions (for example
    ``{"event_date": ["2024-05-01"]}``), and deletes those that ``df`` has no rows for.
    """

    path: str
    df: DataFrame
    mode: Mode
    partition_by: Sequence[str] = ()
    replace: Optional[Mapping[str, Sequence[str]]] = None
    options: Mapping[str, str] = field(default_factory=dict)  # Parquet writer options, e.g. parquet.block.size
    metadata: Mapping[str, str] = field(default_factory=dict)  # stored in the commit with the run id (`commit_metadata`)

    def __post_init__(self) -> None:
        if self.mode not in ("append", "overwrite"):
            raise ValueError(f"mode must be 'append' or 'overwrite', got {self.mode!r}")
        if self.replace is not None:
            if self.mode != "overwrite":
                raise ValueError("replace= goes with mode='overwrite'")
            unknown = set(self.replace) - set(self.partition_by)
            if unknown:
                raise ValueError(f"replace= names {sorted(unknown)}, which are not partition columns {list(self.partition_by)}")


@dataclass(frozen=True)
class WriteResult:
    path: str
    rows_added: int
    files_added: int
    version: Optional[int] = None  # the table version this write created; None if nothing changed


class ConcurrentWriteError(SeqriskError):
    """Another run committed to a table after this run read it; this run's write to it was not committed.

    `committed` holds the results of the same `publish`'s tables that were committed before it.
    """

    def __init__(self, message: str, committed: Sequence["WriteResult"] = ()):
        super().__init__(message)
        self.committed = list(committed)


@dataclass
class DeltaTables:
    """Reads and publishes Delta tables with the backend chosen for this session.

    Optimistic concurrency: the first time a table is looked at (`exists`, `read`), its version
    is remembered; `publish` commits against that version and raises `ConcurrentWriteError` when
    another seqrisk run committed to the table since. One `DeltaTables` belongs to one job run.
    """

    spark: SparkSession
    backend: Backend
    max_records_per_file: int = 5_000_000
    _read_versions: dict[str, Optional[int]] = field(default_factory=dict, init=False, repr=False)

    # -- reading ----------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        found = self._exists(path)
        if not found:
            self._read_versions.setdefault(path, None)
        return found

    def _exists(self, path: str) -> bool:
        if self.backend == "native":
            from delta.tables import DeltaTable as SparkDeltaTable

            if is_table_name(path):
                return self.spark.catalog.tableExists(path)
            return SparkDeltaTable.isDeltaTable(self.spark, path)
        from deltalake import DeltaTable

        local = _local(path)
        return os.path.isdir(local) and DeltaTable.is_deltatable(local)

    def version(self, path: str) -> int:
        """The table's current version."""
        if self.backend == "native":
            return int(self._spark_table(path).history(1).collect()[0]["version"])
        from deltalake import DeltaTable

        return DeltaTable(_local(path)).version()

    def read(self, path: str, where: Optional[Mapping[str, Sequence[str]]] = None) -> DataFrame:
        """The table's current rows; ``where`` keeps only the listed partition values."""
        if not self.exists(path):
            raise SeqriskError(f"no Delta table at {path}; run the job that writes it first")
        if self.backend == "native":
            self._read_versions.setdefault(path, self.version(path))
            df = self.spark.read.table(path) if is_table_name(path) else self.spark.read.format("delta").load(path)
            for column, values in (where or {}).items():
                df = df.filter(F.col(column).cast("string").isin(list(values)))
            return df
        return self._read_delta_rs(path, where)

    def holds(self, path: str, new: DataFrame, where: Optional[Mapping[str, Sequence[str]]] = None, ignore: Sequence[str] = ("run_id",)) -> bool:
        """True when the table already holds exactly the rows of `new` (within `where`), `ignore`d columns aside.

        Compares an order-free fingerprint (row count and sums of row hashes; maps hashed through
        their JSON), so a rerun on the same input can skip writing and leave the table as it is.
        """
        if not self.exists(path):
            return False
        return _fingerprint(self.read(path, where), ignore) == _fingerprint(new, ignore)

    def commit_metadata(self, path: str) -> dict[str, str]:
        """The seqrisk metadata of the table's latest write: `run_id` and the write's `metadata`.

        Commits without a `run_id` (a vacuum's, another tool's) are passed over.
        """
        if self.backend == "native":
            for row in self._spark_table(path).history(HISTORY_SCANNED).select("userMetadata").collect():
                found = json.loads(row["userMetadata"]) if row["userMetadata"] else {}
                if "run_id" in found:
                    return found
            return {}
        from deltalake import DeltaTable

        for commit in DeltaTable(_local(path)).history(HISTORY_SCANNED):
            if "run_id" in commit:
                return {key: value for key, value in commit.items() if isinstance(value, str) and key not in _DELTA_RS_COMMIT_FIELDS}
        return {}

    def vacuum(self, path: str, retain_hours: int) -> int:
        """Delete the table's files that no commit of the last `retain_hours` needs; how many went.

        With delta-rs also files no commit ever listed (moved in by a run killed before its commit)
        once they are older than `retain_hours`, so a run still in progress keeps its files.
        """
        if self.backend == "native":
            def files() -> int:  # every Parquet file in the table's location, live or not
                location = self._spark_table(path).detail().first()["location"]
                return self.spark.read.format("binaryFile").option("recursiveFileLookup", True).load(location).select("path").count()

            before = files()
            self._spark_table(path).vacuum(float(retain_hours))
            return before - files()
        from deltalake import DeltaTable

        removed = DeltaTable(_local(path)).vacuum(retention_hours=retain_hours, dry_run=False, enforce_retention_duration=False, full=True)
        return len(removed)

    def vacuum_uncommitted(self, path: str, retain_hours: int) -> int:
        """Delete a table folder's files once `retain_hours` old, when its first commit never came (delta-rs only).

        Such a folder (Parquet files, no `_delta_log`) is what a run killed before creating the
        table leaves; no reader sees it. Returns how many files went.
        """
        folder = Path(_local(path))
        if self.backend == "native" or not folder.is_dir() or (folder / "_delta_log").exists():
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

    def files(self, path: str, where: Optional[Mapping[str, Sequence[str]]] = None) -> list[str]:
        """URIs of the Parquet files that make up the table now (for readers such as Petastorm)."""
        return sorted(self.read(path, where).inputFiles())

    def _read_delta_rs(self, path: str, where: Optional[Mapping[str, Sequence[str]]]) -> DataFrame:
        from deltalake import DeltaTable

        table = DeltaTable(_local(path))
        self._read_versions.setdefault(path, table.version())
        schema = StructType.fromJson(json.loads(table.schema().to_json()))
        filters = [(column, "in", [str(v) for v in values]) for column, values in (where or {}).items()]
        files = [_local(uri) for uri in table.file_uris(file_pruning_predicate=filters or None)]
        if not files:
            return self.spark.createDataFrame([], schema)
        # basePath lets Spark take the partition columns' values from the Hive-style folders.
        df = self.spark.read.schema(schema).option("basePath", _local(path)).parquet(*files)
        return df.select(*schema.fieldNames())

    # -- writing ----------------------------------------------------------------------------

    def publish(self, *writes: TableWrite, run_id: str) -> list[WriteResult]:
        """Write every table of a job; each table changes in one atomic commit.

        With delta-rs, all Parquet files are written first and the commits come last, one after
        another, so a job that fails while Spark is writing leaves every table as it was.
        A table another run committed to since this run read it is not written: its files and
        those of the tables after it are deleted, and `ConcurrentWriteError` says which table.
        """
        faults.point("before_stage")
        bases = {w.path: self._read_versions.pop(w.path, _UNREAD) for w in writes}
        if self.backend == "native":
            for w in writes:
                self._check_unchanged_native(w.path, bases[w.path])
            return [self._write_native(w, run_id) for w in writes]
        staged = [self._stage(w, run_id) for w in writes]
        faults.point("before_commit")
        results = []
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

    def vacuum_staging(self, root: str, retain_hours: int) -> int:
        """Delete what killed runs left in `<root>/_staging/` (delta-rs only), once `retain_hours` old.

        A run's folder is as old as its newest file, so a run still writing keeps its folder.
        """
        staging = Path(_local(root)) / STAGING
        if self.backend == "native" or not staging.is_dir():
            return 0
        cutoff = time.time() - retain_hours * 3600
        removed = 0
        for run in sorted(staging.iterdir()):
            newest = max([run.stat().st_mtime, *(f.stat().st_mtime for f in run.rglob("*"))])
            if newest < cutoff:
                shutil.rmtree(run)
                removed += 1
        if not any(staging.iterdir()):
            staging.rmdir()
        return removed

    def _write_native(self, write: TableWrite, run_id: str) -> WriteResult:
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
            writer = writer.option("replaceWhere", _replace_where(write.replace))
        if is_table_name(write.path):
            writer.saveAsTable(write.path)
        else:
            writer.save(write.path)
        last = self._spark_table(write.path).history(1).collect()[0]
        metrics = last["operationMetrics"] or {}
        return WriteResult(
            path=write.path,
            rows_added=int(metrics.get("numOutputRows", 0)),
            files_added=int(metrics.get("numFiles", 0)),
            version=int(last["version"]),
        )

    def _spark_table(self, path: str):
        """delta-spark's handle on a table by path or by catalog name (native backend only)."""
        from delta.tables import DeltaTable as SparkDeltaTable

        return SparkDeltaTable.forName(self.spark, path) if is_table_name(path) else SparkDeltaTable.forPath(self.spark, path)

    def _stage(self, write: TableWrite, run_id: str) -> list["_StagedFile"]:
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
        shutil.rmtree(staging.parent, ignore_errors=True)
        if not any(staging.parent.parent.iterdir()):
            staging.parent.parent.rmdir()
        return staged

    def _check_unchanged_native(self, path: str, base: Optional[int] | object) -> None:
        """delta-spark's writes are blind appends to its own conflict checker: compare versions first."""
        if base is _UNREAD:
            return
        now = self._current_version(path)
        if now != base:
            raise ConcurrentWriteError(_conflict_message(path, base, now))

    def _commit(self, write: TableWrite, files: list["_StagedFile"], run_id: str, base: Optional[int] | object) -> WriteResult:
        """Commit against `base`; a blind write (a table this run never read) against the version there now."""
        if base is not _UNREAD:
            return self._commit_against(write, files, run_id, base)  # type: ignore[arg-type]
        for _ in range(BLIND_COMMIT_ATTEMPTS - 1):
            try:
                return self._commit_against(write, files, run_id, self._current_version(write.path))
            except ConcurrentWriteError:
                pass  # another run committed in between: again, against the newer version
        return self._commit_against(write, files, run_id, self._current_version(write.path))

    def _current_version(self, path: str) -> Optional[int]:
        """The table's version now; None when there is no table."""
        return self.version(path) if self._exists(path) else None

    def _commit_against(self, write: TableWrite, files: list["_StagedFile"], run_id: str, base: Optional[int]) -> WriteResult:
        from deltalake import DeltaTable, Schema
        from deltalake.exceptions import CommitFailedError, DeltaError
        from deltalake.transaction import AddAction, CommitProperties, Transaction, create_table_with_add_actions

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
            custom_metadata={"run_id": run_id, **write.metadata},
            app_transactions=[Transaction(app_id=APP_ID, version=0 if base is None else base + 1)],
        )
        if base is None:
            if DeltaTable.is_deltatable(path):
                raise ConcurrentWriteError(_conflict_message(write.path, None, DeltaTable(path).version()))
            try:
                create_table_with_add_actions(
                    path, schema, actions, mode="error", partition_by=partition_by, commit_properties=properties
                )
            except DeltaError as err:
                if not DeltaTable.is_deltatable(path):
                    raise
                raise ConcurrentWriteError(_conflict_message(write.path, None, DeltaTable(path).version())) from err
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
            table.create_write_transaction(
                actions,
                mode=write.mode,
                schema=schema,
                partition_by=partition_by,
                partition_filters=filters,
                commit_properties=properties,
            )
        except CommitFailedError as err:
            raise ConcurrentWriteError(_conflict_message(write.path, base, DeltaTable(path).version())) from err
        return WriteResult(write.path, rows, len(files), DeltaTable(path).version())


@dataclass(frozen=True)
class _StagedFile:
    relative_path: str
    size: int
    rows: int


_UNREAD = object()  # `publish`'s base version for a table this run never looked at


def _delete_uncommitted(path: str, files: list[_StagedFile]) -> None:
    for f in files:
        Path(_local(path), f.relative_path).unlink(missing_ok=True)


def _conflict_message(path: str, read: Optional[int] | object, now: Optional[int]) -> str:
    seen = "did not exist" if read is None else f"was at version {read}"
    found = "does not exist" if now is None else f"is at version {now}"
    return (
        f"{path}: another run committed to this table while this run was working (it {seen} "
        f"when read and {found} now); nothing of this run was committed to it. Rerun the job: it "
        "reads the table again"
    )


def open_tables(spark: SparkSession, *, delta: str, max_records_per_file: int) -> DeltaTables:
    """Pick the backend: ``auto`` means native delta-spark when its classes load, else delta-rs."""
    from seqrisk.spark import has_native_delta

    native = has_native_delta(spark)
    if delta == "native" and not native:
        raise SeqriskError(
            "tables.delta=native, but delta-spark's jars are not on Spark's classpath; add them "
            "(spark.jars.packages=io.delta:delta-spark_2.12:3.3.2) or set tables.delta=delta-rs"
        )
    backend: Backend = "native" if delta == "native" or (delta == "auto" and native) else "delta-rs"
    return DeltaTables(spark, backend, max_records_per_file)


def _local(path: str) -> str:
    """A local filesystem path for the delta-rs backend (which this project uses offline only)."""
    parsed = urllib.parse.urlparse(path)
    if parsed.scheme == "file":
        return urllib.parse.unquote(parsed.path)
    if parsed.scheme == "":
        return os.path.abspath(path)
    raise SeqriskError(
        f"{path}: the delta-rs table backend works on local paths only; on a cluster use "
        "delta-spark (tables.delta=native)"
    )


def _partition_values(relative_path: str, partition_by: Sequence[str]) -> dict[str, Optional[str]]:
    """Partition values from Spark's Hive-style folders, e.g. ``event_date=2024-05-01/part-0.parquet``."""
    values: dict[str, Optional[str]] = {}
    for part in relative_path.split("/")[:-1]:
        key, _, value = part.partition("=")
        value = urllib.parse.unquote(value)
        values[urllib.parse.unquote(key)] = None if value == HIVE_NULL else value
    missing = set(partition_by) - set(values)
    if missing:
        raise RuntimeError(f"staged file {relative_path} has no folder for partition columns {sorted(missing)}")
    return {column: values[column] for column in partition_by}


def _replace_where(replace: Mapping[str, Sequence[str]]) -> str:
    clauses = []
    for column, values in replace.items():
        quoted = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
        clauses.append(f"CAST(`{column}` AS STRING) IN ({quoted})" if values else "false")
    return " AND ".join(clauses)


def _fingerprint(df: DataFrame, ignore: Sequence[str]) -> tuple:
    columns = [F.to_json(f.name) if f.dataType.typeName() == "map" else F.col(f.name) for f in df.schema.fields if f.name not in ignore]
    row_hash = F.xxhash64(*columns)
    first = df.agg(F.count("*"), F.sum(row_hash.cast("decimal(38,0)")), F.sum((row_hash % 1000003).cast("long") ** 2)).first()
    return tuple(first)
