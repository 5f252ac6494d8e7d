"""The replay detector: a long sequence of events and items that another user played too.

Scripts replay recorded sessions, and click farms run one script across their accounts; people
almost never repeat another user's long session click for click. On a real clickstream 7 of
14,098 normal sessions hold 5 events or more and share their (type, item) sequence with another
user, while every scripted replay does (docs/detectors.md, "Scripted replays"). The feature
detector reads the same length as one feature among about forty, which moves an IsolationForest
little; here it is a score of its own: a session's event count when it has at least MIN_EVENTS
events and another user of the scored dates played the same sequence (`users_with_sequence`),
0 otherwise. Nothing is fitted; the calibration ranks it on the reference (`calibration.EXACT`).

Where identical long sequences are the domain's normal (machine traces: HDFS blocks, system
calls of one program), the score says nothing: the detector abstains (weight 0 in the
combination) when more than MAX_SHARE of the reference's sessions score above 0. Its percentile
is still reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqrisk.sessions.features import shared_sequence_events

MIN_EVENTS = 5  # shorter shared sequences are common by chance (one view of a popular item)
MAX_SHARE = 0.01  # above this share of long shared sequences in the reference, the detector abstains


def replay_risk(sessions: pd.DataFrame) -> np.ndarray:
    """Per session, its event count when it is a long sequence another user played too, else 0."""
    shared = shared_sequence_events(sessions)
    return np.where(shared >= MIN_EVENTS, shared, 0.0)


def abstains(reference_risk: np.ndarray) -> bool:
    """True where long shared sequences are too common in the reference to be evidence."""
    return bool(np.mean(np.asarray(reference_risk) > 0) > MAX_SHARE)
