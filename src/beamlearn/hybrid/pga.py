"""Projected gradient ascent (PGA) for fully connected hybrid beamforming (Algorithm 1 of Nguyen et al.).

Spec: ``shared/papers/unfolded-pga-hbf.md`` sections 2-3. Single-antenna users, channels ``h``
``[..., K, N]`` with rows ``h_k^H`` (``docs/conventions.md``), analog precoder ``F`` ``[..., N, M]`` with
unit-modulus entries (no 1/sqrt(N)), digital precoder ``W`` ``[..., M, K]``, total power
``||F W||_F^2 = P`` (an equality, met by every iterate), noise variance sigma^2. Rates in bit/s/Hz.

One outer iteration (:func:`pga_layer`, shared by conventional PGA and the unfolded network of
:mod:`beamlearn.unfolded`, so an untrained unfolded network *is* conventional PGA truncated to the
same number of iterations):

    for j in 0..J-1:  F <- F + mu[j] dR/dF*(F, W);  F <- F / |F|        (6)-(7)
    W <- W + lam dR/dW*(F, W)                                            (8), at the new F
    W <- sqrt(P) W / ||F W||_F                                           (9), sqrt(P): typo fixed

The gradients are the closed-form conjugate Wirtinger derivatives of Theorem 1 in the batched
O(NMK + MK^2) form of spec s3.1 (``include_ln2=True``: exact derivative of the rate in bits;
``False``: the theorem as printed, i.e. every step size times ln 2). Note that PyTorch's ``.grad`` of
a real function of a complex leaf is ``2 dR/dZ*``.

Everything is batched over leading dimensions, with no per-sample or per-user loops and no host
synchronisation inside the iterations; dtypes and devices follow ``h``.
"""

from __future__ import annotations

import math

import torch

from .._ops import abs2, gram_cholesky
from .._validation import check_bool, check_complex, check_int, check_power, check_real
from ..constraints import project_unit_modulus
from ..interface import Beamformers, BeamformingMethod
from ..precoding.linear import _gram_solve

__all__ = ["sum_rate_gradients", "hybrid_sum_rate", "pga_init", "pga_layer", "pga", "PGA"]

_LN2 = math.log(2.0)


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
def _real(x, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, dtype=like.real.dtype, device=like.device)


def _noise_rows(noise_var, h: torch.Tensor) -> torch.Tensor:
    """sigma^2 as a real tensor broadcastable to ``[..., K]``."""
    s2 = _real(noise_var, h)
    return s2[..., None] if s2.dim() else s2


def _sqrt_power(power, h: torch.Tensor) -> torch.Tensor:
    """sqrt(P) as a real tensor broadcastable to ``[..., M, K]``."""
    p = torch.sqrt(_real(power, h))
    return p[..., None, None] if p.dim() else p


def _rescale_power(f: torch.Tensor, w: torch.Tensor, sqrt_p: torch.Tensor) -> torch.Tensor:
    """(9): ``W sqrt(P) / ||F W||_F``; an all-zero ``F W`` leaves ``W`` zero (finite values and gradients)."""
    pw = abs2(f @ w).sum((-2, -1), keepdim=True)
    pos = pw > 0
    scale = sqrt_p * torch.rsqrt(torch.where(pos, pw, torch.ones_like(pw)))
    return w * torch.where(pos, scale, torch.zeros_like(scale))


def _terms(h: torch.Tensor, f: torch.Tensor, w: torch.Tensor, s2: torch.Tensor):
    """``B = H F`` ``[..., K, M]``, ``A = B W`` ``[..., K, K]``, ``d1`` and ``d2`` ``[..., K]`` (spec s3.1)."""
    b = h @ f
    a = b @ w
    p = abs2(a)
    d1 = p.sum(-1) + s2  # tr(F V F^H H~_k) + sigma^2
    d2 = d1 - torch.diagonal(p, dim1=-2, dim2=-1)  # tr(F V_kbar F^H H~_k) + sigma^2
    return b, a, d1, d2


def _c_matrix(a: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor, include_ln2: bool) -> torch.Tensor:
    """``C = A / d1 - (A with zero diagonal) / d2`` (row-wise), times 1/ln2 if requested.

    Equivalently ``C = A (1/d1 - 1/d2)`` off the diagonal and ``A / d1`` on it.
    """
    k = a.shape[-1]
    eye = torch.eye(k, dtype=torch.bool, device=a.device)
    inv1 = 1.0 / d1
    coef = torch.where(eye, inv1[..., :, None], (inv1 - 1.0 / d2)[..., :, None])  # [..., K, K] real
    if include_ln2:
        coef = coef / _LN2
    return a * coef


def _rate_from(d1: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """``sum_k log2(1 + SINR_k)`` with ``SINR_k = (d1_k - d2_k) / d2_k``, ``[...]``."""
    return torch.log1p((d1 - d2) / d2).sum(-1) / _LN2


def _grad_f(h, b, a, d1, d2, w, include_ln2):
    c = _c_matrix(a, d1, d2, include_ln2)
    return h.mH @ (c @ w.mH)


def _grad_w(h, b, a, d1, d2, include_ln2):
    return b.mH @ _c_matrix(a, d1, d2, include_ln2)


# ---------------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------------
def hybrid_sum_rate(h: torch.Tensor, analog: torch.Tensor, digital: torch.Tensor, noise_var) -> torch.Tensor:
    """Sum rate ``R(F, W)`` ``[...]`` in bit/s/Hz (equals ``metrics.sum_rate(h, F @ W, noise_var)``)."""
    _, _, d1, d2 = _terms(h, analog, digital, _noise_rows(noise_var, h))
    return _rate_from(d1, d2)


def sum_rate_gradients(
    h: torch.Tensor,
    analog: torch.Tensor,
    digital: torch.Tensor,
    noise_var,
    include_ln2: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form conjugate Wirtinger gradients ``(dR/dF*, dR/dW*)`` of the sum rate (Theorem 1).

    Args:
        h: channels ``[..., K, N]`` (rows ``h_k^H``).
        analog: ``F`` ``[..., N, M]``; digital: ``W`` ``[..., M, K]``.
        noise_var: sigma^2 (float or tensor broadcastable to ``[...]``).
        include_ln2: ``True`` (default): gradients of the rate in bits (Appendix (17)-(18)); ``False``:
            (10)-(11) as printed, i.e. ``ln 2`` times larger.

    Returns:
        ``dR/dF*`` ``[..., N, M]`` and ``dR/dW*`` ``[..., M, K]``. ``torch.autograd`` gives twice these.
    """
    b, a, d1, d2 = _terms(h, analog, digital, _noise_rows(noise_var, h))
    c = _c_matrix(a, d1, d2, include_ln2)
    return h.mH @ (c @ digital.mH), b.mH @ c


def pga_init(
    h: torch.Tensor,
    power,
    num_rf_chains: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial point (12)-(13) with the phase-aligned analog precoder (spec s2.4-7, s3.3).

    * ``F0 = exp(j angle(H^H))`` ``[..., N, M]``, i.e. ``[F0]_{nm} = exp(+j angle([h_m]_n))`` so that
      ``h_m^H f_m = sum_n |h_{m,n}|`` (zero entries get phase 0). For ``M > K`` the extra ``M - K``
      columns have i.i.d. uniform random phases (one ``[N, M-K]`` draw from ``generator``, shared by every
      channel of the batch); ``M < K`` is an error.
    * ``W0 = F0^+ X_ZF`` with ``F0^+ = (F0^H F0)^{-1} F0^H`` and ``X_ZF = H^H (H H^H)^{-1}`` (both by
      Cholesky), then scaled so that ``||F0 W0||_F^2 = P``.

    Returns ``(F0, W0)``.
    """
    check_complex("h", h)
    if h.dim() < 2:
        raise ValueError(f"h must be [..., K, N], got shape {tuple(h.shape)}")
    k, n = h.shape[-2], h.shape[-1]
    if k > n:
        raise ValueError(f"hybrid PGA needs K <= N; got K={k} users and N={n} antennas")
    m = k if num_rf_chains is None else check_int("num_rf_chains", num_rf_chains)
    if m < k or m > n:
        raise ValueError(
            f"num_rf_chains must be an integer in [K={k}, N={n}] (the init (12) needs at least one RF chain "
            f"per user), got {m}"
        )
    f0 = project_unit_modulus(h.mH)  # [..., N, K]
    if m > k:
        # one [N, M-K] draw shared by every channel of the batch, so that a channel's result does not depend on
        # how the channels are batched (and complex64 and complex128 start from the same phases)
        phase = 2 * math.pi * torch.rand(n, m - k, generator=generator, dtype=torch.float64, device=h.device)
        extra = torch.polar(torch.ones_like(phase), phase).to(h.dtype).expand(*h.shape[:-2], n, m - k)
        f0 = torch.cat([f0, extra], dim=-1)
    x_zf = _gram_solve(h, 0.0)  # a positive multiple of H^H (H H^H)^{-1} (user-space Cholesky, guarded)
    l = gram_cholesky(f0.mH @ f0)  # [..., M, M], rank-guarded
    w0 = torch.cholesky_solve(f0.mH @ x_zf, l)  # F0^+ X_ZF
    return f0, _rescale_power(f0, w0, _sqrt_power(power, h))


def pga_layer(
    h: torch.Tensor,
    analog: torch.Tensor,
    digital: torch.Tensor,
    power,
    noise_var,
    mu_row,
    lam,
    include_ln2: bool = True,
    inner_projection: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One outer PGA iteration (= one unfolded layer), spec s3.4.

    ``mu_row`` holds the J step sizes of the F updates (a sequence or a real tensor ``[J]``, possibly
    trainable), ``lam`` the step size of the W update. With ``inner_projection=True`` (default) ``F`` is
    projected to unit modulus after every F step; with ``False`` only once after the J steps. The W
    gradient is taken at the new ``F`` and the old ``W``, then (9) restores ``||F W||_F^2 = P``.

    Returns the new ``(F, W)``.
    """
    s2 = _noise_rows(noise_var, h)
    sqrt_p = _sqrt_power(power, h)
    f, w = analog, digital
    for j in range(len(mu_row)):
        b, a, d1, d2 = _terms(h, f, w, s2)
        f = f + mu_row[j] * _grad_f(h, b, a, d1, d2, w, include_ln2)
        if inner_projection:
            f = project_unit_modulus(f)
    if not inner_projection:
        f = project_unit_modulus(f)
    b, a, d1, d2 = _terms(h, f, w, s2)
    w = w + lam * _grad_w(h, b, a, d1, d2, include_ln2)
    w = _rescale_power(f, w, sqrt_p)
    return f, w


def _step_tensor(name: str, value, shape: tuple[int, ...], device) -> torch.Tensor:
    """A float64 tensor of exactly ``shape`` from a float or anything broadcastable to it."""
    t = torch.as_tensor(value, dtype=torch.float64, device=device)
    if t.is_complex():
        raise TypeError(f"{name} must be real")
    try:
        t = torch.broadcast_to(t, shape)
    except RuntimeError:
        raise ValueError(
            f"{name} must be a number or broadcastable to {list(shape)}, got shape {list(t.shape)}"
        ) from None
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite")
    return t


def run_pga(
    h,
    f,
    w,
    power,
    noise_var,
    mu: torch.Tensor,
    lam: torch.Tensor,
    *,
    include_ln2: bool,
    inner_projection: bool,
    record: bool,
):
    """Apply ``len(lam)`` layers with step sizes ``mu`` ``[I, J]`` and ``lam`` ``[I]`` from ``(f, w)``.

    Returns ``(F, W, rates)`` with ``rates`` ``[..., I+1]`` (index 0: the starting point) or ``None``.
    Shared by :func:`pga` and :class:`beamlearn.unfolded.UnfoldedPGA`.
    """
    rates = [hybrid_sum_rate(h, f, w, noise_var)] if record else None
    for i in range(lam.shape[0]):
        f, w = pga_layer(h, f, w, power, noise_var, mu[i], lam[i], include_ln2, inner_projection)
        if record:
            rates.append(hybrid_sum_rate(h, f, w, noise_var))
    return f, w, (torch.stack(rates, -1) if record else None)


def pga(
    h: torch.Tensor,
    power,
    noise_var,
    *,
    iterations: int = 30,
    inner_steps: int = 10,
    mu=0.01,
    lam=1e-4,
    include_ln2: bool = True,
    inner_projection: bool = True,
    num_rf_chains: int | None = None,
    return_history: bool = False,
    generator: torch.Generator | None = None,
):
    """Conventional (fixed-step) PGA hybrid beamforming, Algorithm 1 with the init (12)-(13).

    Args:
        h: channels ``[..., K, N]`` (rows ``h_k^H``), complex64 or complex128.
        power: total power P; noise_var: sigma^2 (floats or tensors broadcastable to ``[...]``). The
            paper's step sizes assume sigma^2 = 1, P = 10^(SNR/10) and unit-modulus F.
        iterations: I outer iterations (>= 0); inner_steps: J projected F steps per iteration (>= 1).
        mu: F step size, a number or anything broadcastable to ``[I, J]``; lam: W step size, a number or
            broadcastable to ``[I]``.
        include_ln2, inner_projection: see :func:`sum_rate_gradients` and :func:`pga_layer`.
        num_rf_chains: M in [K, N] (default K); extra RF chains start with random phases from
            ``generator``.
        return_history: also return the sum rate ``[..., iterations + 1]`` of every iterate (index 0
            is the initial point).

    Returns:
        :class:`Beamformers` with ``precoder = F @ W`` ``[..., N, K]``, ``analog = F`` and
        ``digital = W``; and the history if requested.
    """
    iterations = check_int("iterations", iterations, 0)
    inner_steps = check_int("inner_steps", inner_steps, 1)
    check_power("power", power)
    check_power("noise_var", noise_var)
    mu_t = _step_tensor("mu", mu, (iterations, inner_steps), h.device)
    lam_t = _step_tensor("lam", lam, (iterations,), h.device)
    f, w = pga_init(h, power, num_rf_chains, generator)
    f, w, hist = run_pga(
        h,
        f,
        w,
        power,
        noise_var,
        mu_t,
        lam_t,
        include_ln2=include_ln2,
        inner_projection=inner_projection,
        record=return_history,
    )
    out = Beamformers(precoder=f @ w, analog=f, digital=w)
    return (out, hist) if return_history else out


class PGA(BeamformingMethod):
    """Conventional PGA hybrid beamforming as a method (see :func:`pga`).

    ``seed`` (optional) seeds the random phases of RF chains beyond K (only used when
    ``num_rf_chains > K``).
    """

    name = "pga"
    hybrid = True

    def __init__(
        self,
        iterations: int = 30,
        inner_steps: int = 10,
        mu: float = 0.01,
        lam: float = 1e-4,
        include_ln2: bool = True,
        inner_projection: bool = True,
        num_rf_chains: int | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        self.iterations = check_int("iterations", iterations, 0)
        self.inner_steps = check_int("inner_steps", inner_steps, 1)
        self.mu = check_real("mu", mu)
        self.lam = check_real("lam", lam)
        self.include_ln2 = check_bool("include_ln2", include_ln2)
        self.inner_projection = check_bool("inner_projection", inner_projection)
        if num_rf_chains is not None:
            check_int("num_rf_chains", num_rf_chains, 1)
        self.num_rf_chains = num_rf_chains
        if seed is not None:
            check_int("seed", seed, 0)
        self.seed = seed

    def forward(self, h, power, noise_var) -> Beamformers:
        gen = None
        if self.seed is not None:
            gen = torch.Generator(device=h.device)
            gen.manual_seed(self.seed)
        return pga(
            h,
            power,
            noise_var,
            iterations=self.iterations,
            inner_steps=self.inner_steps,
            mu=self.mu,
            lam=self.lam,
            include_ln2=self.include_ln2,
            inner_projection=self.inner_projection,
            num_rf_chains=self.num_rf_chains,
            generator=gen,
        )
