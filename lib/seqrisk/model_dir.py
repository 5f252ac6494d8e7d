"""Versioned, self-contained model directories (DESIGN.md, "Model and scores").

A model directory holds what scoring needs without the training data: `weights.pt` (a state dict,
loaded with `weights_only=True`), `vocabulary.json`, the feature and count detectors (`detector.skops`, `count_detector.npz`), the
reference score quantiles (`calibration.npz`), how the detectors combine (`combination.json`),
`history.json`, a probe of known surprises, and
`manifest.json` with the model's config, the versions it was built with, and a SHA-256 checksum of
every other file.
A directory is written under a temporary name and renamed into place, so a reader never sees half
of one. `load_model` verifies the format and the checksums before anything else.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from seqrisk.errors import SeqriskError
from seqrisk.model import ModelConfig, SequenceModel, surprises
from seqrisk.vocabulary import Vocabulary

FORMAT = 5  # 2: the second detector and the calibration; 3: the count detector; 4: the end token; 5: sequence score = largest surprise
REQUIRED = ("weights.pt", "vocabulary.json", "detector.skops", "count_detector.npz", "calibration.npz")
MANIFEST = "manifest.json"
PROBE = "probe.npz"  # a few validation windows and the surprises the trained model gave them
PROBE_WINDOWS = 16
PACKAGES = ("seqrisk", "torch", "horovod", "petastorm", "pyspark", "numpy", "scikit-learn")


@dataclass(frozen=True)
class LoadedModel:
    version: str
    path: Path
    model: SequenceModel
    config: ModelConfig
    vocabulary: Vocabulary
    manifest: dict


def new_version(now: Optional[datetime] = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"m{now:%Y%m%dT%H%M%SZ}"


def staging_dir(models_root: str | Path, version: str) -> Path:
    """Where a version is assembled before `publish` renames it into place."""
    path = Path(models_root) / f".{version}.partial"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def publish(staging: Path, version: str, config: ModelConfig, extra: dict[str, Any]) -> Path:
    """Write the manifest (checksums of every file) and move the directory to its version name."""
    files = {p.name: _sha256(p) for p in sorted(staging.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = {
        "format": FORMAT,
        "version": version,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": config.to_dict(),
        "versions": {name: _package_version(name) for name in PACKAGES},
        "files": files,
        **extra,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
    target = staging.parent / version
    if target.exists():
        raise SeqriskError(f"model version {version} already exists at {target}")
    staging.rename(target)
    return target


def load_model(path: str | Path) -> LoadedModel:
    """Load and verify a model directory; a corrupt or incompatible one is a clear error."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise SeqriskError(f"{path} is not a seqrisk model directory (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise SeqriskError(f"{manifest_path} is corrupt: {err}") from None
    if manifest.get("format") != FORMAT:
        raise SeqriskError(
            f"{path}: model format {manifest.get('format')!r} is not the supported format {FORMAT}; retrain with this version of seqrisk"
        )
    missing = [name for name in REQUIRED if name not in manifest.get("files", {})]
    if missing:
        raise SeqriskError(f"{path}: the manifest lists no {', '.join(missing)}; the model directory is incomplete")
    for name, digest in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise SeqriskError(f"{path}: {name} is missing")
        if _sha256(file) != digest:
            raise SeqriskError(f"{path}: {name} does not match its checksum; the model directory is corrupt")
    config = ModelConfig(**manifest["model"])
    model = SequenceModel(config)
    model.load_state_dict(torch.load(path / "weights.pt", map_location="cpu", weights_only=True))
    model.eval()
    _check_probe(path, model)
    return LoadedModel(manifest["version"], path, model, config, Vocabulary.load(path / "vocabulary.json"), manifest)


def latest(models_root: str | Path) -> Path:
    """The newest published version under `models_root` (versions sort by their timestamps)."""
    root = Path(models_root)
    versions = sorted(p for p in root.glob("m*") if (p / MANIFEST).is_file()) if root.is_dir() else []
    if not versions:
        raise SeqriskError(f"no model under {root}; run `seqrisk train` first or set model.dir")
    return versions[-1]


def save_probe(path: Path, model: SequenceModel, tokens: np.ndarray, gaps: np.ndarray) -> None:
    """Remember what the model says about a few windows, so a reload can prove it says the same."""
    nll = surprises(model, torch.from_numpy(tokens), torch.from_numpy(gaps))["nll"].numpy()
    np.savez(path, tokens=tokens, gaps=gaps, nll=nll)


def _check_probe(path: Path, model: SequenceModel) -> None:
    probe = path / PROBE
    if not probe.is_file():
        return
    with np.load(probe, allow_pickle=False) as saved:
        nll = surprises(model, torch.from_numpy(saved["tokens"]), torch.from_numpy(saved["gaps"]))["nll"].numpy()
        if not np.allclose(nll, saved["nll"], atol=1e-4):
            raise SeqriskError(f"{path}: the reloaded model does not reproduce its training-time surprises (max diff {np.abs(nll - saved['nll']).max():.2e})")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_version(name: str) -> Optional[str]:
    try:
        return version(name)
    except PackageNotFoundError:
        return None
