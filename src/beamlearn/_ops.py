"""Small tensor helpers used in hot paths."""

from __future__ import annotations

import torch

__all__ = ["abs2", "gram_cholesky", "per_user_product", "sq_norm"]


def abs2(x: torch.Tensor) -> torch.Tensor:
    """``|x|^2`` element-wise as a real tensor; for complex input several times faster on the CPU than
    ``x.abs().square()`` (no square root) and differentiable."""
    if x.is_complex():
        if x.is_conj():  # |conj(x)|^2 = |x|^2: undo the lazy conjugation instead of materialising it
            x = x.conj()
        r = torch.view_as_real(x)
        return (r * r).sum(-1)  # r * r: several times faster than r.square() on the CPU
    return x * x


def sq_norm(x: torch.Tensor, dims: int = 2) -> torch.Tensor:
    """``sum |x|^2`` over the last ``dims`` dimensions (e.g. ``||X||_F^2`` for ``dims=2``), in one
    reduction over the real view."""
    if x.is_complex():
        if x.is_conj():
            x = x.conj()
        r = torch.view_as_real(x).flatten(-dims - 1)
    else:
        r = x.flatten(-dims)
    return (r * r).sum(-1)


def per_user_product(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``H_k X`` for every user: ``h`` ``[..., K, Nr, N]``, ``x`` ``[..., N, D]`` -> ``[..., K, Nr, D]``.

    One matmul on the stacked ``[..., K*Nr, N]`` channel instead of broadcasting ``x`` over K, which
    would materialise K copies of it.
    """
    k, nr = h.shape[-3], h.shape[-2]
    return (h.flatten(-3, -2) @ x).unflatten(-2, (k, nr))


def gram_cholesky(g: torch.Tensor, shift=0.0) -> torch.Tensor:
    """Lower Cholesky factor of ``g + (shift + 10 eps tr(g)) I`` for a Hermitian PSD Gram matrix ``g``
    ``[..., M, M]``: the tiny relative loading keeps rank-deficient Gram matrices factorisable and changes a
    well-conditioned solve only at rounding level. ``shift`` (a float or a real tensor ``[...]``) adds an
    explicit regularisation such as RZF's ``alpha``.

    The loading is purely relative (no absolute floor), so the factor of ``c^2 g`` is ``c`` times the
    factor of ``g`` for any scale ``c`` representable in the dtype: solves are scale-invariant. Where the
    whole loading is zero (an all-zero ``g`` and no shift, or a trace that underflows) the loading is 1
    instead; any positive value gives the same (zero) precoder rows there.
    """
    m = g.shape[-1]
    tr = torch.diagonal(g, dim1=-2, dim2=-1).real.sum(-1)
    load = torch.as_tensor(shift, dtype=tr.dtype, device=g.device) + 10 * torch.finfo(tr.dtype).eps * tr
    load = torch.where(load > 0, load, torch.ones_like(load))
    l, _ = torch.linalg.cholesky_ex(g + load[..., None, None] * torch.eye(m, dtype=g.dtype, device=g.device))
    return l
