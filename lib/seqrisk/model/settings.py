"""Settings of the sequence model and its training (`model.*`, `train.*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from seqrisk.settings import Settings


class ModelSettings(Settings):
    dir: str = "./models"  # versioned model directories are created under it
    arch: Literal["transformer", "gru"] = "gru"
    d_model: int = Field(64, ge=8)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads(self) -> ModelSettings:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        return self


class TrainConfig(Settings):
    workers: int = Field(2, ge=1)  # training processes (Spark barrier tasks); 1 trains in the driver
    launcher: Literal["auto", "horovod", "torch_distributor"] = "auto"  # model/launch.py
    reader: Literal["auto", "petastorm", "arrow"] = "auto"
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
    ngram_length: int = Field(8, ge=1)  # the n-gram detector's runs of tokens (docs/detectors.md)
    ngram_min_sessions: int = Field(2, ge=1)  # a run is known when this many reference sessions hold it
    ngram_max_stored: int = Field(2_000_000, ge=1)  # runs the model keeps (16 bytes each), the most widely held first
    label_min_cases: int = Field(5, ge=1)  # `train --labels`: fewer labeled sessions than this change nothing
    label_recall: float = Field(0.9, gt=0, le=1)  # `train --labels`: `high` starts where it still catches this share of them
