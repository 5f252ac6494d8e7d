"""Typed configuration: conf/base.yaml, layered with an environment file and --set overrides.

Built once at the edge of a job (`load_config`); everything below takes plain values from it.
An unknown key or a bad value raises `ConfigError` naming the dotted key and what is allowed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError

from seqrisk.errors import SeqriskError
from seqrisk.evaluation.settings import EvaluateConfig
from seqrisk.ingest.settings import IngestConfig, SourceMapping
from seqrisk.lake.settings import TablesConfig
from seqrisk.model.settings import ModelSettings, TrainConfig
from seqrisk.registry.settings import MlflowConfig
from seqrisk.scoring.settings import ScoreConfig
from seqrisk.sessions.settings import SessionizeConfig, VocabularyConfig, WindowsConfig
from seqrisk.settings import Settings
from seqrisk.synthetic.settings import GenerateConfig

PACKAGED_BASE = Path(__file__).with_name("base.yaml")


class ConfigError(SeqriskError):
    """A configuration file or override that cannot be used; the message says which key and why."""


class SparkConfig(Settings):
    master: str | None = None
    app_name: str = "seqrisk"
    shuffle_partitions: int = Field(200, ge=1)
    progress_seconds: float = Field(30.0, ge=0)
    extra: dict[str, str] = {}


class Config(Settings):
    spark: SparkConfig = SparkConfig()
    tables: TablesConfig
    ingest: IngestConfig = IngestConfig()
    generate: GenerateConfig = GenerateConfig()
    sessionize: SessionizeConfig = SessionizeConfig()
    vocabulary: VocabularyConfig = VocabularyConfig()
    windows: WindowsConfig = WindowsConfig()
    model: ModelSettings = ModelSettings()
    train: TrainConfig = TrainConfig()
    score: ScoreConfig = ScoreConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    mlflow: MlflowConfig = MlflowConfig()

    def mapping(self, name: str) -> SourceMapping:
        try:
            return self.ingest.mappings[name]
        except KeyError:
            known = ", ".join(sorted(self.ingest.mappings)) or "none"
            raise ConfigError(f"ingest.mappings.{name}: no such mapping; known mappings: {known}") from None

    def to_yaml(self) -> str:
        """The effective config as YAML, with secrets redacted (`redact`): what a job logs."""
        return yaml.safe_dump(redact(self.model_dump(mode="json", by_alias=True)), sort_keys=False)


def load_config(conf: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Build the effective config: base.yaml, then the environment file `conf`, then overrides.

    The base is `base.yaml` beside `conf` when there is one, else the copy inside the package.
    Each override is `dotted.key=value`, with the value read as YAML (`3`, `true`, `[a, b]`).
    """
    base_path = PACKAGED_BASE
    layers: list[dict[str, Any]] = []
    if conf is not None:
        conf = Path(conf)
        if not conf.is_file():
            raise ConfigError(f"--conf {conf}: no such file")
        if (conf.parent / "base.yaml").is_file():
            base_path = conf.parent / "base.yaml"
        if conf.resolve() != base_path.resolve():
            layers.append(_read_yaml(conf))
    merged = _read_yaml(base_path)
    for layer in layers:
        merged = _deep_merge(merged, layer)
    for item in overrides:
        merged = _apply_override(merged, item)
    return _validate(merged)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a mapping of keys at the top level")
    return data


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _apply_override(config: dict[str, Any], item: str) -> dict[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected dotted.key=value, e.g. tables.root=/data/lake")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    nested: Any = value
    for part in reversed(key.strip().split(".")):
        nested = {part: nested}
    return _deep_merge(config, nested)


SECRET_KEY = re.compile(r"secret|password|passwd|token|credential|key|sas|auth|private|signature", re.IGNORECASE)
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
REDACTED = "***"


def redact(value: Any, key: str = "") -> Any:
    """`value` with every setting whose key names a secret (storage keys in `spark.extra`, tokens)
    replaced by `***`, and user:password@ taken out of URIs."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if isinstance(value, str):
        return REDACTED if SECRET_KEY.search(key) else _USERINFO.sub(REDACTED + "@", value)
    return value


def _validate(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        lines = []
        for problem in err.errors():
            key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
            message = problem["msg"]
            if problem["type"] == "extra_forbidden":
                message = "unknown key; allowed here: " + _allowed_keys(problem["loc"][:-1])
            elif "input" in problem and not isinstance(problem["input"], dict):
                shown = redact(problem["input"], key)
                message += f" (got {shown if shown == REDACTED else repr(shown)[:80]})"
            lines.append(f"  {key}: {message}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None


def _allowed_keys(loc: tuple) -> str:
    """The keys a config section accepts, found by walking the models along `loc`."""
    model: Any = Config
    skip_dict_key = False
    for part in loc:
        if skip_dict_key:  # `part` is a key of a free-form dict such as ingest.mappings
            skip_dict_key = False
            continue
        field = model.model_fields[part]
        skip_dict_key = get_origin(field.annotation) is dict
        model = _model_of(field.annotation)
        if model is None:
            return "(see conf/base.yaml)"
    return ", ".join(model.model_fields)


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
