"""Typed configuration: conf/base.yaml, layered with an environment file and --set overrides.

Built once at the edge of a job (`load_config`); everything below takes plain values from it.
An unknown key or a bad value raises `ConfigError` naming the dotted key and what is allowed.
"""
from __future__ import annotations

import copy
import re
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Sequence, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


from seqrisk.errors import SeqriskError

PACKAGED_BASE = Path(__file__).with_name("base.yaml")


class ConfigError(SeqriskError):
    """A configuration file or override that cannot be used; the message says which key and why."""


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]  # a time without a zone is UTC


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkConfig(_Strict):
    master: Optional[str] = None
    app_name: str = "seqrisk"
    shuffle_partitions: int = Field(200, ge=1)
    progress_seconds: float = Field(30.0, ge=0)
    extra: dict[str, str] = {}


class TableNames(_Strict):
    events: str = "events"
    quarantine: str = "quarantine"
    sessions: str = "sessions"
    windows: str = "windows"
    vocabulary: str = "vocabulary.json"  # the vocabulary the windows were cut with, beside them
    session_risk: str = "session_risk"
    user_risk: str = "user_risk"
    ingest_runs: str = "ingest_runs"


class TablesConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    root: str  # files (the vocabulary, staging), and every table when no catalog and schema are set
    catalog: Optional[str] = None  # with `schema`: tables are <catalog>.<schema>.<name> in Spark's catalog (Unity Catalog)
    schema_name: Optional[str] = Field(None, alias="schema")  # `schema` in the YAML (a BaseModel attribute's name)
    delta: Literal["auto", "native", "delta-rs"] = "auto"
    max_records_per_file: int = Field(5_000_000, ge=1000)
    vacuum_retain_hours: int = Field(168, ge=0)  # `seqrisk vacuum` keeps files younger than this
    names: TableNames = TableNames()

    @model_validator(mode="after")
    def _catalog_and_schema(self) -> "TablesConfig":
        if (self.catalog is None) != (self.schema_name is None):
            raise ValueError("set tables.catalog and tables.schema together (or neither)")
        return self


class TimeRange(_Strict):
    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> "TimeRange":
        if self.start >= self.end:
            raise ValueError(f"start ({self.start}) must be before end ({self.end})")
        return self


class ColumnMap(_Strict):
    """Which source column feeds each events field."""

    user_id: str
    event_time: str
    event_type: str
    event_id: Optional[str] = None
    session_id: Optional[str] = None
    item_id: Optional[str] = None
    category: Optional[str] = None
    price: Optional[str] = None


TIME_FORMATS = ("epoch_s", "epoch_ms", "iso")


class Mapping(_Strict):
    """How one raw source maps onto the events schema (DESIGN.md, "Jobs and their contract")."""

    format: Literal["csv", "json", "parquet"]
    header: bool = True
    delimiter: str = Field(",", min_length=1, max_length=1)
    names: Optional[list[str]] = None  # source column names of a CSV without a header
    columns: ColumnMap
    time_format: str = "iso"  # epoch_s, epoch_ms, iso, or a Spark datetime pattern
    attributes: list[str] = []
    time_range: Optional[TimeRange] = None  # narrows ingest's plausible range for this source
    encoding: str = "utf-8"  # the files' text encoding (CSV, JSON); others are decoded whole per file
    id_namespace: Optional[str] = None  # given event ids are unique within it; default: the mapping's name
    placeholder_ids: list[str] = ["0", "-", "null", "none", "nan", "n/a", "undefined"]  # event ids that are no id (any case)

    @model_validator(mode="after")
    def _csv_names(self) -> "Mapping":
        if self.format == "csv" and not self.header and not self.names:
            raise ValueError("a CSV without a header needs `names`, its columns in order")
        if self.names and self.format != "csv":
            raise ValueError("`names` is only for CSV without a header")
        return self

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        import codecs

        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r} (e.g. utf-8, latin-1, cp1252, utf-16)") from None

    @field_validator("time_format")
    @classmethod
    def _time_format(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"must be one of {', '.join(TIME_FORMATS)} or a datetime pattern")
        return value

    def source_columns(self) -> list[str]:
        """Every source column this mapping reads, in a stable order."""
        mapped = [c for c in self.columns.model_dump().values() if c is not None]
        return list(dict.fromkeys(mapped + list(self.attributes)))


class IngestConfig(_Strict):
    min_event_time: UtcDatetime = datetime(2000, 1, 1, tzinfo=timezone.utc)
    max_future_hours: float = Field(24, ge=0)
    max_price: float = Field(1e7, gt=0)
    max_quarantine_share: Optional[float] = Field(None, ge=0, le=1)  # refuse a run that quarantines more (null: never)
    max_field_chars: int = Field(4096, ge=1)  # a longer value in any mapped column quarantines the record
    duplicate_check_days: Optional[int] = Field(None, ge=0)  # null: against the whole events table; N: the input's dates +- N days
    success_marker: Literal["auto", "required", "ignored"] = "auto"  # auto: folders of part-* files need _SUCCESS
    mappings: dict[str, Mapping] = {}


class AnomalyConfig(_Strict):
    weight: float = Field(1.0, ge=0)  # relative share among anomalous users
    subtlety: float = Field(0.3, ge=0, le=1)  # 0: blatant, 1: close to normal behavior


class AnomaliesConfig(_Strict):
    scraping_bot: AnomalyConfig = AnomalyConfig()
    card_testing: AnomalyConfig = AnomalyConfig()
    account_takeover: AnomalyConfig = AnomalyConfig()
    click_farm: AnomalyConfig = AnomalyConfig()
    cart_abuse: AnomalyConfig = AnomalyConfig()
    velocity_burst: AnomalyConfig = AnomalyConfig()


class GenerateConfig(_Strict):
    users: int = Field(3000, ge=1)
    days: int = Field(14, ge=1, le=3650)
    start: date = date(2024, 5, 1)
    seed: int = 7
    anomaly_rate: float = Field(0.05, ge=0, le=1)  # share of users with at least one anomalous span
    malformed_rate: float = Field(0.0, ge=0, le=1)  # corrupted extra copies of lines, for quarantine
    items: int = Field(5000, ge=10)
    categories: int = Field(40, ge=1)
    partitions: Optional[int] = Field(None, ge=1)  # Spark tasks; default: from users and cores
    out: str = "./data/generated"
    anomalies: AnomaliesConfig = AnomaliesConfig()

    @model_validator(mode="after")
    def _catalog(self) -> "GenerateConfig":
        if self.items < self.categories:
            raise ValueError(f"items ({self.items}) must be at least categories ({self.categories})")
        return self


class SessionizeConfig(_Strict):
    gap_minutes: float = Field(30, gt=0)  # inactivity that ends a session (when the source has no session id)
    max_events: int = Field(500, ge=2)  # longer sessions are split
    max_duration_minutes: float = Field(240, gt=0, le=1440)  # so are longer-lasting ones
    lookback_days: int = Field(1, ge=1)  # incremental runs read this far back, so sessions come out whole
    skewed_user_events: int = Field(1_000_000, ge=1)  # users with more events are sessionized day by day
    cart_events: list[str] = ["add_to_cart", "cart"]  # event types counted as carts in session features
    purchase_events: list[str] = ["purchase", "buy"]


class VocabularyConfig(_Strict):
    min_count: int = Field(5, ge=1)  # rarer tokens share the <rare> token
    max_size: int = Field(10_000, ge=4)
    composite: Literal["none", "category", "price"] = "price"  # event type joined with a category or a price bucket
    top_categories: int = Field(16, ge=1)  # category buckets: the most frequent ones, then "other"
    price_quantiles: list[float] = [0.05, 0.95]  # price bucket edges, as quantiles of all prices

    @field_validator("price_quantiles")
    @classmethod
    def _quantiles(cls, value: list[float]) -> list[float]:
        if not value or any(not 0 < q < 1 for q in value) or value != sorted(set(value)):
            raise ValueError("price_quantiles must be ascending distinct numbers between 0 and 1")
        return value


class WindowsConfig(_Strict):
    length: int = Field(32, ge=2, le=4096)
    stride: int = Field(16, ge=1)
    gap_buckets_s: list[float] = [1, 2, 5, 10, 30, 60, 120, 300, 900]  # upper bounds of time-gap buckets
    row_group_mb: int = Field(32, ge=1)  # Parquet row groups: what Petastorm reads at a time

    @model_validator(mode="after")
    def _shape(self) -> "WindowsConfig":
        if self.stride > self.length:
            raise ValueError(f"stride ({self.stride}) must not exceed length ({self.length}): events would be skipped")
        if any(b >= a for b, a in zip(self.gap_buckets_s, self.gap_buckets_s[1:])) or not self.gap_buckets_s:
            raise ValueError("gap_buckets_s must be a non-empty increasing list of seconds")
        return self


class ModelSettings(_Strict):
    dir: str = "./models"  # versioned model directories are created under it
    arch: Literal["transformer", "gru"] = "gru"
    d_model: int = Field(64, ge=8)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads(self) -> "ModelSettings":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        return self


class TrainConfig(_Strict):
    workers: int = Field(2, ge=1)  # Horovod processes (Spark barrier tasks); 1 trains in the driver
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(1e-3, gt=0)  # per worker; scaled by the number of workers
    epochs: int = Field(6, ge=1)
    steps_per_epoch: int = Field(40, ge=1)
    val_steps: int = Field(10, ge=1)
    patience: int = Field(2, ge=1)
    val_fraction: float = Field(0.2, gt=0, lt=1)  # the latest session dates, held out chronologically
    seed: int = 7
    mixed_precision: bool = True  # bf16 on CUDA
    reference_sessions: int = Field(100_000, ge=100)  # sample that fits the second detector and the calibration
    detector_trees: int = Field(200, ge=10)
    feature_event_types: int = Field(64, ge=1)  # the feature detector's event-type share columns: the most frequent types
    count_columns: int = Field(512, ge=4)  # the count detector's columns: the most frequent tokens, the rest as <rare>
    count_floor: float = Field(1e-3, gt=0, lt=1)  # the count detector's variance floor, relative to the largest (docs/detectors.md)
    label_min_cases: int = Field(5, ge=1)  # `train --labels`: fewer labeled sessions than this change nothing
    label_recall: float = Field(0.9, gt=0, le=1)  # `train --labels`: `high` starts where it still catches this share of them


class RiskLevels(_Strict):
    """risk_pct cut-offs: at or above `medium` is medium, at or above `high` is high."""

    medium: float = Field(95.0, gt=0, lt=100)
    high: float = Field(99.0, gt=0, lt=100)

    @model_validator(mode="after")
    def _ordered(self) -> "RiskLevels":
        if self.medium >= self.high:
            raise ValueError(f"medium ({self.medium}) must be below high ({self.high})")
        return self


class PolicyRule(_Strict):
    """A rule of the risk-action policy; a rule without conditions matches every session."""

    level: Optional[Literal["low", "medium", "high"]] = None
    any_reason: list[str] = []
    action: Literal["allow", "review", "step_up_auth", "block"]

    @field_validator("any_reason")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from seqrisk.detectors.reasons import REASONS

        unknown = sorted(set(value) - set(REASONS))
        if unknown:
            raise ValueError(f"unknown reason codes {unknown}; known: {', '.join(REASONS)}")
        return value


DEFAULT_POLICY = [
    PolicyRule(level="high", any_reason=["duplicate_sequence", "bot_like_timing"], action="block"),
    PolicyRule(level="high", any_reason=["unseen_event", "rare_transition"], action="step_up_auth"),
    PolicyRule(level="high", action="review"),
    PolicyRule(level="medium", action="review"),
    PolicyRule(action="allow"),
]


class ScoreConfig(_Strict):
    model: str = "latest"  # a model directory, "latest" (the newest under model.dir), or models:/NAME@ALIAS (MLflow)
    batch_windows: int = Field(4096, ge=1)  # windows per tensor batch inside the scoring UDF
    top_events: int = Field(3, ge=1, le=32)  # surprising events kept per session, for analysts
    levels: RiskLevels = RiskLevels()
    reason_percentile: float = Field(95.0, gt=0, lt=100)  # a detector explains a session from this percentile up
    reason_z: float = Field(3.0, gt=0)  # a feature is a reason from this robust z-score up
    duplicate_min_users: int = Field(3, ge=2)
    duplicate_min_events: int = Field(5, ge=1)
    user_window_days: int = Field(30, ge=1)  # user_risk aggregates this many days of sessions up to the run's last date
    policy: list[PolicyRule] = DEFAULT_POLICY  # first matching rule wins

    @field_validator("policy")
    @classmethod
    def _catch_all(cls, rules: list[PolicyRule]) -> list[PolicyRule]:
        if not rules or rules[-1].level is not None or rules[-1].any_reason:
            raise ValueError("the last policy rule must have no conditions (only an action), so every session gets one")
        return rules


class EvaluateConfig(_Strict):
    report: str = "./report"  # where `seqrisk evaluate` writes metrics.json, report.md and plots
    alert_budget_pct: float = Field(1.0, gt=0, le=100)  # recall when alerting on this share of sessions


class MlflowConfig(_Strict):
    tracking_uri: Optional[str] = None  # null: no tracking; sqlite:///FILE (embedded), databricks, http://HOST
    registry_uri: Optional[str] = None  # null: the tracking store; databricks-uc for Unity Catalog models
    experiment: str = "seqrisk"  # on Databricks a workspace path, e.g. /Shared/seqrisk
    artifact_location: Optional[str] = None  # where a new experiment keeps its artifacts (null: the store's default)
    registered_model: Optional[str] = "seqrisk"  # catalog.schema.name on Unity Catalog; null: runs are logged, nothing registered
    candidate_alias: str = "candidate"  # train points it at the version it registers
    promote_tolerance: float = Field(0.0, ge=0, le=1)  # promote refuses a candidate whose ROC AUC or PR AUC is lower by more

    @model_validator(mode="after")
    def _registry_needs_tracking(self) -> "MlflowConfig":
        if self.registry_uri and not self.tracking_uri:
            raise ValueError("registry_uri is set but tracking_uri is not; set both (or neither)")
        return self


class Config(_Strict):
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

    def mapping(self, name: str) -> Mapping:
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
