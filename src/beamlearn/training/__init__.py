"""Training loops for learned beamforming methods."""

from .unfolded_pga import TrainConfig, evaluate_layers, train_unfolded_pga

__all__ = ["TrainConfig", "evaluate_layers", "train_unfolded_pga"]
