"""Scoring: the UDF job against the model applied directly, reruns, date ranges, another lake, bad models."""

import json
import shutil
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest
import torch
from deltalake import DeltaTable
from helpers import SMALL_TRAIN, SMALL_WINDOWS, make_config, synthetic_lake
from pyspark.sql import functions as F

from seqrisk.detectors.reasons import ACTIONS, REASONS
from seqrisk.detectors.sequence_score import TIMED_STEPS
from seqrisk.errors import ModelFormatError, SeqriskError
from seqrisk.jobs.score import run_score
from seqrisk.jobs.train import run_train
from seqrisk.lake import contracts
from seqrisk.lake.lake import Lake
from seqrisk.model.sequence_model import surprises
from seqrisk.model.settings import TrainConfig
from seqrisk.registry import model_store
from seqrisk.scoring.risk_model import INPUT_COLUMNS, load_risk_model, risk_frame, scorer_input
from seqrisk.scoring.session_risk import score_sessions
from seqrisk.sessions.features import with_sequence_users
from seqrisk.sessions.vocabulary import SPECIAL, encode_sessions
from seqrisk.sessions.windows import encoded_windows


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    """A lake, and a model trained on it (one worker: the Horovod path has its own test).

    Runs of 3 tokens for the n-gram detector: a lake this small holds most of them, so an unseen one
    is evidence (with the default 8, 31 % of its 964 sessions hold only runs no other session holds; with 3, 1 %).
    """
    root = tmp_path_factory.mktemp("score")
    lake = synthetic_lake(spark, root, ("generate.users=300", "generate.days=6"), SMALL_WINDOWS)
    models = root / "models"
    summary = run_train(make_config(lake, *SMALL_WINDOWS, *SMALL_TRAIN, "train.ngram_length=3", f"model.dir={models}"), spark=spark)
    return lake, models, summary


def _config(lake, models, *more):
    return make_config(lake, *SMALL_WINDOWS, f"model.dir={models}", *more)


def _lake(spark, config):
    return Lake.open(spark, config.tables)


def _pandas(df):
    return df.toPandas().sort_values("session_id").reset_index(drop=True)


def test_score_writes_both_tables_users_aggregate_sessions_exactly_and_a_rerun_writes_nothing(spark, trained):
    lake, models, _ = trained
    config = _config(lake, models)
    summary = run_score(config, spark=spark)
    handle = _lake(spark, config)
    risk = _pandas(handle.read("session_risk"))
    sessions = handle.read("sessions")
    assert summary.sessions == len(risk) == sessions.count()
    assert risk["risk_pct"].between(0, 100).all() and set(risk["risk_level"]) <= {"low", "medium", "high"}
    assert set(risk["action"]) <= set(ACTIONS) and {r for rs in risk["reasons"] for r in rs} <= set(REASONS)
    assert (risk["model_version"] == summary.model_version).all() and (risk["run_id"] == summary.run_id).all()
    assert ((risk["risk_level"] == "high") == (risk["risk_pct"] >= 99)).all()
    top = risk.loc[risk["n_events"] > 3, "top_events"].iloc[0]
    assert len(top) == 3 and top[0]["surprise"] >= top[-1]["surprise"] and len(top[0]["expected"]) == 3

    users = handle.read("user_risk").toPandas().set_index("user_id").sort_index()
    grouped = risk.groupby("user_id")
    assert (users["n_sessions"] == grouped.size()).all()
    assert (users["high_risk_sessions"] == grouped["risk_level"].agg(lambda s: (s == "high").sum())).all()
    np.testing.assert_allclose(users["max_risk_pct"], grouped["risk_pct"].max())
    np.testing.assert_allclose(users["typical_risk_pct"], grouped["risk_pct"].median())
    assert (users["action"] == grouped["action"].agg(lambda s: max(s, key=ACTIONS.index))).all()
    flagged = risk[risk["risk_level"] != "low"].explode("reasons").dropna(subset=["reasons"])
    for user, rows in flagged.groupby("user_id"):
        counts = rows["reasons"].value_counts()
        expected = sorted(counts.index, key=lambda r: (-counts[r], r))[:3]
        assert list(users.loc[user, "top_reasons"]) == expected
    assert (users["as_of_date"] == summary.as_of_date).all()

    versions = [DeltaTable(handle.path(name)).version() for name in ("session_risk", "user_risk")]
    again = run_score(config, spark=spark)
    assert again.unchanged
    assert [DeltaTable(handle.path(name)).version() for name in ("session_risk", "user_risk")] == versions


def test_every_table_of_the_lake_conforms_to_its_contract(spark, trained):
    lake, models, _ = trained
    config = _config(lake, models)
    run_score(config, spark=spark)
    handle = _lake(spark, config)
    for name, contract in contracts.TABLES.items():
        assert contracts.differences(handle.read(name).schema, contract) == [], name


def test_scores_equal_the_model_applied_directly_and_do_not_depend_on_partitioning(spark, trained):
    lake, models, summary = trained
    config = _config(lake, models)
    model = load_risk_model(model_store.fetch(spark, summary.model_dir))
    sessions = _lake(spark, config).read("sessions")
    at = datetime(2024, 1, 1, tzinfo=UTC)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "7")
    try:
        one = _pandas(score_sessions(sessions.repartition(1), model_store.fetch(spark, summary.model_dir), config.score, "r", at))
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    many = _pandas(score_sessions(sessions.repartition(5), model_store.fetch(spark, summary.model_dir), config.score, "r", at))
    pd.testing.assert_frame_equal(one, many)

    # The sequence score of one-window sessions, computed here straight from PyTorch, in one batch.
    frame = with_sequence_users(sessions).select(*INPUT_COLUMNS).toPandas().set_index("session_id")
    short = [s for s in frame.index if 4 <= frame.loc[s, "n_events"] <= 15][:20]  # with the end token, one window of 16
    encoded = encode_sessions(frame.loc[short], model.loaded.vocabulary)
    windows = [encoded_windows(tokens, gaps, 16, 8)[0] for tokens, gaps in zip(encoded.tokens, encoded.gaps)]
    tokens = torch.from_numpy(np.stack([w[2] for w in windows]).astype(np.int64))
    gaps = torch.from_numpy(np.stack([w[3] for w in windows]).astype(np.int64))
    said = surprises(model.loaded.model, tokens, gaps)
    nll, gap_nll = (said[name].numpy().astype(np.float64) for name in ("nll", "gap_nll"))
    scored = one.set_index("session_id")
    assert model.sequence.ranks_timing and model.sequence.ranks_free_timing
    table = model.sequence.gap_table.log_p
    for row, (session_id, (_, n, _, _)) in enumerate(zip(short, windows)):
        # The documented score of a short session: its most surprising step's surprise (the end included),
        # its quick repeats under the gap table and, with TIMED_STEPS gaps or more, their mean surprise under
        # the model and under the gap table, each ranked on the reference; the largest, calibrated.
        largest, timing = nll[row, 1:n].max(), gap_nll[row, 1 : n - 1]  # the end has no gap
        free = -table[tokens[row, 1 : n - 1], gaps[row, 1 : n - 1]]
        quick = model.sequence.gap_table.surprise([tokens[row, : n - 1].numpy()], [gaps[row, : n - 1].numpy()]).quick
        raw = np.maximum(
            model.sequence.statistics.surprisal("largest", np.array([largest])), model.sequence.statistics.surprisal("quick", quick)
        )
        if len(timing) >= TIMED_STEPS:
            raw = np.maximum(raw, model.sequence.statistics.surprisal("timing", np.array([timing.mean()])))
            raw = np.maximum(raw, model.sequence.statistics.surprisal("free_timing", np.array([free.mean()])))
        expected_pct = model.calibration.percentile("sequence", raw)[0]
        assert scored.loc[session_id, "sequence_pct"] == pytest.approx(expected_pct, abs=1e-9)


def test_the_training_population_comes_out_uniform(spark, trained):
    lake, models, summary = trained
    config = _config(lake, models)
    model = load_risk_model(model_store.fetch(spark, summary.model_dir))
    manifest = model.loaded.manifest
    assert manifest["reference_sessions"] > 100
    sessions = _lake(spark, config).read("sessions")
    frame = scorer_input(sessions).toPandas()
    risk = risk_frame(frame, model, config.score, "r", datetime(2024, 1, 1))
    # The scored sessions are the reference sample itself, scored by detectors fitted on all of it,
    # while the percentiles come from cross-fitted scores (each half by detectors fitted on the
    # other): in-sample sessions look a little more normal, so the lowest decile runs up to 0.15
    # over runs, on top of a decile's sampling spread (0.01 at this lake's ~960 sessions).
    for column in ("feature_pct", "risk_pct"):
        deciles = np.histogram(risk[column], bins=10, range=(0, 100))[0] / len(risk)
        assert np.abs(deciles - 0.1).max() < 0.06, (column, deciles)
    # Token counts tie (many short sessions hold the same counts): tied blocks sit at their mid-rank,
    # so deciles are lumpy, but the population still centres on 50 and 1 % at most reaches 99.
    assert abs(risk["count_pct"].mean() - 50) < 3 and (risk["count_pct"] >= 99).mean() <= 0.02


def test_a_date_range_replaces_only_its_partitions(spark, trained):
    lake, models, _ = trained
    config = _config(lake, models)
    first = run_score(config, spark=spark)
    handle = _lake(spark, config)
    before = _pandas(handle.read("session_risk"))
    day = sorted(before["session_date"].unique())[2]
    ranged = run_score(config, date_from=day, date_to=day, spark=spark)
    handle = _lake(spark, config)  # a lake handle pins what it reads to the version it first saw: a new one
    after = _pandas(handle.read("session_risk"))
    assert len(after) == len(before)
    assert set(after.loc[after["session_date"] == day, "run_id"]) <= {ranged.run_id, first.run_id}
    assert (after.loc[after["session_date"] != day, "run_id"] == before.loc[before["session_date"] != day, "run_id"]).all()
    users = handle.read("user_risk").toPandas()
    assert set(users["as_of_date"]) == {first.as_of_date, day}


def test_a_model_trained_on_one_lake_scores_another(spark, trained, tmp_path):
    _, models, summary = trained
    other = synthetic_lake(spark, tmp_path, ("generate.users=60", "generate.days=2", "generate.seed=99"), SMALL_WINDOWS)
    config = make_config(other, f"score.model={summary.model_dir}")  # the other lake's own windows settings
    result = run_score(config, spark=spark)
    risk = _lake(spark, config).read("session_risk").toPandas()
    assert result.sessions == len(risk) > 0 and (risk["model_version"] == summary.version).all()


def test_a_corrupt_or_foreign_model_fails_before_any_table_is_read(spark, trained, tmp_path, monkeypatch):
    lake, models, summary = trained
    broken = tmp_path / "model"
    shutil.copytree(models / summary.version, broken)
    monkeypatch.setattr("seqrisk.lake.tables.DeltaTables.read", lambda *a, **k: pytest.fail("a table was read"))
    (broken / "calibration.npz").write_bytes(b"not the calibration")
    with pytest.raises(SeqriskError, match="calibration.npz does not match its checksum"):
        run_score(make_config(lake, f"score.model={broken}"), spark=spark)
    manifest = json.loads((broken / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps({**manifest, "format": 1}))
    with pytest.raises(ModelFormatError, match="model format 1 is not the supported format"):
        run_score(make_config(lake, f"score.model={broken}"), spark=spark)
    with pytest.raises(SeqriskError, match="run `seqrisk train` first"):
        run_score(make_config(lake, f"model.dir={tmp_path / 'none'}"), spark=spark)
    with pytest.raises(SeqriskError, match="give both --from and --to"):
        run_score(make_config(lake), date_from=date(2024, 5, 1), spark=spark)


def _least_expected_sequence(model, length: int) -> tuple[list[str], list]:
    """Events (types and prices) chosen one by one as the model's least expected next token: built to surprise it."""
    vocabulary, tokens = model.loaded.vocabulary, [len(SPECIAL)]
    for _ in range(length - 1):
        t = torch.tensor([tokens])
        logits = model.loaded.model(t, torch.ones_like(t))[0][0, -1]
        logits[: len(SPECIAL)] = float("inf")  # never padding, unknown, rare or the end
        tokens.append(int(torch.argmin(logits)))
    events = [_event_of(vocabulary, vocabulary.tokens[t]) for t in tokens]
    return [kind for kind, _ in events], [price for _, price in events]


def _unseen_pair_session(model, repeats: int) -> dict:
    """A session of two tokens, each seen in the reference but never together, `repeats` times each."""
    vocabulary, together = model.loaded.vocabulary, model.counts.together
    seen = [i for i in range(len(SPECIAL), len(together)) if together[i, i]]
    first, second = next((i, j) for i in seen for j in seen if not together[i, j])
    events = [_event_of(vocabulary, vocabulary.tokens[t]) for t in (first, second)] * repeats
    n = len(events)
    return dict(
        event_types=[k for k, _ in events],
        prices=[p for _, p in events],
        categories=[None] * n,
        gaps_s=[None] + [30.0] * (n - 1),
        n_events=n,
    )


def _event_of(vocabulary, token: str) -> tuple[str, float | None]:
    """An event type and a price that encode to `token` (price tokens: a price inside the bucket)."""
    kind, _, bucket = token.partition("|")
    if vocabulary.composite != "price" or bucket == "none":
        return kind, None
    k, edges = int(bucket[1:]), vocabulary.price_edges
    price = edges[0] / 2 if k == 0 else edges[k - 1]
    assert vocabulary.token_text(kind, None, price) == token
    return kind, price


def test_every_documented_reason_code_comes_from_a_case_built_for_it(spark, trained):
    lake, models, summary = trained
    config = _config(lake, models)
    model = load_risk_model(model_store.fetch(spark, summary.model_dir))
    sessions = _lake(spark, config).read("sessions")
    frame = scorer_input(sessions).toPandas()
    base = frame[(frame["n_events"] >= 6) & (frame["n_events"] <= 12) & (frame["users_with_sequence"] == 1)].iloc[0]

    def case(source=base, **changes):
        row = source.copy()
        for key, value in changes.items():
            row[key] = value
        return row

    n = base["n_events"]
    odd_types, odd_prices = _least_expected_sequence(model, 12)
    longer = frame[(frame["n_events"] >= 9) & (frame["n_events"] <= 12) & (frame["users_with_sequence"] == 1)].iloc[0]
    cases = {
        "rare_transition": case(event_types=odd_types, prices=odd_prices, categories=[None] * 12, gaps_s=[None] + [30.0] * 11, n_events=12),
        "unusual_rhythm": case(longer, gaps_s=[None] + [1500.0] * (longer["n_events"] - 1)),  # 25 minutes between clicks
        "unseen_event": case(event_types=["teleport", *base["event_types"][1:]]),
        "unseen_sequence": case(
            event_types=odd_types * 3, prices=odd_prices * 3, categories=[None] * 36, gaps_s=[None] + [30.0] * 35, n_events=36
        ),
        "duplicate_sequence": case(users_with_sequence=25),
        "bot_like_timing": case(gap_mean_s=5000.0, gap_median_s=5000.0, gap_min_s=5000.0, gap_max_s=5000.0, gap_std_s=0.0, gap_cv=0.0),
        "velocity_burst": case(duration_s=30000.0, events_per_minute=900.0),
        "broad_browsing": case(distinct_items=5000, distinct_categories=900, distinct_event_types=40),
        "cart_purchase_anomaly": case(cart_count=900, purchase_count=900, purchase_value=5e6),
        "unusual_event_mix": case(type_counts={base["event_types"][0]: 0, model.detector.event_types[-1]: int(n)}),
        "unusual_event_counts": case(
            event_types=[base["event_types"][0]] * 60, categories=[None] * 60, prices=[None] * 60, gaps_s=[None] + [30.0] * 59
        ),
        "unseen_combination": case(**_unseen_pair_session(model, repeats=4)),
    }
    assert set(cases) == set(REASONS)
    risk = risk_frame(pd.DataFrame(list(cases.values())), model, config.score, "r", datetime(2024, 1, 1))
    missing = [(reason, list(found), pct) for reason, found, pct in zip(cases, risk["reasons"], risk["risk_pct"]) if reason not in found]
    assert not missing


def test_a_sequence_replayed_by_other_users_gets_duplicate_sequence_and_the_original_alone_does_not(spark, trained):
    lake, models, summary = trained
    config = _config(lake, models)
    model = load_risk_model(model_store.fetch(spark, summary.model_dir))
    sessions = _lake(spark, config).read("sessions")
    with_users = with_sequence_users(sessions)
    long_enough = F.col("n_events") >= config.score.duplicate_min_events
    original = (
        with_users.filter(long_enough & (F.col("users_with_sequence") == 1)).orderBy("session_id").limit(1).drop("users_with_sequence")
    )
    replays = [original.withColumn("session_id", F.lit(f"replay-{k}")).withColumn("user_id", F.lit(f"script-{k}")) for k in range(2)]
    alone = scorer_input(original).toPandas()
    replayed = scorer_input(original.unionByName(replays[0]).unionByName(replays[1])).toPandas()
    risk = {
        "alone": risk_frame(alone, model, config.score, "r", datetime(2024, 1, 1)),
        "replayed": risk_frame(replayed, model, config.score, "r", datetime(2024, 1, 1)),
    }
    assert list(replayed["users_with_sequence"]) == [3, 3, 3]
    assert all("duplicate_sequence" in found for found in risk["replayed"]["reasons"])
    assert "duplicate_sequence" not in risk["alone"]["reasons"][0]
    assert risk["replayed"]["feature_pct"].min() > risk["alone"]["feature_pct"][0]  # the shared length is a feature too
    assert risk["replayed"]["replay_pct"].min() > 99.0 > risk["alone"]["replay_pct"][0]  # and the replay detector's score
    assert model.combination.weights["replay"] == 1.0  # the generated lake holds few long shared sequences: it speaks
    assert risk["replayed"]["risk_pct"].min() > 99.0 > risk["alone"]["risk_pct"][0]


def test_a_session_longer_than_the_cap_is_scored_as_its_pieces_and_a_label_of_it_marks_every_piece(spark, trained, tmp_path):
    """As documented (README, "Sessions"; docs/detectors.md, "The session cap"): each piece is a session_risk row."""
    from seqrisk.jobs.evaluate import run_evaluate
    from seqrisk.jobs.ingest import run_ingest
    from seqrisk.jobs.sessionize import run_sessionize

    _, models, summary = trained
    kinds = ["view", "view", "add_to_cart", "view", "purchase"]
    rows = [f"b{block:02d},2024-05-01T{block:02d}:00:{k:02d}Z,{kinds[k % 5]}" for block in range(12) for k in range(5)]
    rows += [f"long,2024-05-01T20:00:{k:02d}Z,{kinds[k % 5]}" for k in range(20)]  # 20 events: three pieces of at most 8
    (tmp_path / "events.csv").write_text("block_id,ts,event\n" + "\n".join(rows) + "\n")
    config = _config(tmp_path / "lake", models, "sessionize.max_events=8", f"score.model={summary.model_dir}")
    run_ingest(config, input_path=str(tmp_path / "events.csv"), mapping_name="hdfs", spark=spark)
    run_sessionize(config, spark=spark)
    run_score(config, spark=spark)
    risk = _lake(spark, config).read("session_risk").select("session_id", "n_events").toPandas().sort_values("session_id")
    assert list(risk["session_id"]) == [f"b{block:02d}" for block in range(12)] + ["long", "long~0.1", "long~0.2"]
    assert list(risk["n_events"][-3:]) == [8, 8, 4]
    (tmp_path / "labels.csv").write_text("user_id,session_id,anomaly_type\nlong,long,long_trace\n")
    metrics = run_evaluate(config, labels=str(tmp_path / "labels.csv"), report_dir=str(tmp_path / "report"), spark=spark).metrics
    assert (metrics["sessions"], metrics["anomalous_sessions"]) == (15, 3)


def test_evaluate_writes_the_stable_metrics_shape_real_plots_and_agrees_with_scikit_learn(spark, trained, tmp_path):
    from sklearn.metrics import roc_auc_score

    from seqrisk.evaluation.labels import label_sessions, read_labels
    from seqrisk.jobs.evaluate import run_evaluate

    lake, models, _ = trained
    config = _config(lake, models)
    run_score(config, spark=spark)
    labels = str(lake.parent / "raw" / "labels.csv")
    summary = run_evaluate(config, labels=labels, report_dir=str(tmp_path / "report"), spark=spark)

    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    for name in ("seqrisk", "baseline"):
        assert {"roc_auc", "pr_auc", "precision", "recall", "f1", "recall_at_1pct", "per_type"} <= set(metrics[name])
        assert all({"roc_auc", "recall"} <= set(m) for m in metrics[name]["per_type"].values())
    risk = _lake(spark, config).read("session_risk")
    frame = label_sessions(risk, read_labels(spark, labels)).select("risk_pct", "anomaly_type").toPandas()
    assert metrics["sessions"] == len(frame) and metrics["anomalous_sessions"] == frame["anomaly_type"].notna().sum()
    surprisal_bins = np.floor(-np.log10(np.maximum(1 - frame["risk_pct"] / 100, 1e-15)) * 1000) / 1000  # as documented in evaluate
    expected = roc_auc_score(frame["anomaly_type"].notna(), surprisal_bins)
    assert metrics["seqrisk"]["roc_auc"] == pytest.approx(expected, abs=1e-6)
    assert set(metrics["seqrisk"]["per_type"]) == set(frame["anomaly_type"].dropna())
    for png in ("score_distributions.png", "precision_recall.png", "recall_at_budget.png", "training_history.png"):
        data = (tmp_path / "report" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert f"]({png})" in (tmp_path / "report" / "report.md").read_text()
    assert summary.metrics == metrics


def test_evaluate_from_to_reads_and_scores_only_those_dates(spark, trained, tmp_path):
    from seqrisk.jobs.evaluate import run_evaluate

    lake, models, summary = trained
    config = _config(lake, models)
    run_score(config, spark=spark)
    risk = _lake(spark, config).read("session_risk").select(F.col("session_date").cast("string").alias("day")).toPandas()
    days = sorted(risk["day"].unique())[1:3]
    span = dict(date_from=date.fromisoformat(days[0]), date_to=date.fromisoformat(days[-1]))
    labels = str(lake.parent / "raw" / "labels.csv")
    read = run_evaluate(config, labels=labels, report_dir=str(tmp_path / "read"), spark=spark, **span).metrics
    scored = run_evaluate(
        config, labels=labels, report_dir=str(tmp_path / "scored"), model_ref=summary.model_dir, spark=spark, **span
    ).metrics
    assert read["sessions"] == scored["sessions"] == risk["day"].isin(days).sum() < len(risk)
    assert read["session_dates"] == scored["session_dates"] == days
    assert read["seqrisk"]["roc_auc"] == pytest.approx(scored["seqrisk"]["roc_auc"])
    assert f"sessions of {days[0]} to {days[-1]}" in (tmp_path / "read" / "report.md").read_text()
    with pytest.raises(SeqriskError, match="give both --from and --to"):
        run_evaluate(config, labels=labels, date_from=span["date_from"], spark=spark)


def test_train_with_labels_weights_the_detectors_sets_the_cutoff_and_evaluate_leaves_the_cases_out(spark, trained, tmp_path):
    from seqrisk.detectors.combination import Combination
    from seqrisk.jobs.evaluate import run_evaluate

    lake, _, _ = trained
    labels = pd.read_csv(lake.parent / "raw" / "labels.csv")
    known = labels[labels["anomaly_type"] == labels["anomaly_type"].value_counts().index[0]]  # analysts confirmed one kind
    known.to_csv(tmp_path / "known.csv", index=False)
    models = tmp_path / "models"
    summary = run_train(
        make_config(lake, *SMALL_WINDOWS, *SMALL_TRAIN, f"model.dir={models}"), labels=str(tmp_path / "known.csv"), spark=spark
    )

    report = summary.labels
    assert report.used and report.cases >= TrainConfig().label_min_cases and report.caught >= report.caught_default
    assert "labels" in summary.report() and "riskiest 1 %" in summary.report()
    directory = model_store.fetch(spark, summary.model_dir)
    combination = Combination.from_bytes(directory.read("combination.json"))
    assert len(combination.labeled_sessions) == report.cases and combination.high_pct == report.high_pct
    assert directory.manifest["labels"] == str(tmp_path / "known.csv")

    config = _config(lake, models)
    run_score(config, spark=spark)
    risk = _lake(spark, config).read("session_risk").select("session_id", "risk_pct", "risk_level").toPandas()
    assert ((risk["risk_pct"] >= combination.high_pct) == (risk["risk_level"] == "high")).all()
    caught = risk[risk["session_id"].isin(combination.labeled_sessions)]
    assert (caught["risk_pct"] >= combination.high_pct).mean() >= TrainConfig().label_recall - 0.05  # scored later as in training

    metrics = run_evaluate(config, labels=str(lake.parent / "raw" / "labels.csv"), report_dir=str(tmp_path / "report"), spark=spark).metrics
    assert metrics["left_out_training_cases"] == report.cases and metrics["sessions"] == len(risk) - report.cases
    assert metrics["cutoff_pct"] == combination.high_pct
    assert "trained with labels" in (tmp_path / "report" / "report.md").read_text()
