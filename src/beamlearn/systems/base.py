"""What a system (one paper) declares: its methods, training, reproduction, weights and docs page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..learned.trainer import TrainConfig, TrainingTask
from ..learned.weights import WeightsManifest
from ..registry import MethodInfo

__all__ = ["System"]


@dataclass(frozen=True)
class System:
    """One paper's system; the CLI (``systems``, ``train``, ``reproduce``) is built from these.

    Attributes:
        name: command-line name (``beamlearn train NAME``).
        title: one line: the paper and what it does.
        docs: the docs page, relative to the repository root.
        methods: the methods it adds to the catalogue (learned models, paper-only baselines).
        train_config: its :class:`~beamlearn.learned.TrainConfig` subclass (fields become the options of
            ``beamlearn train NAME``); ``None`` if nothing is trained.
        task: ``task(config) -> TrainingTask``.
        reproduce: ``reproduce(out_dir, *, quick, train, channels, device, progress, log) -> Report``
            (:mod:`beamlearn.reproduction`).
        weights: the manifest of its shipped models, if any.
    """

    name: str
    title: str
    docs: str = ""
    methods: tuple[MethodInfo, ...] = ()
    train_config: type[TrainConfig] | None = None
    task: Callable[[TrainConfig], TrainingTask] | None = None
    reproduce: Callable | None = None
    weights: WeightsManifest | None = None
    extra: dict = field(default_factory=dict)
