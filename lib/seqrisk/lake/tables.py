"""The table I/O surface (DESIGN.md, "Stack"): what every job writes and reads, whatever the backend.

Two backends implement `DeltaTables`, one module each, chosen once per job by `backends.open_tables`:

- ``native`` (`native_delta.py`): delta-spark's own ``format("delta")``, where its jars are on the
  classpath. A table is a path, or a name in Spark's catalog (``catalog.schema.table``).
- ``delta-rs`` (`delta_rs.py`): where they are not (an offline machine). Spark writes the Parquet
  files, one ``deltalake`` commit per table publishes them. It works on local paths.

Either way the result is a real Delta table that delta-spark, delta-rs and DuckDB read alike.
No module outside `seqrisk.lake` knows which backend is in use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seqrisk.errors import SeqriskError

Backend = Literal["native", "delta-rs"]
Mode = Literal["append", "overwrite"]
HISTORY_SCANNED = 20  # commits `commit_metadata` looks back through for seqrisk's latest write
APP_ID = "seqrisk"  # the Delta transaction identifier of every seqrisk write, on both backends: two of them conflict
_COMMIT_FIELDS = frozenset({"operation", "engineInfo", "clientVersion", "isolationLevel", "userName", "userId", "userMetadata"})
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
    replace: Mapping[str, Sequence[str]] | None = None
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
    version: int | None = None  # the table version this write created; None if nothing changed


class ConcurrentWriteError(SeqriskError):
    """Another run committed to a table after this run read it; this run's write to it was not committed.

    `committed` holds the results of the same `publish`'s tables that were committed before it.
    """

    def __init__(self, message: str, committed: Sequence[WriteResult] = ()):
        super().__init__(message)
        self.committed = list(committed)


UNREAD = object()  # `publish`'s base version for a table this run never looked at


@dataclass
class DeltaTables:
    """Reads and publishes Delta tables; one instance belongs to one job run.

    Optimistic concurrency: the first time a table is looked at (`exists`, `read`), its version
    is remembered; `publish` commits against that version and raises `ConcurrentWriteError` when
    another seqrisk run committed to the table since.
    """

    spark: SparkSession
    max_records_per_file: int = 5_000_000
    _read_versions: dict[str, int | None] = field(default_factory=dict, init=False, repr=False)
    backend: ClassVar[Backend]

    def exists(self, path: str) -> bool:
        found = self._exists(path)
        if not found:
            self._read_versions.setdefault(path, None)
        return found

    def read(self, path: str, where: Mapping[str, Sequence[str]] | None = None) -> DataFrame:
        """The table's current rows; ``where`` keeps only the listed partition values."""
        if not self.exists(path):
            raise SeqriskError(f"no Delta table at {path}; run the job that writes it first")
        return self._read(path, where)

    def holds(
        self, path: str, new: DataFrame, where: Mapping[str, Sequence[str]] | None = None, ignore: Sequence[str] = ("run_id",)
    ) -> bool:
        """True when the table already holds exactly the rows of `new` (within `where`), `ignore`d columns aside.

        Compares an order-free fingerprint (row count and sums of row hashes; maps hashed through
        their JSON), so a rerun on the same input can skip writing and leave the table as it is.
        """
        if not self.exists(path):
            return False
        return fingerprint(self.read(path, where), ignore) == fingerprint(new, ignore)

    def files(self, path: str, where: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        """URIs of the Parquet files that make up the table now (for readers such as Petastorm)."""
        return sorted(self.read(path, where).inputFiles())

    def current_version(self, path: str) -> int | None:
        """The table's version now; None when there is no table."""
        return self.version(path) if self._exists(path) else None

    def base_versions(self, writes: Sequence[TableWrite]) -> dict[str, object]:
        """Each written table's version when this run read it (`UNREAD` for a table it never looked at)."""
        return {w.path: self._read_versions.pop(w.path, UNREAD) for w in writes}

    def remember_read(self, path: str, version: int | None) -> None:
        self._read_versions.setdefault(path, version)

    def read_version(self, path: str) -> int | None:
        """The version this run first saw of the table (its reads are pinned to it)."""
        return self._read_versions.get(path)

    # -- what each backend implements -------------------------------------------------------

    def _exists(self, path: str) -> bool:
        raise NotImplementedError

    def _read(self, path: str, where: Mapping[str, Sequence[str]] | None) -> DataFrame:
        raise NotImplementedError

    def version(self, path: str) -> int:
        """The table's current version."""
        raise NotImplementedError

    def commit_metadata(self, path: str) -> dict[str, str]:
        """The seqrisk metadata of the table's latest write: `run_id` and the write's `metadata`.

        Commits without a `run_id` (a vacuum's, another tool's) are passed over.
        """
        raise NotImplementedError

    def publish(self, *writes: TableWrite, run_id: str) -> list[WriteResult]:
        """Write every table of a job; each table changes in one atomic commit."""
        raise NotImplementedError

    def vacuum(self, path: str, retain_hours: int) -> int:
        """Delete the table's files that no commit of the last `retain_hours` needs; how many went."""
        raise NotImplementedError

    def vacuum_uncommitted(self, path: str, retain_hours: int) -> int:
        """Delete what a run killed before a table's first commit left there; how many files went."""
        return 0

    def vacuum_staging(self, root: str, retain_hours: int) -> int:
        """Delete what killed runs left in the lake's staging area; how many runs' folders went."""
        return 0


def seqrisk_metadata(commit: Mapping[str, object]) -> dict[str, str] | None:
    """seqrisk's metadata in a commit's commitInfo, whichever backend wrote it; None for another writer's commit.

    Both backends store it as `userMetadata` (a JSON object with `run_id`); delta-rs commits made
    before that kept its keys at the top of commitInfo, and are read too.
    """
    user = commit.get("userMetadata")
    if isinstance(user, str) and user:
        try:
            found = json.loads(user)
        except ValueError:
            found = None
        if isinstance(found, dict) and "run_id" in found:
            return {key: value for key, value in found.items() if key != "write_id"}
    if "run_id" in commit:
        return {key: value for key, value in commit.items() if isinstance(value, str) and key not in _COMMIT_FIELDS}
    return None


def conflict_message(path: str, read: int | None | object, now: int | None) -> str:
    seen = "did not exist" if read is None else f"was at version {read}"
    found = "does not exist" if now is None else f"is at version {now}"
    return (
        f"{path}: another run committed to this table while this run was working (it {seen} "
        f"when read and {found} now); nothing of this run was committed to it. Rerun the job: it "
        "reads the table again"
    )


def fingerprint(df: DataFrame, ignore: Sequence[str]) -> tuple:
    """An order-free fingerprint of a frame's rows: count, sum of row hashes, sum of their squares (mod a prime)."""
    columns = [F.to_json(f.name) if f.dataType.typeName() == "map" else F.col(f.name) for f in df.schema.fields if f.name not in ignore]
    row_hash = F.xxhash64(*columns)
    first = df.agg(F.count("*"), F.sum(row_hash.cast("decimal(38,0)")), F.sum((row_hash % 1000003).cast("long") ** 2)).first()
    assert first is not None  # an aggregate has one row
    return tuple(first)
