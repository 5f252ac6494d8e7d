"""MLflow: a run per training and its evaluations, the registered model, and its aliases.

Jobs reach MLflow only through this module. With `mlflow.tracking_uri` null nothing is tracked and
`models:/` references are a clear error. The same calls work with MLflow 2.x (Databricks Runtime
15.4 LTS ML ships 2.13) and 3.x; where the two differ (the keyword that names a logged model)
`_log_model` picks. A registered version is a pyfunc (`seqrisk.registry.pyfunc`) whose artifacts hold the
seqrisk model directory unchanged, so `score` loads it exactly as it loads a folder.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import pandas as pd

from seqrisk.errors import SeqriskError
from seqrisk.model.model_dir import ModelDir
from seqrisk.registry import model_store
from seqrisk.registry.settings import MlflowConfig

log = logging.getLogger("seqrisk")
REGISTRY_SCHEME = "models:/"
MODEL_ARTIFACT = "model"  # the pyfunc's path inside its run
DIRECTORY_ARTIFACT = "model_dir"  # the seqrisk model directory inside the pyfunc's artifacts
EVALUATION_ARTIFACTS = "evaluation"
SQLITE = "sqlite:///"
_REFERENCE = re.compile(r"^models:/(?P<name>[^@/]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str | None

    @property
    def uri(self) -> str:
        return f"{REGISTRY_SCHEME}{self.name}/{self.version}"


def enabled(settings: MlflowConfig) -> bool:
    return settings.tracking_uri is not None


def is_registry_reference(model: str) -> bool:
    return model.startswith(REGISTRY_SCHEME)


def _mlflow(settings: MlflowConfig):
    """The mlflow module, pointed at the configured stores."""
    if not enabled(settings):
        raise SeqriskError("MLflow is not configured: set mlflow.tracking_uri (e.g. sqlite:///mlflow.db, or databricks)")
    try:
        import mlflow
    except ImportError:
        raise SeqriskError("mlflow.tracking_uri is set but MLflow is not installed: pip install 'seqrisk[runtime]' (or mlflow)") from None
    uri = str(settings.tracking_uri)  # set: `enabled` said so
    if uri.startswith(SQLITE):  # the embedded store: its folder may not exist yet
        Path(uri[len(SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if settings.registry_uri:
        mlflow.set_registry_uri(settings.registry_uri)
    return mlflow


def _client(settings: MlflowConfig):
    return _mlflow(settings).MlflowClient()


# -- runs ---------------------------------------------------------------------------------------


class TrainingRun:
    """The MLflow run of one `seqrisk train`: parameters, per-epoch metrics, the model, its registration."""

    def __init__(self, mlflow, run_id: str, settings: MlflowConfig):
        self._mlflow, self.run_id, self._settings = mlflow, run_id, settings

    def log_training(self, params: dict, history: list[dict], tags: dict) -> None:
        """Flat parameters, every epoch's losses and throughput (step = epoch), and tags."""
        self._mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        for epoch in history:
            step = int(epoch["epoch"])
            self._mlflow.log_metrics({k: float(v) for k, v in epoch.items() if k != "epoch" and v is not None}, step=step)
        self._mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_model(self, directory: ModelDir, example: pd.DataFrame) -> RegisteredVersion | None:
        """Log the directory as a pyfunc, register it, and point the candidate alias at the new version."""
        from seqrisk.registry.pyfunc import SeqriskModel, signature_for

        with tempfile.TemporaryDirectory(prefix="seqrisk-mlflow-") as tmp:
            folder = Path(tmp) / DIRECTORY_ARTIFACT
            folder.mkdir()
            for file_name, data in directory.files.items():
                (folder / file_name).write_bytes(data)
            self._mlflow.log_artifacts(str(folder), DIRECTORY_ARTIFACT)  # the files themselves, beside the run's metrics
            logged = _log_model(
                self._mlflow,
                python_model=SeqriskModel(),
                artifacts={DIRECTORY_ARTIFACT: str(folder)},
                pip_requirements=[f"seqrisk=={package_version('seqrisk')}"],
                signature=signature_for(self._mlflow, directory, example),
            )
        name = self._settings.registered_model
        if name is None:
            return None
        registered = self._mlflow.register_model(logged.model_uri, name)  # runs:/... under MLflow 2, models:/m-... under 3
        client = self._mlflow.MlflowClient()
        client.set_registered_model_alias(name, self._settings.candidate_alias, registered.version)
        log.info("train: registered %s version %s (alias %s)", name, registered.version, self._settings.candidate_alias)
        return RegisteredVersion(name, str(registered.version), self.run_id)


def _log_model(mlflow, **kwargs):
    """`mlflow.pyfunc.log_model` under MLflow 3 (`name=`) and 2 (`artifact_path=`); its ModelInfo."""
    major = int(mlflow.__version__.split(".")[0])
    keyword = "name" if major >= 3 else "artifact_path"
    return mlflow.pyfunc.log_model(**{keyword: MODEL_ARTIFACT}, **kwargs)


@contextmanager
def training_run(settings: MlflowConfig, run_name: str) -> Iterator[TrainingRun | None]:
    """An MLflow run around a training (FAILED in MLflow when training raises); None when tracking is off."""
    if not enabled(settings):
        yield None
        return
    mlflow = _mlflow(settings)
    experiment = mlflow.get_experiment_by_name(settings.experiment)
    experiment_id = experiment.experiment_id if experiment else mlflow.create_experiment(settings.experiment, _artifact_location(settings))
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        log.info("train: MLflow run %s in experiment %s (%s)", run.info.run_id, settings.experiment, settings.tracking_uri)
        yield TrainingRun(mlflow, run.info.run_id, settings)


def _artifact_location(settings: MlflowConfig) -> str | None:
    """`mlflow.artifact_location` as MLflow needs it: a local folder becomes an absolute file URI."""
    location = settings.artifact_location
    if location is None or ":" in location:
        return location
    return Path(location).resolve().as_uri()


def log_evaluation(settings: MlflowConfig, run_id: str, metrics: dict, folder: Path) -> None:
    """An evaluation's headline metrics (`eval_<detector>_<metric>`) and its report files, on a model's run."""
    client = _client(settings)
    for detector, values in metrics.items():
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    client.log_metric(run_id, f"eval_{detector}_{key}", float(value))
    client.log_artifacts(run_id, str(folder), EVALUATION_ARTIFACTS)
    log.info("evaluate: metrics and report logged to MLflow run %s", run_id)


# -- the registry -------------------------------------------------------------------------------


def resolve(settings: MlflowConfig, reference: str) -> RegisteredVersion:
    """The version a `models:/NAME@ALIAS` or `models:/NAME/VERSION` reference names."""
    match = _REFERENCE.match(reference)
    if not match:
        raise SeqriskError(f"{reference!r} is not a registered model reference like models:/NAME@ALIAS or models:/NAME/VERSION")
    client = _client(settings)
    name, alias = match["name"], match["alias"]
    try:
        found = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, match["version"])
    except Exception as err:  # MlflowException: the registry says which (no such model, alias or version)
        raise SeqriskError(
            f"{reference}: not in the model registry ({settings.registry_uri or settings.tracking_uri}): {_first_line(err)}"
        ) from None
    return RegisteredVersion(name, str(found.version), found.run_id)


def alias_holder(settings: MlflowConfig, name: str, alias: str) -> RegisteredVersion | None:
    """The version `alias` points at, or None when no version has it."""
    try:
        return resolve(settings, f"{REGISTRY_SCHEME}{name}@{alias}")
    except SeqriskError:
        return None


def set_alias(settings: MlflowConfig, registered: RegisteredVersion, alias: str) -> None:
    _client(settings).set_registered_model_alias(registered.name, alias, registered.version)


def download_directory(settings: MlflowConfig, registered: RegisteredVersion, destination: str) -> str:
    """Download a registered version; the local folder of its seqrisk model directory."""
    mlflow = _mlflow(settings)
    local = mlflow.artifacts.download_artifacts(artifact_uri=registered.uri, dst_path=destination)
    folder = Path(local) / "artifacts" / DIRECTORY_ARTIFACT
    if not folder.is_dir():
        raise SeqriskError(f"{registered.uri} is not a seqrisk model (no artifacts/{DIRECTORY_ARTIFACT} in it)")
    return str(folder)


def fetch_model(spark, settings: MlflowConfig, model_root: str, reference: str) -> ModelDir:
    """The model directory a reference names: `models:/...` from the registry, else a folder or `latest` (`model_store`)."""
    if not is_registry_reference(reference):
        return model_store.fetch(spark, model_store.resolve(spark, model_root, reference))
    registered = resolve(settings, reference)
    with tempfile.TemporaryDirectory(prefix="seqrisk-model-") as tmp:
        files = model_store.fetch(spark, download_directory(settings, registered, tmp)).files
    return ModelDir(files, f"{reference} ({registered.uri})")


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
