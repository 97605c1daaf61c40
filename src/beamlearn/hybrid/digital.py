"""Digital beamformers on the equivalent channel of a fixed analog stage: SCA on the log-MSE (JCEHB
Algorithm 2) and zero forcing with SVD combiners (the RLS-ZF benchmark).

Shapes and the power convention are those of :mod:`beamlearn.hybrid.equivalent`: ``h_eq`` ``[..., K, R, M]``,
digital precoders ``[..., K, M, Ns]`` normalised to ``||F_RF F_BB,k||_F^2 = Ns`` (``f_rf_gram = F_RF^H
F_RF`` ``[..., M, M]``), combiners ``[..., K, R, Ns]``, ``noise_var`` the normalised noise
``sigma_tilde^2 = sigma^2 / P``, ``gram`` the combined-noise covariance ``R_k`` ``[..., K, R, R]``.

SCA (Kang et al. 2022, eqs. 23-28, Algorithm 2, spec s4.3): maximising the sum rate is minimising
``sum log eps_kl`` (25); with ``g(t) = alpha^t`` and a first-order expansion of the constraint
``eps_kl <= alpha^(-t_kl)`` (26)-(27), the KKT conditions of the convex inner problem (28) give the
iteration (the sub-steps are public functions so that the unfolded network, HBDUN, reuses them):

* (S1) ``W_BB`` <- MMSE combiners (24) of the current precoders;
* (S2) ``lambda_kl = alpha^t_kl / ln alpha`` (:func:`sca_weights`);
* (S3) ``C = sum lambda_mn H_m^H w_mn w_mn^H H_m + tau I`` (:func:`sca_covariance`), ``f_kl = lambda_kl
  C^{-1} H_k^H w_kl``, then the per-user power projection (7d); ``tau = sigma_tilde^2 sum lambda ||w||_R^2 /
  (K Ns)`` (:func:`sca_regularizer`, the spec's closed-form WMMSE regulariser);
* (S4) ``eps`` <- MSE (23); (S5) ``t <- t + (1 - eps alpha^t) / ln alpha`` (:func:`sca_t_update`).

The fixed point of (S5) is ``t = -log_alpha eps`` (``lambda = 1 / (eps ln alpha)``, the WMMSE weight), so with
``alpha = 2`` ``t`` converges to the stream rates in bits. The iteration count is fixed (no early stop:
no host synchronisation inside the loop); the output combiners are refreshed by (24).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validation import check_int, check_real
from .equivalent import (
    mmse_combiner_eq,
    stack_users,
    stream_mse,
    sum_rate_eq,
    user_power_projection,
)

__all__ = [
    "SCAResult",
    "matched_filter_init",
    "sca_covariance",
    "sca_digital",
    "sca_precoders",
    "sca_regularizer",
    "sca_t_update",
    "sca_weights",
    "zf_digital",
]

T_MAX = 30.0  # clamp of t (alpha^t overflows beyond)
LAMBDA_MIN = 1e-6


@dataclass
class SCAResult:
    """Output of :func:`sca_digital`: precoders ``f_bb`` ``[..., K, M, Ns]``, MMSE combiners ``w_bb``
    ``[..., K, R, Ns]``, the auxiliary variables ``t`` ``[..., K, Ns]`` and, with ``record=True``, the sum rate
    with MMSE combiners after the initialisation and every iteration ``[iterations + 1, ...]``."""

    f_bb: torch.Tensor
    w_bb: torch.Tensor
    t: torch.Tensor
    rates: torch.Tensor | None = None


def matched_filter_init(h_eq: torch.Tensor, num_streams: int, f_rf_gram: torch.Tensor) -> torch.Tensor:
    """The initial precoders ``F_BB,k = H_eq,k^H[:, :Ns]`` (matched filter, spec s4.3 DEFAULT), projected to
    ``||F_RF F_BB,k||_F^2 = Ns``; ``Ns <= R``.

    Example:
        >>> h = torch.randn(5, 2, 4, 16, dtype=torch.complex64)
        >>> matched_filter_init(h, 4, torch.eye(16, dtype=torch.complex64)).shape
        torch.Size([5, 2, 16, 4])
    """
    ns = check_int("num_streams", num_streams, 1, h_eq.shape[-2])
    return user_power_projection(h_eq.mH[..., :ns].contiguous(), f_rf_gram, ns)


def sca_weights(t: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """(S2) ``lambda = alpha^t / ln alpha`` ``[..., K, Ns]``, floored at 1e-6."""
    return (torch.pow(alpha, t) / math.log(alpha)).clamp_min(LAMBDA_MIN)


def sca_regularizer(lam: torch.Tensor, w_bb: torch.Tensor, gram: torch.Tensor, noise_var) -> torch.Tensor:
    """``tau = sigma_tilde^2 sum_kl lambda_kl w_kl^H R_k w_kl / (K Ns)`` ``[...]`` (spec s4.3 DEFAULT: the
    closed-form WMMSE regulariser for the total budget ``sum_k ||F_RF F_BB,k||^2 = K Ns``)."""
    wrw = (w_bb.conj() * (gram @ w_bb)).real.sum(-2)  # [..., K, Ns]
    nv = torch.as_tensor(noise_var, dtype=wrw.dtype, device=wrw.device)
    return nv * (lam * wrw).sum((-2, -1)) / (lam.shape[-2] * lam.shape[-1])


def sca_covariance(h_eq: torch.Tensor, w_bb: torch.Tensor, lam: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """(S3) ``C = sum_mn lambda_mn H_m^H w_mn w_mn^H H_m + tau I`` ``[..., M, M]`` and the directions
    ``U_k = H_k^H W_BB,k`` ``[..., K, M, Ns]``, returned as ``(C, U)``."""
    u = h_eq.mH @ w_bb  # [..., K, M, Ns]
    u_all = stack_users(u)  # [..., M, K*Ns]
    lam_all = lam.reshape(*lam.shape[:-2], 1, -1).to(u.dtype)
    m = h_eq.shape[-1]
    eye = torch.eye(m, dtype=u.dtype, device=u.device)
    c = (u_all * lam_all) @ u_all.mH + tau.to(u.dtype)[..., None, None] * eye
    return c, u


def sca_precoders(c: torch.Tensor, u: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """(S3) ``f_kl = lambda_kl C^{-1} H_k^H w_kl`` ``[..., K, M, Ns]`` (one Cholesky solve for all users),
    before the power projection."""
    k, m, ns = u.shape[-3:]
    chol, _ = torch.linalg.cholesky_ex(c)
    rhs = stack_users(u) * lam.reshape(*lam.shape[:-2], 1, -1).to(u.dtype)  # [..., M, K*Ns]
    f = torch.cholesky_solve(rhs, chol)
    return f.unflatten(-1, (k, ns)).movedim(-2, -3)


def sca_t_update(t: torch.Tensor, eps: torch.Tensor, alpha: float = 2.0, mu=None) -> torch.Tensor:
    """(S5) ``t + mu (1 - eps alpha^t)`` with ``mu = 1 / ln alpha`` (default), clamped at ``t <= 30``."""
    mu = 1.0 / math.log(alpha) if mu is None else mu
    return (t + mu * (1 - eps * torch.pow(alpha, t))).clamp_max(T_MAX)


def sca_digital(
    h_eq: torch.Tensor,
    f_rf_gram: torch.Tensor,
    gram: torch.Tensor,
    noise_var,
    num_streams: int,
    iterations: int = 70,
    alpha: float = 2.0,
    *,
    init: torch.Tensor | None = None,
    record: bool = False,
) -> SCAResult:
    """JCEHB Algorithm 2: SCA digital precoders and MMSE combiners on the equivalent channels.

    Args:
        h_eq: equivalent channels ``[..., K, R, M]`` (true or estimated).
        f_rf_gram: ``F_RF^H F_RF`` ``[..., M, M]`` (for the power projection (7d)).
        gram: combined-noise covariance ``R_k`` ``[..., K, R, R]`` (:func:`~beamlearn.hybrid.equivalent.noise_gram`).
        noise_var: ``sigma_tilde^2 = sigma^2 / P`` (float or ``[...]``).
        num_streams: Ns per user, ``<= R``.
        iterations: I_max (fixed count; the paper's reference uses 70).
        alpha: base of ``g(t) = alpha^t``, > 1 (spec DEFAULT 2).
        init: initial precoders ``[..., K, M, Ns]`` (default: :func:`matched_filter_init`), projected.
        record: also return the sum rate (MMSE combiners) after the init and every iteration.

    Example:
        >>> h = torch.randn(8, 2, 4, 16, dtype=torch.complex128)
        >>> eye_m, eye_r = torch.eye(16, dtype=h.dtype), torch.eye(4, dtype=h.dtype).expand(8, 2, 4, 4)
        >>> out = sca_digital(h, eye_m, eye_r, 0.1, 4, iterations=20, record=True)
        >>> bool((out.rates[-1] > out.rates[0]).all())
        True
    """
    ns = check_int("num_streams", num_streams, 1, h_eq.shape[-2])
    iters = check_int("iterations", iterations, 0)
    alpha = check_real("alpha", alpha, 1.0, None, open_lower=True)
    f = matched_filter_init(h_eq, ns, f_rf_gram) if init is None else user_power_projection(init, f_rf_gram, ns)
    t = torch.zeros((*h_eq.shape[:-2], ns), dtype=h_eq.real.dtype, device=h_eq.device)
    rates = []
    if record:
        rates.append(sum_rate_eq(h_eq, f, mmse_combiner_eq(h_eq, f, noise_var, gram), noise_var, gram))
    for _ in range(iters):
        w = mmse_combiner_eq(h_eq, f, noise_var, gram)  # (S1)
        lam = sca_weights(t, alpha)  # (S2)
        c, u = sca_covariance(h_eq, w, lam, sca_regularizer(lam, w, gram, noise_var))
        f = user_power_projection(sca_precoders(c, u, lam), f_rf_gram, ns)  # (S3)
        eps = stream_mse(h_eq, f, w, noise_var, gram)  # (S4)
        t = sca_t_update(t, eps, alpha)  # (S5)
        if record:
            rates.append(sum_rate_eq(h_eq, f, mmse_combiner_eq(h_eq, f, noise_var, gram), noise_var, gram))
    w = mmse_combiner_eq(h_eq, f, noise_var, gram)
    return SCAResult(f, w, t, torch.stack(rates) if record else None)


def zf_digital(
    h_eq: torch.Tensor, f_rf_gram: torch.Tensor, num_streams: int, regularization: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero forcing over SVD combiners (the RLS-ZF benchmark, spec s4.5): ``W_BB,k`` = the top ``Ns`` left
    singular vectors of ``H_eq,k``; ``G = [W_BB,1^H H_eq,1; ...; W_BB,K^H H_eq,K]`` ``[..., K Ns, M]``;
    ``F_BB = G^H (G G^H + delta I)^{-1}`` split per user and projected (7d), with ``delta = regularization x
    tr(G G^H) / (K Ns)`` (relative to the scale of ``G``; default ``regularization``: 0 when ``K Ns <= M``,
    exact zero forcing, and 1e-6 for an overloaded ``K Ns > M``, where ``G G^H`` is singular). Returns
    ``(f_bb [..., K, M, Ns], w_bb [..., K, R, Ns])``.

    Example:
        >>> h = torch.randn(3, 2, 4, 16, dtype=torch.complex128)
        >>> f, w = zf_digital(h, torch.eye(16, dtype=h.dtype), 2)
        >>> g = w.mH @ h  # [3, 2, 2, 16]
        >>> leak = g[:, 0] @ f[:, 1]  # user 0's outputs of user 1's streams
        >>> bool(leak.abs().max() < 1e-6)
        True
    """
    ns = check_int("num_streams", num_streams, 1, h_eq.shape[-2])
    k, _, m = h_eq.shape[-3:]
    if regularization is None:
        regularization = 0.0 if k * ns <= m else 1e-6
    reg = check_real("regularization", regularization, 0.0, None)
    u, _, _ = torch.linalg.svd(h_eq, full_matrices=False)
    w = u[..., :ns]  # [..., K, R, Ns]
    g = (w.mH @ h_eq).reshape(*h_eq.shape[:-3], k * ns, m)  # [..., K Ns, M]
    gg = g @ g.mH
    if reg > 0:
        load = reg * gg.diagonal(dim1=-2, dim2=-1).real.mean(-1)
        gg = gg + load[..., None, None].to(gg.dtype) * torch.eye(k * ns, dtype=g.dtype, device=g.device)
    chol, _ = torch.linalg.cholesky_ex(gg)
    f_all = torch.cholesky_solve(g, chol).mH  # G^H (G G^H)^{-1} = ((G G^H)^{-1} G)^H
    f = f_all.unflatten(-1, (k, ns)).movedim(-2, -3)
    return user_power_projection(f, f_rf_gram, ns), w
