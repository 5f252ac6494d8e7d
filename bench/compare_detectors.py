"""Compare candidate second detectors on labeled sessions (evidence for choosing the default).

usage: python bench/compare_detectors.py --lake demo/lake --labels demo/raw/labels.csv [--sample 200000]
Fits each detector, without labels, on (a sample of) the lake's sessions; then scores every session
and prints ROC AUC and PR AUC (anomalous against normal sessions) and ROC AUC per anomaly type (that
type's sessions against normal ones), as a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from seqrisk.config import load_config
from seqrisk.evaluation.labels import label_sessions, read_labels
from seqrisk.lake.lake import Lake
from seqrisk.sessions import vocabulary_store
from seqrisk.sessions.features import FEATURE_COLUMNS, detectors, feature_matrix, with_sequence_users
from seqrisk.sessions.vocabulary import SPECIAL
from seqrisk.spark import get_spark

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--sample", type=int, default=200_000, help="sessions to fit on, at most")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = load_config(REPO / "conf" / "local.yaml", [f"tables.root={args.lake}"])
    spark = get_spark(config.spark)
    lake = Lake.open(spark, config.tables)
    sessions = with_sequence_users(lake.read("sessions"))
    labeled = label_sessions(sessions, read_labels(spark, args.labels))
    frame = labeled.select(*FEATURE_COLUMNS, "anomaly_type").toPandas()  # bounded: a benchmark on a demo-sized lake
    event_types = [t for t in vocabulary_store.load(spark, lake.path("vocabulary")).tokens if t not in SPECIAL]
    X, _ = feature_matrix(frame, event_types)
    anomalous = frame["anomaly_type"].notna().to_numpy()
    rng = np.random.default_rng(args.seed)
    fit_rows = rng.choice(len(X), size=min(args.sample, len(X)), replace=False)
    types = sorted(frame["anomaly_type"].dropna().unique())
    print(f"{len(X):,} sessions, {anomalous.sum():,} anomalous; fitted on {len(fit_rows):,}, without labels\n")
    print("| detector | ROC AUC | PR AUC | " + " | ".join(types) + " | fit s |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in types) + " | ---: |")
    for name, detector in detectors(args.seed).items():
        started = time.perf_counter()
        detector.fit(X[fit_rows])
        seconds = time.perf_counter() - started
        risk = detector.risk(X)
        per_type = []
        for kind in types:
            rows = (frame["anomaly_type"] == kind).to_numpy() | ~anomalous
            per_type.append(roc_auc_score(frame["anomaly_type"][rows] == kind, risk[rows]))
        print(
            f"| {name} | {roc_auc_score(anomalous, risk):.3f} | {average_precision_score(anomalous, risk):.3f} | "
            + " | ".join(f"{a:.3f}" for a in per_type)
            + f" | {seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
