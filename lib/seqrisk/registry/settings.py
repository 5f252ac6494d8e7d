"""Settings of MLflow tracking and the model registry (`mlflow.*`)."""

from __future__ import annotations

from pydantic import Field, model_validator

from seqrisk.settings import Settings


class MlflowConfig(Settings):
    tracking_uri: str | None = None  # null: no tracking; sqlite:///FILE (embedded), databricks, http://HOST
    registry_uri: str | None = None  # null: the tracking store; databricks-uc for Unity Catalog models
    experiment: str = "seqrisk"  # on Databricks a workspace path, e.g. /Shared/seqrisk
    artifact_location: str | None = None  # where a new experiment keeps its artifacts (null: the store's default)
    registered_model: str | None = "seqrisk"  # catalog.schema.name on Unity Catalog; null: runs are logged, nothing registered
    candidate_alias: str = "candidate"  # train points it at the version it registers
    promote_tolerance: float = Field(0.0, ge=0, le=1)  # promote refuses a candidate whose ROC AUC or PR AUC is lower by more

    @model_validator(mode="after")
    def _registry_needs_tracking(self) -> MlflowConfig:
        if self.registry_uri and not self.tracking_uri:
            raise ValueError("registry_uri is set but tracking_uri is not; set both (or neither)")
        return self
