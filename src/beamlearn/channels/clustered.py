"""Clustered (extended Saleh-Valenzuela) geometric channels with ULA or UPA arrays.

For user k (independently across users and batch entries)

    H_k = c * sum_{i=1}^{Nc} sum_{l=1}^{Nray} alpha_{il} a_r(aoa_{il}) a_t(aod_{il}, zod_{il})^H
              [* e^{-j 2 pi f tau_il}]

with ``a_t`` the BS array response (:mod:`beamlearn.channels.arrays`), ``a_r`` the user array response
(``a_r = 1`` for single-antenna users) and ``alpha ~ CN(0, gain_variance)``. This is eq. (2)-(3) of the
unfolded-PGA paper, eq. (3) of the MSER paper, eq. (45) of the JCEHB paper and eq. (3) of the ASNet paper,
depending on the options (see :mod:`beamlearn.scenarios` for the presets).

Angles: each cluster draws a mean angle uniformly from its range; with ``*_spread=None`` every ray
instead draws its own angle uniformly from the range (i.i.d. rays); with a spread, ray angles are the
cluster mean plus a Laplacian (``spread_distribution="laplacian"``, ``spread`` is the standard deviation)
or uniform (``"uniform"``, ``spread`` is the half-width) offset.

Normalisation ``c``: ``"none"`` (c = 1), ``"paths"`` (c = sqrt(N Nr / (Nc Nray)), the El Ayach / Yu et al.
factor) or ``"frobenius"`` (each user's ``||H_k||_F^2 = N Nr`` exactly, per sample).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from .._dtypes import real_dtype
from .._validation import check_int, check_nonnegative, check_one_of, check_positive
from .arrays import ULA, UPA
from .base import ChannelModel, complex_normal

__all__ = ["ClusteredChannel", "ChannelPaths"]

Normalization = Literal["none", "paths", "frobenius"]


@dataclass
class ChannelPaths:
    """Path parameters of a clustered draw, each ``[*batch, K, Nc*Nray]`` (``delays`` in seconds)."""

    gains: torch.Tensor
    aod: torch.Tensor
    zod: torch.Tensor
    aoa: torch.Tensor
    delays: torch.Tensor | None


class ClusteredChannel(ChannelModel):
    """Clustered geometric channel; see the module docstring for the model.

    Args:
        num_users: K.
        bs_array: a :class:`ULA`/:class:`UPA` or an int N (a half-wavelength ULA).
        ue_array: a :class:`ULA`/:class:`UPA` or an int Nr (default 1: single-antenna users).
        num_clusters, rays_per_cluster: Nc, Nray.
        gain_variance: variance of each ray gain ``alpha ~ CN(0, gain_variance)``.
        aod_range, zod_range, aoa_range: (low, high) ranges of the mean angles, radians (default: the
            full circle (0, 2 pi) for azimuths, or (-1, 1) with ``uniform_in="sine"``; zenith pi/2).
        aod_spread, zod_spread, aoa_spread: intra-cluster spread (``None``: i.i.d. rays over the range).
        spread_distribution: ``"laplacian"`` or ``"uniform"``.
        uniform_in: ``"angle"`` (angles uniform over their ranges) or ``"sine"`` (the azimuth ranges
            hold values of ``sin(angle)`` in [-1, 1], drawn uniformly: uniform spatial frequency).
        normalization: ``"none"``, ``"paths"`` or ``"frobenius"``.
        max_delay: if > 0, path delays are drawn ``U(0, max_delay)`` seconds.
        frequencies: baseband frequencies (Hz) at which to evaluate a frequency-selective channel; the
            output then has an extra dimension ``[*batch, F, K, (Nr,) N]``. Without it the channel is
            narrowband and delays (if any) only rotate each path's phase at f = 0 (i.e. not at all).
    """

    def __init__(
        self,
        num_users: int,
        bs_array: ULA | UPA | int,
        ue_array: ULA | UPA | int = 1,
        *,
        num_clusters: int = 1,
        rays_per_cluster: int = 10,
        gain_variance: float = 1.0,
        aod_range: tuple[float, float] | None = None,
        zod_range: tuple[float, float] = (math.pi / 2, math.pi / 2),
        aoa_range: tuple[float, float] | None = None,
        aod_spread: float | None = None,
        zod_spread: float | None = None,
        aoa_spread: float | None = None,
        spread_distribution: Literal["laplacian", "uniform"] = "laplacian",
        uniform_in: Literal["angle", "sine"] = "angle",
        normalization: Normalization = "none",
        max_delay: float = 0.0,
        frequencies: Sequence[float] | None = None,
    ):
        self.num_users = check_int("num_users", num_users, 1)
        self.bs_array = ULA(check_int("bs_array", bs_array, 1)) if isinstance(bs_array, int) else bs_array
        self.ue_array = ULA(check_int("ue_array", ue_array, 1)) if isinstance(ue_array, int) else ue_array
        if not isinstance(self.bs_array, (ULA, UPA)) or not isinstance(self.ue_array, (ULA, UPA)):
            raise TypeError("bs_array and ue_array must be ULA, UPA or an int number of elements")
        self.num_bs_antennas = self.bs_array.size
        self.num_rx_antennas = self.ue_array.size
        self.num_clusters = check_int("num_clusters", num_clusters, 1)
        self.rays_per_cluster = check_int("rays_per_cluster", rays_per_cluster, 1)
        self.gain_variance = check_positive("gain_variance", gain_variance)
        full = (-1.0, 1.0) if uniform_in == "sine" else (0.0, 2 * math.pi)
        self.aod_range = _check_range("aod_range", full if aod_range is None else aod_range)
        self.zod_range = _check_range("zod_range", zod_range)
        self.aoa_range = _check_range("aoa_range", full if aoa_range is None else aoa_range)
        for name, v in (("aod_spread", aod_spread), ("zod_spread", zod_spread), ("aoa_spread", aoa_spread)):
            if v is not None:
                check_nonnegative(name, v)
        self.aod_spread, self.zod_spread, self.aoa_spread = aod_spread, zod_spread, aoa_spread
        self.spread_distribution = check_one_of("spread_distribution", spread_distribution, ("laplacian", "uniform"))
        check_one_of("uniform_in", uniform_in, ("angle", "sine"))
        if uniform_in == "sine":
            for name, r in (("aod_range", self.aod_range), ("aoa_range", self.aoa_range)):
                if r[0] < -1 or r[1] > 1:
                    raise ValueError(
                        f"with uniform_in='sine', {name} holds sine values and must lie in [-1, 1], got {r}"
                    )
        self.uniform_in = uniform_in
        self.normalization = check_one_of("normalization", normalization, ("none", "paths", "frobenius"))
        self.max_delay = check_nonnegative("max_delay", max_delay)
        if frequencies is not None:
            frequencies = tuple(float(f) for f in frequencies)
            if not frequencies or not all(math.isfinite(f) for f in frequencies):
                raise ValueError("frequencies must be a non-empty sequence of finite numbers (Hz)")
        self.frequencies = frequencies

    @property
    def num_paths(self) -> int:
        return self.num_clusters * self.rays_per_cluster

    # -- sampling -------------------------------------------------------------------------------
    def _angles(self, rng, spread, shape, generator, device, rdtype):
        lo, hi = rng
        b, k = shape[:-1], shape[-1]
        nc, nr = self.num_clusters, self.rays_per_cluster
        u = lambda s: torch.rand(s, generator=generator, device=device, dtype=rdtype)  # noqa: E731
        if spread is None:
            return lo + (hi - lo) * u((*b, k, nc * nr))
        mean = lo + (hi - lo) * u((*b, k, nc, 1))
        if self.spread_distribution == "uniform":
            off = spread * (2 * u((*b, k, nc, nr)) - 1)
        else:  # Laplacian with standard deviation `spread`: scale = spread / sqrt(2)
            e = u((*b, k, nc, nr)) - 0.5
            off = -(spread / math.sqrt(2)) * torch.sign(e) * torch.log1p(-2 * e.abs())
        return (mean + off).flatten(-2)

    def sample_paths(self, batch_shape, generator, device, dtype) -> ChannelPaths:
        rdtype = real_dtype(dtype)
        shape = (*batch_shape, self.num_users)
        p = self.num_paths
        gains = complex_normal((*shape, p), generator, device, dtype, self.gain_variance)
        aod = self._angles(self.aod_range, self.aod_spread, shape, generator, device, rdtype)
        zod = self._angles(self.zod_range, self.zod_spread, shape, generator, device, rdtype)
        aoa = self._angles(self.aoa_range, self.aoa_spread, shape, generator, device, rdtype)
        if self.uniform_in == "sine":  # the ranges held sin(angle): map back to angles
            aod = torch.asin(aod.clamp(-1, 1))
            aoa = torch.asin(aoa.clamp(-1, 1))
        delays = None
        if self.max_delay > 0:
            delays = self.max_delay * torch.rand((*shape, p), generator=generator, device=device, dtype=rdtype)
        return ChannelPaths(gains, aod, zod, aoa, delays)

    def channel_from_paths(self, paths: ChannelPaths, dtype=torch.complex64) -> torch.Tensor:
        """Channels ``[*batch, (F,) K, Nr, N]`` from path parameters (any leading shape)."""
        a_t = self.bs_array.response(paths.aod, paths.zod, dtype=dtype)  # [*B, K, P, N]
        a_r = self.ue_array.response(paths.aoa, dtype=dtype)  # [*B, K, P, Nr]
        g = paths.gains.to(dtype)
        if self.frequencies is not None:
            f = torch.tensor(self.frequencies, dtype=paths.aod.dtype, device=paths.aod.device)
            tau = paths.delays if paths.delays is not None else torch.zeros_like(paths.aod)
            phase = -2 * math.pi * f[:, None, None] * tau[..., None, :, :]  # [*B, F, K, P]
            g = g[..., None, :, :] * torch.polar(torch.ones_like(phase), phase).to(dtype)
            a_r = a_r[..., None, :, :, :]
            a_t = a_t[..., None, :, :, :]
        h = (a_r * g[..., None]).transpose(-1, -2) @ a_t.conj()  # [*B, (F,) K, Nr, N]
        if self.normalization == "paths":
            h = h * math.sqrt(self.num_bs_antennas * self.num_rx_antennas / self.num_paths)
        elif self.normalization == "frobenius":
            nrm = torch.linalg.vector_norm(h, dim=(-2, -1), keepdim=True)
            if self.frequencies is not None:  # one factor per user across all frequencies
                nrm = torch.linalg.vector_norm(h, dim=(-4, -2, -1), keepdim=True) / math.sqrt(len(self.frequencies))
            target = math.sqrt(self.num_bs_antennas * self.num_rx_antennas)
            h = h * (target / nrm.clamp_min(torch.finfo(nrm.dtype).tiny))
        return h

    def _sample(self, batch_shape, generator, device, dtype):
        return self.channel_from_paths(self.sample_paths(batch_shape, generator, device, dtype), dtype)


def _check_range(name, r):
    try:
        lo, hi = (float(x) for x in r)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) of angles in radians, got {r!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name} must satisfy low <= high with finite values, got {r!r}")
    return (lo, hi)
