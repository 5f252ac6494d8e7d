"""The lake: every table and file by its logical name, and the Delta I/O for them.

Jobs name what they read and write (`lake.read("sessions")`, `lake.path("windows")`); only this
handle knows where `tables.names` puts each of them: under `tables.root`, which may be any URI
Spark reaches (files beside the tables go through `uri_files`, never `pathlib`), or, with
`tables.catalog` and `tables.schema` (or a name with dots), as `catalog.schema.table` in Spark's
catalog (Unity Catalog). Such names need delta-spark: on the delta-rs path `open` refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from seqrisk.errors import SeqriskError
from seqrisk.lake import uri_files
from seqrisk.lake.backends import open_tables
from seqrisk.lake.settings import TableNames, TablesConfig
from seqrisk.lake.tables import DeltaTables, is_table_name

FILES = ("vocabulary",)  # keys of `tables.names` that are files beside the tables, always under the root


@dataclass(frozen=True)
class Lake:
    root: str
    names: TableNames
    tables: DeltaTables
    schema: str | None = None  # "catalog.schema" when tables are named in Spark's catalog

    @classmethod
    def open(cls, spark: SparkSession, settings: TablesConfig) -> Lake:
        """The lake of `tables` settings, with the Delta backend chosen for this session.

        Catalog names on the delta-rs path stop here, before any work, naming the tables.
        """
        schema = f"{settings.catalog}.{settings.schema_name}" if settings.catalog else None
        lake = cls(
            settings.root,
            settings.names,
            open_tables(spark, delta=settings.delta, max_records_per_file=settings.max_records_per_file),
            schema,
        )
        named = [f"{key}: {lake.path(key)}" for key in TableNames.model_fields if key not in FILES and is_table_name(lake.path(key))]
        if named and lake.tables.backend != "native":
            raise SeqriskError(
                "tables named in a catalog (" + ", ".join(named) + ") are read and written through delta-spark, whose jars this "
                "Spark session does not have (the delta-rs path: a laptop, CI). Run on Databricks or a cluster with Delta's jars, "
                "or leave tables.catalog/tables.schema unset and name tables by path under tables.root"
            )
        return lake

    @property
    def spark(self) -> SparkSession:
        return self.tables.spark

    def path(self, name: str) -> str:
        """Where a table or file is, by its logical name (a key of `tables.names`): a URI, or a table's catalog name."""
        entry = getattr(self.names, name)
        if name in FILES:
            return uri_files.join(self.root, entry)
        if is_table_name(entry):
            return entry
        return f"{self.schema}.{entry}" if self.schema else uri_files.join(self.root, entry)

    def read(self, name: str, where: Mapping[str, Sequence[str]] | None = None) -> DataFrame:
        """A table's current rows; `where` keeps only the listed partition values."""
        return self.tables.read(self.path(name), where)

    def exists(self, name: str) -> bool:
        return self.tables.exists(self.path(name))
