"""Fully digital linear precoders: MRT, ZF and regularised ZF (batched, closed form).

All return a precoder ``[..., N, K]`` (or ``[..., N, K*Nr]`` for multi-antenna users, one stream per
receive antenna) with total power ``||X||_F^2 = P`` (``normalization="total"``, uniform scaling) or
equal power per stream ``||x_k||^2 = P/K`` (``"per_stream"``, the normalisation of Sionna's
``rzf_precoding_matrix``/``cbf_precoding_matrix``).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from .._ops import abs2, gram_cholesky, sq_norm
from .._validation import check_nonnegative, check_one_of, check_power
from ..interface import Beamformers, BeamformingMethod, user_channels

__all__ = ["mrt_precoder", "zf_precoder", "rzf_precoder", "MRT", "ZF", "RZF"]

Normalization = Literal["total", "per_stream"]
_NORMALIZATIONS = get_args(Normalization)


def _stack(h: torch.Tensor) -> torch.Tensor:
    """``[..., K, Nr, N] -> [..., K*Nr, N]`` (each receive antenna a virtual single-antenna user)."""
    return h.flatten(-3, -2)


def _gram_solve(h: torch.Tensor, alpha) -> torch.Tensor:
    """A positive multiple (one per channel) of ``H^H (H H^H + alpha I)^{-1}``, see :func:`_gram_solve_rows`."""
    return _gram_solve_rows(h, alpha).mH


def _gram_solve_rows(h: torch.Tensor, alpha) -> torch.Tensor:
    """``c Y`` with ``Y = (H H^H + alpha I)^{-1} H`` ``[..., K, N]`` (the conjugate transpose of the precoder)
    and ``c = sqrt(tr(H H^H) / K) > 0`` a scale per channel, by Cholesky in user space (K x K), guarded for
    rank deficiency.

    Only the direction of the result is used (every caller normalises the power), so the channel is
    scaled to unit mean row norm first: ``c Y = (G' + alpha' I)^{-1} H / c`` with ``G' = H H^H / c^2``
    and ``alpha' = alpha / c^2``. Its entries are then of order one whatever the scale of ``h`` (``Y``
    itself is ``1/|h|`` and, on rank-deficient channels, ``1/(eps |h|)``, whose square overflows complex64
    for small channels), and the result depends on the scale of ``h`` and ``alpha`` only through
    ``alpha / |h|^2``: ZF and RZF are scale-invariant. An all-zero channel gives zero rows.
    """
    k = h.shape[-2]
    g = h @ h.mH
    c2 = torch.diagonal(g, dim1=-2, dim2=-1).real.sum(-1) / k  # [...]
    c2 = torch.where(c2 > 0, c2, torch.ones_like(c2))  # all-zero channel: any scale
    a = torch.as_tensor(alpha, dtype=c2.dtype, device=h.device) / c2
    l = gram_cholesky(g / c2[..., None, None], a)  # guarded for rank-deficient (and all-zero) channels
    # user space: Z = (G' + a' I)^{-1} by a K x K Cholesky solve, then X = H^H Z = (Z H)^H. Solving with
    # the N columns of H as right-hand sides instead was 3x slower on the CPU at N=256, K=16
    eye = torch.eye(k, dtype=h.dtype, device=h.device).expand_as(l)
    z = torch.cholesky_solve(eye, l) * torch.rsqrt(c2)[..., None, None]
    return z @ h


def _normalized_from_rows(y: torch.Tensor, power, normalization: Normalization) -> torch.Tensor:
    """``X = c Y^H`` scaled to total power P (or equal power per column), computed on the contiguous
    rows ``Y`` (``[..., K, N]``) and returned as a conjugate-transpose view: transposing copies of
    ``[..., N, K]`` tensors cost more than the rest of ZF on the CPU."""
    check_power("power", power)
    check_one_of("normalization", normalization, _NORMALIZATIONS)
    p = torch.as_tensor(power, dtype=y.real.dtype, device=y.device)
    if normalization == "per_stream":
        nrm = abs2(y).sum(-1, keepdim=True) * y.shape[-2]  # [..., K, 1]
        if p.dim():
            p = p[..., None, None]
    else:
        nrm = sq_norm(y, 2)[..., None, None]
        if p.dim():
            p = p[..., None, None]
    root = torch.sqrt(nrm)
    s = torch.sqrt(p) / torch.where(root > 0, root, torch.ones_like(root))
    return (y * torch.where(root > 0, s, torch.zeros_like(s))).mH.resolve_conj()


def mrt_precoder(h: torch.Tensor, power, *, normalization: Normalization = "total") -> torch.Tensor:
    """Maximum-ratio transmission ``X ∝ H^H`` (``h`` ``[..., K, N]``)."""
    return _normalized_from_rows(h, power, normalization)


def zf_precoder(h: torch.Tensor, power, *, normalization: Normalization = "total") -> torch.Tensor:
    """Zero forcing ``X ∝ H^H (H H^H)^{-1}`` (``h`` ``[..., K, N]``, K <= N).

    With total-power scaling the ZF sum rate has the closed form
    ``K log2(1 + P / (sigma^2 ||H^+||_F^2))``.
    """
    if h.shape[-2] > h.shape[-1]:
        raise ValueError(f"zero forcing needs K <= N; got K={h.shape[-2]} users (streams) and N={h.shape[-1]} antennas")
    return _normalized_from_rows(_gram_solve_rows(h, 0.0), power, normalization)


def rzf_precoder(
    h: torch.Tensor, power, noise_var=None, *, alpha=None, normalization: Normalization = "total"
) -> torch.Tensor:
    """Regularised ZF ``X ∝ H^H (H H^H + alpha I)^{-1}``.

    Default ``alpha = K sigma^2 / P`` (the MMSE-optimal regularisation for i.i.d. channels); give
    ``alpha`` explicitly to override (then ``noise_var`` is not needed).
    """
    if alpha is None:
        if noise_var is None:
            raise ValueError("rzf_precoder needs noise_var (for alpha = K sigma^2 / P) or an explicit alpha")
        check_power("noise_var", noise_var)
        check_power("power", power)
        p = torch.as_tensor(power, dtype=h.real.dtype, device=h.device)
        n = torch.as_tensor(noise_var, dtype=h.real.dtype, device=h.device)
        alpha = h.shape[-2] * n / p
    elif not isinstance(alpha, torch.Tensor):
        check_nonnegative("alpha", alpha)
    return _normalized_from_rows(_gram_solve_rows(h, alpha), power, normalization)


class _Linear(BeamformingMethod):
    def __init__(self, num_streams: int | None = None, normalization: Normalization = "total"):
        super().__init__()
        self.num_streams = num_streams
        self.normalization = check_one_of("normalization", normalization, _NORMALIZATIONS)

    def _prepare(self, h):
        if self.num_streams is None:
            return h, None
        hm = user_channels(h, self.num_streams)
        nr = hm.shape[-2]
        if self.num_streams != nr:
            raise ValueError(
                f"{self.name} serves one stream per receive antenna: num_streams must equal Nr={nr}, "
                f"got {self.num_streams}"
            )
        eye = torch.eye(nr, dtype=h.dtype, device=h.device).expand(*hm.shape[:-1], nr)
        return _stack(hm), eye

    def forward(self, h, power, noise_var) -> Beamformers:
        hs, comb = self._prepare(h)
        return Beamformers(precoder=self._precode(hs, power, noise_var), combiner=comb)


class MRT(_Linear):
    """Maximum-ratio transmission (conjugate beamforming)."""

    name = "mrt"

    def _precode(self, h, power, noise_var):
        return mrt_precoder(h, power, normalization=self.normalization)


class ZF(_Linear):
    """Zero-forcing precoding."""

    name = "zf"

    def _precode(self, h, power, noise_var):
        return zf_precoder(h, power, normalization=self.normalization)


class RZF(_Linear):
    """Regularised zero forcing with ``alpha = K sigma^2 / P``."""

    name = "rzf"

    def _precode(self, h, power, noise_var):
        return rzf_precoder(h, power, noise_var, normalization=self.normalization)
