"""Cooperative-receiver capacity by SVD and water-filling: an upper reference for multiuser sum rates.

Treating all K users (all their antennas) as one receiver gives the point-to-point MIMO capacity
``C = max_{tr Q <= P} log2 det(I + H Q H^H / sigma^2)``, attained by transmitting on the right singular
vectors of ``H`` with water-filled powers. It upper-bounds the sum rate of every downlink precoder.
Uses an SVD, so it is a reference, not a hot path.
"""

from __future__ import annotations

import torch

from .._validation import check_power
from ..interface import Beamformers, BeamformingMethod

__all__ = ["waterfilling", "capacity_waterfilling", "CapacityBound"]


def waterfilling(gains: torch.Tensor, power) -> torch.Tensor:
    """Water-filling powers ``[..., M]`` for channel gains ``g_i >= 0`` ``[..., M]`` and budget P.

    ``p_i = max(mu - 1/g_i, 0)`` with ``sum_i p_i = P``; vectorised over the batch (sort + cumsum).
    """
    check_power("power", power)
    g_sorted, order = torch.sort(gains, dim=-1, descending=True)
    tiny = torch.finfo(gains.dtype).tiny
    inv = 1.0 / g_sorted.clamp_min(tiny)
    m = torch.arange(1, gains.shape[-1] + 1, dtype=gains.dtype, device=gains.device)
    p = torch.as_tensor(power, dtype=gains.dtype, device=gains.device)
    if p.dim():
        p = p[..., None]
    level = (p + torch.cumsum(inv, -1)) / m  # water level if the m strongest modes are active
    active = (level > inv) & (g_sorted > 0)
    n_act = active.sum(-1, keepdim=True).clamp_min(1)
    mu = torch.gather(level, -1, n_act - 1)
    p_sorted = (mu - inv).clamp_min(0) * active
    return torch.zeros_like(p_sorted).scatter(-1, order, p_sorted)


def capacity_waterfilling(h: torch.Tensor, power, noise_var) -> torch.Tensor:
    """Capacity ``[...]`` (bit/s/Hz) of the point-to-point channel ``h`` ``[..., M, N]`` (e.g. all
    users stacked) with total power P and noise variance sigma^2 per receive antenna."""
    check_power("noise_var", noise_var)
    s = torch.linalg.svdvals(h)
    n = torch.as_tensor(noise_var, dtype=s.dtype, device=s.device)
    if n.dim():
        n = n[..., None]
    g = s.square() / n
    p = waterfilling(g, power)
    return torch.log2(1 + g * p).sum(-1)


class CapacityBound(BeamformingMethod):
    """Upper reference: cooperative-receiver (single-user) capacity of the stacked channel."""

    name = "capacity"

    def __init__(self, num_streams: int | None = None):
        super().__init__()
        self.num_streams = num_streams

    def forward(self, h, power, noise_var) -> Beamformers:
        hs = h if self.num_streams is None else h.flatten(-3, -2)
        return Beamformers(precoder=None, sum_rate=capacity_waterfilling(hs, power, noise_var))
