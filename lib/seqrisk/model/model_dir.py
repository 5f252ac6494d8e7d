"""Versioned, self-contained model directories (DESIGN.md, "Model and scores").

A model directory holds what scoring needs without the training data: the sequence model's
weights (a state dict, loaded with `weights_only=True`), its vocabulary, the feature, count and
n-gram detectors, the reference score quantiles, how the detectors combine, the training history, a
probe of known surprises, and `manifest.json` with the model's config, the versions it was built
with, and a SHA-256 checksum of every other file. This module owns those file names.

`ModelDir` holds a directory's files in memory: `train` assembles one on the driver and
`model_store` publishes it to a URI; `score` fetches one, verifies it, and ships the same bytes to
every executor, which verifies them again before loading (`load_model`). No executor reads a
shared disk.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import torch

from seqrisk.errors import ModelFormatError, SeqriskError
from seqrisk.model.sequence_model import ModelConfig, SequenceModel, surprises
from seqrisk.sessions.vocabulary import Vocabulary

FORMAT = 16  # 2: the second detector and the calibration; 3: the count detector; 4: the end token; 5: sequence score = largest surprise; 6: token pairs in the count detector; 7: an undefined gap CV read as 1; 8: the n-gram detector and the shared-sequence length feature; 9: the replay detector; 10: the third-largest surprisal corroborates; 11: item revisits in the count detector; 12: the sequence score ranks long sessions' mean surprise too; 13: the model predicts each step's gap too; 14: the gap head learns on the hidden state without training it; 15: the sequence score ranks the gaps given their event alone too; 16: a long session's order is its mean surprise alone
WEIGHTS = "weights.pt"
VOCABULARY = "vocabulary.json"
FEATURE_DETECTOR = "detector.skops"
COUNT_DETECTOR = "count_detector.npz"
NGRAM_DETECTOR = "ngram_detector.npz"
SEQUENCE_SCORE = "sequence_score.npz"
CALIBRATION = "calibration.npz"
COMBINATION = "combination.json"
HISTORY = "history.json"
PROBE = "probe.npz"  # a few validation windows and the surprises the trained model gave them
MANIFEST = "manifest.json"
REQUIRED = (WEIGHTS, VOCABULARY, FEATURE_DETECTOR, COUNT_DETECTOR, NGRAM_DETECTOR, SEQUENCE_SCORE, CALIBRATION)
PROBE_WINDOWS = 16
PACKAGES = ("seqrisk", "torch", "horovod", "petastorm", "pyspark", "numpy", "scikit-learn")


@dataclass(frozen=True)
class ModelDir:
    """A model directory's files by name (the manifest among them), and where they came from."""

    files: Mapping[str, bytes]
    location: str = ""

    @classmethod
    def assemble(cls, version: str, config: ModelConfig, files: Mapping[str, bytes], extra: Mapping[str, Any]) -> ModelDir:
        """Add the manifest: format, version, config, package versions, every file's checksum."""
        manifest = {
            "format": FORMAT,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": config.to_dict(),
            "versions": {name: _package_version(name) for name in PACKAGES},
            "files": {name: _sha256(data) for name, data in sorted(files.items())},
            **extra,
        }
        return cls({**files, MANIFEST: json.dumps(manifest, indent=1).encode()})

    @property
    def manifest(self) -> dict:
        if MANIFEST not in self.files:
            raise SeqriskError(f"{self.location} is not a seqrisk model directory (no {MANIFEST})")
        try:
            return json.loads(self.files[MANIFEST])
        except json.JSONDecodeError as err:
            raise SeqriskError(f"{self.location}: {MANIFEST} is corrupt: {err}") from None

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def fingerprint(self) -> str:
        """The manifest's SHA-256: it names every file's checksum, so it names the whole directory."""
        return _sha256(self.files[MANIFEST])

    def read(self, name: str) -> bytes:
        return self.files[name]

    def json(self, name: str) -> dict | None:
        """A JSON file of the directory, or None when it has none."""
        return json.loads(self.files[name]) if name in self.files else None

    def verify(self) -> dict:
        """The manifest, once the format and every file's checksum are as it says."""
        manifest = self.manifest
        if manifest.get("format") != FORMAT:
            raise ModelFormatError(
                f"{self.location}: model format {manifest.get('format')!r} is not the supported format {FORMAT}; retrain with this version of seqrisk"
            )
        missing = [name for name in REQUIRED if name not in manifest.get("files", {})]
        if missing:
            raise SeqriskError(f"{self.location}: the manifest lists no {', '.join(missing)}; the model directory is incomplete")
        for name, digest in manifest["files"].items():
            if name not in self.files:
                raise SeqriskError(f"{self.location}: {name} is missing")
            if _sha256(self.files[name]) != digest:
                raise SeqriskError(f"{self.location}: {name} does not match its checksum; the model directory is corrupt")
        return manifest


@dataclass(frozen=True)
class LoadedModel:
    version: str
    location: str
    model: SequenceModel
    config: ModelConfig
    vocabulary: Vocabulary
    manifest: dict


def new_version(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"m{now:%Y%m%dT%H%M%SZ}"


def load_model(directory: ModelDir) -> LoadedModel:
    """Verify a model directory and load its sequence model; a corrupt or incompatible one is a clear error."""
    manifest = directory.verify()
    config = ModelConfig(**manifest["model"])
    model = SequenceModel(config)
    model.load_state_dict(weights_from_bytes(directory.read(WEIGHTS)))
    model.eval()
    if PROBE in directory.files:
        _check_probe(directory, model)
    vocabulary = Vocabulary.from_json(directory.read(VOCABULARY).decode("utf-8"))
    return LoadedModel(manifest["version"], directory.location, model, config, vocabulary, manifest)


def weights_to_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return buffer.getvalue()


def weights_from_bytes(data: bytes) -> dict:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def probe_bytes(model: SequenceModel, tokens: np.ndarray, gaps: np.ndarray) -> bytes:
    """What the model says about a few windows, so a reload can prove it says the same."""
    said = surprises(model, torch.from_numpy(tokens), torch.from_numpy(gaps))
    buffer = io.BytesIO()
    np.savez(buffer, tokens=tokens, gaps=gaps, nll=said["nll"].numpy(), gap_nll=said["gap_nll"].numpy())
    return buffer.getvalue()


def _check_probe(directory: ModelDir, model: SequenceModel) -> None:
    with np.load(io.BytesIO(directory.read(PROBE)), allow_pickle=False) as saved:
        said = surprises(model, torch.from_numpy(saved["tokens"]), torch.from_numpy(saved["gaps"]))
        pairs = [(said[name].numpy(), saved[name]) for name in ("nll", "gap_nll")]
        if not all(np.allclose(now, then, atol=1e-4) for now, then in pairs):
            diff = max(float(np.abs(now - then).max()) for now, then in pairs)
            raise SeqriskError(
                f"{directory.location}: the reloaded model does not reproduce its training-time surprises (max diff {diff:.2e})"
            )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None
