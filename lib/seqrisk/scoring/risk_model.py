"""Scoring sessions with a model directory: pandas in, risk rows out (what the scoring UDF runs).

Five detectors score each session: the sequence model (surprise of the most surprising step, for
a long session its mean surprise instead, or its gaps' where that ranks higher: `sequence_score.py`),
the IsolationForest over session features, the count detector over token counts, the n-gram
detector (the share of runs of tokens no reference session holds), and the replay detector (the
length of a long sequence another user played too). The
calibration turns each raw score into its surprisal on the reference population (-log10 of the
share of reference sessions scoring as high; 2 means 1 in 100); the session's `score` is the
largest of the five plus half the second and a quarter of the third (`combination.py`; weighted when the model was
trained with labels), and `risk_pct` is that score's percentile among the reference population's
scores. Reasons come from the evidence (docs/scoring.md), and the
risk-action policy of the config turns level and reasons into an action.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import torch
from pyspark import Broadcast
from pyspark.sql import DataFrame

from seqrisk.detectors.calibration import Calibration, to_percentile
from seqrisk.detectors.combination import DETECTORS, Combination
from seqrisk.detectors.count_detector import CountDetector, count_matrix
from seqrisk.detectors.feature_detector import FeatureDetector
from seqrisk.detectors.fitting import surprisals
from seqrisk.detectors.ngram_detector import NgramDetector
from seqrisk.detectors.reasons import feature_reasons
from seqrisk.detectors.replay_detector import replay_risk
from seqrisk.detectors.sequence_evidence import SequenceEvidence, session_evidence
from seqrisk.detectors.sequence_score import SequenceScore
from seqrisk.errors import SeqriskError
from seqrisk.lake.contracts import SESSION_RISK
from seqrisk.model.model_dir import (
    CALIBRATION,
    COMBINATION,
    COUNT_DETECTOR,
    FEATURE_DETECTOR,
    NGRAM_DETECTOR,
    SEQUENCE_SCORE,
    LoadedModel,
    ModelDir,
    load_model,
)
from seqrisk.model.sequence_model import SequenceModel
from seqrisk.scoring.settings import ScoreConfig
from seqrisk.sessions.features import FEATURE_COLUMNS, item_revisits, with_sequence_users
from seqrisk.sessions.vocabulary import Vocabulary, encode_sessions
from seqrisk.sessions.windows import TOKEN_INPUTS

# Session columns the scorer reads (after features.with_sequence_users).
INPUT_COLUMNS = ("session_id", "user_id", "session_date", "session_start", "session_end", "n_events", *TOKEN_INPUTS, "users_with_sequence")


@dataclass
class RiskModel:
    """Everything in a model directory that scoring needs, loaded and verified."""

    loaded: LoadedModel
    detector: FeatureDetector
    counts: CountDetector
    ngrams: NgramDetector
    sequence: SequenceScore
    calibration: Calibration
    combination: Combination

    @property
    def version(self) -> str:
        return self.loaded.version

    @property
    def stride(self) -> int:
        return int(self.loaded.manifest["windows"]["stride"])


@dataclass
class RawScores:
    evidence: SequenceEvidence
    order_risk: np.ndarray  # the sequence detector's two parts (`SequenceScore.parts`); its score is the larger
    rhythm_risk: np.ndarray
    feature_risk: np.ndarray
    deviations: np.ndarray
    count_risk: np.ndarray
    unseen_pairs: np.ndarray  # token pairs no reference session held together (count detector)
    ngram_risk: np.ndarray
    unseen_runs: np.ndarray  # runs of tokens no reference session holds (n-gram detector)
    replay_risk: np.ndarray

    def by_detector(self) -> dict[str, np.ndarray]:
        return {
            "sequence": np.maximum(self.order_risk, self.rhythm_risk),
            "feature": self.feature_risk,
            "count": self.count_risk,
            "ngram": self.ngram_risk,
            "replay": self.replay_risk,
        }


def scorer_input(sessions: DataFrame) -> DataFrame:
    """What the scorer reads of each session (a Spark DataFrame): the sequence, the features, users per sequence, item revisits.

    Shuffle: by sequence hash.
    """
    return with_sequence_users(sessions).select(*dict.fromkeys([*INPUT_COLUMNS, *FEATURE_COLUMNS]), item_revisits())


def load_risk_model(directory: ModelDir) -> RiskModel:
    """Verify a model directory (checksums first) and load it; a clear error if it cannot score."""
    loaded = load_model(directory)
    return RiskModel(
        loaded,
        FeatureDetector.from_bytes(directory.read(FEATURE_DETECTOR)),
        CountDetector.from_bytes(directory.read(COUNT_DETECTOR)),
        NgramDetector.from_bytes(directory.read(NGRAM_DETECTOR)),
        SequenceScore.from_bytes(directory.read(SEQUENCE_SCORE)),
        Calibration.from_bytes(directory.read(CALIBRATION)),
        Combination.from_bytes(directory.files.get(COMBINATION)),
    )


def raw_scores(
    sessions: pd.DataFrame,
    model: SequenceModel,
    vocabulary: Vocabulary,
    detector: FeatureDetector,
    counts: CountDetector,
    ngrams: NgramDetector,
    sequence: SequenceScore,
    stride: int,
    settings: ScoreConfig,
) -> RawScores:
    """The five detectors' raw scores for a pandas batch of sessions (GPU for the model when there is one)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoded = encode_sessions(sessions, vocabulary)  # every detector reads the same token and gap bucket ids
    evidence = session_evidence(
        sessions,
        encoded,
        model,
        vocabulary,
        length=model.config.max_len,
        stride=stride,
        batch_windows=settings.batch_windows,
        top_k=settings.top_events,
        device=device,
    )
    X = detector.matrix(sessions)
    C = count_matrix(encoded.tokens, sessions["item_revisits"], vocabulary, counts.token_columns)
    unseen = counts.unseen_pairs(C)  # in the count risk and in the reasons: computed once
    ngram_risk, unseen_runs = ngrams.risk(encoded.tokens)
    free = sequence.gap_table.surprise(*encoded)
    return RawScores(
        evidence,
        *sequence.parts(evidence, free),
        detector.risk(X),
        detector.deviations(X),
        counts.risk(C, unseen),
        unseen,
        ngram_risk,
        unseen_runs,
        replay_risk(sessions),
    )


def risk_levels(risk_pct: np.ndarray, settings: ScoreConfig, combination: Combination) -> np.ndarray:
    """low / medium / high; the `high` cut-off is the model's when labels set one."""
    high = combination.high(settings.levels.high)
    medium = min(settings.levels.medium, high)
    return np.where(risk_pct >= high, "high", np.where(risk_pct >= medium, "medium", "low"))


def risk_frame(sessions: pd.DataFrame, model: RiskModel, settings: ScoreConfig, run_id: str, scored_at: datetime) -> pd.DataFrame:
    """session_risk rows for a pandas batch of sessions (columns INPUT_COLUMNS)."""
    raw = raw_scores(
        sessions,
        model.loaded.model,
        model.loaded.vocabulary,
        model.detector,
        model.counts,
        model.ngrams,
        model.sequence,
        model.stride,
        settings,
    )
    by_detector = surprisals(model.calibration, raw.by_detector())
    pct = {name: to_percentile(by_detector[name]) for name in DETECTORS}
    score = model.combination.score(by_detector)
    risk_pct = model.calibration.percentile("combined", score)
    levels = risk_levels(risk_pct, settings, model.combination)
    pct |= {
        part: model.calibration.percentile("sequence", values) for part, values in (("order", raw.order_risk), ("rhythm", raw.rhythm_risk))
    }
    reasons = session_reasons(sessions, raw, pct, model.detector.feature_names, settings)
    return pd.DataFrame(
        {
            "session_id": sessions["session_id"].to_numpy(),
            "user_id": sessions["user_id"].to_numpy(),
            "session_date": sessions["session_date"].to_numpy(),
            "session_start": sessions["session_start"].to_numpy(),
            "session_end": sessions["session_end"].to_numpy(),
            "n_events": sessions["n_events"].to_numpy(),
            "score": score,
            "risk_pct": risk_pct,
            "risk_level": levels,
            "reasons": reasons,
            "top_events": raw.evidence.top_events,
            "action": [action_for(level, found, settings) for level, found in zip(levels, reasons)],
            **{f"{name}_pct": pct[name] for name in DETECTORS},
            "model_version": model.version,
            "scored_at": pd.Timestamp(scored_at),  # naive UTC, as Spark's UTC session hands timestamps over
            "run_id": run_id,
        },
        columns=SESSION_RISK.fieldNames(),
    )


def session_reasons(
    sessions: pd.DataFrame,
    raw: RawScores,
    pct: dict[str, np.ndarray],
    names: list[str],
    settings: ScoreConfig,
) -> list[list[str]]:
    """Reason codes per session, in a fixed order: sequence evidence first, then the features' (`pct`: by detector,
    and the sequence detector's two parts, "order" and "rhythm", each as the detector's percentile)."""
    flagged = {name: values >= settings.reason_percentile for name, values in pct.items()}
    from_features = feature_reasons(raw.deviations, names, flagged["feature"], settings.reason_z)
    duplicated = (sessions["users_with_sequence"].to_numpy() >= settings.duplicate_min_users) & (
        sessions["n_events"].to_numpy() >= settings.duplicate_min_events
    ) | (flagged["replay"] & (raw.replay_risk > 0))
    out = []
    for row in range(len(sessions)):
        found = []
        if flagged["order"][row]:
            found.append("rare_transition")
        if flagged["rhythm"][row]:
            found.append("unusual_rhythm")
        if raw.evidence.unseen[row] > 0:
            found.append("unseen_event")
        if flagged["ngram"][row] and raw.unseen_runs[row] > 0:
            found.append("unseen_sequence")
        if duplicated[row]:
            found.append("duplicate_sequence")
        if flagged["count"][row]:
            found.append("unusual_event_counts")
            if raw.unseen_pairs[row] > 0:
                found.append("unseen_combination")
        found += [r for r in from_features[row] if r not in found]
        out.append(found)
    return out


def action_for(level: str, reasons: list[str], settings: ScoreConfig) -> str:
    """The first policy rule that matches the level and (any of) the reasons."""
    for rule in settings.policy:
        if (rule.level is None or rule.level == level) and (not rule.any_reason or set(rule.any_reason) & set(reasons)):
            return rule.action
    raise SeqriskError("no policy rule matched; the last rule must have no conditions")  # config validation prevents this


_LOADED: dict[str, RiskModel] = {}


def score_batches(
    batches: Iterator[pd.DataFrame], model: Broadcast, settings: ScoreConfig, run_id: str, scored_at: datetime
) -> Iterator[pd.DataFrame]:
    """`mapInPandas` body: the broadcast model directory is verified and loaded once per Python worker.

    The checksums are checked here again, on the executor, against the manifest the driver verified.
    """
    directory: ModelDir = model.value
    risk_model = _LOADED.get(directory.fingerprint)
    if risk_model is None:
        risk_model = _LOADED[directory.fingerprint] = load_risk_model(directory)
    for batch in batches:
        yield risk_frame(batch, risk_model, settings, run_id, scored_at)
