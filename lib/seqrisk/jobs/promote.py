"""The promote job: point a registered model's alias (`champion`) at the candidate, only when the
candidate's evaluation is not worse than the champion's on the same labels and the same sessions.

Both models score the lake's sessions in memory (`evaluate --model`: no table is written), each
evaluation is logged to its own MLflow run, and the alias moves when neither the ROC AUC nor the
PR AUC of the combined score is lower than the champion's by more than `mlflow.promote_tolerance`.
Without a champion the candidate becomes it, and so it does when the champion was written in a
model format this version of seqrisk cannot read (after an upgrade: the champion could not score
any more); `--force` moves the alias without evaluating. A refusal is an outcome, not an error: the
job says why and exits 0, and the champion keeps scoring.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from seqrisk.config import Config
from seqrisk.errors import ModelFormatError, SeqriskError
from seqrisk.jobs.evaluate import run_evaluate
from seqrisk.jobs.report import line, report
from seqrisk.jobs.start import date_range
from seqrisk.lake import uri_files
from seqrisk.registry import tracking

log = logging.getLogger("seqrisk")
COMPARED = ("roc_auc", "pr_auc")


@dataclass
class PromoteSummary:
    alias: str
    candidate: tracking.RegisteredVersion
    champion: tracking.RegisteredVersion | None
    promoted: bool
    reason: str
    candidate_metrics: dict | None = None
    champion_metrics: dict | None = None

    @property
    def verdict(self) -> str:
        return "promoted" if self.promoted else "refused"

    def report(self) -> str:
        def shown(metrics: dict | None) -> str:
            return ", ".join(f"{k} {metrics[k]:.4f}" for k in COMPARED) if metrics else "not evaluated"

        champion = f"{self.champion.uri}: {shown(self.champion_metrics)}" if self.champion else "none"
        holder = self.candidate if self.promoted else self.champion
        return report(
            f"promote {self.candidate.name}@{self.alias}: {self.verdict}",
            line("candidate", f"{self.candidate.uri}: {shown(self.candidate_metrics)}"),
            line("champion before", champion),
            line("decision", f"{self.verdict}: {self.reason}"),
            line(f"@{self.alias} is now", holder.uri if holder else "on no version"),
        )


def decide(candidate: dict, champion: dict, tolerance: float) -> tuple[bool, str]:
    """Promote when no compared metric is lower than the champion's by more than `tolerance`; and why."""
    worse = [f"{k} {candidate[k]:.4f} < champion's {champion[k]:.4f}" for k in COMPARED if candidate[k] < champion[k] - tolerance]
    if worse:
        return False, "worse than the champion on the same labels: " + "; ".join(worse) + f" (tolerance {tolerance})"
    return True, "not worse than the champion on the same labels: " + ", ".join(
        f"{k} {candidate[k]:.4f} vs {champion[k]:.4f}" for k in COMPARED
    )


def run_promote(
    config: Config,
    *,
    alias: str = "champion",
    labels: str | None = None,
    candidate: str | None = None,
    force: bool = False,
    date_from: date | None = None,
    date_to: date | None = None,
    spark: SparkSession | None = None,
) -> PromoteSummary:
    """Move `alias` to `candidate` (default: the version the candidate alias points at) when it is not worse.

    Both are evaluated on the sessions of `date_from`..`date_to` when given (the whole lake otherwise).
    """
    date_range(date_from, date_to, "evaluate every session")  # a half-given range fails before any work
    settings = config.mlflow
    name = settings.registered_model
    if not tracking.enabled(settings) or name is None:
        raise SeqriskError("promote needs MLflow: set mlflow.tracking_uri and mlflow.registered_model")
    chosen = tracking.resolve(settings, candidate or f"{tracking.REGISTRY_SCHEME}{name}@{settings.candidate_alias}")
    champion = tracking.alias_holder(settings, chosen.name, alias)
    summary = PromoteSummary(alias, chosen, champion, promoted=False, reason="")
    if champion is not None and champion.version == chosen.version:
        summary.reason = f"version {chosen.version} already has the alias {alias}"
        return summary
    if force:
        summary.promoted, summary.reason = True, "--force: moved without an evaluation"
    else:
        if labels is None:
            raise SeqriskError("promote compares the candidate with the champion on labels: give --labels (or --force)")
        span = dict(date_from=date_from, date_to=date_to)
        summary.candidate_metrics = _evaluated(config, chosen, labels, span, spark)
        if champion is None:
            summary.promoted, summary.reason = True, f"no version had the alias {alias}"
        else:
            try:
                summary.champion_metrics = _evaluated(config, champion, labels, span, spark)
            except ModelFormatError as error:
                summary.promoted, summary.reason = True, f"the champion cannot score with this version of seqrisk ({error})"
            else:
                summary.promoted, summary.reason = decide(summary.candidate_metrics, summary.champion_metrics, settings.promote_tolerance)
    if summary.promoted:
        tracking.set_alias(settings, chosen, alias)
    log.info("promote: %s %s@%s: %s", "moved" if summary.promoted else "kept", chosen.name, alias, summary.reason)
    return summary


def _evaluated(config: Config, registered: tracking.RegisteredVersion, labels: str, span: dict, spark: SparkSession | None) -> dict:
    """The combined score's metrics for one registered version (its report beside evaluate.report)."""
    report_dir = uri_files.join(uri_files.local_uri(config.evaluate.report), f"promote-{registered.name}-v{registered.version}")
    return run_evaluate(config, labels=labels, report_dir=report_dir, model_ref=registered.uri, spark=spark, **span).metrics["seqrisk"]
