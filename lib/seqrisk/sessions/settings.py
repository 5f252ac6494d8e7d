"""Settings of sessionization, the vocabulary and the windows (`sessionize.*`, `vocabulary.*`, `windows.*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from seqrisk.sessions.vocabulary import GAP_BUCKETS_S
from seqrisk.settings import Settings


class SessionizeConfig(Settings):
    gap_minutes: float = Field(30, gt=0)  # inactivity that ends a session (when the source has no session id)
    max_events: int = Field(5000, ge=2)  # longer sessions are split (a bound on a row, docs/decisions.md)
    max_duration_minutes: float = Field(240, gt=0, le=1440)  # so are longer-lasting ones
    lookback_days: int = Field(1, ge=1)  # incremental runs read this far back, so sessions come out whole
    skewed_user_events: int = Field(1_000_000, ge=1)  # users with more events are sessionized day by day
    cart_events: list[str] = ["add_to_cart", "cart"]  # event types counted as carts in session features
    purchase_events: list[str] = ["purchase", "buy"]


class VocabularyConfig(Settings):
    min_count: int = Field(5, ge=1)  # rarer tokens share the <rare> token
    max_size: int = Field(10_000, ge=4)
    composite: Literal["none", "category", "price"] = "price"  # event type joined with a category or a price bucket
    top_categories: int = Field(16, ge=1)  # category buckets: the most frequent ones, then "other"
    price_quantiles: list[float] = [0.05, 0.95]  # price bucket edges, as quantiles of all prices

    @field_validator("price_quantiles")
    @classmethod
    def _quantiles(cls, value: list[float]) -> list[float]:
        if not value or any(not 0 < q < 1 for q in value) or value != sorted(set(value)):
            raise ValueError("price_quantiles must be ascending distinct numbers between 0 and 1")
        return value


class WindowsConfig(Settings):
    length: int = Field(32, ge=2, le=4096)
    stride: int = Field(16, ge=1)
    gap_buckets_s: list[float] = list(GAP_BUCKETS_S)  # upper bounds of time-gap buckets
    row_group_mb: int = Field(32, ge=1)  # Parquet row groups: what Petastorm reads at a time

    @model_validator(mode="after")
    def _shape(self) -> WindowsConfig:
        if self.stride > self.length:
            raise ValueError(f"stride ({self.stride}) must not exceed length ({self.length}): events would be skipped")
        if any(b >= a for b, a in zip(self.gap_buckets_s, self.gap_buckets_s[1:])) or not self.gap_buckets_s:
            raise ValueError("gap_buckets_s must be a non-empty increasing list of seconds")
        return self
