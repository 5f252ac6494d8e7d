"""How the detectors' surprisals become one score, and what a user's labels change about it.

Without labels every detector counts the same (but one that abstains on the reference: the replay
detector where long shared sequences are common, `replay_detector.py`): the score is the largest
surprisal (the strongest evidence) plus half the second largest and a quarter of the third
(CORROBORATION: each further detector that agrees counts half as much as the one before; docs/
detectors.md compares this with the plain maximum, the sum and other shares on four data sets). With labels
(`seqrisk train --labels`), each detector gets a weight from WEIGHTS and the same rule applies to
the weighted surprisals; the weights are the ones that put the most labeled
cases into the reference's riskiest 1 % (ties: the higher ROC AUC of the cases against the
reference, then the weights closest to the unlabeled ones), kept only when they beat those
significantly: a one-sided sign test on the cases one catches and the other misses, Bonferroni-
corrected for the weightings tried, at SIGNIFICANCE. The labels also set the `high` cut-off: it is
lowered, never raised, to the risk percentile that still catches `label_recall` of the labeled
cases, and never below the configured `medium` level (raising it on known cases lost recall on the
unknown ones on every data set). Fewer than `label_min_cases` labeled sessions change nothing.
Stored as combination.json in the model directory, with the labeled session ids, so that
`evaluate` leaves out the cases the model was told about. The evidence: docs/detectors.md.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

DETECTORS = ("sequence", "feature", "count", "ngram", "replay")  # calibration names, in the order of the *_pct columns
WEIGHTS = (0.0, 0.5, 1.0)  # the weights tried per detector
BUDGET = 0.01  # the weights are judged by the labeled cases caught in the reference's riskiest 1 %
SIGNIFICANCE = 0.05  # family-wise level at which learned weights replace the default
CORROBORATION = (1.0, 0.5, 0.25)  # the shares of the largest, second and third largest surprisals in the score


def corroborated(surprisals: list[np.ndarray], shares: tuple[float, ...] = CORROBORATION) -> np.ndarray:
    """Per session, the scores' surprisals from the largest down, weighted by `shares` and summed."""
    ranked = -np.sort(-np.column_stack(surprisals), axis=1)  # largest first
    shares = shares[: ranked.shape[1]]
    return ranked[:, : len(shares)] @ np.asarray(shares)


@dataclass(frozen=True)
class Combination:
    weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DETECTORS, 1.0))
    high_pct: float | None = None  # the `high` cut-off the labels set (None: the config's)
    labeled_sessions: list[str] = field(default_factory=list)  # the sessions the labels marked in training
    labels: dict | None = None  # what the labels bought (LabelReport as a dict), for reports

    def score(self, surprisals: dict[str, np.ndarray]) -> np.ndarray:
        """The session score of the weighted surprisals (`corroborated`)."""
        return corroborated([self.weights[name] * np.asarray(surprisals[name]) for name in DETECTORS])

    def high(self, configured: float) -> float:
        """The `high` cut-off: the one the labels set, else the configured one."""
        return self.high_pct if self.high_pct is not None else configured

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> Combination:
        """The stored combination; the default where there is none."""
        return cls(**json.loads(data)) if data is not None else cls()


@dataclass(frozen=True)
class LabelReport:
    cases: int  # labeled sessions in the training dates
    used: bool  # False: too few cases, the default stands
    weights: dict[str, float]
    caught_default: int  # labeled cases in the reference's riskiest 1 %, default weights
    caught: int  # the same with the chosen weights
    configured_high: float  # the config's `high` at training time
    high_pct: float | None = None
    high_recall: float | None = None  # share of labeled cases at or above high_pct
    high_share: float | None = None  # share of reference sessions at or above high_pct

    def lines(self) -> list[str]:
        if not self.used:
            return [f"{self.cases} labeled session(s) in the training dates: too few to change the default (weights, cut-offs)"]
        weights = ", ".join(f"{name} {self.weights[name]:g}" for name in DETECTORS)
        return [
            f"{self.cases} labeled sessions in the training dates",
            f"weights {weights}: {self.caught} of them in the reference's riskiest 1 % (default weights: {self.caught_default})",
            f"high from percentile {self.high_pct:.2f} (config {self.configured_high:g}): catches {self.high_recall:.0%} of them"
            f" and {self.high_share:.2%} of reference sessions",
        ]


def choose_weights(
    reference: dict[str, np.ndarray], cases: dict[str, np.ndarray], default: dict[str, float]
) -> tuple[dict[str, float], int, int]:
    """(weights, cases caught with them, cases caught with the `default` weights) in the reference's riskiest 1 %."""
    caught_by = {}
    for values in itertools.product(WEIGHTS, repeat=len(DETECTORS)):
        if any(values):
            combination = Combination(dict(zip(DETECTORS, values)))
            background, found = combination.score(reference), combination.score(cases)
            caught_by[values] = (found > np.quantile(background, 1.0 - BUDGET), _auc(found, background))

    def key(values):
        caught, auc = caught_by[values]
        return int(caught.sum()), auc, -sum(abs(w - default[n]) for n, w in zip(DETECTORS, values))

    best = max(caught_by, key=key)
    chosen, baseline = caught_by[best][0], caught_by[tuple(default[n] for n in DETECTORS)][0]
    gained, lost = int(np.sum(chosen & ~baseline)), int(np.sum(baseline & ~chosen))
    if sign_test(gained, lost) * len(caught_by) > SIGNIFICANCE:
        return dict(default), int(baseline.sum()), int(baseline.sum())
    return dict(zip(DETECTORS, best)), int(chosen.sum()), int(baseline.sum())


def sign_test(gained: int, lost: int) -> float:
    """One-sided p-value of `gained` or more wins out of gained + lost discordant cases, under a fair coin."""
    n = gained + lost
    return sum(math.comb(n, k) for k in range(gained, n + 1)) / 2.0**n if n else 1.0


def cutoff(case_pct: np.ndarray, recall: float, lowest: float, highest: float) -> float:
    """The highest percentile that keeps `recall` of the cases at or above it, within [lowest, highest]."""
    return float(np.clip(np.quantile(case_pct, 1.0 - recall, method="inverted_cdf"), lowest, highest))


def with_labels(combination: Combination, report: LabelReport, session_ids: list[str]) -> Combination:
    return replace(combination, high_pct=report.high_pct, labeled_sessions=sorted(session_ids), labels=asdict(report))


def _auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a case scores above a reference session), ties counting half."""
    negatives = np.sort(negatives)
    below = np.searchsorted(negatives, positives, side="left")
    not_above = np.searchsorted(negatives, positives, side="right")
    return float(np.mean((below + not_above) / 2.0) / len(negatives))
