"""Pilot matrices and the least-squares and LMMSE channel estimators.

Model: the transmitter learns the channel ``H`` ``[..., R, N]`` (R receive rows: K users, or K*Nr
antennas) from ``T`` pilot symbols, ``Y = H X + W`` with ``X`` ``[N, T]`` and ``W`` i.i.d.
CN(0, sigma^2). Each pilot column has total power ``pilot_power`` (``||X[:, t]||^2 = pilot_power``).
"""

from __future__ import annotations

import math

import torch

from .._ops import gram_cholesky
from .._validation import check_int, check_positive

__all__ = ["orthogonal_pilots", "ls_estimate", "lmmse_estimate"]


def orthogonal_pilots(
    num_antennas: int, length: int, power: float = 1.0, *, dtype=torch.complex64, device=None
) -> torch.Tensor:
    """DFT pilot matrix ``X`` ``[N, T]`` with ``||X[:, t]||^2 = power``; rows orthogonal when ``T >= N``
    (``X X^H = (T power / N) I``).

    Example:
        >>> x = orthogonal_pilots(4, 8, power=2.0)
        >>> torch.allclose(x @ x.mH, 4.0 * torch.eye(4, dtype=x.dtype), atol=1e-5)
        True
    """
    n = check_int("num_antennas", num_antennas, 1)
    t = check_int("length", length, 1)
    power = check_positive("power", power)
    rdtype = torch.float64
    idx = torch.arange(n, dtype=rdtype, device=device)[:, None] * torch.arange(t, dtype=rdtype, device=device)
    x = torch.polar(torch.full_like(idx, math.sqrt(power / n)), -2 * math.pi * idx / max(n, t))
    return x.to(dtype)


def ls_estimate(y: torch.Tensor, pilots: torch.Tensor) -> torch.Tensor:
    """Least-squares estimate ``H = Y X^H (X X^H)^{-1}`` ``[..., R, N]`` from ``Y`` ``[..., R, T]``.

    Needs ``T >= N`` (full-row-rank pilots); solved by Cholesky, not inverted.

    Example:
        >>> x = orthogonal_pilots(4, 4, dtype=torch.complex128)
        >>> h = torch.randn(3, 2, 4, dtype=torch.complex128)
        >>> torch.allclose(ls_estimate(h @ x, x), h)
        True
    """
    n, t = pilots.shape[-2:]
    if t < n:
        raise ValueError(f"least-squares estimation needs pilot_length >= N={n} antennas, got {t}")
    lc = gram_cholesky(pilots @ pilots.mH)  # X X^H = L L^H
    rhs = (y @ pilots.mH).mH  # [..., N, R]
    return torch.cholesky_solve(rhs, lc).mH.resolve_conj()


def lmmse_estimate(y: torch.Tensor, pilots: torch.Tensor, noise_var, covariance: torch.Tensor) -> torch.Tensor:
    """LMMSE estimate of each row ``h`` (prior CN(0, R), ``R = covariance`` ``[..., N, N]``) from
    ``y = h X + w``: ``h_hat = y (X^H R X + sigma^2 I)^{-1} X^H R`` ``[..., R, N]``. Any pilot length."""
    t = pilots.shape[-1]
    s2 = torch.as_tensor(noise_var, dtype=y.real.dtype, device=y.device)
    rx = covariance @ pilots  # [..., N, T]
    a = pilots.mH @ rx + s2[..., None, None] * torch.eye(t, dtype=y.dtype, device=y.device)
    lc = torch.linalg.cholesky(a)
    return torch.cholesky_solve(y.mH, lc).mH @ rx.mH
