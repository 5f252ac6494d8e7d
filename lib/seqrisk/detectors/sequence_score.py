"""The sequence detector's raw score: the more extreme of two statistics of the model's per-step surprises.

The surprise of a session's most surprising step marks one step out of place (a credential change,
an unseen event, a missing last step) however ordinary the rest; on the clickstreams and HDFS logs
it carries the signal that a session's mean surprise loses, because scripts are more predictable
than people. Over a long session the largest step is a poor witness: a long normal trace meets one
very unlikely step as often as an attack does, and what sets the attack apart is an unlikely order
throughout, the mean surprise (system-call traces; docs/detectors.md, "Long sessions: the mean
surprise speaks too").

So each statistic is ranked on the reference (`Calibration`): the largest step among all reference
sessions, the mean among the reference sessions of at least LONG_STEPS predicted steps. A session's
raw score is the larger of its two surprisals, the mean's counting only when the session is that
long; the detector's calibration then ranks that raw score on the reference like any detector's.
Where the reference holds fewer than MIN_LONG_REFERENCE long sessions the mean is not ranked (too
few to rank against) and the largest step speaks alone, as it did before. Stored as
`sequence_score.npz` (the two statistics' reference quantiles, no pickle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqrisk.detectors.calibration import Calibration
from seqrisk.detectors.sequence_evidence import SequenceEvidence

LONG_STEPS = 64  # predicted steps from which a session's mean surprise is ranked (two windows of the default 32)
MIN_LONG_REFERENCE = 100  # long reference sessions needed to rank the mean


@dataclass(frozen=True)
class SequenceScore:
    statistics: Calibration  # reference quantiles of "largest" and, where the reference has enough long sessions, "mean"

    @classmethod
    def fit(cls, reference: SequenceEvidence) -> SequenceScore:
        """Rank the reference sessions' largest step, and their mean surprise where enough of them are long."""
        quantiles = {"largest": reference.score}
        long = reference.steps >= LONG_STEPS
        if long.sum() >= MIN_LONG_REFERENCE:
            quantiles["mean"] = reference.mean[long]
        return cls(Calibration.fit(quantiles))

    @property
    def ranks_mean(self) -> bool:
        return "mean" in self.statistics.quantiles

    def risk(self, evidence: SequenceEvidence) -> np.ndarray:
        """Per session, the larger surprisal of its largest step and (long sessions only) its mean surprise."""
        largest = self.statistics.surprisal("largest", evidence.score)
        if not self.ranks_mean:
            return largest
        mean = np.where(evidence.steps >= LONG_STEPS, self.statistics.surprisal("mean", evidence.mean), 0.0)
        return np.maximum(largest, mean)

    def to_bytes(self) -> bytes:
        return self.statistics.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SequenceScore:
        return cls(Calibration.from_bytes(data))
