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
        weights: the manifest of its shipped models, or several by label (one per network or method), if any.
    """

    name: str
    title: str
    docs: str = ""
    methods: tuple[MethodInfo, ...] = ()
    train_config: type[TrainConfig] | None = None
    task: Callable[[TrainConfig], TrainingTask] | None = None
    reproduce: Callable | None = None
    weights: WeightsManifest | dict[str, WeightsManifest] | None = None
    extra: dict = field(default_factory=dict)

    def manifests(self) -> dict[str, WeightsManifest]:
        """The shipped-model manifests by label (``""`` for a system with one)."""
        if self.weights is None:
            return {}
        if isinstance(self.weights, WeightsManifest):
            return {"": self.weights}
        return dict(self.weights)

    def __post_init__(self):
        import dataclasses

        if not isinstance(self.name, str) or not self.name or " " in self.name:
            raise ValueError(f"system name must be a non-empty word, got {self.name!r}")
        if (self.train_config is None) != (self.task is None):
            raise ValueError(f"system {self.name!r}: give both train_config and task, or neither")
        if self.train_config is not None:
            if not (isinstance(self.train_config, type) and issubclass(self.train_config, TrainConfig)):
                raise TypeError(f"system {self.name!r}: train_config must be a TrainConfig subclass")
            reserved = {"out", "resume", "progress"} & {f.name for f in dataclasses.fields(self.train_config)}
            if reserved:
                raise ValueError(
                    f"system {self.name!r}: configuration fields {sorted(reserved)} clash with the options every "
                    "`beamlearn train` command has (out, resume, progress); rename them"
                )
        for label, man in self.manifests().items():
            if not isinstance(man, WeightsManifest):
                raise TypeError(
                    f"system {self.name!r}: weights {label!r} must be a WeightsManifest, got {type(man).__name__}"
                )
        for m in self.methods:
            if not isinstance(m, MethodInfo):
                raise TypeError(f"system {self.name!r}: methods must be MethodInfo entries, got {type(m).__name__}")
