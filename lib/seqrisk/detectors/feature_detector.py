"""The second detector: IsolationForest over session features, stored safely, with its evidence.

Chosen on the evidence in docs/detectors.md: combined with the sequence model's score, it gives the
best precision of the three candidates. It is persisted with skops (no pickle); loading trusts
exactly the types an IsolationForest pipeline holds. Beside the forest it keeps each feature's
reference median and spread, so a session's most unusual features (robust z-scores) explain what
drove its feature score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from seqrisk.errors import SeqriskError
from seqrisk.sessions.features import feature_matrix

# Types inside a fitted StandardScaler + IsolationForest pipeline that skops does not trust by default.
# sklearn's Tree indexes its node arrays without bounds checks: the model directory's checksums
# (verified before this load) are what stands between a tampered file and this trust.
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


@dataclass
class FeatureDetector:
    pipeline: Pipeline
    event_types: list[str]
    feature_names: list[str]
    center: np.ndarray  # per-feature median of the reference sample
    spread: np.ndarray  # per-feature scaled MAD (falls back to std, then 1)

    @classmethod
    def fit(cls, X: np.ndarray, names: list[str], event_types: Sequence[str], seed: int, n_estimators: int = 200) -> FeatureDetector:
        """Fit on a feature matrix of reference sessions (`features.feature_matrix(sessions, event_types)`)."""
        if len(X) < 2:
            raise SeqriskError(f"the second detector needs at least 2 reference sessions, got {len(X)}")
        pipeline = make_pipeline(StandardScaler(), IsolationForest(n_estimators=n_estimators, random_state=seed)).fit(X)
        center = np.median(X, axis=0)
        spread = 1.4826 * np.median(np.abs(X - center), axis=0)
        spread = np.where(spread > 1e-9, spread, X.std(axis=0))
        return cls(pipeline, list(event_types), list(names), center, np.where(spread > 1e-9, spread, 1.0))

    def matrix(self, sessions: pd.DataFrame) -> np.ndarray:
        return feature_matrix(sessions, self.event_types)[0]

    def risk(self, X: np.ndarray) -> np.ndarray:
        """Higher means more anomalous (minus scikit-learn's normality score)."""
        return -self.pipeline.score_samples(X) if len(X) else np.zeros(0)

    def deviations(self, X: np.ndarray) -> np.ndarray:
        """Robust z-score of every feature against the reference sample: (n_sessions, n_features)."""
        return (X - self.center) / self.spread

    def to_bytes(self) -> bytes:
        state = {
            "pipeline": self.pipeline,
            "event_types": self.event_types,
            "feature_names": self.feature_names,
            "center": self.center,
            "spread": self.spread,
        }
        return sio.dumps(state)

    @classmethod
    def from_bytes(cls, data: bytes) -> FeatureDetector:
        state = sio.loads(data, trusted=TRUSTED_TYPES)
        return cls(state["pipeline"], list(state["event_types"]), list(state["feature_names"]), state["center"], state["spread"])
