"""Detection quality on every data set at hand, per detector and for the default: one table.

usage: python bench/quality.py [--work DIR] [--data ../shared/data] [--only NAME ...] [--reuse] [--set KEY=VALUE ...]
                               [--labels FRACTION ...]

Data sets (docs/detectors.md says what each is and why it is here):
- `demo`: the embedded generator's default data (3,000 users, six anomaly types), trained and scored
  on one lake, as `make demo` does;
- `hdfs_dev`: real HDFS block sessions with operators' labels: trained on the normal training file
  in one lake, scored in another lake holding the test file (a model trained on one lake scores
  another);
- `syscalls_dev`: real Linux system-call traces with labeled attacks, held out the same way (here
  the order of the calls is the anomaly, not their counts);
- `taobao_injected`: the real Taobao clickstream slice with 84 scripted sessions injected
  (`bench/inject.py`), trained and scored on the same lake (the injected sessions are in the
  training data, as unlabeled abuse would be);
- `trivago_injected`: the real trivago hotel-search slice (sessions given, two days) with 72
  scripted sessions injected the same way (`bench/inject.py --format trivago`): a second real
  clickstream, with another vocabulary and no purchases.

Every step is the real job (`run_ingest`, `run_sessionize`, `run_train`, `run_score`,
`run_evaluate`) in one local Spark session with `conf/local.yaml`; `--set` overrides apply to all.
The table's columns: ROC AUC, PR AUC, precision, recall and F1 at the `high` level (risk_pct 99,
the reference population's top 1 %), and recall when alerting on the riskiest 1 % of sessions.
Beside each detector: the default as it was before the replay detector (the other four
detectors' percentiles combined the same way), the default as it was before the third-largest
surprisal counted (the five percentiles, largest plus half the second), and the peers
(`bench/peers.py`; `--no-peers`).
`--reuse` keeps each data set's lakes and model and only scores and evaluates again.

`--labels 0.01 0.1` adds, per data set and fraction, a model trained with `train --labels` on that
share of the anomalies' labels (drawn with a fixed seed, at least one), scored and evaluated on the
same data; evaluate leaves the labeled sessions out. On `hdfs_dev` the labeled anomalous test
sessions are added to the training file (known cases are part of a user's history), and the test
lake is scored as before.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/inject.py, peers.py, sequence_signal.py

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import peers  # noqa: E402
from inject import SOURCES, inject  # noqa: E402
from seqrisk.config import load_config  # noqa: E402
from seqrisk.detectors.combination import CORROBORATION, Combination, corroborated  # noqa: E402
from seqrisk.detectors.combination import DETECTORS as WEIGHTED  # noqa: E402
from seqrisk.evaluation.metrics import Binned, pr_auc, recall_at_budget, roc_auc  # noqa: E402
from seqrisk.jobs.evaluate import run_evaluate  # noqa: E402
from seqrisk.jobs.generate import run_generate  # noqa: E402
from seqrisk.jobs.ingest import run_ingest  # noqa: E402
from seqrisk.jobs.score import run_score  # noqa: E402
from seqrisk.jobs.sessionize import run_sessionize  # noqa: E402
from seqrisk.jobs.train import run_train  # noqa: E402
from seqrisk.lake.lake import Lake  # noqa: E402
from seqrisk.registry.model_store import latest  # noqa: E402
from seqrisk.spark import get_spark  # noqa: E402
from sequence_signal import read_sessions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DETECTORS = {
    "default": "seqrisk",
    "sequence": "sequence_only",
    "features (IF)": "baseline",
    "counts": "count_only",
    "n-grams": "ngram_only",
    "replays": "replay_only",
}
COLUMNS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "recall_at_1pct")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/seqrisk-quality", help="lakes, models and reports go here")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="the real data slices")
    parser.add_argument("--only", nargs="+", choices=list(RUNS), help="run only these data sets")
    parser.add_argument("--reuse", action="store_true", help="keep lakes and models; score and evaluate again")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every job")
    parser.add_argument("--labels", nargs="+", type=float, default=[], metavar="FRACTION", help="also train with this share of the labels")
    parser.add_argument("--no-peers", action="store_true", help="leave out STIDE, the nearest neighbour and DeepLog")
    args = parser.parse_args()
    work, data = Path(args.work), Path(args.data)
    spark = get_spark(load_config(REPO / "conf" / "local.yaml", args.set).spark)
    results, labeled = {}, {}
    for name in args.only or RUNS:
        started = time.perf_counter()
        results[name] = RUNS[name](work / name, data, args.set, spark, args.reuse)
        scored_lake, reference_lake, labels = LAKES[name](work / name, data)
        weights = model_weights(reference_lake.parent / "models")
        surprisals, anomalous = stored_surprisals(spark, scored_lake, labels)
        results[name]["others"] = {
            "4 detectors (no replay)": recombined(surprisals, anomalous, {**weights, "replay": 0.0}),
            "largest + half the second (before)": recombined(surprisals, anomalous, weights, shares=(1.0, 0.5)),
        }
        if not args.no_peers:
            results[name]["others"].update(peer_metrics(spark, scored_lake, reference_lake, labels))
        for fraction in args.labels:
            labeled[(name, fraction)] = LABELED_RUNS[name](work / name, data, args.set, spark, fraction)
        print(f"quality: {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print(table(results))
    if labeled:
        print(labels_table(results, labeled))


def config(folder: Path, sets: list[str], *extra: str):
    return load_config(
        REPO / "conf" / "local.yaml",
        [
            f"tables.root={folder}/lake",
            f"model.dir={folder}/models",
            f"evaluate.report={folder}/report",
            "mlflow.tracking_uri=null",
            *extra,
            *sets,
        ],
    )


def fresh(folder: Path, reuse: bool) -> bool:
    """True when the data set's lake and model must be built (again)."""
    return not (reuse and (folder / "models").is_dir() and any((folder / "models").glob("m*")))


def run_demo(folder: Path, data: Path, sets: list[str], spark, reuse: bool) -> dict:
    cfg = config(folder, sets)
    if fresh(folder, reuse):
        _clear(folder)
        run_generate(cfg, out=str(folder / "raw"), spark=spark)
        run_ingest(cfg, input_path=str(folder / "raw" / "events"), mapping_name="generated", spark=spark)
        run_sessionize(cfg, spark=spark)
        run_train(cfg, spark=spark)
    run_score(cfg, spark=spark)
    return run_evaluate(cfg, labels=str(folder / "raw" / "labels.csv"), spark=spark).metrics


def held_out(name: str):
    """A run for a held-out real data set (`hdfs_dev`, `syscalls_dev`): `train_events.csv[.gz]` holds normal
    sessions only; a model trained on their lake scores a second lake holding `test_events.csv[.gz]`."""

    def run(folder: Path, data: Path, sets: list[str], spark, reuse: bool) -> dict:
        source = data / name
        train_cfg = config(folder / "train", sets)
        if fresh(folder / "train", reuse):
            _clear(folder)
            run_ingest(train_cfg, input_path=str(_events(source, "train")), mapping_name="hdfs", spark=spark)
            run_sessionize(train_cfg, spark=spark)
            run_train(train_cfg, spark=spark)
        test_cfg = config(folder / "test", sets, f"score.model={latest(spark, str(folder / 'train' / 'models'))}")
        if not (folder / "test" / "lake" / "sessions").is_dir():
            run_ingest(test_cfg, input_path=str(_events(source, "test")), mapping_name="hdfs", spark=spark)
            run_sessionize(test_cfg, spark=spark)
        run_score(test_cfg, spark=spark)
        return run_evaluate(test_cfg, labels=str(source / "test_labels.csv"), spark=spark).metrics

    return run


def _events(source: Path, split: str) -> Path:
    (path,) = source.glob(f"{split}_events.csv*")
    return path


def injected(source: str, fmt: str):
    """A run for a real clickstream with scripted sessions injected (`bench/inject.py`'s `fmt` recipe; the
    ingest preset of the same name), trained and scored on one lake."""

    def run(folder: Path, data: Path, sets: list[str], spark, reuse: bool) -> dict:
        cfg = config(folder, sets)
        if fresh(folder, reuse):
            _clear(folder)
            inject(data / source, folder / "raw", fmt=fmt)
            run_ingest(cfg, input_path=str(folder / "raw" / SOURCES[fmt].events_file), mapping_name=fmt, spark=spark)
            run_sessionize(cfg, spark=spark)
            run_train(cfg, spark=spark)
        run_score(cfg, spark=spark)
        return run_evaluate(cfg, labels=str(folder / "raw" / "labels.csv"), spark=spark).metrics

    return run


def same_lake(folder: Path, data: Path) -> tuple[Path, Path, Path]:
    """(the scored lake, the lake the peers learn normal from, the labels) of a data set trained and scored on one lake."""
    return folder / "lake", folder / "lake", folder / "raw" / "labels.csv"


def held_out_lakes(name: str):
    """The same for a held-out set: the peers learn from the training lake and score the test lake."""
    return lambda folder, data: (folder / "test" / "lake", folder / "train" / "lake", data / name / "test_labels.csv")


LAKES = {
    "demo": same_lake,
    "hdfs_dev": held_out_lakes("hdfs_dev"),
    "syscalls_dev": held_out_lakes("syscalls_dev"),
    "taobao_injected": same_lake,
    "trivago_injected": same_lake,
}


def peer_metrics(spark, scored_lake: Path, reference_lake: Path, labels: Path) -> dict[str, dict]:
    """Each peer's ROC AUC, PR AUC and recall at a 1 % budget on the scored lake's sessions as stored (a session
    past the cap as its pieces, as seqrisk's evaluation counts them), computed by seqrisk's own metrics."""
    lake = partial(read_sessions, spark)
    same = scored_lake == reference_lake
    scored = lake(str(scored_lake), str(labels))
    reference = scored if same else lake(str(reference_lake), None)
    events, known = [list(e) for e in scored["event_types"]], [list(e) for e in reference["event_types"]]
    scores = {
        "STIDE-3": peers.stide(known, events, 3),
        "STIDE-6": peers.stide(known, events, 6),
        "nearest neighbour": peers.nearest_neighbour(known, events, same),
        "DeepLog": peers.deeplog(known, events),
    }
    anomalous = scored["anomalous"].to_numpy(dtype=bool)
    return {f"{name} (peer)": _metrics(values, anomalous) for name, values in scores.items()}


def model_weights(models: Path) -> dict[str, float]:
    """The detector weights of the newest model directory under `models` (0 for a detector that abstains)."""
    newest = max(models.glob("m*"))
    return Combination.from_bytes((newest / "combination.json").read_bytes()).weights


def stored_surprisals(spark, scored_lake: Path, labels: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each detector's surprisal per session of the scored lake, from its stored percentile; and which sessions are anomalous."""
    sessions = read_sessions(spark, str(scored_lake), str(labels))[["session_id", "anomalous"]]
    tables = load_config(REPO / "conf" / "local.yaml", [f"tables.root={scored_lake}"]).tables
    risk = Lake.open(spark, tables).read("session_risk").select("session_id", *[f"{name}_pct" for name in WEIGHTED]).toPandas()
    merged = sessions.merge(risk, on="session_id", validate="one_to_one")
    surprisals = {name: -np.log10(np.maximum(1.0 - merged[f"{name}_pct"].to_numpy() / 100.0, 1e-15)) for name in WEIGHTED}
    return surprisals, merged["anomalous"].to_numpy(dtype=bool)


def recombined(
    surprisals: dict[str, np.ndarray], anomalous: np.ndarray, weights: dict[str, float], shares: tuple[float, ...] = CORROBORATION
) -> dict:
    """The surprisals times `weights`, combined with `shares` of the largest (seqrisk's rule by default)."""
    return _metrics(corroborated([weights[name] * surprisals[name] for name in WEIGHTED], shares), anomalous)


def _metrics(scores: np.ndarray, anomalous: np.ndarray) -> dict:
    bins = _binned(scores, anomalous)
    return {"roc_auc": roc_auc(bins), "pr_auc": pr_auc(bins), "recall_at_1pct": recall_at_budget(bins, 1.0)}


def _binned(scores: np.ndarray, anomalous: np.ndarray) -> Binned:
    """Raw scores as seqrisk's metrics take them: one bin per distinct score (ties share a bin)."""
    bins, which = np.unique(scores, return_inverse=True)
    return Binned.of(
        bins, np.bincount(which, weights=anomalous, minlength=len(bins)), np.bincount(which, weights=~anomalous, minlength=len(bins))
    )


RUNS = {
    "demo": run_demo,
    "hdfs_dev": held_out("hdfs_dev"),
    "syscalls_dev": held_out("syscalls_dev"),
    "taobao_injected": injected("taobao_userbehavior_815users.csv", "taobao"),
    "trivago_injected": injected("trivago_sessions_100k.parquet", "trivago"),
}
LABEL_SEED = 13


def some_labels(labels: Path, fraction: float, out: Path) -> Path:
    """`fraction` of the rows of a labels file (at least one), drawn with a fixed seed."""
    rows = pd.read_csv(labels, dtype=str)
    rows.sample(n=max(1, round(fraction * len(rows))), random_state=LABEL_SEED).to_csv(out, index=False)
    return out


def _with_labels(folder: Path, lake: Path, sets: list[str], spark, known: Path, labels: Path, score_lake: Path = None) -> dict:
    """Train on `lake` with the `known` labels; score `score_lake` (default: the same) and evaluate on all `labels`."""
    models = folder / "models"
    shutil.rmtree(models, ignore_errors=True)
    trained = run_train(config(lake.parent, sets, f"model.dir={models}"), labels=str(known), spark=spark)
    print("\n".join(trained.report().splitlines()[-3:]), file=sys.stderr, flush=True)
    scored = config(
        (score_lake or lake).parent, sets, f"model.dir={models}", f"score.model={trained.model_dir}", f"evaluate.report={folder}/report"
    )
    run_score(scored, spark=spark)
    return run_evaluate(scored, labels=str(labels), spark=spark).metrics


def labeled_same_lake(folder: Path, data: Path, sets: list[str], spark, fraction: float) -> dict:
    """Train, score and evaluate on the data set's own lake (demo and the injected clickstreams)."""
    out = folder / f"labels_{fraction:g}"
    out.mkdir(parents=True, exist_ok=True)
    known = some_labels(folder / "raw" / "labels.csv", fraction, out / "known.csv")
    return _with_labels(out, folder / "lake", sets, spark, known, folder / "raw" / "labels.csv")


def labeled_held_out(folder: Path, data: Path, sets: list[str], spark, fraction: float) -> dict:
    """The training file plus the known anomalous test sessions, in a lake of their own."""
    source, out = data / folder.name, folder / f"labels_{fraction:g}"
    _clear(out)
    known = some_labels(source / "test_labels.csv", fraction, out / "known.csv")
    test = pd.read_csv(_events(source, "test"), dtype=str)
    events = pd.concat(
        [pd.read_csv(_events(source, "train"), dtype=str), test[test["block_id"].isin(pd.read_csv(known, dtype=str)["session_id"])]]
    )
    events.to_csv(out / "events.csv", index=False)
    train_cfg = config(out, sets)
    run_ingest(train_cfg, input_path=str(out / "events.csv"), mapping_name="hdfs", spark=spark)
    run_sessionize(train_cfg, spark=spark)
    return _with_labels(out, out / "lake", sets, spark, known, source / "test_labels.csv", score_lake=folder / "test" / "lake")


LABELED_RUNS = {
    "demo": labeled_same_lake,
    "hdfs_dev": labeled_held_out,
    "syscalls_dev": labeled_held_out,
    "taobao_injected": labeled_same_lake,
    "trivago_injected": labeled_same_lake,
}


def table(results: dict[str, dict]) -> str:
    """One Markdown table: a row per data set and detector; then recall at 1 % per anomaly type."""
    lines = ["| data set | detector | " + " | ".join(COLUMNS) + " |", "| --- | --- |" + " ---: |" * len(COLUMNS)]
    for name, metrics in results.items():
        for label, key in DETECTORS.items():
            lines.append(f"| {name} | {label} | " + " | ".join(_fmt(metrics[key][c]) for c in COLUMNS) + " |")
        for other, m in metrics.get("others", {}).items():
            lines.append(f"| {name} | {other} | " + " | ".join(_fmt(m.get(c)) for c in COLUMNS) + " |")
    lines += ["", "Recall at a 1 % budget per anomaly type (the default detector; ROC AUC in brackets):", ""]
    for name, metrics in results.items():
        per_type = metrics["seqrisk"]["per_type"]
        lines.append(f"- {name}: " + ", ".join(f"{k} {_fmt(v['recall_at_1pct'])} ({_fmt(v['roc_auc'])})" for k, v in per_type.items()))
    return "\n".join(lines)


def labels_table(results: dict[str, dict], labeled: dict[tuple[str, float], dict]) -> str:
    """The default against the default trained with a share of the labels (their sessions left out)."""
    lines = [
        "",
        f"| data set | labels | labeled sessions | weights ({'/'.join(WEIGHTED)}) | high | " + " | ".join(COLUMNS) + " |",
        "| --- | ---: | ---: | --- | ---: |" + " ---: |" * len(COLUMNS),
    ]
    for name, metrics in results.items():
        lines.append(
            f"| {name} | none | 0 | unlabeled | {metrics['cutoff_pct']:g} | "
            + " | ".join(_fmt(metrics["seqrisk"][c]) for c in COLUMNS)
            + " |"
        )
        for (data_set, fraction), m in labeled.items():
            if data_set != name:
                continue
            found = m["training_labels"]
            weights = "/".join(f"{found['weights'][d]:g}" for d in WEIGHTED) + ("" if found["used"] else " (too few)")
            lines.append(
                f"| {name} | {fraction:.0%} | {found['cases']} | {weights} | {m['cutoff_pct']:.2f} | "
                + " | ".join(_fmt(m["seqrisk"][c]) for c in COLUMNS)
                + " |"
            )
    return "\n".join(lines)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


if __name__ == "__main__":
    main()
