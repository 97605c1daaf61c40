"""Small tensor helpers used in hot paths."""

from __future__ import annotations

import torch

__all__ = ["abs2", "per_user_product"]


def abs2(x: torch.Tensor) -> torch.Tensor:
    """``|x|^2`` element-wise as a real tensor; for complex input several times faster on the CPU than
    ``x.abs().square()`` (no square root) and differentiable."""
    if x.is_complex():
        if x.is_conj():  # |conj(x)|^2 = |x|^2: undo the lazy conjugation instead of materialising it
            x = x.conj()
        return torch.view_as_real(x).square().sum(-1)
    return x.square()


def per_user_product(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``H_k X`` for every user: ``h`` ``[..., K, Nr, N]``, ``x`` ``[..., N, D]`` -> ``[..., K, Nr, D]``.

    One matmul on the stacked ``[..., K*Nr, N]`` channel instead of broadcasting ``x`` over K, which
    would materialise K copies of it.
    """
    k, nr = h.shape[-3], h.shape[-2]
    return (h.flatten(-3, -2) @ x).unflatten(-2, (k, nr))
