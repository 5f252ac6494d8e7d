"""Detection metrics from binned score counts, so evaluation scales with the number of bins, not rows.

Spark counts sessions per (percentile bin, label); everything here works on those few thousand
counts. Sessions in one bin are tied: ROC AUC counts a tie as half, and precision-recall moves
through a tied bin in one step (as scikit-learn does for tied scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Binned:
    """Counts of positive and negative sessions per score bin, highest bin first."""

    edges: np.ndarray  # the bin's score (riskier first)
    positives: np.ndarray
    negatives: np.ndarray

    @classmethod
    def of(cls, bins: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> Binned:
        order = np.argsort(-np.asarray(bins, dtype=float), kind="stable")
        return cls(np.asarray(bins, dtype=float)[order], np.asarray(positives, float)[order], np.asarray(negatives, float)[order])

    @property
    def total(self) -> float:
        return float(self.positives.sum() + self.negatives.sum())


def roc_auc(b: Binned) -> float:
    P, N = b.positives.sum(), b.negatives.sum()
    if P == 0 or N == 0:
        return float("nan")
    negatives_below = N - np.cumsum(b.negatives)  # negatives in lower bins
    return float((b.positives * (negatives_below + 0.5 * b.negatives)).sum() / (P * N))


def pr_curve(b: Binned) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) after each bin, from the riskiest down."""
    tp, fp = np.cumsum(b.positives), np.cumsum(b.negatives)
    alerted = np.maximum(tp + fp, 1)
    return tp / alerted, tp / max(b.positives.sum(), 1)


def pr_auc(b: Binned) -> float:
    """Average precision: precision at each bin, weighted by the recall that bin adds."""
    if b.positives.sum() == 0:
        return float("nan")
    precision, recall = pr_curve(b)
    return float((np.diff(np.concatenate([[0.0], recall])) * precision).sum())


def at_cutoff(b: Binned, cutoff: float) -> dict[str, float]:
    """Precision, recall and F1 when alerting on every session scored at or above `cutoff`."""
    alert = b.edges >= cutoff
    tp, fp = b.positives[alert].sum(), b.negatives[alert].sum()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / b.positives.sum() if b.positives.sum() else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def recall_at_budget(b: Binned, budget_pct: float, positives: np.ndarray | None = None) -> float:
    """Recall when alerting on the riskiest `budget_pct` % of sessions (a tied bin at the edge pro rata).

    `positives` (per bin of `b`) measures the recall of a subset, e.g. one anomaly type, while the
    budget is still spent on all of `b`'s sessions.
    """
    positives = b.positives if positives is None else np.asarray(positives, dtype=float)
    if positives.sum() == 0:
        return float("nan")
    budget = b.total * budget_pct / 100.0
    counts = b.positives + b.negatives
    before = np.concatenate([[0.0], np.cumsum(counts)[:-1]])
    share = np.clip((budget - before) / np.maximum(counts, 1), 0.0, 1.0)  # how much of each bin fits the budget
    return float((share * positives).sum() / positives.sum())
