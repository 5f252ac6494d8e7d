"""Reason codes and actions: the stable strings a risk row carries, and how evidence maps to them.

Codes never change meaning; new evidence gets a new code. docs/scoring.md documents each one.
"""

from __future__ import annotations

import numpy as np

REASONS = {
    "rare_transition": "the sequence model found the order of events unlikely (the events alone reach the sequence percentile score.reason_percentile)",
    "unusual_rhythm": "the sequence model found the time between events unlikely for those events, step after step (the gaps alone reach the sequence percentile score.reason_percentile)",
    "unseen_event": "the session holds an event type the model's vocabulary has never seen",
    "unusual_event_counts": "the session's counts of each event type are unlike normal sessions' (count percentile at or above score.reason_percentile): a step missing, repeated or out of proportion",
    "unseen_combination": "the session holds two events that no reference session holds together (with unusual_event_counts): a step each normal session may take, but never both",
    "unseen_sequence": "runs of events that no reference session holds make up an unusual share of the session (n-gram percentile at or above score.reason_percentile)",
    "duplicate_sequence": "at least score.duplicate_min_users users played this exact sequence of events and items, or another user played it and it is unusually long",
    "bot_like_timing": "time gaps between events unusually short, long or regular",
    "velocity_burst": "unusually many events, or events per minute, or an unusual duration",
    "broad_browsing": "unusually many distinct items, categories or event types",
    "cart_purchase_anomaly": "unusual cart or purchase counts or purchase value",
    "unusual_event_mix": "an unusual share of some event type",
}
ACTIONS = ("allow", "review", "step_up_auth", "block")  # weakest to strongest

# Which session feature (as named by features.feature_matrix) points to which reason.
_FEATURE_REASONS = {
    "log1p_n_events": "velocity_burst",
    "log1p_duration_s": "velocity_burst",
    "log1p_events_per_minute": "velocity_burst",
    "log1p_distinct_event_types": "broad_browsing",
    "log1p_distinct_items": "broad_browsing",
    "log1p_distinct_categories": "broad_browsing",
    "log1p_cart_count": "cart_purchase_anomaly",
    "log1p_purchase_count": "cart_purchase_anomaly",
    "log1p_purchase_value": "cart_purchase_anomaly",
    "log1p_gap_mean_s": "bot_like_timing",
    "log1p_gap_std_s": "bot_like_timing",
    "log1p_gap_min_s": "bot_like_timing",
    "log1p_gap_median_s": "bot_like_timing",
    "log1p_gap_max_s": "bot_like_timing",
    "gap_cv": "bot_like_timing",
    "log1p_users_with_sequence": "duplicate_sequence",
    "log1p_shared_sequence_events": "duplicate_sequence",
    "hour_sin": None,  # the hour feeds the detector, but on a circle no single hour is far from the median
    "hour_cos": None,
}


def feature_reason(name: str) -> str | None:
    """The reason a feature's deviation stands for (`share_<type>` features: the event mix)."""
    return _FEATURE_REASONS.get(name, "unusual_event_mix")


def feature_reasons(deviations: np.ndarray, names: list[str], flagged: np.ndarray, z: float, most: int = 2) -> list[list[str]]:
    """Per session: the reasons of its (at most `most`) features deviating by at least `z`, strongest first.

    A session the feature detector `flagged` (its percentile is high) is explained by deviations of
    `z` or more; any session by deviations of `2 z` or more, which are evidence by themselves (an
    IsolationForest scores a point far outside the reference range like the range's edge).
    """
    out: list[list[str]] = []
    strength = np.abs(deviations)
    for row in range(len(deviations)):
        found: list[str] = []
        needed = z if flagged[row] else 2 * z
        for column in np.argsort(-strength[row], kind="stable"):
            if strength[row, column] < needed or len(found) >= most:
                break
            reason = feature_reason(names[column])
            if reason is not None and reason not in found:
                found.append(reason)
        out.append(found)
    return out
