"""Settings of ingest: source mappings and the limits records are checked against (`ingest.*`)."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from seqrisk.settings import Settings, UtcDatetime


class TimeRange(Settings):
    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.start >= self.end:
            raise ValueError(f"start ({self.start}) must be before end ({self.end})")
        return self


class ColumnMap(Settings):
    """Which source column feeds each events field."""

    user_id: str
    event_time: str
    event_type: str
    event_id: str | None = None
    session_id: str | None = None
    item_id: str | None = None
    category: str | None = None
    price: str | None = None


TIME_FORMATS = ("epoch_s", "epoch_ms", "iso")


class SourceMapping(Settings):
    """How one raw source maps onto the events schema (DESIGN.md, "Jobs and their contract")."""

    format: Literal["csv", "json", "parquet"]
    header: bool = True
    delimiter: str = Field(",", min_length=1, max_length=1)
    names: list[str] | None = None  # source column names of a CSV without a header
    columns: ColumnMap
    time_format: str = "iso"  # epoch_s, epoch_ms, iso, or a Spark datetime pattern
    attributes: list[str] = []
    time_range: TimeRange | None = None  # narrows ingest's plausible range for this source
    encoding: str = "utf-8"  # the files' text encoding (CSV, JSON); others are decoded whole per file
    id_namespace: str | None = None  # given event ids are unique within it; default: the mapping's name
    placeholder_ids: list[str] = ["0", "-", "null", "none", "nan", "n/a", "undefined"]  # event ids that are no id (any case)

    @model_validator(mode="after")
    def _csv_names(self) -> SourceMapping:
        if self.format == "csv" and not self.header and not self.names:
            raise ValueError("a CSV without a header needs `names`, its columns in order")
        if self.names and self.format != "csv":
            raise ValueError("`names` is only for CSV without a header")
        return self

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r} (e.g. utf-8, latin-1, cp1252, utf-16)") from None

    @field_validator("time_format")
    @classmethod
    def _time_format(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"must be one of {', '.join(TIME_FORMATS)} or a datetime pattern")
        return value

    def source_columns(self) -> list[str]:
        """Every source column this mapping reads, in a stable order."""
        mapped = [c for c in self.columns.model_dump().values() if c is not None]
        return list(dict.fromkeys(mapped + list(self.attributes)))


class IngestConfig(Settings):
    min_event_time: UtcDatetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future_hours: float = Field(24, ge=0)
    max_price: float = Field(1e7, gt=0)
    max_quarantine_share: float | None = Field(None, ge=0, le=1)  # refuse a run that quarantines more (null: never)
    max_field_chars: int = Field(4096, ge=1)  # a longer value in any mapped column quarantines the record
    duplicate_check_days: int | None = Field(None, ge=0)  # null: against the whole events table; N: the input's dates +- N days
    success_marker: Literal["auto", "required", "ignored"] = "auto"  # auto: folders of part-* files need _SUCCESS
    mappings: dict[str, SourceMapping] = {}
