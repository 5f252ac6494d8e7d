"""Training from a real windows table: two processes on local Spark, launched by Horovod and fed by
Petastorm, or launched by TorchDistributor and fed by the Arrow reader; the same model either way."""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import SMALL_TRAIN, SMALL_WINDOWS, make_config, synthetic_lake

from seqrisk.errors import SeqriskError
from seqrisk.jobs.evaluate import run_evaluate
from seqrisk.jobs.score import run_score
from seqrisk.jobs.train import run_train
from seqrisk.model import launch
from seqrisk.model.model_dir import load_model
from seqrisk.registry import model_store


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    return synthetic_lake(spark, tmp_path_factory.mktemp("train"), ("generate.users=300", "generate.days=6"), SMALL_WINDOWS)


LAUNCHERS = {  # each launcher with its reader, where this environment has them (the spark4 profile has no Horovod)
    launcher: reader
    for launcher, reader in {"horovod": "petastorm", "torch_distributor": "arrow"}.items()
    if launch.available(launcher) and launch.available(reader)
}


@pytest.fixture(scope="module")
def two_workers(spark, lake, tmp_path_factory):
    """A model trained by each launcher with its reader, two workers each, the same settings; and its evaluation."""
    trained = {}
    for launcher, reader in LAUNCHERS.items():
        models, report = tmp_path_factory.mktemp(f"models-{launcher}"), tmp_path_factory.mktemp(f"report-{launcher}")
        sets = [
            *SMALL_WINDOWS,
            *SMALL_TRAIN,
            "train.workers=2",
            f"train.launcher={launcher}",
            f"train.reader={reader}",
            f"model.dir={models}",
        ]
        summary = run_train(make_config(lake, *sets), spark=spark)
        config = make_config(lake, *sets, f"score.model={summary.model_dir}")
        run_score(config, spark=spark)
        labels = str(lake.parent / "raw" / "labels.csv")
        trained[launcher] = summary, models, run_evaluate(config, labels=labels, report_dir=str(report), spark=spark).metrics
    return trained


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_two_workers_train_and_publish_a_model_that_reloads_and_reproduces_its_surprises(spark, two_workers, launcher):
    summary, models, _ = two_workers[launcher]

    assert summary.result["workers"] == 2 and (summary.launcher, summary.reader) == (launcher, LAUNCHERS[launcher])
    assert f"launcher            {launcher}, {LAUNCHERS[launcher]} reader" in summary.report()
    history = summary.result["history"]
    assert 1 <= len(history) <= 2 and all(np.isfinite([h["train_loss"], h["val_loss"]]).all() for h in history)
    assert summary.windows_train_files > 0 and summary.windows_val_files > 0
    loaded = load_model(model_store.fetch(spark, summary.model_dir))  # checks every checksum and re-computes the probe's surprises
    assert loaded.version == summary.version and loaded.config.max_len == 16
    manifest = json.loads((models / summary.version / "manifest.json").read_text())
    assert set(manifest["files"]) == {
        "weights.pt",
        "vocabulary.json",
        "history.json",
        "probe.npz",
        "detector.skops",
        "count_detector.npz",
        "ngram_detector.npz",
        "sequence_score.npz",
        "calibration.npz",
        "combination.json",
    }
    assert manifest["run_id"] == summary.run_id and not manifest["dry_run"]
    assert manifest["trained_with"] == {"launcher": launcher, "reader": LAUNCHERS[launcher]}


@pytest.mark.skipif(len(LAUNCHERS) < 2, reason="one launcher here")
def test_both_launchers_make_the_same_directory_and_models_of_the_same_quality(two_workers):
    (horovod, horovod_models, horovod_metrics), (torch, torch_models, torch_metrics) = two_workers.values()
    assert sorted(p.name for p in (horovod_models / horovod.version).iterdir()) == sorted(
        p.name for p in (torch_models / torch.version).iterdir()
    )
    for detector in ("seqrisk", "sequence_only"):  # the sequence model alone is what the launchers trained
        assert horovod_metrics[detector]["roc_auc"] == pytest.approx(torch_metrics[detector]["roc_auc"], abs=0.05), detector
    assert min(horovod_metrics["seqrisk"]["roc_auc"], torch_metrics["seqrisk"]["roc_auc"]) > 0.8


def test_dry_run_takes_a_few_steps_on_one_worker(spark, lake, tmp_path):
    summary = run_train(make_config(lake, *SMALL_WINDOWS, f"model.dir={tmp_path / 'models'}"), dry_run=True, spark=spark)
    assert summary.result["workers"] == 1 and len(summary.result["history"]) == 1
    assert load_model(model_store.fetch(spark, summary.model_dir)).manifest["dry_run"]


def test_a_loss_that_is_not_finite_stops_training_with_a_clear_error_and_publishes_nothing(spark, lake, tmp_path, monkeypatch):
    import seqrisk.model.training

    monkeypatch.setattr(seqrisk.model.training, "_validate", lambda *args: float("nan"))
    with pytest.raises(SeqriskError, match="training diverged: the loss was not finite .* at epoch 0"):
        run_train(make_config(lake, *SMALL_WINDOWS, f"model.dir={tmp_path / 'models'}"), dry_run=True, spark=spark)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


@pytest.mark.parametrize("reader", [r for r in ("petastorm", "arrow") if launch.available(r)])
def test_the_reader_skips_the_windows_of_left_out_sessions_and_only_those(lake, reader):
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    from seqrisk.model import arrow_reader
    from seqrisk.model.training_data import row_groups_by_file

    paths = [f.removeprefix("file://") for f in DeltaTable(str(lake / "windows")).file_uris()]
    files = [f"file://{p}" for p in paths]  # as the train job hands them to the readers
    windows = pd.concat(pq.read_table(p, columns=["session_id", "tokens"]).to_pandas() for p in paths)
    sessions = sorted(set(windows["session_id"]))
    left_out = frozenset(sessions[::2])
    kept = windows[~windows["session_id"].isin(left_out)]
    if reader == "petastorm":
        from seqrisk.model import petastorm_reader

        opened = petastorm_reader.open_windows(files, left_out, seed=0, num_epochs=1)
    else:
        opened = arrow_reader.open_windows(files, left_out, row_groups=row_groups_by_file(files), seed=0, num_epochs=1)
    with opened as chunks:
        seen = sorted(tuple(window) for chunk in chunks for window in chunk.tokens)
    assert seen == sorted(tuple(window) for window in kept["tokens"])  # every kept window once, no other
