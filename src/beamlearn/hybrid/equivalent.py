"""The equivalent channel of a fully connected hybrid MIMO link and the quantities defined on it.

A BS with an analog precoder ``F_RF`` ``[..., N, M]`` (``M`` RF chains, entries of modulus ``1/sqrt(N)``)
serves ``K`` users, user ``k`` with an analog combiner ``W_RF,k`` ``[..., Nr, R]`` (``R`` RF chains, entries
of modulus ``1/sqrt(Nr)``). With the analog stage fixed, the digital design only sees the *equivalent*
channels ``H_eq,k = W_RF,k^H H_k F_RF`` ``[..., K, R, M]`` (JCEHB paper, Kang et al. 2022, section II).

Layouts (per user, the JCEHB paper's): digital precoders ``f_bb`` ``[..., K, M, Ns]`` (``F_BB,k``), digital
combiners ``w_bb`` ``[..., K, R, Ns]`` (``W_BB,k``); the library's stacked digital precoder is
``stack_users(f_bb)`` ``[..., M, K*Ns]``.

Power convention of this module (the paper's, eqs. 3 and 7d): each user's precoder is normalised to
``||F_RF F_BB,k||_F^2 = Ns`` and scaled by ``sqrt(P)``, so ``noise_var`` here is the *normalised* noise
``sigma_tilde^2 = sigma^2 / P`` (sigma^2 per receive antenna). A scenario with total power ``P_tot`` (the
library's convention, ``docs/conventions.md``) gives ``P = P_tot / (K Ns)``: :func:`normalized_noise`.
The noise after the analog combiner has covariance ``sigma^2 W_RF,k^H W_RF,k`` (``noise_gram``, mode
``"exact"``), or ``sigma^2 I`` (mode ``"identity"``, the printed formula).

Example:
    >>> h = torch.randn(2, 3, 8, 16, dtype=torch.complex64)  # [B, K, Nr, N]
    >>> f_rf = analog_from_phases(torch.rand(16, 4) * 6.28)  # [N, M]
    >>> w_rf = analog_from_phases(torch.rand(3, 8, 2) * 6.28)  # [K, Nr, R]
    >>> equivalent_channel(h, f_rf, w_rf).shape
    torch.Size([2, 3, 2, 4])
"""

from __future__ import annotations

import math

import torch

from .._ops import abs2
from .._validation import check_one_of
from ..constraints import quantize_phase

__all__ = [
    "analog_from_phases",
    "equivalent_channel",
    "mmse_combiner_eq",
    "noise_gram",
    "normalized_noise",
    "stack_users",
    "stream_gains",
    "stream_mse",
    "stream_sinr_eq",
    "sum_rate_eq",
    "user_power_projection",
    "user_powers",
]

NOISE_MODES = ("exact", "identity")


def analog_from_phases(phases: torch.Tensor, bits: int | None = None) -> torch.Tensor:
    """A unit-modulus analog matrix ``exp(j phi) / sqrt(rows)`` ``[..., N, M]`` from real phases
    ``[..., N, M]`` (JCEHB eqs. 7b/7c and 18), optionally quantised to ``bits`` bits
    (:func:`beamlearn.constraints.quantize_phase`: the nearest of the ``2^bits`` uniform levels, s4.15).

    Example:
        >>> f = analog_from_phases(torch.zeros(4, 2))
        >>> f.abs()
        tensor([[0.5000, 0.5000],
                [0.5000, 0.5000],
                [0.5000, 0.5000],
                [0.5000, 0.5000]])
    """
    if phases.is_complex():
        raise ValueError("phases must be a real tensor of angles in radians")
    f = torch.polar(torch.full_like(phases, 1.0 / math.sqrt(phases.shape[-2])), phases)
    return f if bits is None else quantize_phase(f, bits, modulus=1.0 / math.sqrt(phases.shape[-2]))


def equivalent_channel(h: torch.Tensor, f_rf: torch.Tensor, w_rf: torch.Tensor) -> torch.Tensor:
    """``H_eq,k = W_RF,k^H H_k F_RF`` ``[..., K, R, M]`` from ``h`` ``[..., K, Nr, N]``, ``f_rf`` ``[..., N, M]``
    (shared by the users) and ``w_rf`` ``[..., K, Nr, R]`` (the example is in the module docstring)."""
    if h.dim() < 3:
        raise ValueError(f"h must be [..., K, Nr, N] channels of multi-antenna users, got {tuple(h.shape)}")
    return w_rf.mH @ (h @ f_rf.unsqueeze(-3))


def noise_gram(w_rf: torch.Tensor, mode: str = "exact") -> torch.Tensor:
    """Covariance ``W_RF,k^H W_RF,k`` ``[..., K, R, R]`` of the combined noise per unit noise variance
    (``"exact"``), or the identity (``"identity"``).

    Example:
        >>> noise_gram(analog_from_phases(torch.zeros(1, 4, 1)), "exact")
        tensor([[[1.+0.j]]])
    """
    check_one_of("noise_cov", mode, NOISE_MODES)
    if mode == "exact":
        return w_rf.mH @ w_rf
    r = w_rf.shape[-1]
    return torch.eye(r, dtype=w_rf.dtype, device=w_rf.device).expand(*w_rf.shape[:-2], r, r)


def normalized_noise(noise_var, power, num_users: int, num_streams: int):
    """``sigma_tilde^2 = sigma^2 / P`` with the per-stream power ``P = P_tot / (K Ns)`` of a scenario of
    total power ``P_tot`` (so ``sum_k ||sqrt(P) F_RF F_BB,k||_F^2 = P_tot``).

    Example:
        >>> normalized_noise(0.1, 16.0, 4, 4)
        0.1
    """
    return noise_var * (num_users * num_streams) / power


def stack_users(f_bb: torch.Tensor) -> torch.Tensor:
    """The stacked digital precoder ``[F_BB,1, ..., F_BB,K]`` ``[..., M, K*Ns]`` of ``f_bb`` ``[..., K, M, Ns]``.

    Example:
        >>> stack_users(torch.zeros(5, 3, 16, 4)).shape
        torch.Size([5, 16, 12])
    """
    k, m, ns = f_bb.shape[-3:]
    return f_bb.movedim(-3, -2).reshape(*f_bb.shape[:-3], m, k * ns)


def user_powers(f_bb: torch.Tensor, f_rf_gram: torch.Tensor) -> torch.Tensor:
    """``||F_RF F_BB,k||_F^2 = tr(F_BB,k^H G F_BB,k)`` ``[..., K]`` with ``G = F_RF^H F_RF`` ``[..., M, M]``.

    Example:
        >>> user_powers(torch.ones(1, 2, 2, 1, dtype=torch.complex64), torch.eye(2, dtype=torch.complex64))
        tensor([[2., 2.]])
    """
    return (f_bb.conj() * (f_rf_gram.unsqueeze(-3) @ f_bb)).real.sum((-2, -1))


def user_power_projection(f_bb: torch.Tensor, f_rf_gram: torch.Tensor, num_streams: int | None = None) -> torch.Tensor:
    """Scale every user's digital precoder to ``||F_RF F_BB,k||_F^2 = Ns`` (JCEHB eq. 7d); ``f_bb``
    ``[..., K, M, Ns]``, ``f_rf_gram = F_RF^H F_RF`` ``[..., M, M]``. A zero precoder stays zero.

    Example:
        >>> g = torch.eye(2, dtype=torch.complex64)
        >>> f = user_power_projection(torch.ones(1, 2, 2, 1, dtype=torch.complex64), g)
        >>> torch.allclose(user_powers(f, g), torch.ones(1, 2))
        True
    """
    ns = f_bb.shape[-1] if num_streams is None else num_streams
    p = user_powers(f_bb, f_rf_gram)
    tiny = torch.finfo(p.dtype).tiny
    scale = torch.where(p > tiny, torch.sqrt(ns / p.clamp_min(tiny)), torch.zeros_like(p))
    return f_bb * scale[..., None, None].to(f_bb.dtype)


def _noise(noise_var, like: torch.Tensor) -> torch.Tensor:
    nv = torch.as_tensor(noise_var, dtype=like.real.dtype if like.is_complex() else like.dtype, device=like.device)
    return nv.reshape(*nv.shape, *([1] * 3)) if nv.dim() else nv  # [...] -> [..., 1, 1, 1] over (K, a, b)


def mmse_combiner_eq(h_eq: torch.Tensor, f_bb: torch.Tensor, noise_var, gram: torch.Tensor) -> torch.Tensor:
    """The MMSE digital combiners (JCEHB eq. 24) ``[..., K, R, Ns]``:
    ``W_BB,k = (sum_v H_eq,k F_BB,v F_BB,v^H H_eq,k^H + sigma_tilde^2 R_k)^{-1} H_eq,k F_BB,k``.

    ``h_eq`` ``[..., K, R, M]``, ``f_bb`` ``[..., K, M, Ns]``, ``noise_var`` = ``sigma_tilde^2`` (float or
    ``[...]``), ``gram`` = ``R_k`` ``[..., K, R, R]`` (:func:`noise_gram`). Solved by Cholesky.

    Example:
        >>> h = torch.randn(4, 2, 2, 8, dtype=torch.complex128)
        >>> f = torch.randn(4, 2, 8, 2, dtype=torch.complex128)
        >>> g = torch.eye(2, dtype=torch.complex128).expand(4, 2, 2, 2)
        >>> mmse_combiner_eq(h, f, 0.1, g).shape
        torch.Size([4, 2, 2, 2])
    """
    k, ns = f_bb.shape[-3], f_bb.shape[-1]
    hf = h_eq @ stack_users(f_bb).unsqueeze(-3)  # [..., K, R, K*Ns]
    cov = hf @ hf.mH + _noise(noise_var, hf) * gram
    own = hf.unflatten(-1, (k, ns)).diagonal(dim1=-4, dim2=-2).movedim(-1, -3)  # [..., K, R, Ns]
    chol, _ = torch.linalg.cholesky_ex(cov)
    return torch.cholesky_solve(own, chol)


def stream_gains(h_eq: torch.Tensor, f_bb: torch.Tensor, w_bb: torch.Tensor) -> torch.Tensor:
    """``A_k = W_BB,k^H H_eq,k [F_BB,1 ... F_BB,K]`` ``[..., K, Ns, K*Ns]``: row ``l`` of user ``k`` holds
    the gains of every stream at stream ``l``'s combiner output (own stream at column ``k Ns + l``)."""
    return w_bb.mH @ (h_eq @ stack_users(f_bb).unsqueeze(-3))


def _own_gains(a: torch.Tensor, k: int, ns: int) -> torch.Tensor:
    idx = (torch.arange(k, device=a.device)[:, None] * ns + torch.arange(ns, device=a.device)).unsqueeze(-1)
    return torch.gather(a, -1, idx.expand(*a.shape[:-1], 1)).squeeze(-1)


def _noise_terms(w_bb: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """``||W_RF,k w_kl||^2 = w^H R_k w`` ``[..., K, Ns]`` (real)."""
    return (w_bb.conj() * (gram @ w_bb)).real.sum(-2)


def stream_mse(
    h_eq: torch.Tensor, f_bb: torch.Tensor, w_bb: torch.Tensor, noise_var, gram: torch.Tensor
) -> torch.Tensor:
    """Per-stream MSE (JCEHB eq. 23) ``[..., K, Ns]``: ``|1 - a_kl|^2 + sum_{(m,n) != (k,l)} |w_kl^H H_eq,k
    f_mn|^2 + sigma_tilde^2 w_kl^H R_k w_kl``; at the MMSE combiner it equals ``1 / (1 + SINR_kl)``.

    Example:
        >>> h = torch.randn(3, 2, 2, 8, dtype=torch.complex128)
        >>> f = torch.randn(3, 2, 8, 2, dtype=torch.complex128)
        >>> g = torch.eye(2, dtype=torch.complex128).expand(3, 2, 2, 2)
        >>> w = mmse_combiner_eq(h, f, 0.5, g)
        >>> torch.allclose(stream_mse(h, f, w, 0.5, g), 1 / (1 + stream_sinr_eq(h, f, w, 0.5, g)))
        True
    """
    k, ns = f_bb.shape[-3], f_bb.shape[-1]
    a = stream_gains(h_eq, f_bb, w_bb)
    own = _own_gains(a, k, ns)
    interference = abs2(a).sum(-1) - abs2(own)
    nv = _noise(noise_var, interference).squeeze(-1)
    return abs2(1 - own) + interference + nv * _noise_terms(w_bb, gram)


def stream_sinr_eq(
    h_eq: torch.Tensor, f_bb: torch.Tensor, w_bb: torch.Tensor, noise_var, gram: torch.Tensor
) -> torch.Tensor:
    """Per-stream SINR (JCEHB eq. 3) ``[..., K, Ns]`` on the equivalent channel: ``|a_kl|^2 / (sum_{(i,j) !=
    (k,l)} |w_kl^H H_eq,k f_ij|^2 + sigma_tilde^2 ||W_RF,k w_kl||^2)``. A zero combiner gives 0."""
    k, ns = f_bb.shape[-3], f_bb.shape[-1]
    a = abs2(stream_gains(h_eq, f_bb, w_bb))
    s = _own_gains(a, k, ns)
    nv = _noise(noise_var, s).squeeze(-1)
    den = a.sum(-1) - s + nv * _noise_terms(w_bb, gram)
    return s / den.clamp_min(torch.finfo(den.dtype).tiny)  # 0 for a zero combiner; NaN stays NaN (not hidden)


def sum_rate_eq(
    h_eq: torch.Tensor, f_bb: torch.Tensor, w_bb: torch.Tensor, noise_var, gram: torch.Tensor
) -> torch.Tensor:
    """Sum rate ``sum_k sum_l log2(1 + SINR_kl)`` ``[...]`` in bit/s/Hz (JCEHB eq. 3 and the objective (7a)).

    Example:
        >>> h = torch.randn(3, 2, 2, 8, dtype=torch.complex128)
        >>> f = torch.randn(3, 2, 8, 2, dtype=torch.complex128)
        >>> g = torch.eye(2, dtype=torch.complex128).expand(3, 2, 2, 2)
        >>> sum_rate_eq(h, f, mmse_combiner_eq(h, f, 0.5, g), 0.5, g).shape
        torch.Size([3])
    """
    return torch.log2(1 + stream_sinr_eq(h_eq, f_bb, w_bb, noise_var, gram)).sum((-2, -1))
