"""The base of every learned method: configuration, persistence and :func:`load_model`.

A learned method is a :class:`~beamlearn.interface.BeamformingMethod` with parameters. Subclasses
name themselves with ``model_name`` (the name stored in model files; keep it stable) and store each
constructor argument under its own name, so the configuration follows the signature. The base owns
saving and loading (:mod:`beamlearn.learned.serialization`: checksummed, no code executed on load), and
:func:`load_model` returns an instance of the right class for any registered model.

Example:
    >>> import torch
    >>> from beamlearn.learned import LearnedMethod, load_model
    >>> class Scaled(LearnedMethod):
    ...     model_name = "doc-scaled"
    ...     def __init__(self, gain: float = 1.0):
    ...         super().__init__()
    ...         self.gain = gain
    ...         self.w = torch.nn.Parameter(torch.tensor(gain))
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "m.blm")
    >>> Scaled(2.0).save(path, metadata={"snr_db": 10.0})
    >>> m = load_model(path)
    >>> type(m).__name__, m.config(), m.metadata["snr_db"]
    ('Scaled', {'gain': 2.0}, 10.0)
"""

from __future__ import annotations

import os
from typing import ClassVar

import torch

from ..interface import BeamformingMethod
from .serialization import ModelFileError, read_model_file, write_model_file

__all__ = ["LearnedMethod", "load_model", "model_classes", "ModelFileError"]

_MODEL_CLASSES: dict[str, type[LearnedMethod]] = {}


def model_classes() -> dict[str, type]:
    """Registered learned model classes by ``model_name`` (importing the systems registers theirs)."""
    from .. import systems  # noqa: F401 - registers the shipped systems' model classes

    return dict(_MODEL_CLASSES)


class LearnedMethod(BeamformingMethod):
    """Base class of learned methods: ``model(observation, power, noise_var) -> Beamformers``.

    Attributes:
        model_name: class-level name written into model files; every subclass that defines it is
            registered for :func:`load_model`.
        metadata: free-form dict of plain values saved with the model (SNR, scenario, training record).
    """

    learned = True
    model_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("model_name")
        if name:
            other = _MODEL_CLASSES.get(name)
            if other is not None and (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):
                raise ValueError(f"model_name {name!r} is already used by {other.__module__}.{other.__qualname__}")
            _MODEL_CLASSES[name] = cls

    def __init__(self):
        super().__init__()
        self.metadata: dict = {}

    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        """Write configuration, parameters and buffers, and metadata (``self.metadata`` updated by
        ``metadata``) to ``path`` atomically. Metadata must be plain JSON values."""
        if not type(self).__dict__.get("model_name"):
            raise TypeError(
                f"{type(self).__name__} sets no model_name of its own; set one (a subclass saved under its "
                "parent's name would load as the parent)"
            )
        meta = dict(self.metadata)
        if metadata:
            meta.update(metadata)
        from .. import __version__

        header = {"model": self.model_name, "config": self.config(), "metadata": meta, "beamlearn_version": __version__}
        write_model_file(path, header, dict(self.state_dict()))

    def unsupported(self, scenario, snrs=None) -> str | None:
        """Why this model (loaded from a file) cannot serve ``scenario`` (``None`` when it can), from its
        metadata: ``interface_fingerprint`` (sizes and power convention it was trained for) and, for a
        model that consumes observations, the ``observation`` it was trained with."""
        from .weights import interface_fingerprint

        meta = self.metadata
        if "interface_fingerprint" in meta and meta["interface_fingerprint"] != interface_fingerprint(scenario):
            return (
                f"it was trained for other array sizes or another power convention (scenario "
                f"{meta.get('scenario', '?')!r}) than {scenario.name!r}"
            )
        now = scenario.observation.summary()
        if self.observes == "observation" and "observation" in meta and meta["observation"] != now:
            return f"it was trained on observation {meta['observation']}, the scenario gives {now}"
        return None

    @classmethod
    def load(cls, path: str | os.PathLike, map_location=None) -> LearnedMethod:
        """Rebuild a model saved by :meth:`save`; the file must hold this class (or a subclass)."""
        model = load_model(path, map_location=map_location)
        if not isinstance(model, cls):
            raise ModelFileError(f"{path} holds a {type(model).__name__} ({model.model_name!r}), not a {cls.__name__}")
        return model


def load_model(path: str | os.PathLike, map_location=None) -> LearnedMethod:
    """Load any learned model file written by :meth:`LearnedMethod.save` as its own class.

    The file's checksum is verified first; a damaged file, a pickle, or a file naming an unknown model
    raises :class:`ModelFileError` (a ``ValueError``). The model is returned in eval mode, with
    ``metadata`` restored and ``source_path`` set to ``path``.
    """
    header, tensors = read_model_file(path)
    classes = model_classes()
    name = header.get("model")
    if name not in classes:
        raise ModelFileError(
            f"{path} holds model {name!r}, which no installed system provides "
            f"(known: {', '.join(sorted(classes)) or 'none'})"
        )
    cls = classes[name]
    try:
        model = cls(**header.get("config", {}))
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: its configuration does not build a {cls.__name__}: {e}") from None
    params = {name for name, _ in model.named_parameters()}
    bad = [k for k, t in tensors.items() if k in params and not bool(torch.isfinite(t).all())]
    if bad:  # buffers may hold inf on purpose (masks); learned parameters may not
        raise ModelFileError(f"{path}: parameters {bad} hold non-finite values (NaN or inf); the model is unusable")
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise ModelFileError(
            f"{path}: its parameters do not fit a {cls.__name__}: {' '.join(str(e).split())}"
        ) from None
    if map_location is not None:
        model.to(torch.device(map_location))
    model.metadata = dict(header.get("metadata") or {})
    model.source_path = str(path)
    return model.eval()
