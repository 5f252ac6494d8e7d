"""The sequence detector's raw score: the most extreme of its order's and its rhythm's statistics.

The order: the surprise of a short session's most surprising step marks one step out of place (a
credential change, an unseen event, a missing last step) however ordinary the rest; on the
clickstreams and HDFS logs it carries the signal that a session's mean surprise loses, because
scripts are more predictable than people. Over a long session the largest step is a poor witness:
a long normal trace meets one very unlikely step as often as an attack does, and what sets the
attack apart is an unlikely order throughout, the mean surprise, which alone speaks for a session
of LONG_STEPS predicted steps or more (system-call traces; docs/detectors.md, "Long sessions: the
mean surprise alone"). The rhythm is the second: the model also predicts each step's time gap given
its event, and a script that pages through a hotel's images every two seconds for minutes, where
people pause, is unlikely at every step without any one step standing out (the mean surprise of
the gaps; docs/detectors.md, "The rhythm of events"). The model reads the history, so it learns a
script's rhythm within the session; a table of p(gap | event), which reads none, gives two more:
the gaps' mean surprise under it, and the session's most unlikely count of one event's quick
repeats (`gap_table.py`; docs/detectors.md, "The rhythm without context").

So each statistic is ranked on the reference (`Calibration`): the largest step among all reference
sessions, the mean among the reference sessions of at least LONG_STEPS predicted steps, each gaps'
mean among those of at least TIMED_STEPS gaps, the quick repeats among all (a binomial tail weighs
its own evidence: one quick gap says little). A session's raw score is the largest of its order's
surprisal (its mean's if it is long, else its largest step's) and its rhythm's, each gaps' mean
counting only when the session has that many gaps; the detector's calibration then ranks that raw
score on the reference like any detector's. Where the reference holds fewer than
MIN_LONG_REFERENCE sessions long enough, a mean is not ranked (too few to rank against: the largest
step speaks for every session); nor is a gaps' mean whose reference median is under FORESEEN
(machine traces, events milliseconds apart, where its ranks would only order rounding noise), nor
the quick repeats where the table's mean is not ranked (the same traces: every gap quick). Stored as
`sequence_score.npz` (the statistics' reference quantiles and the gap table, no pickle).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from seqrisk.detectors.calibration import Calibration
from seqrisk.detectors.gap_table import GapSurprise, GapTable
from seqrisk.detectors.sequence_evidence import SequenceEvidence

LONG_STEPS = 64  # predicted steps from which a session's mean surprise is ranked (two windows of the default 32)
TIMED_STEPS = 8  # steps with a gap from which the mean surprise of a session's gaps is ranked
MIN_LONG_REFERENCE = 100  # reference sessions long enough needed to rank a mean
FORESEEN = 0.1  # nats: a median gaps' surprise under this (the observed gap at about 90 %) carries no evidence
GAP_TABLE = "gap_table"  # the stored gap table's name beside the quantiles


@dataclass(frozen=True)
class SequenceScore:
    statistics: Calibration  # reference quantiles of "largest" and, where they can be ranked, "mean", "timing", "free_timing", "quick"
    gap_table: GapTable  # p(gap | token), counted on the reference sample

    @classmethod
    def fit(cls, reference: SequenceEvidence, free: GapSurprise, gap_table: GapTable) -> SequenceScore:
        """Rank the reference sessions' largest step, and the means where enough of them are long enough.

        `free`: the reference sessions' gaps under a gap table they were not counted in (cross-fitted).
        """
        quantiles = {"largest": reference.score}
        long = reference.steps >= LONG_STEPS
        if long.sum() >= MIN_LONG_REFERENCE:
            quantiles["mean"] = reference.mean[long]
        for name, mean, gaps in (("timing", reference.timing, reference.timed), ("free_timing", free.mean, free.gaps)):
            timed = mean[gaps >= TIMED_STEPS]
            if len(timed) >= MIN_LONG_REFERENCE and np.median(timed) >= FORESEEN:
                quantiles[name] = timed
        if "free_timing" in quantiles:
            quantiles["quick"] = free.quick
        return cls(Calibration.fit(quantiles), gap_table)

    @property
    def ranks_mean(self) -> bool:
        return "mean" in self.statistics.quantiles

    @property
    def ranks_timing(self) -> bool:
        return "timing" in self.statistics.quantiles

    @property
    def ranks_free_timing(self) -> bool:
        return "free_timing" in self.statistics.quantiles

    def parts(self, evidence: SequenceEvidence, free: GapSurprise) -> tuple[np.ndarray, np.ndarray]:
        """Per session, (order, rhythm): the surprisal of its mean surprise if it is long (where ranked), else of its
        largest step; and the largest of its gaps' mean surprises, the model's and the table's (`free`; sessions
        with enough gaps, where ranked; else 0), and its quick repeats' (where ranked)."""
        order = self.statistics.surprisal("largest", evidence.score)
        if self.ranks_mean:
            order = np.where(evidence.steps >= LONG_STEPS, self.statistics.surprisal("mean", evidence.mean), order)
        rhythm = np.zeros(len(order))
        for name, mean, gaps in (("timing", evidence.timing, evidence.timed), ("free_timing", free.mean, free.gaps)):
            if name in self.statistics.quantiles:
                rhythm = np.maximum(rhythm, np.where(gaps >= TIMED_STEPS, self.statistics.surprisal(name, mean), 0.0))
        if "quick" in self.statistics.quantiles:
            rhythm = np.maximum(rhythm, self.statistics.surprisal("quick", free.quick))
        return order, rhythm

    def risk(self, evidence: SequenceEvidence, free: GapSurprise) -> np.ndarray:
        """Per session, the larger of its order's and its rhythm's surprisal (`parts`)."""
        return np.maximum(*self.parts(evidence, free))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **self.statistics.quantiles, **{GAP_TABLE: self.gap_table.log_p})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SequenceScore:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        return cls(Calibration({name: q for name, q in arrays.items() if name != GAP_TABLE}), GapTable(arrays[GAP_TABLE]))
