"""Achievable rates, SINR and MSE of linearly precoded multiuser downlinks.

Conventions (stated once, in ``docs/conventions.md``):

* channels ``h`` are ``[..., K, N]`` (single-antenna users, row k = h_k^H) or ``[..., K, Nr, N]``;
* the precoder ``x`` is ``[..., N, K*Ns]``, the columns of user k being ``k*Ns ... k*Ns+Ns-1``; for hybrid
  precoders pass ``analog @ digital`` (:func:`beamlearn.constraints.hybrid_precoder`);
* data symbols have unit power, ``E[s s^H] = I``, so the transmit power is ``||x||_F^2``;
* ``noise_var`` is the noise variance sigma^2 per receive antenna (a float or a tensor broadcastable to
  the batch shape ``[...]``); SNR = P / sigma^2;
* rates are in bit/s/Hz (log2).
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch

from .._ops import abs2, per_user_product
from .._validation import check_one_of

__all__ = [
    "sinr",
    "sum_rate",
    "user_rates",
    "stream_sinr",
    "mmse_combiner",
    "mse",
]

RateForm = Literal["sinr", "logdet"]
_FORMS = get_args(RateForm)


def _noise(noise_var, like: torch.Tensor) -> torch.Tensor:
    """noise_var as a real tensor broadcastable to ``like[..., None]``-style batch shapes."""
    rdtype = like.real.dtype
    n = torch.as_tensor(noise_var, dtype=rdtype, device=like.device)
    return n


def _streams(h: torch.Tensor, x: torch.Tensor) -> int:
    k = h.shape[-3] if h.dim() >= 3 and _is_mimo(h, x) else h.shape[-2]
    if x.shape[-1] % k:
        raise ValueError(f"precoder has {x.shape[-1]} columns, not a multiple of K={k} users")
    return x.shape[-1] // k


def _is_mimo(h: torch.Tensor, x: torch.Tensor) -> bool:
    return h.dim() == x.dim() + 1


def _check(h: torch.Tensor, x: torch.Tensor) -> None:
    if h.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"channel has N={h.shape[-1]} antennas but precoder has {x.shape[-2]} rows; "
            f"expected channel [..., K, N] or [..., K, Nr, N] and precoder [..., N, K*Ns]"
        )


def sinr(h: torch.Tensor, x: torch.Tensor, noise_var) -> torch.Tensor:
    """Per-user SINR of a MISO downlink, ``[..., K]``.

    ``SINR_k = |h_k^H x_k|^2 / (sum_{l != k} |h_k^H x_l|^2 + sigma^2)`` with ``h`` ``[..., K, N]`` and
    ``x`` ``[..., N, K]``.
    """
    _check(h, x)
    g = abs2(h @ x)  # [..., K, K]
    s = torch.diagonal(g, dim1=-2, dim2=-1)
    n = _noise(noise_var, g)
    if n.dim():
        n = n[..., None]
    return s / (g.sum(-1) - s + n)


def stream_sinr(h: torch.Tensor, x: torch.Tensor, noise_var, combiner: torch.Tensor | None = None) -> torch.Tensor:
    """Per-stream SINR ``[..., K, Ns]`` of a MIMO downlink with linear combiners.

    ``SINR_{k,l} = |c_kl^H H_k x_kl|^2 / (sum_{(i,j) != (k,l)} |c_kl^H H_k x_ij|^2 + sigma^2 ||c_kl||^2)``.
    ``combiner`` is ``[..., K, Nr, Ns]`` (analog @ digital for hybrid combiners); default: the
    linear MMSE combiner of :func:`mmse_combiner` (no successive interference cancellation).
    """
    _check(h, x)
    if not _is_mimo(h, x):
        return sinr(h, x, noise_var)[..., None]
    k = h.shape[-3]
    ns = _streams(h, x)
    if combiner is None:
        combiner = mmse_combiner(h, x, noise_var)
    if combiner.shape[-1] != ns or combiner.shape[-2] != h.shape[-2]:
        raise ValueError(f"combiner must be [..., K, Nr={h.shape[-2]}, Ns={ns}], got {tuple(combiner.shape)}")
    combiner = _unit_columns(combiner)  # the SINR does not depend on the scale of a combiner
    g = abs2(combiner.mH @ per_user_product(h, x))  # [..., K, Ns, K*Ns]
    idx = torch.arange(k * ns, device=h.device).view(k, ns)
    s = torch.gather(g, -1, idx[..., None].expand(*g.shape[:-1], 1)).squeeze(-1)
    n = _noise(noise_var, g)
    if n.dim():
        n = n[..., None, None]
    c2 = abs2(combiner).sum(-2)  # [..., K, Ns]: 1, or 0 for a zero combiner
    sinr_ = s / (g.sum(-1) - s + n * c2)
    # a zero combiner (a stream that is not served, e.g. WMMSE's MMSE receiver of a user it switched off)
    # detects nothing: SINR 0, not 0/0
    return torch.where(c2 > 0, sinr_, torch.zeros_like(sinr_))


def _orthonormal_columns(c: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis of the columns of each combiner ``[..., K, Nr, Ns]`` by modified Gram-Schmidt,
    column by column; a column whose part orthogonal to the previous ones is below ``sqrt(eps)`` of its norm
    (zero, or dependent up to rounding) becomes zero."""
    c = _unit_columns(c)
    tol = torch.finfo(c.real.dtype).eps ** 0.5
    cols = []
    for j in range(c.shape[-1]):
        v = c[..., j]  # [..., K, Nr], unit or zero
        for q in cols:
            v = v - q * (q.conj() * v).sum(-1, keepdim=True)
        nrm = torch.sqrt(abs2(v).sum(-1, keepdim=True))
        keep = nrm > tol
        cols.append(torch.where(keep, v / torch.where(keep, nrm, torch.ones_like(nrm)), torch.zeros_like(v)))
    return torch.stack(cols, -1)


def _unit_columns(c: torch.Tensor) -> torch.Tensor:
    """Combiners ``[..., K, Nr, Ns]`` with every column scaled to unit norm (zero columns stay zero).

    Scaled by the largest real or imaginary part first, so that columns of subnormal numbers (the
    combiners of streams an iterative method has switched off) are normalised too instead of
    underflowing to a 0/0 SINR.
    """
    r = torch.view_as_real(c.resolve_conj())  # [..., K, Nr, Ns, 2]
    top = r.abs().amax(dim=(-3, -1))  # [..., K, Ns]
    # real division (the reciprocal of the smallest subnormals overflows, and complex division by them is 0/0)
    c = torch.view_as_complex(r / torch.where(top > 0, top, torch.ones_like(top))[..., None, :, None])
    nrm = torch.sqrt(abs2(c).sum(-2))  # 0, or in [1, sqrt(2 Nr)]
    return c / torch.where(nrm > 0, nrm, torch.ones_like(nrm))[..., None, :]


def mmse_combiner(h: torch.Tensor, x: torch.Tensor, noise_var) -> torch.Tensor:
    """Linear MMSE combiners ``[..., K, Nr, Ns]``: ``c_kl = (sigma^2 I + H_k x x^H H_k^H)^{-1} H_k x_kl``."""
    k, nr = h.shape[-3], h.shape[-2]
    ns = _streams(h, x)
    hx = per_user_product(h, x)  # [..., K, Nr, K*Ns]
    n = _noise(noise_var, hx)
    if n.dim():
        n = n[..., None, None, None]
    eye = torch.eye(nr, dtype=h.dtype, device=h.device)
    cov = hx @ hx.mH + n * eye
    idx = torch.arange(k * ns, device=h.device).view(k, ns)
    own = torch.gather(hx, -1, idx[:, None, :].expand(*hx.shape[:-1], ns))  # [..., K, Nr, Ns]
    return _hpd_solve(cov, own)


def _hpd_solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve ``a z = b`` for Hermitian positive definite ``a`` by Cholesky."""
    l, _ = torch.linalg.cholesky_ex(a)
    return torch.cholesky_solve(b, l)


def _logdet_hpd(a: torch.Tensor) -> torch.Tensor:
    l, _ = torch.linalg.cholesky_ex(a)
    return 2 * torch.log(torch.diagonal(l, dim1=-2, dim2=-1).real).sum(-1)


def user_rates(
    h: torch.Tensor,
    x: torch.Tensor,
    noise_var,
    *,
    combiner: torch.Tensor | None = None,
    form: RateForm = "sinr",
) -> torch.Tensor:
    """Per-user rates ``[..., K]`` in bit/s/Hz.

    * ``form="sinr"``: ``sum_l log2(1 + SINR_{k,l})`` with per-stream linear detection
      (:func:`stream_sinr`, MMSE combiners by default).
    * ``form="logdet"``: ``log2 det(I + C^H H_k X_k X_k^H H_k^H C (C^H R_k C)^{-1})`` with ``R_k`` the
      interference-plus-noise covariance; ``combiner=None`` means no combining (``C = I``: the rate of
      an optimal, joint receiver at user k). For a single stream, or precoders that diagonalise each
      user's whitened channel, the two forms agree; in general ``sinr <= logdet``. With zero or linearly
      dependent combiner columns (up to ``sqrt(eps)``) it is the rate of the space the columns span.

    A zero combiner column detects nothing (SINR 0); neither form depends on the scale of a column.
    """
    _check(h, x)
    check_one_of("form", form, _FORMS)
    if form == "sinr":
        return torch.log2(1 + stream_sinr(h, x, noise_var, combiner)).sum(-1)
    if not _is_mimo(h, x):
        h = h.unsqueeze(-2)
    k, nr = h.shape[-3], h.shape[-2]
    ns = _streams(h, x)
    hx = per_user_product(h, x)  # [..., K, Nr, K*Ns]
    own = torch.zeros(k, k * ns, dtype=torch.bool, device=h.device)
    own.view(k, k, ns)[torch.arange(k), torch.arange(k)] = True
    hx_int = hx * (~own)[:, None, :]
    n = _noise(noise_var, hx)
    if n.dim():
        n = n[..., None, None, None]
    eye = torch.eye(nr, dtype=h.dtype, device=h.device)
    r_all = hx @ hx.mH + n * eye
    r_int = hx_int @ hx_int.mH + n * eye
    if combiner is not None:
        # the rate is that of the space spanned by each user's combiner columns (it does not change when C is
        # replaced by C T, T invertible), so C is replaced by an orthonormal basis of its columns; columns that
        # are zero or (numerically) dependent on the previous ones, e.g. WMMSE's receivers of streams it has
        # switched off or of more streams than the channel's rank, would make both matrices singular: they
        # get a unit diagonal in both, adding log 1 = 0
        c = _orthonormal_columns(combiner)
        unused = torch.diag_embed((abs2(c).sum(-2) == 0).to(r_all.real.dtype)).to(r_all.dtype)
        r_all = c.mH @ r_all @ c + unused
        r_int = c.mH @ r_int @ c + unused
    return (_logdet_hpd(r_all) - _logdet_hpd(r_int)) / math.log(2)


def sum_rate(
    h: torch.Tensor,
    x: torch.Tensor,
    noise_var,
    *,
    combiner: torch.Tensor | None = None,
    form: RateForm = "sinr",
) -> torch.Tensor:
    """Sum rate ``[...]`` in bit/s/Hz; see :func:`user_rates` for the two forms.

    MISO: ``h`` ``[..., K, N]``, ``x`` ``[..., N, K]``:
    ``R = sum_k log2(1 + |h_k^H x_k|^2 / (sum_{l != k} |h_k^H x_l|^2 + sigma^2))``.
    """
    if form == "sinr" and not _is_mimo(h, x):
        return torch.log2(1 + sinr(h, x, noise_var)).sum(-1)
    return user_rates(h, x, noise_var, combiner=combiner, form=form).sum(-1)


def mse(h: torch.Tensor, x: torch.Tensor, noise_var, combiner: torch.Tensor | None = None) -> torch.Tensor:
    """Per-stream mean squared error ``E|c^H y_k - s_kl|^2`` ``[..., K, Ns]`` (``[..., K]`` for MISO).

    ``MSE = |c^H H_k x_kl - 1|^2 + sum_{(i,j) != (k,l)} |c^H H_k x_ij|^2 + sigma^2 ||c||^2``.
    MISO ``combiner`` is a receive gain per user ``[..., K]``; default (both cases): the MMSE receiver,
    for which ``MSE = 1 / (1 + SINR)``.
    """
    _check(h, x)
    miso = not _is_mimo(h, x)
    if miso:
        h = h.unsqueeze(-2)
        if combiner is not None:
            combiner = combiner[..., None, None]
    k = h.shape[-3]
    ns = _streams(h, x)
    if combiner is None:
        combiner = mmse_combiner(h, x, noise_var)
    g = combiner.mH @ per_user_product(h, x)  # [..., K, Ns, K*Ns]
    idx = torch.arange(k * ns, device=h.device).view(k, ns)[..., None]
    s = torch.gather(g, -1, idx.expand(*g.shape[:-1], 1)).squeeze(-1)
    n = _noise(noise_var, g.real)
    if n.dim():
        n = n[..., None, None]
    out = abs2(s - 1) + abs2(g).sum(-1) - abs2(s) + n * abs2(combiner).sum(-2)
    return out.squeeze(-1) if miso else out
