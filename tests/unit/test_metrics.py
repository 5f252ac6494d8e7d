"""Metrics from binned counts agree with scikit-learn on the same (tied) scores."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from seqrisk.evaluation.metrics import Binned, at_cutoff, pr_auc, recall_at_budget, roc_auc


@pytest.fixture
def scored():
    rng = np.random.default_rng(1)
    labels = rng.random(5000) < 0.05
    scores = np.round(np.clip(rng.normal(50 + 30 * labels, 20), 0, 100), 0)  # 0.01-wide bins would be 2 decimals
    bins = np.unique(scores)
    binned = Binned.of(bins, [(labels & (scores == b)).sum() for b in bins], [(~labels & (scores == b)).sum() for b in bins])
    return labels, scores, binned


def test_roc_and_pr_auc_equal_scikit_learns(scored):
    labels, scores, binned = scored
    assert roc_auc(binned) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert pr_auc(binned) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_cutoff_and_budget(scored):
    labels, scores, binned = scored
    alert = scores >= 80
    tp = (alert & labels).sum()
    got = at_cutoff(binned, 80)
    assert got["precision"] == pytest.approx(tp / alert.sum()) and got["recall"] == pytest.approx(tp / labels.sum())
    assert got["f1"] == pytest.approx(2 * got["precision"] * got["recall"] / (got["precision"] + got["recall"]))
    assert recall_at_budget(binned, 100.0) == pytest.approx(1.0)
    untied = Binned.of(np.arange(10.0), [1, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0, 1, 1, 1, 1, 1, 1, 1, 1, 0])
    assert recall_at_budget(untied, 10.0) == pytest.approx(0.5)  # the top bin (one positive) is 10 % of sessions
