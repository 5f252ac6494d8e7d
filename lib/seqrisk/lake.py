"""The lake: every table and file under `tables.root` by its logical name, and the Delta I/O for them.

Jobs name what they read and write (`lake.read("sessions")`, `lake.path("windows")`); only this
handle knows where `tables.names` puts each of them under the root, which may be any URI Spark
reaches (files beside the tables go through `uri_files`, never `pathlib`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from pyspark.sql import DataFrame, SparkSession

from seqrisk import uri_files
from seqrisk.config import TableNames, TablesConfig
from seqrisk.tables import DeltaTables, open_tables


@dataclass(frozen=True)
class Lake:
    root: str
    names: TableNames
    tables: DeltaTables

    @classmethod
    def open(cls, spark: SparkSession, settings: TablesConfig) -> "Lake":
        """The lake of `tables` settings, with the Delta backend chosen for this session."""
        return cls(settings.root, settings.names, open_tables(spark, delta=settings.delta, max_records_per_file=settings.max_records_per_file))

    @property
    def spark(self) -> SparkSession:
        return self.tables.spark

    def path(self, name: str) -> str:
        """Where a table or file is, by its logical name (a key of `tables.names`)."""
        return uri_files.join(self.root, getattr(self.names, name))

    def read(self, name: str, where: Optional[Mapping[str, Sequence[str]]] = None) -> DataFrame:
        """A table's current rows; `where` keeps only the listed partition values."""
        return self.tables.read(self.path(name), where)

    def exists(self, name: str) -> bool:
        return self.tables.exists(self.path(name))
