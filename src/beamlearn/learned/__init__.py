"""Shared machinery of learned methods: the model base with save/load, :func:`load_model`, the
weights manifest, per-SNR model families and the trainer (with stages)."""

from .base import LearnedMethod, ModelFileError, load_model, model_classes
from .per_snr import PerSNRModels
from .trainer import Stage, TrainConfig, TrainingTask, option, train
from .weights import WeightsEntry, WeightsManifest, interface_fingerprint, scenario_fingerprint

__all__ = [
    "LearnedMethod",
    "ModelFileError",
    "PerSNRModels",
    "Stage",
    "TrainConfig",
    "TrainingTask",
    "WeightsEntry",
    "WeightsManifest",
    "load_model",
    "model_classes",
    "option",
    "interface_fingerprint",
    "scenario_fingerprint",
    "train",
]
