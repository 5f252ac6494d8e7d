"""Training from a real windows table: two Horovod processes on local Spark, fed by Petastorm."""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import SMALL_WINDOWS, make_config, synthetic_lake

from seqrisk.errors import SeqriskError
from seqrisk.jobs.train import run_train
from seqrisk.model.model_dir import load_model
from seqrisk.registry import model_store

FAST = ["train.epochs=2", "train.steps_per_epoch=4", "train.val_steps=2", "train.batch_size=32", "model.d_model=32", "model.n_heads=2"]


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    return synthetic_lake(spark, tmp_path_factory.mktemp("train"), ("generate.users=300", "generate.days=6"), SMALL_WINDOWS)


def test_two_horovod_workers_train_and_publish_a_model_that_reloads_and_reproduces_its_surprises(spark, lake, tmp_path):
    config = make_config(lake, *SMALL_WINDOWS, *FAST, "train.workers=2", f"model.dir={tmp_path / 'models'}")
    summary = run_train(config, spark=spark)

    assert summary.result["workers"] == 2
    history = summary.result["history"]
    assert 1 <= len(history) <= 2 and all(np.isfinite([h["train_loss"], h["val_loss"]]).all() for h in history)
    assert summary.windows_train_files > 0 and summary.windows_val_files > 0
    loaded = load_model(model_store.fetch(spark, summary.model_dir))  # checks every checksum and re-computes the probe's surprises
    assert loaded.version == summary.version and loaded.config.max_len == 16
    manifest = json.loads((tmp_path / "models" / summary.version / "manifest.json").read_text())
    assert set(manifest["files"]) == {
        "weights.pt",
        "vocabulary.json",
        "history.json",
        "probe.npz",
        "detector.skops",
        "count_detector.npz",
        "calibration.npz",
        "combination.json",
    }
    assert manifest["run_id"] == summary.run_id and not manifest["dry_run"]


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


def test_the_reader_skips_the_windows_of_left_out_sessions_and_only_those(lake):
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    from seqrisk.model.petastorm_reader import open_windows

    paths = [f.removeprefix("file://") for f in DeltaTable(str(lake / "windows")).file_uris()]
    files = [f"file://{p}" for p in paths]  # as the train job hands them to Petastorm
    windows = pd.concat(pq.read_table(p, columns=["session_id"]).to_pandas() for p in paths)
    sessions = sorted(set(windows["session_id"]))
    left_out = frozenset(sessions[::2])
    with open_windows(files, left_out, seed=0, num_epochs=1) as reader:
        seen = [session for chunk in reader for session in chunk.session_id]
    assert len(seen) == (~windows["session_id"].isin(left_out)).sum()
    assert set(seen) == set(sessions) - left_out
