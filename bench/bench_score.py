"""Scoring throughput: the pandas-UDF job against the same model in a plain PyTorch loop.

usage: python bench/bench_score.py --lake demo/lake --models demo/models [--repeat 2]
Both score the same sessions with the newest model: the plain loop calls `scoring.risk_frame` on
the sessions in one process (2 torch threads: the machine's cores); the job runs `score_sessions`
(mapInPandas on local Spark, one Python worker per core) and writes to Spark's no-op sink. Prints
sessions per second, the job's first run apart from its later ones (the first starts the Python
workers, imports torch and loads the model in each: a fixed cost per executor, several seconds),
their ratio (the cost of Spark and Arrow, warm), each Python worker's peak memory,
and each detector's share of the plain loop (its raw scores alone, same sessions, best of the runs; the
sequence score's ranking of the model's statistics apart from the model).
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import torch

from seqrisk.config import load_config
from seqrisk.detectors.count_detector import count_matrix
from seqrisk.detectors.replay_detector import replay_risk
from seqrisk.detectors.sequence_evidence import session_evidence
from seqrisk.lake.lake import Lake
from seqrisk.registry import model_store
from seqrisk.scoring.risk_model import load_risk_model, risk_frame, scorer_input
from seqrisk.scoring.session_risk import score_sessions
from seqrisk.sessions.vocabulary import encode_sessions
from seqrisk.spark import get_spark

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb(batches):
    import pandas as pd

    for _ in batches:
        pass
    yield pd.DataFrame({"rss_mb": [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--models", required=True)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each (the best is kept)")
    args = parser.parse_args()
    config = load_config(REPO / "conf" / "local.yaml", [f"tables.root={args.lake}", f"model.dir={args.models}"])
    spark = get_spark(config.spark)
    directory = model_store.fetch(spark, model_store.latest(spark, args.models))
    model = load_risk_model(directory)
    sessions = Lake.open(spark, config.tables).read("sessions").persist()
    n = sessions.count()
    frame = scorer_input(sessions).toPandas()  # a benchmark-sized lake
    at = datetime.now(UTC)

    torch.set_num_threads(2)
    plain = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        risk_frame(frame, model, config.score, "bench", at.replace(tzinfo=None))
        plain.append(time.perf_counter() - started)
    job = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        score_sessions(sessions, directory, config.score, "bench", at).write.format("noop").mode("overwrite").save()
        job.append(time.perf_counter() - started)
    detectors = {name: min(_timed(score) for _ in range(args.repeat)) for name, score in _detectors(frame, model, config).items()}
    rss = [r["rss_mb"] for r in spark.range(0, 64, numPartitions=2).mapInPandas(peak_rss_mb, "rss_mb double").collect()]
    print(f"{n:,} sessions, model {model.version}, {torch.get_num_threads()} torch threads in the plain loop")
    warm = min(job[1:], default=None)  # the first run starts the Python workers and loads the model in each
    print(f"plain PyTorch loop   {min(plain):6.1f} s   {n / min(plain):8,.0f} sessions/s")
    print(f"pandas-UDF job       {job[0]:6.1f} s   {n / job[0]:8,.0f} sessions/s   (first run: starts the Python workers, loads the model)")
    if warm is not None:
        print(f"pandas-UDF job, warm {warm:6.1f} s   {n / warm:8,.0f} sessions/s   (best of the later runs)")
    print(f"ratio (job / plain)  {min(plain) / (warm or job[0]):.2f}{'' if warm else '   (first run: use --repeat 2 or more)'}")
    print("peak memory per Python worker: " + ", ".join(f"{m:,.0f} MB" for m in rss))
    for name, seconds in detectors.items():
        print(f"  {name:<32s} {seconds:6.2f} s   {seconds / min(plain):6.1%} of the plain loop")


def _detectors(frame, model, config) -> dict:
    """Each detector's raw scoring of the sessions, as `risk_model.raw_scores` runs it."""
    vocabulary, sequence_model = model.loaded.vocabulary, model.loaded.model
    encoded = encode_sessions(frame, vocabulary)  # timed on its own: scoring does it once for every detector
    score_sequences = partial(
        session_evidence,
        frame,
        encoded,
        sequence_model,
        vocabulary,
        length=sequence_model.config.max_len,
        stride=model.stride,
        batch_windows=config.score.batch_windows,
        top_k=config.score.top_events,
    )
    evidence = score_sequences()  # the sequence score's ranking is timed on its own
    gaps_given_events = partial(model.sequence.gap_table.surprise, *encoded)
    free = gaps_given_events()
    return {
        "token and gap bucket ids (all)": lambda: encode_sessions(frame, vocabulary),
        "sequence model (windows, GRU)": score_sequences,
        "gap table (gaps given events)": gaps_given_events,
        "sequence score (its statistics)": lambda: model.sequence.risk(evidence, free),
        "feature detector": lambda: model.detector.risk(model.detector.matrix(frame)),
        "count detector": lambda: model.counts.risk(
            count_matrix(encoded.tokens, frame["item_revisits"], vocabulary, model.counts.token_columns)
        ),
        "n-gram detector": lambda: model.ngrams.risk(encoded.tokens),
        "replay detector": lambda: replay_risk(frame),
    }


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
