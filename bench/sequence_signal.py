"""Where the sequence model's signal goes: per-step surprises of a trained model, aggregated several ways.

usage: python bench/sequence_signal.py --model DIR --lake LAKE --labels CSV [--reference LAKE] [--top-g 1 3 5 9]

Scores every session of LAKE with the model directory's sequence model and turns each session's
per-step surprises into a session score several ways: the largest surprise (seqrisk's sequence
score), the mean, the share of steps the model ranked below its top g (DeepLog's rule, Du et al.
2017), and the share of steps the model found less likely than 1 in 1,000. Beside them, STIDE-n
(the share of a session's length-n windows of events no session of the reference lake holds,
Forrest et al. 1996; the reference defaults to LAKE itself). Every score is evaluated on the
sessions as stored (pieces of sessions longer than `sessionize.max_events` apart, each with its
source session's label) and on whole source sessions (the pieces' steps put back together).
Prints ROC AUC and recall at a 1 % false-alarm rate (the normal sessions' 99th percentile) as
a Markdown table. Sessions are read to the driver: a benchmark for development-sized lakes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

import peers  # bench/peers.py
from seqrisk.config import load_config
from seqrisk.detectors.calibration import Calibration
from seqrisk.detectors.combination import corroborated
from seqrisk.detectors.sequence_evidence import session_steps
from seqrisk.evaluation.labels import label_sessions, read_labels
from seqrisk.lake.lake import Lake
from seqrisk.registry.model_store import fetch
from seqrisk.scoring.risk_model import load_risk_model
from seqrisk.sessions.vocabulary import RARE, UNK, encode_sessions
from seqrisk.sessions.windows import TOKEN_INPUTS
from seqrisk.spark import get_spark

REPO = Path(__file__).resolve().parents[1]
UNLIKELY = np.log(1000.0)  # a step the model gave less than 1 in 1,000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model directory")
    parser.add_argument("--lake", required=True, help="the lake whose sessions are scored")
    parser.add_argument("--labels", required=True)
    parser.add_argument("--reference", help="the lake STIDE's windows are counted in (default: --lake)")
    parser.add_argument("--top-g", nargs="+", type=int, default=[1, 3, 5, 9])
    parser.add_argument("--ngrams", nargs="+", type=int, default=[3, 6, 10])
    parser.add_argument("--combine", nargs="*", default=[], metavar="A+B", help="statistics combined as seqrisk combines its detectors")
    args = parser.parse_args()
    spark = get_spark(load_config(REPO / "conf" / "local.yaml").spark)
    sessions = read_sessions(spark, args.lake, args.labels)
    reference = read_sessions(spark, args.reference, None) if args.reference else sessions
    model = load_risk_model(fetch(spark, args.model))
    wholes = sessions.groupby("whole", sort=True)
    whole_anomalous = wholes["anomalous"].max()
    pieces_of = [wholes.indices[key] for key in whole_anomalous.index]
    whole_anomalous = whole_anomalous.to_numpy()
    rules = statistics(args.top_g)
    scores = aggregations(model_steps(model, sessions), len(sessions), pieces_of, rules)
    for n in args.ngrams:
        scores[f"STIDE-{n} (no model)"] = stide(sessions, reference, pieces_of, n)
    print(f"{len(sessions):,} sessions ({len(pieces_of):,} source sessions), {int(whole_anomalous.sum()):,} anomalous sources\n")
    print("| session score | pieces: ROC AUC | recall at 1 % FAR | whole sessions: ROC AUC | recall at 1 % FAR |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (per_piece, per_whole) in scores.items():
        print(row(name, sessions["anomalous"].to_numpy(), per_piece, whole_anomalous, per_whole))
    if args.combine:
        on_reference = aggregations(model_steps(model, reference), len(reference), [], rules)
        for n in args.ngrams:
            on_reference[f"STIDE-{n} (no model)"] = (cross_fitted_stide(reference, n), None)
        calibration = Calibration.fit({name: piece for name, (piece, _) in on_reference.items()})
        for names in args.combine:
            combined = corroborated([calibration.surprisal(name, scores[name][0]) for name in names.split("+")])
            per_whole = np.array([combined[rows].max() for rows in pieces_of])
            print(row(f"combined: {names}", sessions["anomalous"].to_numpy(), combined, whole_anomalous, per_whole))


def model_steps(model, sessions: pd.DataFrame) -> dict:
    loaded = model.loaded
    return {
        s.row: s
        for s in session_steps(
            encode_sessions(sessions, loaded.vocabulary), loaded.model, length=loaded.model.config.max_len, stride=model.stride
        )
    }


def row(name: str, anomalous: np.ndarray, per_piece: np.ndarray, whole_anomalous: np.ndarray, per_whole: np.ndarray) -> str:
    piece_auc, piece_recall = quality(anomalous, per_piece)
    whole_auc, whole_recall = quality(whole_anomalous, per_whole)
    return f"| {name} | {piece_auc:.3f} | {piece_recall:.3f} | {whole_auc:.3f} | {whole_recall:.3f} |"


def read_sessions(spark, lake_root: str, labels: str | None) -> pd.DataFrame:
    """Sessions in source order with `whole` (the source session a piece belongs to) and `anomalous`."""
    config = load_config(REPO / "conf" / "local.yaml", [f"tables.root={lake_root}"])
    frame = Lake.open(spark, config.tables).read("sessions")
    if labels:
        frame = label_sessions(frame, read_labels(spark, labels))
    else:
        frame = frame.withColumn("anomaly_type", F.lit(None).cast("string"))
    columns = ["session_id", "source_session_id", "session_start", *TOKEN_INPUTS, "anomaly_type"]
    out = frame.select(*columns).orderBy("session_start", "session_id").toPandas()  # bounded: a development lake
    out["whole"] = out["source_session_id"].fillna(out["session_id"])
    out["anomalous"] = out.groupby("whole")["anomaly_type"].transform(lambda t: t.notna().any())
    return out


def statistics(top_g: list[int]) -> dict[str, Callable]:
    """Ways to turn a session's per-step surprises (and ranks) into one score."""
    return {
        "largest surprise (seqrisk)": lambda nll, rank, unknown: nll.max(),
        "largest surprise at a known event": lambda nll, rank, unknown: nll[~unknown].max(initial=0.0),
        "mean surprise": lambda nll, rank, unknown: nll.mean(),
        "mean of the top 10 %": lambda nll, rank, unknown: _top_mean(nll, max(1, len(nll) // 10)),
        "mean of the top sqrt(n)": lambda nll, rank, unknown: _top_mean(nll, max(1, int(np.sqrt(len(nll))))),
        "share less likely than 1/1000": lambda nll, rank, unknown: (nll > UNLIKELY).mean(),
        **{f"share outside top-{g} (DeepLog)": partial(_share_outside, g=g) for g in top_g},
    }


def aggregations(steps: dict, n_sessions: int, pieces_of: list[np.ndarray], rules: dict[str, Callable]) -> dict[str, tuple]:
    """Each statistic's score per piece, and per whole session (its pieces' steps pooled)."""
    predicted = {row: _predicted(s) for row, s in steps.items()}
    empty = (np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))

    def pooled(rows: np.ndarray) -> tuple:
        parts = [predicted.get(r, empty) for r in rows]
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))

    pieces = [predicted.get(r, empty) for r in range(n_sessions)]
    wholes = [pooled(rows) for rows in pieces_of]

    def scored(rule: Callable, sessions: list[tuple]) -> np.ndarray:
        return np.array([rule(*steps) if len(steps[0]) else 0.0 for steps in sessions])  # no predicted step: 0

    return {name: (scored(rule, pieces), scored(rule, wholes)) for name, rule in rules.items()}


def _top_mean(nll: np.ndarray, k: int) -> float:
    return float(np.sort(nll)[-k:].mean())


def _predicted(steps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The predicted steps' surprise, rank, and whether the event is one the vocabulary folds (<unk>, <rare>)."""
    predicted = ~np.isnan(steps.nll)
    return steps.nll[predicted], steps.rank[predicted], np.isin(steps.tokens[predicted], (UNK, RARE))


def _share_outside(nll: np.ndarray, rank: np.ndarray, unknown: np.ndarray, g: int) -> float:
    return float((rank > g).mean())


def cross_fitted_stide(reference: pd.DataFrame, n: int) -> np.ndarray:
    """STIDE-n of each reference session against the other half of the reference (as a detector's calibration is fitted)."""
    half = np.arange(len(reference)) % 2 == 0
    out = np.zeros(len(reference))
    for part in (half, ~half):
        out[part] = stide(reference[part], reference[~part], [], n)[0]
    return out


def stide(sessions: pd.DataFrame, reference: pd.DataFrame, pieces_of: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """STIDE-n (`peers.stide`) of each session against the reference: pieces, and whole sessions."""
    known = [list(e) for e in reference["event_types"]]
    events = [list(e) for e in sessions["event_types"]]
    whole = [[x for r in rows for x in events[r]] for rows in pieces_of]
    return peers.stide(known, events, n), peers.stide(known, whole, n) if whole else np.zeros(0)


def quality(anomalous: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """ROC AUC, and recall at the normal sessions' 99th percentile."""
    threshold = np.quantile(scores[~anomalous], 0.99)
    return roc_auc_score(anomalous, scores), float((scores[anomalous] > threshold).mean())


if __name__ == "__main__":
    main()
