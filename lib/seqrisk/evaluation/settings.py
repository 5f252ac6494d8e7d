"""Settings of evaluation (`evaluate.*`)."""

from __future__ import annotations

from pydantic import Field

from seqrisk.settings import Settings


class EvaluateConfig(Settings):
    report: str = "./report"  # where `seqrisk evaluate` writes metrics.json, report.md and plots
    alert_budget_pct: float = Field(1.0, gt=0, le=100)  # recall when alerting on this share of sessions
