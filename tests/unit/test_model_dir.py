"""Model directories: assembled whole, verified before loading, refused when corrupt or foreign."""

import json
from importlib.metadata import version

import numpy as np
import pytest
import torch

from seqrisk.errors import SeqriskError
from seqrisk.model import model_dir
from seqrisk.model.model_dir import ModelDir
from seqrisk.model.sequence_model import ModelConfig, SequenceModel, surprises
from seqrisk.sessions.vocabulary import Vocabulary

CONFIG = ModelConfig(vocab_size=7, gap_buckets=6, max_len=4, arch="transformer", d_model=16, n_layers=1, n_heads=2, dropout=0.0)


@pytest.fixture
def assembled():
    torch.manual_seed(0)
    model = SequenceModel(CONFIG).eval()
    vocabulary = Vocabulary.learn({"a": 5, "b": 5, "c": 5}, min_count=1, max_size=10, gap_buckets_s=(1, 10, 60))
    tokens, gaps = np.array([[3, 4, 5, 0]]), np.array([[5, 1, 2, 0]])
    files = {
        model_dir.WEIGHTS: model_dir.weights_to_bytes(model.state_dict()),
        model_dir.VOCABULARY: vocabulary.to_json().encode(),
        model_dir.PROBE: model_dir.probe_bytes(model, tokens, gaps),
        # checksummed like any file; scoring's tests read real ones
        **dict.fromkeys(
            (
                model_dir.FEATURE_DETECTOR,
                model_dir.COUNT_DETECTOR,
                model_dir.NGRAM_DETECTOR,
                model_dir.SEQUENCE_SCORE,
                model_dir.CALIBRATION,
            ),
            b"stand-in",
        ),
    }
    return ModelDir.assemble("m1", CONFIG, files, {"run_id": "r"}), model


def _with(directory: ModelDir, name: str, data: bytes) -> ModelDir:
    return ModelDir({**directory.files, name: data}, "somewhere")


def test_an_assembled_directory_reloads_and_reproduces_its_surprises(assembled):
    directory, model = assembled
    loaded = model_dir.load_model(directory)
    tokens, gaps = torch.tensor([[3, 5, 4, 0]]), torch.tensor([[5, 2, 2, 0]])
    torch.testing.assert_close(surprises(loaded.model, tokens, gaps)["nll"], surprises(model, tokens, gaps)["nll"])
    assert (loaded.version, loaded.config, loaded.vocabulary.size) == ("m1", CONFIG, 7)
    assert loaded.manifest["versions"]["torch"] == version("torch")
    assert set(loaded.manifest["files"]) == set(directory.files) - {model_dir.MANIFEST}


def test_a_changed_file_fails_its_checksum(assembled):
    directory, _ = assembled
    changed = directory.read(model_dir.VOCABULARY).decode().replace('"a"', '"z"').encode()
    with pytest.raises(SeqriskError, match="somewhere: vocabulary.json does not match its checksum"):
        model_dir.load_model(_with(directory, model_dir.VOCABULARY, changed))


def test_other_weights_fail_the_probe_even_with_matching_checksums(assembled):
    directory, _ = assembled
    other = model_dir.weights_to_bytes(SequenceModel(CONFIG).state_dict())
    files = {name: data for name, data in directory.files.items() if name != model_dir.MANIFEST}
    forged = ModelDir.assemble("m1", CONFIG, {**files, model_dir.WEIGHTS: other}, {})
    with pytest.raises(SeqriskError, match="does not reproduce its training-time surprises"):
        model_dir.load_model(forged)


def test_another_format_version_is_refused_before_loading_weights(assembled):
    directory, _ = assembled
    manifest = {**directory.manifest, "format": 99}
    with pytest.raises(SeqriskError, match=f"model format 99 is not the supported format {model_dir.FORMAT}"):
        model_dir.load_model(_with(directory, model_dir.MANIFEST, json.dumps(manifest).encode()))


def test_no_manifest_and_a_manifest_without_the_scoring_files_are_clear(assembled):
    directory, _ = assembled
    with pytest.raises(SeqriskError, match="not a seqrisk model directory"):
        model_dir.load_model(ModelDir({}, "somewhere"))
    manifest = directory.manifest
    del manifest["files"][model_dir.CALIBRATION]
    with pytest.raises(SeqriskError, match="lists no calibration.npz"):
        model_dir.load_model(_with(directory, model_dir.MANIFEST, json.dumps(manifest).encode()))
