"""The common interface of every beamforming method, classical or learned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

__all__ = ["Beamformers", "BeamformingMethod", "user_channels"]


@dataclass
class Beamformers:
    """What a beamforming method returns.

    Attributes:
        precoder: effective precoder ``[..., N, K*Ns]`` (``analog @ digital`` for hybrid methods).
        combiner: user combiners ``[..., K, Nr, Ns]`` or ``None`` (single-antenna users, or the
            rate is to be evaluated with MMSE combining).
        analog, digital: the hybrid factors ``[..., N, N_RF]`` and ``[..., N_RF, K*Ns]``, if any.
        sum_rate: set only by reference bounds that are not achieved by a linear precoder
            (e.g. the cooperative-receiver capacity); evaluation then reports it directly.
    """

    precoder: torch.Tensor | None
    combiner: torch.Tensor | None = None
    analog: torch.Tensor | None = None
    digital: torch.Tensor | None = None
    sum_rate: torch.Tensor | None = None


class BeamformingMethod(torch.nn.Module):
    """Base class: ``method(h, power, noise_var) -> Beamformers``.

    ``h`` is ``[..., K, N]`` for single-antenna users; methods built with ``num_streams=Ns`` (multi-antenna
    users) take ``[..., K, Nr, N]`` instead (the two cannot be told apart from the shape). ``power`` is the total transmit power P and
    ``noise_var`` the noise variance sigma^2 (floats or tensors broadcastable to the batch ``[...]``).
    Classical methods have no parameters; learned methods are ``nn.Module``s with the same call.
    """

    name: ClassVar[str] = "method"
    learned: ClassVar[bool] = False
    hybrid: ClassVar[bool] = False

    def forward(self, h: torch.Tensor, power, noise_var) -> Beamformers:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the method (saved with learned models)."""
        return {}


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
