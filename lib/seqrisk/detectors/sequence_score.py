"""The sequence detector's raw score: the most extreme of three statistics of the model's per-step surprises.

The surprise of a session's most surprising step marks one step out of place (a credential change,
an unseen event, a missing last step) however ordinary the rest; on the clickstreams and HDFS logs
it carries the signal that a session's mean surprise loses, because scripts are more predictable
than people. Over a long session the largest step is a poor witness: a long normal trace meets one
very unlikely step as often as an attack does, and what sets the attack apart is an unlikely order
throughout, the mean surprise (system-call traces; docs/detectors.md, "Long sessions: the mean
surprise speaks too"). The rhythm is the third: the model also predicts each step's time gap given
its event, and a script that pages through a hotel's images every two seconds for minutes, where
people pause, is unlikely at every step without any one step standing out (the mean surprise of
the gaps; docs/detectors.md, "The rhythm of events").

So each statistic is ranked on the reference (`Calibration`): the largest step among all reference
sessions, the mean among the reference sessions of at least LONG_STEPS predicted steps, the gaps'
mean among those of at least TIMED_STEPS. A session's raw score is the largest of its surprisals,
each mean counting only when the session is that long; the detector's calibration then ranks that
raw score on the reference like any detector's. Where the reference holds fewer than
MIN_LONG_REFERENCE sessions long enough, a mean is not ranked (too few to rank against); nor is the
gaps' mean where the model foresees the gaps (a reference median under FORESEEN: machine traces,
events milliseconds apart, where its ranks would only order rounding noise). Stored as
`sequence_score.npz` (the statistics' reference quantiles, no pickle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqrisk.detectors.calibration import Calibration
from seqrisk.detectors.sequence_evidence import SequenceEvidence

LONG_STEPS = 64  # predicted steps from which a session's mean surprise is ranked (two windows of the default 32)
TIMED_STEPS = 8  # steps with a gap from which the mean surprise of a session's gaps is ranked
MIN_LONG_REFERENCE = 100  # reference sessions long enough needed to rank a mean
FORESEEN = 0.1  # nats: a median gaps' surprise under this (the observed gap at about 90 %) carries no evidence


@dataclass(frozen=True)
class SequenceScore:
    statistics: Calibration  # reference quantiles of "largest" and, where they can be ranked, "mean" and "timing"

    @classmethod
    def fit(cls, reference: SequenceEvidence) -> SequenceScore:
        """Rank the reference sessions' largest step, and the means where enough of them are long enough."""
        quantiles = {"largest": reference.score}
        long = reference.steps >= LONG_STEPS
        if long.sum() >= MIN_LONG_REFERENCE:
            quantiles["mean"] = reference.mean[long]
        timed = reference.timing[reference.timed >= TIMED_STEPS]
        if len(timed) >= MIN_LONG_REFERENCE and np.median(timed) >= FORESEEN:
            quantiles["timing"] = timed
        return cls(Calibration.fit(quantiles))

    @property
    def ranks_mean(self) -> bool:
        return "mean" in self.statistics.quantiles

    @property
    def ranks_timing(self) -> bool:
        return "timing" in self.statistics.quantiles

    def parts(self, evidence: SequenceEvidence) -> tuple[np.ndarray, np.ndarray]:
        """Per session, (order, rhythm): the larger surprisal of its largest step and (long sessions only) its
        mean surprise; and its gaps' mean surprise's (sessions with enough gaps, where ranked; else 0)."""
        order = self.statistics.surprisal("largest", evidence.score)
        if self.ranks_mean:
            order = np.maximum(order, np.where(evidence.steps >= LONG_STEPS, self.statistics.surprisal("mean", evidence.mean), 0.0))
        rhythm = np.zeros(len(order))
        if self.ranks_timing:
            rhythm = np.where(evidence.timed >= TIMED_STEPS, self.statistics.surprisal("timing", evidence.timing), 0.0)
        return order, rhythm

    def risk(self, evidence: SequenceEvidence) -> np.ndarray:
        """Per session, the larger of its order's and its rhythm's surprisal (`parts`)."""
        return np.maximum(*self.parts(evidence))

    def to_bytes(self) -> bytes:
        return self.statistics.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SequenceScore:
        return cls(Calibration.from_bytes(data))
