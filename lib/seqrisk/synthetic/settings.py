"""Settings of the synthetic generator (`generate.*`)."""

from __future__ import annotations

from datetime import date

from pydantic import Field, model_validator

from seqrisk.settings import Settings


class AnomalyConfig(Settings):
    weight: float = Field(1.0, ge=0)  # relative share among anomalous users
    subtlety: float = Field(0.3, ge=0, le=1)  # 0: blatant, 1: close to normal behavior


class AnomaliesConfig(Settings):
    scraping_bot: AnomalyConfig = AnomalyConfig()
    card_testing: AnomalyConfig = AnomalyConfig()
    account_takeover: AnomalyConfig = AnomalyConfig()
    click_farm: AnomalyConfig = AnomalyConfig()
    cart_abuse: AnomalyConfig = AnomalyConfig()
    velocity_burst: AnomalyConfig = AnomalyConfig()


class GenerateConfig(Settings):
    users: int = Field(3000, ge=1)
    days: int = Field(14, ge=1, le=3650)
    start: date = date(2024, 5, 1)
    seed: int = 7
    anomaly_rate: float = Field(0.05, ge=0, le=1)  # share of users with at least one anomalous span
    malformed_rate: float = Field(0.0, ge=0, le=1)  # corrupted extra copies of lines, for quarantine
    items: int = Field(5000, ge=10)
    categories: int = Field(40, ge=1)
    partitions: int | None = Field(None, ge=1)  # Spark tasks; default: from users and cores
    out: str = "./data/generated"
    anomalies: AnomaliesConfig = AnomaliesConfig()

    @model_validator(mode="after")
    def _catalog(self) -> GenerateConfig:
        if self.items < self.categories:
            raise ValueError(f"items ({self.items}) must be at least categories ({self.categories})")
        return self
