"""Pilot matrices and the least-squares and LMMSE channel estimators.

Model: the transmitter learns the channel ``H`` ``[..., R, N]`` (R receive rows: K users, or K*Nr
antennas) from ``T`` pilot symbols, ``Y = H X + W`` with ``X`` ``[N, T]`` and ``W`` i.i.d.
CN(0, sigma^2). Each pilot column has total power ``pilot_power`` (``||X[:, t]||^2 = pilot_power``).
"""

from __future__ import annotations

import math

import torch

from .._ops import gram_cholesky
from .._validation import check_int, check_positive, check_power

__all__ = ["orthogonal_pilots", "ls_estimate", "lmmse_estimate", "uplink_ls_statistic"]


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


def lmmse_estimate(
    y: torch.Tensor,
    pilots: torch.Tensor,
    noise_var,
    covariance: torch.Tensor,
    *,
    mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """LMMSE estimate of each row ``h`` (prior mean ``m``, covariance ``R``) from ``y = h X + w``.

    ``h_hat = m + (y - m X) (X^H R X + sigma^2 I)^{-1} X^H R`` ``[..., R, N]``, any pilot length ``T``:

    * ``y`` ``[..., R, T]``, ``pilots`` ``X`` ``[N, T]``, ``noise_var`` sigma^2 (float or broadcastable tensor);
    * ``covariance`` ``R = E[(h - m)^H (h - m)]`` ``[..., N, N]`` of each row;
    * ``mean`` ``m``: the prior mean of the rows, ``[..., R, N]`` or broadcastable (``None``: zero mean).

    The uplink LMMSE of the uplink model-driven paper (spec eqs. 15-17: ``Y = H_U X + N``, ``H_U`` ``[N_t, K]``
    with mean ``H_bar`` and ``Q = E[dH^H dH]`` ``[K, K]``) is this estimate applied to the rows of ``Y``:
    ``lmmse_estimate(Y, X, sigma^2, Q / N_t, mean=H_bar)``.

    Example:
        >>> x = orthogonal_pilots(2, 4, power=2.0, dtype=torch.complex128)
        >>> m = torch.ones(3, 2, dtype=torch.complex128)
        >>> est = lmmse_estimate(m @ x, x, 0.1, torch.eye(2, dtype=torch.complex128), mean=m)
        >>> torch.allclose(est, m)  # the observation equals its prior mean: the estimate is the mean
        True
    """
    if mean is not None:
        mean = mean.to(y.dtype)
        return mean + lmmse_estimate(y - mean @ pilots, pilots, noise_var, covariance)
    t = pilots.shape[-1]
    s2 = torch.as_tensor(noise_var, dtype=y.real.dtype, device=y.device)
    rx = covariance @ pilots  # [..., N, T]
    a = pilots.mH @ rx + s2[..., None, None] * torch.eye(t, dtype=y.dtype, device=y.device)
    lc = torch.linalg.cholesky(a)
    return torch.cholesky_solve(y.mH, lc).mH @ rx.mH


def uplink_ls_statistic(y: torch.Tensor, pilots: torch.Tensor, power) -> torch.Tensor:
    """The uplink least-squares statistic ``Y_tilde = Y X^H / (L P)`` ``[..., N_t, K]`` (spec eq. 12).

    Paper layout: ``Y = H_U X + N`` ``[..., N_t, L]`` received at the BS from ``K`` users sending ``L`` pilot
    symbols each, ``X`` ``[K, L]`` (or ``[..., K, L]``) with entries of modulus ``sqrt(P)``: the paper's
    ``X[k, l] = sqrt(P) exp(-j 2 pi k l / max(K, L))`` is ``orthogonal_pilots(K, L, power=K * P)``. For
    ``L >= K``, ``X X^H = L P I`` and ``Y_tilde = H_U + N X^H / (L P)`` (per-entry noise variance
    ``sigma^2 / (L P)``); for ``L < K`` it is ``H_U X X^H / (L P) + ...`` (pilot contamination).

    Example:
        >>> k, l, p = 3, 4, 2.0
        >>> x = orthogonal_pilots(k, l, power=k * p, dtype=torch.complex128)
        >>> h = torch.randn(5, 8, k, dtype=torch.complex128)
        >>> torch.allclose(uplink_ls_statistic(h @ x, x, p), h)
        True
    """
    check_power("power", power)
    if pilots.dim() < 2 or y.dim() < 2 or pilots.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"y [..., N_t, L] and pilots [K, L] must share the pilot length L, got shapes {tuple(y.shape)} "
            f"and {tuple(pilots.shape)}"
        )
    p = torch.as_tensor(power, dtype=y.real.dtype, device=y.device)
    if p.dim():
        p = p[..., None, None]
    return (y @ pilots.mH.to(y.dtype)) / (pilots.shape[-1] * p)
