"""Settings of scoring: risk levels, reason thresholds, the risk-action policy (`score.*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from seqrisk.detectors.reasons import REASONS
from seqrisk.settings import Settings


class RiskLevels(Settings):
    """risk_pct cut-offs: at or above `medium` is medium, at or above `high` is high."""

    medium: float = Field(95.0, gt=0, lt=100)
    high: float = Field(99.0, gt=0, lt=100)

    @model_validator(mode="after")
    def _ordered(self) -> RiskLevels:
        if self.medium >= self.high:
            raise ValueError(f"medium ({self.medium}) must be below high ({self.high})")
        return self


class PolicyRule(Settings):
    """A rule of the risk-action policy; a rule without conditions matches every session."""

    level: Literal["low", "medium", "high"] | None = None
    any_reason: list[str] = []
    action: Literal["allow", "review", "step_up_auth", "block"]

    @field_validator("any_reason")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(REASONS))
        if unknown:
            raise ValueError(f"unknown reason codes {unknown}; known: {', '.join(REASONS)}")
        return value


DEFAULT_POLICY = [
    PolicyRule(level="high", any_reason=["duplicate_sequence", "bot_like_timing"], action="block"),
    PolicyRule(level="high", any_reason=["unseen_event", "rare_transition"], action="step_up_auth"),
    PolicyRule(level="high", action="review"),
    PolicyRule(level="medium", action="review"),
    PolicyRule(action="allow"),
]


class ScoreConfig(Settings):
    model: str = "latest"  # a model directory, "latest" (the newest under model.dir), or models:/NAME@ALIAS (MLflow)
    batch_windows: int = Field(4096, ge=1)  # windows per tensor batch inside the scoring UDF
    top_events: int = Field(3, ge=1, le=32)  # surprising events kept per session, for analysts
    levels: RiskLevels = RiskLevels()
    reason_percentile: float = Field(95.0, gt=0, lt=100)  # a detector explains a session from this percentile up
    reason_z: float = Field(3.0, gt=0)  # a feature is a reason from this robust z-score up
    duplicate_min_users: int = Field(3, ge=2)
    duplicate_min_events: int = Field(5, ge=1)
    user_window_days: int = Field(30, ge=1)  # user_risk aggregates this many days of sessions up to the run's last date
    policy: list[PolicyRule] = DEFAULT_POLICY  # first matching rule wins

    @field_validator("policy")
    @classmethod
    def _catch_all(cls, rules: list[PolicyRule]) -> list[PolicyRule]:
        if not rules or rules[-1].level is not None or rules[-1].any_reason:
            raise ValueError("the last policy rule must have no conditions (only an action), so every session gets one")
        return rules
