"""A seqrisk model directory as an MLflow pyfunc (imported only where MLflow is in use).

Input: sessions with the columns the scorer reads (`scoring.scorer_input`); output: their
session_risk columns, with the `score` settings the model was trained with (levels, reasons,
policy: saved in its manifest; the defaults for a directory older than that). `load_context`
verifies the directory as `score` does (every checksum, then the probe), so a registered model that
loads is one that scores.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from mlflow.pyfunc import PythonModel

from seqrisk.model.model_dir import ModelDir
from seqrisk.registry.tracking import DIRECTORY_ARTIFACT
from seqrisk.scoring.risk_model import RiskModel, load_risk_model, risk_frame
from seqrisk.scoring.settings import ScoreConfig

log = logging.getLogger("seqrisk")


class SeqriskModel(PythonModel):
    def load_context(self, context) -> None:
        self._model = load_risk_model(read_directory(Path(context.artifacts[DIRECTORY_ARTIFACT])))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        return _score(self._model, model_input)


def read_directory(folder: Path) -> ModelDir:
    """A model directory's files from a local folder (verify them with `load_risk_model`)."""
    return ModelDir({path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}, str(folder))


def signature_for(mlflow, directory: ModelDir, example: pd.DataFrame):
    """The pyfunc's input and output schema, inferred from a few sessions (a Unity Catalog registry requires one).

    Every column is optional (a batch may hold nulls the example did not), and `type_counts` is a
    map of any event types, not the example's keys.
    """
    try:
        from mlflow.models import ModelSignature
        from mlflow.types.schema import ColSpec, DataType, Map, Schema, TensorSpec

        inferred = mlflow.models.infer_signature(example, _score(load_risk_model(directory), example))
        inputs: list[ColSpec | TensorSpec] = [
            ColSpec(Map(DataType.long) if c.name == "type_counts" else c.type, c.name, required=False) for c in inferred.inputs.inputs
        ]
        return ModelSignature(Schema(inputs), inferred.outputs)
    except Exception as err:  # an MLflow without a type seqrisk's columns need: log the model without a signature
        log.warning("train: no MLflow signature for the model (%s); registries that require one will refuse it", err)
        return None


def _score(model: RiskModel, sessions: pd.DataFrame) -> pd.DataFrame:
    now = datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as Spark hands times to pandas
    return risk_frame(sessions, model, trained_settings(model), run_id=f"pyfunc-{model.version}", scored_at=now)


def trained_settings(model: RiskModel) -> ScoreConfig:
    """The `score` settings saved with the model at training time."""
    return ScoreConfig.model_validate(model.loaded.manifest.get("score", {}))
