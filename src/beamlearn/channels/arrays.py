"""Antenna-array responses (steering vectors).

Convention: the response of an array to a plane wave leaving (or arriving) at azimuth ``phi`` and
zenith ``theta`` is ``a[n] = exp(+j 2 pi (d/lambda) <p_n, u>) / sqrt(N)`` (unit norm by default), with
``p_n`` the element position in wavelengths-spacing units and ``u`` the unit direction projected on the
array axes. For a ULA along the y-axis in the horizontal plane (``theta = pi/2``) this is the familiar
``a(phi) = [1, e^{j pi sin phi}, ..., e^{j pi (N-1) sin phi}]^T / sqrt(N)`` (unfolded-PGA spec eq. (3)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._dtypes import real_dtype, resolve_dtype
from .._validation import check_int, check_positive

__all__ = ["ULA", "UPA"]


@dataclass(frozen=True)
class ULA:
    """Uniform linear array of ``num_elements`` elements spaced ``spacing`` wavelengths apart.

    ``normalize=True`` divides the response by sqrt(N) so that ``||a|| = 1``.
    """

    num_elements: int
    spacing: float = 0.5
    normalize: bool = True

    def __post_init__(self):
        check_int("num_elements", self.num_elements, 1)
        check_positive("spacing", self.spacing)

    @property
    def size(self) -> int:
        return self.num_elements

    def response(
        self, azimuth: torch.Tensor, zenith: torch.Tensor | None = None, dtype=torch.complex64
    ) -> torch.Tensor:
        """Steering vectors ``[..., N]`` for angles ``[...]`` (radians).

        The ULA only sees ``sin(azimuth) * sin(zenith)``; ``zenith`` defaults to pi/2 (horizontal plane).
        """
        s = torch.sin(azimuth)
        if zenith is not None:
            s = s * torch.sin(zenith)
        return _linear_response(s, self.num_elements, self.spacing, self.normalize, dtype)


@dataclass(frozen=True)
class UPA:
    """Uniform planar array of ``num_rows x num_cols`` elements in the y-z plane.

    Element ``(r, c)`` (row r along z, column c along y) sits at ``(c*dy, r*dz)`` wavelengths; the
    response is flattened row-major to length ``N = num_rows * num_cols``:
    ``a[r*num_cols + c] = exp(j 2 pi (c dy sin(theta) sin(phi) + r dz cos(theta)))``.
    """

    num_rows: int
    num_cols: int
    spacing: float = 0.5
    normalize: bool = True

    def __post_init__(self):
        check_int("num_rows", self.num_rows, 1)
        check_int("num_cols", self.num_cols, 1)
        check_positive("spacing", self.spacing)

    @property
    def size(self) -> int:
        return self.num_rows * self.num_cols

    def response(
        self, azimuth: torch.Tensor, zenith: torch.Tensor | None = None, dtype=torch.complex64
    ) -> torch.Tensor:
        """Steering vectors ``[..., num_rows*num_cols]``; ``zenith`` defaults to pi/2."""
        if zenith is None:
            zenith = torch.full_like(azimuth, math.pi / 2)
        dtype = resolve_dtype(dtype)
        rdtype = real_dtype(dtype)
        c = torch.arange(self.num_cols, device=azimuth.device, dtype=rdtype)
        r = torch.arange(self.num_rows, device=azimuth.device, dtype=rdtype)
        uy = (torch.sin(zenith) * torch.sin(azimuth)).to(rdtype)[..., None, None]
        uz = torch.cos(zenith).to(rdtype)[..., None, None]
        phase = 2 * math.pi * self.spacing * (c[None, :] * uy + r[:, None] * uz)
        a = torch.polar(torch.ones_like(phase), phase).flatten(-2)
        if self.normalize:
            a = a / math.sqrt(self.size)
        return a.to(dtype)


def _linear_response(s: torch.Tensor, n: int, spacing: float, normalize: bool, dtype) -> torch.Tensor:
    dtype = resolve_dtype(dtype)
    rdtype = real_dtype(dtype)
    idx = torch.arange(n, device=s.device, dtype=rdtype)
    phase = 2 * math.pi * spacing * s.to(rdtype)[..., None] * idx
    a = torch.polar(torch.ones_like(phase), phase)
    if normalize:
        a = a / math.sqrt(n)
    return a.to(dtype)
