"""Model directories: published whole, verified on load, refused when corrupt or foreign."""
import json
from importlib.metadata import version

import numpy as np
import pytest
import torch

from seqrisk import model_dir
from seqrisk.errors import SeqriskError
from seqrisk.model import ModelConfig, SequenceModel, surprises
from seqrisk.vocabulary import Vocabulary

CONFIG = ModelConfig(vocab_size=7, gap_buckets=6, max_len=4, d_model=16, n_layers=1, n_heads=2, dropout=0.0)


@pytest.fixture
def published(tmp_path):
    torch.manual_seed(0)
    model = SequenceModel(CONFIG).eval()
    staging = model_dir.staging_dir(tmp_path, "m1")
    torch.save(model.state_dict(), staging / "weights.pt")
    Vocabulary.learn({"a": 5, "b": 5, "c": 5}, min_count=1, max_size=10, gap_buckets_s=(1, 10, 60)).save(staging / "vocabulary.json")
    tokens, gaps = np.array([[3, 4, 5, 0]]), np.array([[5, 1, 2, 0]])
    model_dir.save_probe(staging / model_dir.PROBE, model, tokens, gaps)
    for name in ("detector.skops", "count_detector.npz", "calibration.npz"):  # checksummed like any file; scoring's tests read real ones
        (staging / name).write_bytes(b"stand-in")
    return model_dir.publish(staging, "m1", CONFIG, {"run_id": "r"}), model


def test_a_published_directory_reloads_and_reproduces_its_surprises(published):
    path, model = published
    loaded = model_dir.load_model(path)
    tokens, gaps = torch.tensor([[3, 5, 4, 0]]), torch.tensor([[5, 2, 2, 0]])
    torch.testing.assert_close(surprises(loaded.model, tokens, gaps)["nll"], surprises(model, tokens, gaps)["nll"])
    assert (loaded.version, loaded.config, loaded.vocabulary.size) == ("m1", CONFIG, 7)
    assert loaded.manifest["versions"]["torch"] == version("torch")
    assert model_dir.latest(path.parent) == path
    assert not list(path.parent.glob(".*partial"))


def test_a_changed_file_fails_its_checksum(published):
    path, _ = published
    (path / "vocabulary.json").write_text((path / "vocabulary.json").read_text().replace('"a"', '"z"'))
    with pytest.raises(SeqriskError, match="vocabulary.json does not match its checksum"):
        model_dir.load_model(path)


def test_another_format_version_is_refused_before_loading_weights(published):
    path, _ = published
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "format": 99}))
    with pytest.raises(SeqriskError, match=f"model format 99 is not the supported format {model_dir.FORMAT}"):
        model_dir.load_model(path)


def test_not_a_model_directory_and_no_model_at_all_are_clear(tmp_path):
    with pytest.raises(SeqriskError, match="not a seqrisk model directory"):
        model_dir.load_model(tmp_path)
    with pytest.raises(SeqriskError, match="run `seqrisk train` first"):
        model_dir.latest(tmp_path / "models")


def test_a_manifest_without_the_scoring_files_is_incomplete(published):
    path, _ = published
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["files"]["calibration.npz"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SeqriskError, match="lists no calibration.npz"):
        model_dir.load_model(path)
