"""The base of every settings model: strict (unknown keys fail), frozen, times in UTC.

Each concern owns its settings (`lake/settings.py`, `sessions/settings.py`, ...); `config.py`
composes them into the one `Config` a job is given, from conf/base.yaml and its layers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]  # a time without a zone is UTC


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
