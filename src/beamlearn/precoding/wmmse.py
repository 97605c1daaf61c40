"""Weighted MMSE sum-rate precoding (Shi, Razaviyayn, Luo, He, IEEE TSP 2011), batched.

Block-coordinate descent on ``sum_k alpha_k (tr(W_k E_k) - log det W_k)``, for users with Nr >= 1 antennas
and Ns streams each (Algorithm 1 of Shi et al.; MISO is Nr = Ns = 1):

    U_k = (sum_j H_k V_j V_j^H H_k^H + sigma^2 I)^{-1} H_k V_k          (MMSE receivers)
    E_k = I - U_k^H H_k V_k,  W_k = E_k^{-1}                          (MSE matrices, weights)
    V_k = alpha_k (sum_j alpha_j H_j^H U_j W_j U_j^H H_j + mu I)^{-1} H_k^H U_k W_k

The transmit update is computed in user space: with ``G`` the stacked rows ``U_j^H H_j``
(``[K*Ns, N]``) and ``M = blockdiag(E_j / alpha_j)``, the push-through identity gives
``V(mu) = G^H (G G^H + mu M)^{-1}``, a ``K*Ns x K*Ns`` Hermitian positive-definite solve. The Lagrange
multiplier ``mu >= 0`` is the smallest value with ``||V(mu)||_F^2 <= P``; it is found for every channel at
once by a fixed number of safeguarded Newton (default) or geometric bisection steps inside
``[mu_lo, mu_hi]`` with the provable upper bound ``mu_hi = sqrt(tr(G G^H) / P) * max_k(alpha_k tr W_k)``
(from ``lambda_min(E_k) >= 1 / tr(W_k)``), with no per-sample loop and no host synchronisation.

Rank-deficient ``G G^H`` (coincident users, K*Ns > N, users switched off): ``mu_lo`` is the smallest
multiplier at which ``G G^H + mu M`` is numerically positive definite (``10 eps tr(M^-1 G G^H)``, at least
``1e-12 mu_hi``), and the power is computed as ``||R Z||_F^2`` from the triangular factor ``R`` of
``G^H = Q R`` (one QR per iteration), not as ``tr(Z G G^H Z)``, which is rounding noise along the null
space of ``G G^H`` at small ``mu``. When ``mu > 0`` the V-step result is rescaled to exactly
``||V||_F^2 = P`` (the optimum meets the power constraint with equality); when ``mu = 0`` is optimal (a
low-power start, some rank-deficient channels) it keeps less power, as in Shi et al., but the returned
precoder is always scaled to ``||V||_F^2 = P``, which raises every user's SINR. The MMSE weights are
computed from the interference-plus-noise covariance (``W_k = I + own^H R_k^-1 own``), not as
``(I - U^H H V)^-1``, which cancels to rounding noise at high SINR in complex64.

In complex64 the multiplier cannot be resolved below ``mu_lo ~ 1e-6 tr(M^-1 G G^H)``; at very high SNR
(about 60 dB) with K*Ns > N the V-step is then regularised and the rate stays below the complex128 one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._ops import abs2, per_user_product, sq_norm
from .._validation import check_int, check_one_of, check_power
from ..constraints import normalize_power
from ..interface import Beamformers, BeamformingMethod, user_channels
from .linear import mrt_precoder, rzf_precoder, zf_precoder

__all__ = ["wmmse", "WMMSE"]

_INITS = ("rzf", "mrt", "zf", "random")
_MU_SEARCHES = ("newton", "bisection")


def _chol_solve(a, b):
    l, _ = torch.linalg.cholesky_ex(a)
    return torch.cholesky_solve(b, l), l


def _logdet_from_chol(l):
    return 2 * torch.log(torch.diagonal(l, dim1=-2, dim2=-1).real).sum(-1)


def _init(h, power, noise_var, num_streams, kind, generator):
    """Initial precoder ``[..., N, K*Ns]`` of total power P."""
    k, nr, n = h.shape[-3:]
    if kind == "random":
        shape = (*h.shape[:-3], n, k * num_streams)
        rdtype = h.real.dtype
        v = torch.complex(
            torch.randn(shape, generator=generator, dtype=rdtype, device=h.device),
            torch.randn(shape, generator=generator, dtype=rdtype, device=h.device),
        )
        return normalize_power(v, power)
    # linear precoders on the strongest Ns receive directions (all antennas when Ns == Nr): use the
    # first Ns antennas' rows, a simple, deterministic, full-rank choice for i.i.d. and clustered channels
    hs = h[..., :num_streams, :].flatten(-3, -2)
    if kind == "mrt":
        return mrt_precoder(hs, power)
    if kind == "zf":
        return zf_precoder(hs, power)
    return rzf_precoder(hs, power, noise_var)


def wmmse(
    h: torch.Tensor,
    power,
    noise_var,
    *,
    num_streams: int | None = None,
    weights: torch.Tensor | None = None,
    iterations: int = 100,
    init: str | torch.Tensor | Sequence[str] = "rzf",
    mu_steps: int | None = None,
    mu_search: str = "newton",
    return_history: bool = False,
    generator: torch.Generator | None = None,
    _force_general: bool = False,
):
    """Batched WMMSE precoding.

    Args:
        h: ``[..., K, N]`` (``num_streams=None``) or ``[..., K, Nr, N]``.
        power: total power P (float or tensor ``[...]``); noise_var: sigma^2 per receive antenna.
        num_streams: Ns per user for multi-antenna users; ``None`` for single-antenna users.
        weights: user priorities alpha ``[K]`` or ``[..., K]`` (default: all ones, i.e. sum rate).
        iterations: fixed number of iterations (no data-dependent stopping, so no host syncs).
        init: ``"rzf"``, ``"mrt"``, ``"zf"``, ``"random"``, an initial precoder tensor, or a sequence
            of names: each is run and the best final weighted sum rate is kept per channel.
        mu_search: how the multiplier is found, with a fixed step count: ``"newton"`` (default: Newton
            on the secular function ``1/sqrt(p(mu))``, quadratic near the root, safeguarded by the bracket
            ``p(lo) > P >= p(hi)``: a step leaving it is replaced by the bracket's geometric midpoint;
            12 steps) or ``"bisection"`` (geometric bisection of the bracket, which spans a factor of at
            most 1e12; relative error of mu at most about ``27.6 / 2^s``, 32 steps). Either way the
            returned precoder has exactly ``||V||_F^2 = P``.
        mu_steps: number of search steps (default 12 for Newton, 32 for bisection).
        return_history: also return the weighted sum rate (log-det form, bit/s/Hz) of the iterates
            ``[..., iterations + 1]`` (index 0 is the initial point).

    Returns:
        :class:`Beamformers` with ``precoder`` ``[..., N, K*Ns]`` and the MMSE ``combiner``
        ``[..., K, Nr, Ns]`` (``None`` for single-antenna users); and the history if requested.
    """
    iterations = check_int("iterations", iterations, 0)
    check_one_of("mu_search", mu_search, _MU_SEARCHES)
    if mu_steps is None:
        mu_steps = 12 if mu_search == "newton" else 32
    mu_steps = check_int("mu_steps", mu_steps, 1, 200)
    check_power("power", power)
    check_power("noise_var", noise_var)
    miso = num_streams is None
    hm = user_channels(h, num_streams)
    ns = 1 if miso else check_int("num_streams", num_streams, 1, hm.shape[-2])
    k, nr, n = hm.shape[-3:]
    rdtype = hm.real.dtype
    p = torch.as_tensor(power, dtype=rdtype, device=hm.device)
    s2 = torch.as_tensor(noise_var, dtype=rdtype, device=hm.device)
    if weights is None:
        alpha = torch.ones(k, dtype=rdtype, device=hm.device)
    else:
        alpha = torch.as_tensor(weights, dtype=rdtype, device=hm.device)

    if not isinstance(init, torch.Tensor) and not isinstance(init, str):
        names = list(init)
        if not names:
            raise ValueError("init must name at least one initialisation")
        runs = [
            wmmse(
                h,
                power,
                noise_var,
                num_streams=num_streams,
                weights=weights,
                iterations=iterations,
                init=name,
                mu_steps=mu_steps,
                mu_search=mu_search,
                return_history=True,
                generator=generator,
            )
            for name in names
        ]
        final = torch.stack([r[1][..., -1] for r in runs])  # [R, ...]
        best = final.argmax(0)  # [...]
        pick = lambda ts: _select(ts, best)  # noqa: E731
        prec = pick([r[0].precoder for r in runs])
        comb = None if miso else pick([r[0].combiner for r in runs])
        hist = pick([r[1] for r in runs])
        out = Beamformers(precoder=prec, combiner=comb)
        return (out, hist) if return_history else out

    if isinstance(init, torch.Tensor):
        if init.shape[-2:] != (n, k * ns):
            raise ValueError(f"init precoder must be [..., N={n}, K*Ns={k * ns}], got {tuple(init.shape)}")
        v = init.to(hm.dtype)
    elif init in _INITS:
        v = _init(hm, p, s2, ns, init, generator)
    else:
        raise ValueError(f"init must be one of {_INITS}, a tensor or a sequence of names, got {init!r}")

    eye_r = torch.eye(nr, dtype=hm.dtype, device=hm.device)
    eye_s = torch.eye(ns, dtype=hm.dtype, device=hm.device)
    idx = torch.arange(k * ns, device=hm.device).view(k, ns)
    own_cols = (idx.flatten() // ns == torch.arange(k, device=hm.device)[:, None])[:, None, :]  # [K, 1, K*Ns]
    s2_b = s2[..., None, None, None] if s2.dim() else s2
    p_b = p
    history = []

    scalar = nr == 1 and ns == 1 and not _force_general
    offdiag = 1 - torch.eye(k, dtype=rdtype, device=hm.device)

    def receivers(v):
        if scalar:  # single-antenna users, one stream: every K x K block below is a scalar
            a = hm.squeeze(-2) @ v  # [..., K, K], a[k, j] = h_k^H v_j
            own = torch.diagonal(a, dim1=-2, dim2=-1)
            pa = abs2(a)
            # interference plus noise summed directly (not as total minus own power, and the MSE not as
            # 1 - |own|^2 / total): at high SINR those differences cancel to rounding noise in complex64
            inn = (pa * offdiag).sum(-1) + (s2[..., None] if s2.dim() else s2)
            tot = inn + torch.diagonal(pa, dim1=-2, dim2=-1)
            u = (own / tot)[..., None, None]  # MMSE receive gains
            e = (inn / tot).clamp_min(torch.finfo(rdtype).tiny)  # MSE = 1/(1+SINR)
            rate = (alpha * torch.log(tot / inn)).sum(-1) / math.log(2)
            e = e.to(hm.dtype)[..., None, None]
            return u, e, 1 / e, rate
        hv = per_user_product(hm, v)  # [..., K, Nr, K*Ns]
        own = torch.gather(hv, -1, idx[:, None, :].expand(*hv.shape[:-1], ns))  # [..., K, Nr, Ns]
        # from the interference-plus-noise covariance R_k (own streams left out), without cancellation:
        # W_k = E_k^{-1} = I + own^H R_k^{-1} own (>= I), and the MMSE receiver U_k = R_k^{-1} own E_k
        # (push-through). E_k = I - U_k^H own instead cancels to rounding noise (and loses definiteness) at
        # high SINR in complex64
        hv_int = hv.masked_fill(own_cols, 0)
        s_int, _ = _chol_solve(hv_int @ hv_int.mH + s2_b * eye_r, own)  # R_k^{-1} own
        w = eye_s + own.mH @ s_int
        w = 0.5 * (w + w.mH)
        e, lw = _chol_solve(w, eye_s.expand_as(w))  # E = W^{-1}
        e = 0.5 * (e + e.mH)
        u = s_int @ e  # MMSE receivers
        rate = (alpha * _logdet_from_chol(lw)).sum(-1) / math.log(2)  # weighted sum rate of v
        return u, e, w, rate

    for _ in range(iterations):
        u, e, w, rate = receivers(v)
        if return_history:
            history.append(rate)
        g = (u.mH @ hm).flatten(-3, -2)  # [..., K*Ns, N]
        t = g @ g.mH
        m = _blockdiag(e / alpha[..., None, None].to(e.dtype))
        tr_t = torch.diagonal(t, dim1=-2, dim2=-1).real.sum(-1)
        tr_w = torch.diagonal(w, dim1=-2, dim2=-1).real.sum(-1)  # [..., K]
        mu_hi = torch.sqrt(tr_t / p_b) * (alpha * tr_w).amax(-1)
        mu_hi = mu_hi.clamp_min(torch.finfo(rdtype).tiny ** 0.5)  # all-zero channels: keep T + mu M PD
        # T is singular when users (nearly) coincide or K*Ns > N; T + mu M is then numerically positive
        # definite only if mu M is above the rounding level of T. Relative to M (Cholesky is insensitive to
        # the scaling by M^(-1/2)) that is mu >= 10 eps tr(M^-1 T) = 10 eps sum_k alpha_k tr(W_k T_kk), the
        # loading of gram_cholesky for M^(-1/2) T M^(-1/2); it is ~1e-14 mu_hi in complex128 (so the
        # factor 1e-12 decides there), ~1e-6 mu_hi in complex64.
        t_kk = _diag_blocks(t, k, ns)  # [..., K, Ns, Ns]
        tr_mt = ((w @ t_kk).diagonal(dim1=-2, dim2=-1).real.sum(-1) * alpha).sum(-1)
        mu_lo = torch.maximum(mu_hi * 1e-12, 10 * torch.finfo(rdtype).eps * tr_mt).clamp_max(mu_hi)

        eye_t = torch.eye(k * ns, dtype=t.dtype, device=t.device).expand_as(t)

        # The power ||V||_F^2 = ||G^H Z||_F^2 = ||R Z||_F^2 with R the triangular factor of G^H = Q R, not
        # tr(Z T Z): where T is (nearly) singular, Z is of order 1/mu along T's null space, which G^H (and R)
        # annihilate to rounding relative to |G| but the computed T only relative to |T|, so tr(Z T Z) would
        # carry an error eps |T| / mu^2 (far above P in complex64) and misplace mu. One QR per iteration
        # keeps the search in user space (K*Ns x K*Ns).
        r = _r_factor(g)  # [..., min(N, K*Ns), K*Ns]

        # power_at is only called within this iteration, so it reads this iteration's r, t and m
        def power_at(mu, deriv=False):
            z, _ = _chol_solve(t + mu[..., None, None] * m, eye_t)  # noqa: B023 - Z = (T + mu M)^{-1}, Hermitian
            rz = r @ z  # noqa: B023
            pw = sq_norm(rz, 2)
            if not deriv:
                return pw, z, None
            # d/dmu tr(Z T Z) = -2 Re tr(Z T Z M Z) = -2 Re <RZ, RZ M Z> (Frobenius inner product)
            dp = -2 * (torch.view_as_real(rz) * torch.view_as_real(rz @ (m @ z))).flatten(-3).sum(-1)  # noqa: B023
            return pw, z, dp

        p_lo, z_lo, _ = power_at(mu_lo)
        feasible0 = p_lo <= p_b
        if mu_search == "newton":
            # Newton on the secular function 1/sqrt(p(mu)) - 1/sqrt(P), safeguarded by the bracket
            # [lo, hi] with p(lo) > P >= p(hi): the function is concave for M = I (trust-region
            # subproblems) but not for a general M, where an unguarded step can overshoot the root (and
            # near a singular T its derivative is inaccurate at the smallest mu); a step that leaves the
            # bracket is replaced by its geometric midpoint.
            lo, hi, mu = mu_lo, mu_hi, mu_lo
            for _ in range(mu_steps):
                pm, _, dp = power_at(mu, deriv=True)
                above = pm > p_b
                lo = torch.where(above, mu, lo)
                hi = torch.where(above, hi, mu)
                step = 2 * pm * (1 - torch.sqrt(pm / p_b)) / torch.where(dp < 0, dp, -torch.ones_like(dp))
                cand = mu + step
                inside = (cand >= lo) & (cand <= hi) & torch.isfinite(cand)
                mu = torch.where(inside, cand, torch.sqrt(lo * hi))
        else:
            lo, hi = torch.log(mu_lo), torch.log(mu_hi)
            for _ in range(mu_steps):
                mid = 0.5 * (lo + hi)
                pm, _, _ = power_at(torch.exp(mid))
                above = pm > p_b
                lo = torch.where(above, mid, lo)
                hi = torch.where(above, hi, mid)
            mu = torch.exp(hi)
        _, z_mu, _ = power_at(mu)
        v = g.mH @ torch.where(feasible0[..., None, None], z_lo, z_mu)
        v = torch.where(feasible0[..., None, None], v, normalize_power(v, p))  # mu > 0: exactly on the sphere

    # The V-step keeps less than P when mu = 0 is optimal (e.g. a low-power start, some rank-deficient
    # channels); the result is returned at full power all the same, which raises every user's SINR
    v = normalize_power(v, p)
    u, e, w, rate = receivers(v)
    if return_history:
        history.append(rate)
    out = Beamformers(precoder=v, combiner=None if miso else u)
    if return_history:
        return out, torch.stack(history, -1)
    return out


def _blockdiag(blocks: torch.Tensor) -> torch.Tensor:
    """``[..., K, Ns, Ns] -> [..., K*Ns, K*Ns]`` block-diagonal matrix."""
    k, ns = blocks.shape[-3], blocks.shape[-1]
    out = torch.zeros(*blocks.shape[:-3], k, ns, k, ns, dtype=blocks.dtype, device=blocks.device)
    ar = torch.arange(k, device=blocks.device)
    out[..., ar, :, ar, :] = blocks.movedim(-3, 0)  # advanced indices go first: [K, ..., Ns, Ns]
    return out.reshape(*blocks.shape[:-3], k * ns, k * ns)


def _r_factor(g: torch.Tensor) -> torch.Tensor:
    """The triangular factor ``R`` of ``G^H = Q R`` (``G`` ``[..., M, N]``): ``R^H R = G G^H``, to rounding
    relative to ``|G|`` (not ``|G|^2``, as a factor of the computed ``G G^H`` would be).

    Householder QR of ``G^H`` scaled to a unit largest row, with rows below ``eps`` of it set to zero (a
    change within the QR's own backward error): LAPACK's Householder reflections can return inf/NaN on a
    column of subnormal numbers, such as the row of a user whose receive gain WMMSE has driven to zero.
    """
    rdtype = g.real.dtype
    rows = abs2(g).sum(-1)  # [..., M] squared row norms
    top = rows.amax(-1, keepdim=True)
    top = torch.where(top > 0, top, torch.ones_like(top))
    scale = torch.sqrt(top)
    keep = rows > torch.finfo(rdtype).eps ** 2 * top
    g = g * torch.where(keep, 1 / scale, torch.zeros_like(rows))[..., None]
    return torch.linalg.qr(g.mH, mode="r")[1] * scale[..., None]


def _diag_blocks(a: torch.Tensor, k: int, ns: int) -> torch.Tensor:
    """``[..., K*Ns, K*Ns] -> [..., K, Ns, Ns]``: the diagonal blocks."""
    b = a.unflatten(-1, (k, ns)).unflatten(-3, (k, ns))  # [..., K, Ns, K, Ns]
    ar = torch.arange(k, device=a.device)
    return b[..., ar, :, ar, :].movedim(0, -3)  # advanced indices go first: [K, ..., Ns, Ns]


def _select(tensors, best):
    stacked = torch.stack(tensors)  # [R, ...]
    idx = best.reshape(1, *best.shape, *([1] * (stacked.dim() - 1 - best.dim())))
    idx = idx.expand(1, *stacked.shape[1:])
    return torch.gather(stacked, 0, idx).squeeze(0)


class WMMSE(BeamformingMethod):
    """WMMSE sum-rate precoding as a method (see :func:`wmmse`)."""

    name = "wmmse"

    def __init__(
        self,
        num_streams: int | None = None,
        iterations: int = 100,
        init: str | Sequence[str] = "rzf",
        mu_steps: int | None = None,
        mu_search: str = "newton",
    ):
        super().__init__()
        self.num_streams = num_streams
        self.iterations = check_int("iterations", iterations, 0)
        self.init = init if isinstance(init, str) else tuple(init)
        self.mu_steps = mu_steps
        self.mu_search = check_one_of("mu_search", mu_search, _MU_SEARCHES)

    def forward(self, h, power, noise_var) -> Beamformers:
        return wmmse(
            h,
            power,
            noise_var,
            num_streams=self.num_streams,
            iterations=self.iterations,
            init=self.init,
            mu_steps=self.mu_steps,
            mu_search=self.mu_search,
        )
