"""MLflow round trip on an embedded store: train logs a run and registers a pyfunc, `score` by alias
equals `score` by folder, `evaluate` logs to the model's run, and `promote` moves the alias only
as its evaluation allows."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers import SMALL_TRAIN, SMALL_WINDOWS, make_config, synthetic_lake

from seqrisk.errors import ModelFormatError, SeqriskError
from seqrisk.jobs.evaluate import run_evaluate
from seqrisk.jobs.promote import decide, run_promote
from seqrisk.jobs.score import run_score
from seqrisk.jobs.train import run_train
from seqrisk.lake.lake import Lake
from seqrisk.registry.model_store import fetch
from seqrisk.scoring.risk_model import load_risk_model, risk_frame, scorer_input


@pytest.fixture(scope="module")
def tracked(spark, tmp_path_factory):
    """A lake, an embedded MLflow store, and a first model trained with tracking on (and score settings of its own)."""
    root = tmp_path_factory.mktemp("mlflow")
    lake = synthetic_lake(spark, root, ("generate.users=300", "generate.days=6"), SMALL_WINDOWS)
    store = root / "store"

    def config(*more):
        return make_config(
            lake,
            *SMALL_WINDOWS,
            *SMALL_TRAIN,
            f"model.dir={root / 'models'}",
            f"evaluate.report={root / 'report'}",
            f"mlflow.tracking_uri=sqlite:///{store}/mlflow.db",
            f"mlflow.artifact_location={store}/artifacts",
            *TRAINED_SCORE,
            *more,
        )

    return lake, config, run_train(config(), spark=spark), str(lake.parent / "raw" / "labels.csv")


TRAINED_SCORE = (  # not the defaults: the pyfunc must score with these, saved with the model
    "score.levels.medium=70",
    "score.levels.high=85",
    "score.reason_percentile=80",
    "score.policy=[{level: high, action: block}, {level: medium, action: step_up_auth}, {action: allow}]",
)


def _plain(value):
    return value if isinstance(value, str) else list(value)


def _client(config):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=config().mlflow.tracking_uri)


def _holder(client, alias: str) -> str:
    return str(client.get_model_version_by_alias("seqrisk", alias).version)  # an int under MLflow 3, a str under 2


def test_train_logs_a_run_and_registers_a_pyfunc_that_scores_as_its_folder(spark, tracked):
    import mlflow

    lake, config, summary, _ = tracked
    client = _client(config)
    run = client.get_run(summary.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.d_model"] == "32" and run.data.params["train.epochs"] == "2"
    assert run.data.tags["seqrisk.model_version"] == summary.version and int(run.data.tags["seqrisk.table.windows.version"]) >= 0
    history = summary.result["history"]
    for metric in ("train_loss", "val_loss", "windows_per_s", "learning_rate"):
        logged = sorted(client.get_metric_history(run.info.run_id, metric), key=lambda m: m.step)
        assert [m.value for m in logged] == pytest.approx([h[metric] for h in history])
    assert summary.registered.version == _holder(client, "candidate")
    assert "registered" in summary.report() and summary.mlflow_run_id in summary.report()

    mlflow.set_tracking_uri(config().mlflow.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model("models:/seqrisk@candidate")  # load_context verifies checksums and the probe
    sessions = scorer_input(Lake.open(spark, config().tables).read("sessions")).limit(200).toPandas()
    by_registry = pyfunc.predict(sessions)
    by_folder = risk_frame(
        sessions, load_risk_model(fetch(spark, summary.model_dir)), config().score, "x", pd.Timestamp.now().to_pydatetime()
    )
    assert by_registry["session_id"].tolist() == by_folder["session_id"].tolist()
    assert by_registry["risk_pct"].to_numpy() == pytest.approx(by_folder["risk_pct"].to_numpy())
    for column in ("risk_level", "action", "reasons"):  # as `score` decides them with the trained settings
        assert [_plain(v) for v in by_registry[column]] == [_plain(v) for v in by_folder[column]], column
    assert set(by_registry["action"]) <= {"block", "step_up_auth", "allow"} and "block" in set(by_registry["action"])


def test_score_by_alias_equals_score_by_folder_and_evaluate_logs_to_the_models_run(spark, tracked):
    lake, config, summary, labels = tracked
    promoted = run_promote(config(), labels=labels, spark=spark)
    assert promoted.promoted and "no version had the alias champion" in promoted.reason and promoted.candidate_metrics["roc_auc"] > 0.5

    by_alias = run_score(config("score.model=models:/seqrisk@champion"), spark=spark)
    assert by_alias.model_version == summary.version and "models:/seqrisk@champion" in by_alias.model_path
    again = run_score(config(f"score.model={summary.model_dir}"), spark=spark)
    assert again.unchanged  # the folder's scores equal the registered model's: the rerun has nothing to write

    metrics = run_evaluate(config("score.model=models:/seqrisk@champion"), labels=labels, spark=spark).metrics
    client = _client(config)
    logged = client.get_run(summary.mlflow_run_id).data.metrics
    assert logged["eval_seqrisk_roc_auc"] == pytest.approx(metrics["seqrisk"]["roc_auc"])
    assert {a.path for a in client.list_artifacts(summary.mlflow_run_id, "evaluation")} >= {
        "evaluation/report.md",
        "evaluation/metrics.json",
    }


def test_promote_moves_the_alias_only_as_its_evaluation_allows_and_force_overrides(spark, tracked, monkeypatch):
    lake, config, first, labels = tracked
    client = _client(config)
    if _holder(client, "candidate") == first.registered.version:
        run_promote(config(), labels=labels, spark=spark)  # the first model is the champion (when this test runs alone)
    second = run_train(config("train.epochs=1", "train.steps_per_epoch=3"), spark=spark)
    assert second.registered.version != first.registered.version

    outcome = run_promote(config(), labels=labels, spark=spark)
    assert outcome.champion.version == first.registered.version and outcome.candidate.version == second.registered.version
    assert (outcome.promoted, outcome.reason) == decide(outcome.candidate_metrics, outcome.champion_metrics, 0.0)
    holder = _holder(client, "champion")
    assert holder == (second if outcome.promoted else first).registered.version
    assert ("refused" in outcome.report()) != outcome.promoted

    other = (first if outcome.promoted else second).registered.version  # --force moves the alias to the version without it
    back = run_promote(config(), candidate=f"models:/seqrisk/{other}", force=True, spark=spark)
    assert back.promoted and "--force" in back.reason and _holder(client, "champion") == other
    same = run_promote(config(), candidate=f"models:/seqrisk/{other}", labels=labels, spark=spark)
    assert not same.promoted and "already has the alias" in same.reason

    newer = ({first.registered.version, second.registered.version} - {other}).pop()  # after an upgrade the champion cannot load

    def evaluated(config, registered, labels, span, spark):
        if registered.version == other:
            raise ModelFormatError(f"{registered.uri}: model format 5 is not the supported format 6; retrain with this version of seqrisk")
        return {"roc_auc": 0.5, "pr_auc": 0.01}  # worse than any champion that could still score

    monkeypatch.setattr("seqrisk.jobs.promote._evaluated", evaluated)
    upgraded = run_promote(config(), candidate=f"models:/seqrisk/{newer}", labels=labels, spark=spark)
    assert upgraded.promoted and "cannot score with this version of seqrisk" in upgraded.reason and _holder(client, "champion") == newer


def test_decide_refuses_a_worse_candidate_and_names_the_metric():
    champion = {"roc_auc": 0.95, "pr_auc": 0.70}
    assert decide({"roc_auc": 0.95, "pr_auc": 0.70}, champion, 0.0)[0]
    refused, reason = decide({"roc_auc": 0.96, "pr_auc": 0.60}, champion, 0.0)
    assert not refused and "pr_auc 0.6000 < champion's 0.7000" in reason and "roc_auc" not in reason
    assert decide({"roc_auc": 0.949, "pr_auc": 0.70}, champion, 0.005)[0]


def test_registry_references_need_mlflow_and_name_what_is_missing(spark, tracked, tmp_path):
    lake, config, _, _ = tracked
    with pytest.raises(SeqriskError, match="MLflow is not configured"):
        run_score(make_config(lake, "score.model=models:/seqrisk@champion"), spark=spark)
    with pytest.raises(SeqriskError, match="models:/seqrisk@nobody: not in the model registry"):
        run_score(config("score.model=models:/seqrisk@nobody"), spark=spark)
    with pytest.raises(SeqriskError, match="not a registered model reference"):
        run_score(config("score.model=models:/a/b/c"), spark=spark)
