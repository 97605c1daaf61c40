"""Rayleigh-fading channels: i.i.d. and spatially correlated (Kronecker model)."""

from __future__ import annotations

import cmath

import torch

from .._validation import check_int, check_positive, check_probability
from .base import ChannelModel, complex_normal

__all__ = ["RayleighChannel", "CorrelatedRayleighChannel", "exponential_correlation"]


class RayleighChannel(ChannelModel):
    """i.i.d. Rayleigh fading: every entry of ``H`` is CN(0, ``variance``).

    Output ``[*batch, K, N]`` (or ``[*batch, K, Nr, N]``), see :class:`ChannelModel`.
    """

    def __init__(self, num_users: int, num_bs_antennas: int, num_rx_antennas: int = 1, variance: float = 1.0):
        self.num_users = check_int("num_users", num_users, 1)
        self.num_bs_antennas = check_int("num_bs_antennas", num_bs_antennas, 1)
        self.num_rx_antennas = check_int("num_rx_antennas", num_rx_antennas, 1)
        self.variance = check_positive("variance", variance)

    def _sample(self, batch_shape, generator, device, dtype):
        shape = (*batch_shape, self.num_users, self.num_rx_antennas, self.num_bs_antennas)
        return complex_normal(shape, generator, device, dtype, self.variance)


def exponential_correlation(n: int, rho: complex | float, dtype=torch.complex128) -> torch.Tensor:
    """Exponential correlation matrix ``R[i, j] = rho^(j-i)`` for ``j >= i`` and ``conj`` below.

    ``|rho|`` must lie in [0, 1); the matrix is Hermitian positive definite with unit diagonal.
    """
    n = check_int("n", n, 1)
    rho = complex(rho)
    check_probability("|rho|", abs(rho), open_upper=True)
    i = torch.arange(n)
    d = (i[None, :] - i[:, None]).to(torch.float64)  # j - i
    mag = torch.tensor(abs(rho), dtype=torch.float64) ** d.abs()
    ang = cmath.phase(rho) * d
    return torch.polar(mag, ang).to(dtype)


class CorrelatedRayleighChannel(ChannelModel):
    """Kronecker-correlated Rayleigh fading ``H_k = R_rx^{1/2} G_k (R_tx^{1/2})^H``, G i.i.d. CN(0,1).

    With ``h`` the user's conjugated channel (the column vector with ``y = h^H x``),
    ``E[h h^H] = R_tx`` (for a single-antenna user), and ``E[H_k H_k^H] = tr(R_tx) R_rx``.

    Args:
        tx_correlation: ``[N, N]`` or per-user ``[K, N, N]`` Hermitian PD matrix, or a scalar ``rho``
            for :func:`exponential_correlation`.
        rx_correlation: ``[Nr, Nr]`` / ``[K, Nr, Nr]`` matrix or scalar ``rho`` (default: identity).
    """

    def __init__(
        self, num_users: int, num_bs_antennas: int, num_rx_antennas: int = 1, tx_correlation=0.0, rx_correlation=0.0
    ):
        self.num_users = check_int("num_users", num_users, 1)
        self.num_bs_antennas = check_int("num_bs_antennas", num_bs_antennas, 1)
        self.num_rx_antennas = check_int("num_rx_antennas", num_rx_antennas, 1)
        self.tx_correlation = _correlation("tx_correlation", tx_correlation, self.num_bs_antennas, self.num_users)
        self.rx_correlation = _correlation("rx_correlation", rx_correlation, self.num_rx_antennas, self.num_users)
        self._l_tx = torch.linalg.cholesky(self.tx_correlation)
        self._l_rx = torch.linalg.cholesky(self.rx_correlation)

    def _sample(self, batch_shape, generator, device, dtype):
        shape = (*batch_shape, self.num_users, self.num_rx_antennas, self.num_bs_antennas)
        g = complex_normal(shape, generator, device, dtype)
        l_tx = self._l_tx.to(device=device, dtype=dtype)
        l_rx = self._l_rx.to(device=device, dtype=dtype)
        return l_rx @ g @ l_tx.mH


def _correlation(name: str, value, n: int, k: int) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        r = value.to(torch.complex128)
        if r.shape[-2:] != (n, n) or r.dim() not in (2, 3) or (r.dim() == 3 and r.shape[0] not in (1, k)):
            raise ValueError(f"{name} must have shape [{n}, {n}] or [{k}, {n}, {n}], got {tuple(r.shape)}")
        if not torch.allclose(r, r.mH, atol=1e-8):
            raise ValueError(f"{name} must be Hermitian")
        _, info = torch.linalg.cholesky_ex(r)
        if bool((info != 0).any()):
            raise ValueError(f"{name} must be positive definite")
        return r
    return exponential_correlation(n, value)
