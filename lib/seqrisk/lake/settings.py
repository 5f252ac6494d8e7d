"""Settings of the lake: its root, catalog names, the Delta backend, table names (`tables.*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from seqrisk.settings import Settings


class TableNames(Settings):
    events: str = "events"
    quarantine: str = "quarantine"
    sessions: str = "sessions"
    windows: str = "windows"
    vocabulary: str = "vocabulary.json"  # the vocabulary the windows were cut with, beside them
    session_risk: str = "session_risk"
    user_risk: str = "user_risk"
    ingest_runs: str = "ingest_runs"


class TablesConfig(Settings):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    root: str  # files (the vocabulary, staging), and every table when no catalog and schema are set
    catalog: str | None = None  # with `schema`: tables are <catalog>.<schema>.<name> in Spark's catalog (Unity Catalog)
    schema_name: str | None = Field(None, alias="schema")  # `schema` in the YAML (a BaseModel attribute's name)
    delta: Literal["auto", "native", "delta-rs"] = "auto"
    max_records_per_file: int = Field(5_000_000, ge=1000)
    vacuum_retain_hours: int = Field(168, ge=0)  # `seqrisk vacuum` keeps files younger than this
    names: TableNames = TableNames()

    @model_validator(mode="after")
    def _catalog_and_schema(self) -> TablesConfig:
        if (self.catalog is None) != (self.schema_name is None):
            raise ValueError("set tables.catalog and tables.schema together (or neither)")
        return self
