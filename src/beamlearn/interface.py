"""The common interface of every beamforming method, classical or learned.

A method is called as ``method(observation, power, noise_var) -> Beamformers``. What the transmitter
observes is part of the scenario (:mod:`beamlearn.observation`); the experiment runner makes that
observation from the true channel, hands it to the method, and scores the returned beamformers on
the *true* channel. ``observes`` says what a method consumes:

* ``"channel"`` (every classical method, and the default): a channel tensor ``[..., K, N]`` or
  ``[..., K, Nr, N]``: the true channel under perfect CSI, otherwise the channel view of the
  observation (an estimate from pilots, or the uplink channel mapped to the downlink);
* ``"observation"``: the whole :class:`~beamlearn.observation.Observation` (pilots, received
  signals, long-term statistics, ...), for methods that process it themselves.

Power and SNR convention (``docs/conventions.md``): ``power`` is the total transmit power P
(``||precoder||_F^2 = P`` for unit-power symbols) and ``noise_var`` the noise variance sigma^2 per
receive antenna, so SNR = P / sigma^2. Both are floats or real tensors broadcastable to the batch.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, fields
from typing import ClassVar

import torch

__all__ = ["Beamformers", "BeamformingMethod", "PerfectCSI", "user_channels", "constructor_config"]


@dataclass
class Beamformers:
    """What a beamforming method returns; every field is optional.

    Attributes:
        precoder: effective transmit precoder ``[..., N, K*Ns]`` (``analog @ digital`` for a hybrid
            transmitter; filled in from the factors when only they are given).
        analog, digital: transmit hybrid factors ``[..., N, N_RF]`` and ``[..., N_RF, K*Ns]``.
        combiner: effective user combiners ``[..., K, Nr, Ns]`` (``rx_analog @ rx_digital`` for
            hybrid receivers), or ``None``: single-antenna users, or MMSE combining is assumed.
        rx_analog, rx_digital: per-user receive hybrid factors ``[..., K, Nr, Nr_RF]`` and
            ``[..., K, Nr_RF, Ns]``.
        selection: antenna selection ``[..., N]`` (1 for an active BS antenna, 0 otherwise).
        sum_rate: set only by reference bounds not achieved by a linear precoder (the
            cooperative-receiver capacity); the sum-rate metric then reports it directly.
        detection: how the users detect: ``None`` or ``"equalized"`` (divide by the effective gain,
            nearest point) or ``"sign"`` (QPSK: sign of the raw combiner output, the MSER paper's
            eq. 6; square QAM: phase-aligned gain-scaled thresholds, equal to equalized). The SER
            metrics (:mod:`beamlearn.metrics.table`) score with it; a string, not a tensor.
    """

    precoder: torch.Tensor | None = None
    combiner: torch.Tensor | None = None
    analog: torch.Tensor | None = None
    digital: torch.Tensor | None = None
    rx_analog: torch.Tensor | None = None
    rx_digital: torch.Tensor | None = None
    selection: torch.Tensor | None = None
    sum_rate: torch.Tensor | None = None
    detection: str | None = None

    def __post_init__(self):
        if self.precoder is None and self.analog is not None and self.digital is not None:
            self.precoder = self.analog @ self.digital
        if self.combiner is None and self.rx_analog is not None and self.rx_digital is not None:
            self.combiner = self.rx_analog @ self.rx_digital

    def present(self) -> list[str]:
        """Names of the fields that are set."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


def constructor_config(obj) -> dict:
    """The constructor arguments of ``obj`` read back from its attributes of the same names.

    As scikit-learn's ``get_params``: the configuration follows ``__init__``'s signature, so no class
    restates it by hand. Every named parameter must be stored under its own name.
    """
    out = {}
    for name, p in inspect.signature(type(obj).__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if not hasattr(obj, name):
            raise AttributeError(
                f"{type(obj).__name__} must store its constructor argument {name!r} "
                f"as self.{name} (configuration is read from the signature)"
            )
        out[name] = getattr(obj, name)
    return out


class BeamformingMethod(torch.nn.Module):
    """Base class: ``method(h, power, noise_var) -> Beamformers``.

    ``h`` is what the method observes (see the module docstring): by default a channel ``[..., K, N]``
    for single-antenna users; methods built with ``num_streams=Ns`` (multi-antenna users) take
    ``[..., K, Nr, N]`` instead (the two cannot be told apart from the shape). ``power`` is the total
    transmit power P and ``noise_var`` the noise variance sigma^2 (floats or tensors broadcastable to
    the batch ``[...]``). Classical methods have no parameters; learned methods are ``nn.Module``s with
    the same call (:class:`beamlearn.learned.LearnedMethod`).
    """

    name: ClassVar[str] = "method"
    learned: ClassVar[bool] = False
    hybrid: ClassVar[bool] = False
    observes: ClassVar[str] = "channel"  # "channel", "observation" or "truth" (see PerfectCSI)

    def forward(self, h: torch.Tensor, power, noise_var) -> Beamformers:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the method; derived from ``__init__``'s signature."""
        return constructor_config(self)

    def fingerprint(self) -> str:
        """16 hex digits digesting what determines the outputs: the class, the configuration and every
        parameter and buffer (experiment caches are keyed by it)."""
        d = hashlib.sha256(f"{type(self).__module__}.{type(self).__qualname__}".encode())
        d.update(json.dumps(self.config(), sort_keys=True, default=str).encode())
        for name, t in self.state_dict().items():
            d.update(name.encode())
            d.update(str(t.dtype).encode())
            d.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return d.hexdigest()[:16]


class PerfectCSI(BeamformingMethod):
    """A reference bound: ``method`` run on the true channel, whatever the scenario's observation.

    The experiment runner hands a method with ``observes = "truth"`` the true channel instead of the
    observation; a scenario names such references in ``Scenario.perfect_csi_methods`` (e.g. the
    uplink paper's WMMSE with perfect downlink CSI), and :func:`beamlearn.registry.build_method` wraps
    them.

    Example:
        >>> from beamlearn.precoding import ZF
        >>> PerfectCSI(ZF()).observes
        'truth'
    """

    observes: ClassVar[str] = "truth"

    def __init__(self, method: BeamformingMethod):
        super().__init__()
        if not isinstance(method, BeamformingMethod) or method.observes != "channel":
            raise ValueError("PerfectCSI wraps a method that observes the channel (observes == 'channel')")
        self.method = method
        self.name = f"{method.name}@perfect-csi"

    def config(self) -> dict:
        return {"method": f"{type(self.method).__module__}.{type(self.method).__qualname__}", **self.method.config()}

    def forward(self, h, power, noise_var) -> Beamformers:
        return self.method(h, power, noise_var)


def user_channels(h: torch.Tensor, num_streams: int | None) -> torch.Tensor:
    """Return ``h`` as ``[..., K, Nr, N]``: MISO input (``num_streams=None``) gains ``Nr = 1``."""
    if num_streams is None:
        if h.dim() < 2:
            raise ValueError(f"channel must be [..., K, N], got shape {tuple(h.shape)}")
        return h.unsqueeze(-2)
    if h.dim() < 3:
        raise ValueError(f"with num_streams set the channel must be [..., K, Nr, N], got shape {tuple(h.shape)}")
    if num_streams > h.shape[-2]:
        raise ValueError(f"num_streams must be in [1, Nr={h.shape[-2]}], got {num_streams}")
    return h
