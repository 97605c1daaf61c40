"""Regularised least squares and recursive least squares (RLS) channel estimation from pilots.

Model (the layout of :mod:`beamlearn.estimation.pilots`): ``Y = H X + noise`` with the channel ``H``
``[..., R, M]`` (``R`` receive rows, e.g. ``N_RF^r`` RF chains of a user; ``M`` pilot dimension, e.g.
``N_RF^t``), pilots ``X`` ``[..., M, L]`` (``L`` pilot columns) and the received pilots ``Y`` ``[..., R, L]``.
The batch dimensions of ``Y`` and ``X`` broadcast, so per-user pilots ``[K, M, L]`` serve received pilots
``[B, K, R, L]``.

* :func:`ls_estimate_regularized`: ``H = Y X^H (X X^H + delta I)^{-1}`` (JCEHB spec eq. 15 for ``delta = 0``).
* :func:`rls_estimate`: the RLS recursion of JCEHB Algorithm 1 (spec s4.2), one iteration per pilot column.
  With forgetting ``beta = 1`` and ``P^0 = delta^{-1} I`` it returns exactly the regularised LS estimate, and
  for ``delta -> 0`` and ``L >= M`` the plain LS estimate.
"""

from __future__ import annotations

import torch

from .._ops import gram_cholesky
from .._validation import check_bool, check_complex, check_nonnegative, check_real

__all__ = ["ls_estimate_regularized", "rls_estimate"]


def _guard_denominator(d: torch.Tensor, eps: float) -> torch.Tensor:
    """``d`` where ``|d| >= eps``, else ``eps * d / |d|`` (``eps`` where ``d = 0``): real or complex, NaN-free.

    The direction of a guarded entry is detached, so the gradient is zero (not NaN) there."""
    mag = d.abs()
    ok = mag >= eps
    safe = torch.where(ok | (mag == 0), torch.ones_like(mag), mag)
    unit = torch.where(mag == 0, torch.ones_like(d), d / safe).detach()
    return torch.where(ok, d, eps * unit)


def _check_pair(y: torch.Tensor, pilots: torch.Tensor) -> torch.Size:
    """Check ``y`` ``[..., R, L]`` and ``pilots`` ``[..., M, L]``; return their broadcast batch shape."""
    check_complex("y", y)
    check_complex("pilots", pilots)
    if y.dim() < 2 or pilots.dim() < 2:
        raise ValueError(
            f"y [..., R, L] and pilots [..., M, L] need at least 2 dimensions, got shapes {tuple(y.shape)} "
            f"and {tuple(pilots.shape)}"
        )
    if y.shape[-1] != pilots.shape[-1]:
        raise ValueError(
            f"y [..., R, L] and pilots [..., M, L] must share the pilot length L, got shapes {tuple(y.shape)} "
            f"and {tuple(pilots.shape)}"
        )
    try:
        return torch.broadcast_shapes(y.shape[:-2], pilots.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the batch dimensions of y {tuple(y.shape)} and pilots {tuple(pilots.shape)} do not broadcast"
        ) from None


def ls_estimate_regularized(y: torch.Tensor, pilots: torch.Tensor, delta: float) -> torch.Tensor:
    """Regularised least squares ``H = Y X^H (X X^H + delta I)^{-1}`` ``[..., R, M]`` (JCEHB spec eq. 15,
    acceptance A3).

    Args:
        y: received pilots ``Y`` ``[..., R, L]`` (complex).
        pilots: pilot matrix ``X`` ``[..., M, L]`` (complex; batch dimensions broadcast with those of ``y``;
            cast to the dtype of ``y``).
        delta: the regularisation ``delta >= 0`` (same unit as ``|X|^2``, i.e. the pilot power); ``delta = 0``
            is plain least squares (:func:`~beamlearn.estimation.ls_estimate`) and needs ``L >= M``.

    Solved through a Cholesky factor of ``X X^H + delta I`` (not inverted). With ``delta > 0`` any ``L``
    works; it is the RLS estimate of :func:`rls_estimate` with ``forgetting = 1``.

    Example:
        >>> from beamlearn.estimation import orthogonal_pilots
        >>> x = orthogonal_pilots(4, 8, dtype=torch.complex128)  # X X^H = 2 I
        >>> h = torch.randn(3, 2, 4, dtype=torch.complex128)
        >>> torch.allclose(ls_estimate_regularized(h @ x, x, 0.5), h * 2 / 2.5)
        True
    """
    delta = check_nonnegative("delta", delta)
    _check_pair(y, pilots)
    x = pilots.to(y.dtype)
    m, length = x.shape[-2:]
    if delta == 0 and length < m:
        raise ValueError(
            f"pilots: least squares with delta=0 needs pilot length L >= M={m} (full row rank), got L={length}; "
            "use delta > 0"
        )
    lc = gram_cholesky(x @ x.mH, shift=delta)  # X X^H + delta I = L L^H
    rhs = (y @ x.mH).mH  # [..., M, R]
    return torch.cholesky_solve(rhs, lc).mH.resolve_conj()


def rls_estimate(
    y: torch.Tensor,
    pilots: torch.Tensor,
    forgetting: float = 0.99,
    delta: float = 0.01,
    *,
    return_state: bool = False,
):
    """Recursive least-squares channel estimate ``H_hat = (W^L)^H`` ``[..., R, M]`` (JCEHB Algorithm 1, spec
    s4.2, index typos fixed).

    Model per pilot column ``n``: ``y^n = W^H x^n + noise`` with ``W = H^H`` ``[M, R]``. Starting from
    ``W^0 = 0``, ``P^0 = delta^{-1} I``, for ``n = 1..L``::

        g^n = P^{n-1} x^n                                   (R1)
        v^n = g^n / (beta + (g^n)^H x^n)                    (R2)
        P^n = beta^{-1} (P^{n-1} - v^n (g^n)^H)             (R3)
        e^n = y^n - (W^{n-1})^H x^n                         (R4)
        W^n = W^{n-1} + v^n (e^n)^H                         (R5)

    ``P`` stays Hermitian positive definite, so ``(g^n)^H x^n = (x^n)^H P x^n`` is real and ``>= 0``: its real
    part is used and the denominator is guarded to ``>= 1e-12``. ``P``, ``g`` and ``v`` depend on the pilots
    only and are computed on the pilots' batch shape.

    Args:
        y: received pilots ``[..., R, L]`` (complex).
        pilots: pilots ``[..., M, L]`` (complex; broadcast with ``y``, e.g. per-user ``[K, M, L]`` against
            ``y`` ``[B, K, R, L]``; cast to the dtype of ``y``).
        forgetting: the forgetting factor ``beta`` in ``(0, 1]``.
        delta: the initial ``P^0 = delta^{-1} I``, ``delta > 0`` (same unit as ``|x|^2``).
        return_state: also return the final ``W`` ``[..., M, R]`` and ``P`` ``[..., M, M]`` (pilots' batch).

    Returns:
        ``H_hat`` ``[..., R, M]``, or ``(H_hat, W, P)`` with ``return_state=True``.

    With ``beta = 1`` the result is :func:`ls_estimate_regularized` with the same ``delta`` (an exact identity);
    with ``beta = 1``, ``delta -> 0`` and ``L >= M`` it is plain least squares (acceptance A3).

    Example:
        >>> from beamlearn.estimation import orthogonal_pilots
        >>> x = orthogonal_pilots(4, 8, dtype=torch.complex128)
        >>> h = torch.randn(5, 3, 2, 4, dtype=torch.complex128)  # [B, K, R, M]
        >>> h_hat = rls_estimate(h @ x, x, forgetting=1.0, delta=1e-10)
        >>> h_hat.shape, torch.allclose(h_hat, h, atol=1e-8)
        (torch.Size([5, 3, 2, 4]), True)
    """
    beta = check_real("forgetting", forgetting, 0.0, 1.0, open_lower=True)
    delta = check_real("delta", delta, 0.0, None, open_lower=True)
    check_bool("return_state", return_state)
    batch = _check_pair(y, pilots)
    x = pilots.to(y.dtype)
    m, length = x.shape[-2:]
    r = y.shape[-2]
    p = torch.eye(m, dtype=y.dtype, device=y.device).expand(*x.shape[:-2], m, m) / delta
    w = torch.zeros(*batch, m, r, dtype=y.dtype, device=y.device)
    for n in range(length):
        xn = x[..., n : n + 1]  # [..., M, 1]
        g = p @ xn  # (R1)
        den = _guard_denominator(beta + (g.mH @ xn).real, 1e-12)  # [..., 1, 1]
        v = g / den  # (R2)
        p = (p - v @ g.mH) / beta  # (R3)
        e = y[..., n : n + 1] - w.mH @ xn  # (R4) [..., R, 1]
        w = w + v @ e.mH  # (R5)
    h_hat = w.mH.resolve_conj()
    return (h_hat, w, p) if return_state else h_hat
