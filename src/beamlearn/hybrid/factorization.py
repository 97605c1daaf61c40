"""Hybrid factorisation of a fully digital precoder, ``X ~ F W`` with unit-modulus ``F``, batched.

Two classical designs (spec ``shared/papers/unfolded-pga-hbf.md`` s5.2 stage 2):

* :func:`mo_altmin`: MO-AltMin of Yu, Shen, Zhang, Letaief (IEEE JSTSP 2016), ``min ||X - F W||_F^2``
  s.t. ``|F_nm| = 1`` by alternating least squares for W and Riemannian conjugate gradient on the
  complex-circle manifold for F.
* :func:`omp_hybrid`: spatially sparse precoding of El Ayach, Rajagopal, Abu-Surra, Pi, Heath (IEEE TWC
  2014) by simultaneous orthogonal matching pursuit over a dictionary of unit-modulus candidate
  analog vectors (default: :func:`ula_dictionary`).

Shapes follow ``docs/conventions.md``: ``X`` ``[..., N, S]`` (S = K*Ns streams), ``F`` ``[..., N, N_RF]``,
``W`` ``[..., N_RF, S]``. Neither function scales W to a power budget: callers do that with
:func:`beamlearn.constraints.normalize_hybrid_power`. Everything is batched over the leading dimensions
with fixed iteration counts, no per-sample loop and no host synchronisation; dtype and device follow
``X``.
"""

from __future__ import annotations

import math

import torch

from .._dtypes import resolve_dtype
from .._ops import abs2, gram_cholesky, sq_norm
from .._validation import check_complex, check_int, check_real
from ..constraints import project_unit_modulus

__all__ = ["mo_altmin", "omp_hybrid", "ula_dictionary", "least_squares_digital"]


def _check_rf(num_rf_chains, n: int) -> int:
    return check_int("num_rf_chains", num_rf_chains, 1, n)


def least_squares_digital(f: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``W = F^+ X = (F^H F)^{-1} F^H X`` by Cholesky of the ``N_RF x N_RF`` Gram matrix.

    The tiny loading of :func:`beamlearn._ops.gram_cholesky` keeps a rank-deficient ``F`` (repeated
    columns) finite; it changes a well-conditioned solve only at rounding level.
    """
    l = gram_cholesky(f.mH @ f)
    return torch.cholesky_solve(f.mH @ x, l)


_vr = torch.view_as_real  # (real arithmetic avoids the slow complex abs/hypot kernels)


def _residual(x, f, w):
    return sq_norm(x - f @ w, 2)


def _inner(a, b):
    """Real inner product ``Re tr(A^H B)`` over the last two dimensions."""
    return (_vr(a) * _vr(b)).flatten(-3).sum(-1)


def _tangent(d, f):
    """Projection onto the tangent space of the complex circle at ``F``: ``D - Re(D conj(F)) F``."""
    return d - (d.real * f.real + d.imag * f.imag) * f


def _rcg(x, f, w, steps: int, trials: int, armijo: float):
    """``steps`` Riemannian CG iterations on ``||X - F W||^2`` over unit-modulus F, W fixed.

    Polak-Ribiere+ with transport by projection; Armijo backtracking over ``trials`` step sizes
    ``alpha0 2^-i`` evaluated in parallel, ``alpha0`` the exact minimiser of the cost along the
    direction before retraction; if no trial passes, F stays and the direction restarts as -g.
    The cost never increases.
    """
    cost = _residual(x, f, w)
    e = x - f @ w
    g = _tangent(-2 * e @ w.mH, f)
    d = -g
    scales = 2.0 ** -torch.arange(trials, dtype=x.real.dtype, device=x.device)  # [T]
    order = torch.arange(trials, 0, -1, device=x.device)  # prefer the largest passing step
    tiny = torch.finfo(x.real.dtype).tiny
    for _ in range(steps):
        slope = _inner(g, d)  # < 0 for a descent direction (d is tangent, so <G, d> = <g, d>)
        dw = d @ w
        curv = sq_norm(dw, 2)
        alpha0 = -slope / (2 * curv.clamp_min(tiny))
        alpha0 = torch.where(torch.isfinite(alpha0) & (alpha0 > 0), alpha0, torch.zeros_like(alpha0))
        alphas = alpha0[None] * scales.reshape(-1, *([1] * alpha0.dim()))  # [T, ...]
        a4 = alphas[..., None, None]
        f_try = project_unit_modulus(f[None] + a4 * d[None])  # [T, ..., N, M]
        c_try = _residual(x[None], f_try, w[None])  # [T, ...]
        ok = (c_try <= cost[None] + armijo * alphas * slope[None]) & (alphas > 0) & torch.isfinite(c_try)
        pick = (ok * order.reshape(-1, *([1] * alpha0.dim()))).argmax(0)  # first passing trial
        moved = ok.any(0)
        idx = pick.reshape(1, *pick.shape, 1, 1).expand(1, *f.shape)
        f_new = torch.where(moved[..., None, None], torch.gather(f_try, 0, idx).squeeze(0), f)
        cost = torch.where(moved, torch.gather(c_try, 0, pick[None]).squeeze(0), cost)
        e = x - f_new @ w
        g_new = _tangent(-2 * e @ w.mH, f_new)
        g_old = _tangent(g, f_new)  # vector transport by projection
        d_old = _tangent(d, f_new)
        beta = (_inner(g_new, g_new - g_old) / _inner(g, g).clamp_min(tiny)).clamp_min(0)
        d_new = -g_new + beta[..., None, None] * d_old
        descent = _inner(g_new, d_new) < 0
        d = torch.where((descent & moved)[..., None, None], d_new, -g_new)
        f, g = f_new, g_new
    return f, cost


def mo_altmin(
    x: torch.Tensor,
    num_rf_chains: int,
    *,
    outer_iterations: int = 100,
    inner_iterations: int = 10,
    line_search_trials: int = 6,
    armijo: float = 1e-4,
    init: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    return_history: bool = False,
):
    """MO-AltMin hybrid factorisation (Yu et al. 2016): ``min ||X - F W||_F^2`` s.t. ``|F_nm| = 1``.

    Starting from random phases (the same for every channel), each outer iteration runs
    ``inner_iterations`` Riemannian conjugate-gradient steps on F with W fixed (Euclidean gradient
    ``-2 (X - F W) W^H``, Riemannian gradient ``G - Re(G conj(F)) F``, Polak-Ribiere+, transport by
    projection, batched Armijo backtracking, retraction ``F / |F|``) and then sets ``W = F^+ X`` (least
    squares). The residual never increases: the CG only accepts Armijo steps, and a least-squares update
    is kept only if its computed residual is not larger (a guard against rounding; in exact arithmetic LS
    is optimal).

    Args:
        x: fully digital precoder ``[..., N, S]``.
        num_rf_chains: N_RF in ``[1, N]``.
        outer_iterations, inner_iterations: fixed iteration counts (the spec's reference stops on a
            residual change below 1e-3 and a gradient norm below 1e-6, up to 100 outer and 200 inner
            iterations). AltMin converges slowly: on the unfolded-pga preset at 10 dB the SCA-RMM rate
            is 15.75 / 15.86 / 15.90 / 15.92 bit after 30 / 100 / 300 / 1000 outer iterations of 10 CG
            steps (200 channels), and more CG steps per outer iteration help less than more outer ones.
        line_search_trials: number of Armijo trial steps ``alpha0 2^-i``, evaluated in parallel;
            ``alpha0`` minimises the cost along the direction before retraction (Manopt starts from a
            fixed guess instead).
        armijo: sufficient-decrease constant.
        init: initial analog precoder ``[..., N, N_RF]`` (projected to unit modulus); default: one
            ``[N, N_RF]`` matrix of random phases drawn with ``generator`` (in float64, then cast) and
            shared by every channel of the batch, so each channel's result is independent of the batch
            it is computed in.
        return_history: also return the residuals ``||X - F W||_F^2`` ``[..., outer_iterations + 1]``
            (index 0: random F with its LS W).

    Returns:
        ``(F, W)`` (and the history): ``F`` ``[..., N, N_RF]`` unit modulus, ``W = F^+ X`` ``[..., N_RF, S]``.
    """
    check_complex("x", x)
    if x.dim() < 2:
        raise ValueError(f"x must be a precoder [..., N, S], got shape {tuple(x.shape)}")
    n = x.shape[-2]
    m = _check_rf(num_rf_chains, n)
    outer_iterations = check_int("outer_iterations", outer_iterations, 0)
    inner_iterations = check_int("inner_iterations", inner_iterations, 1)
    line_search_trials = check_int("line_search_trials", line_search_trials, 1, 60)
    armijo = check_real("armijo", armijo, 0, 1, open_lower=True, open_upper=True)
    if init is None:
        # one [N, N_RF] draw shared by every channel of the batch, so that the result for a channel does not
        # depend on how the channels are batched (and complex64 and complex128 start from the same phases)
        phase = torch.rand(n, m, generator=generator, dtype=torch.float64, device=x.device)
        f = torch.polar(torch.ones_like(phase), 2 * math.pi * phase).to(x.dtype).expand(*x.shape[:-2], n, m)
    else:
        if init.shape[-2:] != (n, m):
            raise ValueError(f"init must be [..., N={n}, num_rf_chains={m}], got {tuple(init.shape)}")
        f = project_unit_modulus(init.to(x.dtype)).expand(*x.shape[:-2], n, m)
    w = least_squares_digital(f, x)
    res = _residual(x, f, w)
    history = [res]
    for _ in range(outer_iterations):
        f, res = _rcg(x, f, w, inner_iterations, line_search_trials, armijo)
        w_ls = least_squares_digital(f, x)
        res_ls = _residual(x, f, w_ls)
        keep = res_ls <= res
        w = torch.where(keep[..., None, None], w_ls, w)
        res = torch.where(keep, res_ls, res)
        if return_history:
            history.append(res)
    if return_history:
        return f, w, torch.stack(history, -1)
    return f, w


def ula_dictionary(
    num_antennas: int,
    num_angles: int | None = None,
    *,
    spacing: float = 0.5,
    dtype: torch.dtype = torch.complex64,
    device=None,
) -> torch.Tensor:
    """Unit-modulus ULA responses on an oversampled grid, ``[N, L]`` (default ``L = 4N``).

    Column l is ``a_l[n] = exp(j 2 pi spacing n s_l)`` with ``s_l = sin(phi_l) = -1 + 2 l / L``, a grid
    uniform in the sine of the angle over ``[-1, 1)`` (for half-wavelength spacing, the 4x
    oversampled DFT codebook, which covers every direction of the preset's U(0, 2 pi) angles). No
    ``1/sqrt(N)`` factor: the entries are phase-shifter values.
    """
    n = check_int("num_antennas", num_antennas, 1)
    num = 4 * n if num_angles is None else check_int("num_angles", num_angles, 1)
    dtype = resolve_dtype(dtype)
    s = -1 + 2 * torch.arange(num, dtype=torch.float64, device=device) / num
    idx = torch.arange(n, dtype=torch.float64, device=device)
    phase = 2 * math.pi * spacing * idx[:, None] * s[None, :]
    return torch.polar(torch.ones_like(phase), phase).to(dtype)  # phases in float64, then cast


def omp_hybrid(
    x: torch.Tensor, num_rf_chains: int, dictionary: torch.Tensor | None = None, *, return_indices: bool = False
):
    """Spatially sparse precoding by simultaneous OMP (El Ayach et al. 2014, Algorithm 1), batched.

    ``num_rf_chains`` times: pick the dictionary column most correlated with the residual
    (``argmax_l ||a_l^H R||^2``), append it to F, solve ``W = F^+ X`` by least squares and set
    ``R = X - F W``.

    Args:
        x: fully digital precoder ``[..., N, S]``.
        num_rf_chains: N_RF in ``[1, min(N, L)]``.
        dictionary: candidate analog vectors ``[N, L]`` or ``[..., N, L]`` (broadcast against x's batch);
            default :func:`ula_dictionary` ``(N, 4N)``. F has unit modulus iff the dictionary has.
        return_indices: also return the selected column indices ``[..., N_RF]``.

    Returns:
        ``(F, W)`` (and the indices): ``F`` ``[..., N, N_RF]``, ``W = F^+ X`` ``[..., N_RF, S]``.
    """
    check_complex("x", x)
    if x.dim() < 2:
        raise ValueError(f"x must be a precoder [..., N, S], got shape {tuple(x.shape)}")
    n = x.shape[-2]
    if dictionary is None:
        dictionary = ula_dictionary(n, dtype=x.dtype, device=x.device)
    else:
        check_complex("dictionary", dictionary)
        if dictionary.dim() < 2 or dictionary.shape[-2] != n:
            raise ValueError(f"dictionary must be [..., N={n}, L], got shape {tuple(dictionary.shape)}")
        dictionary = dictionary.to(dtype=x.dtype, device=x.device)
    num = dictionary.shape[-1]
    m = check_int("num_rf_chains", num_rf_chains, 1, min(n, num))
    batch = torch.broadcast_shapes(x.shape[:-2], dictionary.shape[:-2])
    x = x.expand(*batch, *x.shape[-2:])
    dic = dictionary.expand(*batch, n, num)
    res = x
    cols, picks = [], []
    w = None
    for _ in range(m):
        corr = abs2(dic.mH @ res).sum(-1)  # [..., L]
        idx = corr.argmax(-1)  # [...]
        col = torch.gather(dic, -1, idx[..., None, None].expand(*batch, n, 1))  # [..., N, 1]
        cols.append(col)
        picks.append(idx)
        f = torch.cat(cols, -1)
        w = least_squares_digital(f, x)
        res = x - f @ w
    f = torch.cat(cols, -1)
    if return_indices:
        return f, w, torch.stack(picks, -1)
    return f, w
