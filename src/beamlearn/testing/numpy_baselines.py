"""Per-sample NumPy reference implementations of ZF, RZF and WMMSE for MISO downlinks.

Conventions (the same as beamlearn's, but restated here because this module is deliberately
independent of the torch code):

* a channel ``h`` is a ``K x N`` complex array whose row ``k`` is ``h_k^H``, i.e. user k receives
  ``y_k = h_k^H x + n_k`` with ``h_k = conj(h[k])`` the column vector of its channel;
* a precoder ``X`` is ``N x K``, column k is user k's beamformer ``w_k``; with unit-power symbols the
  transmit power is ``||X||_F^2``; noise variance ``sigma^2``; ``SNR = P / sigma^2``.

Everything is computed in complex128, one channel at a time, with explicit Python loops over samples
(and, where it keeps the code closest to the equations, over users). Nothing here is batched or
optimised: it is a reference to test the batched torch code against and a baseline to time it against.

WMMSE follows Shi, Razaviyayn, Luo and He, "An iteratively weighted MMSE approach to distributed
sum-utility maximization for a MIMO interfering broadcast channel", IEEE TSP 59(9), 2011, in its
original N x N (antenna-space) form for single-antenna users:

    u_k     = h_k^H w_k / (sum_j |h_k^H w_j|^2 + sigma^2)                      (MMSE receiver)
    omega_k = 1 / (1 - conj(u_k) h_k^H w_k)                                    (MSE weight, 1 / e_k)
    w_k     = omega_k u_k (A + mu I)^{-1} h_k,   A = sum_j omega_j |u_j|^2 h_j h_j^H

with ``mu >= 0`` the smallest multiplier such that ``sum_k ||w_k||^2 <= P``. ``mu`` is found per sample
from the eigendecomposition ``A = V diag(d) V^H``: with ``B = [omega_1 u_1 h_1, ..., omega_K u_K h_K]``
and ``C = V^H B`` the transmit power is ``p(mu) = sum_{i,k} |C_ik|^2 / (d_i + mu)^2``, decreasing in mu,
and mu is located by bisection to a relative precision of 1e-14 (about 50 scalar evaluations).

``A`` has rank K < N when there are fewer users than antennas, so ``A`` itself is singular; but ``B`` lies
in the range of ``A`` (both are spanned by the h_k), so ``p`` has a finite limit as ``mu -> 0+``: the
power of the minimum-norm solution ``A^+ B`` (the components of C on the numerically null eigenvectors
are rounding noise and are left out of ``p``). If that limit is within the budget, ``mu = 0`` and the
minimum-norm solution is taken (for K = N, A is nonsingular and this is simply ``A^{-1} B``). Otherwise
``mu > 0``, the precoder is ``(A + mu I)^{-1} B`` and, as the optimum meets the power constraint with
equality, it is rescaled to exactly ``||X||_F^2 = P`` (the rescaling only removes the bisection's
residual of ~1e-14).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "mrt_numpy",
    "rzf_numpy",
    "sum_rate_numpy",
    "wmmse_numpy",
    "wmmse_numpy_batch",
    "zf_numpy",
    "zf_numpy_batch",
]

_MU_REL_TOL = 1e-14


def _channel(h) -> np.ndarray:
    h = np.asarray(h)
    if h.ndim != 2:
        raise ValueError(f"a single channel must be a K x N array, got shape {h.shape}")
    k, n = h.shape
    if k > n:
        raise ValueError(f"need K <= N (got K={k} users, N={n} antennas)")
    return h.astype(np.complex128)


def _positive(name: str, value) -> float:
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return value


def _scale_to_power(x: np.ndarray, power: float) -> np.ndarray:
    """Scale ``x`` uniformly to ``||x||_F^2 = power``."""
    p_now = np.sum(np.abs(x) ** 2)
    if p_now == 0:
        return x
    return x * np.sqrt(power / p_now)


def _per_sample(value, b: int, name: str) -> np.ndarray:
    """A scalar or a length-B sequence as a length-B float array."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(b, float(arr))
    if arr.shape != (b,):
        raise ValueError(f"{name} must be a scalar or have shape ({b},), got {arr.shape}")
    return arr


# --------------------------------------------------------------------------------------------------
# linear precoders
# --------------------------------------------------------------------------------------------------


def zf_numpy(h, power) -> np.ndarray:
    """Zero forcing for one channel: ``X = H^H (H H^H)^{-1}`` scaled to ``||X||_F^2 = P`` (N x K)."""
    h = _channel(h)
    power = _positive("power", power)
    hh = h.conj().T  # N x K, column k = h_k
    x = hh @ np.linalg.inv(h @ hh)
    return _scale_to_power(x, power)


def zf_numpy_batch(h, power) -> np.ndarray:
    """:func:`zf_numpy` for every channel of ``h`` (``B x K x N``), looping over the first axis."""
    h = np.asarray(h)
    if h.ndim != 3:
        raise ValueError(f"a batch of channels must be B x K x N, got shape {h.shape}")
    p = _per_sample(power, h.shape[0], "power")
    return np.stack([zf_numpy(h[b], p[b]) for b in range(h.shape[0])])


def rzf_numpy(h, power, noise_var) -> np.ndarray:
    """Regularised ZF ``X ∝ H^H (H H^H + K sigma^2 / P I)^{-1}``, scaled to ``||X||_F^2 = P``."""
    h = _channel(h)
    power = _positive("power", power)
    noise_var = _positive("noise_var", noise_var)
    k = h.shape[0]
    hh = h.conj().T
    x = hh @ np.linalg.inv(h @ hh + (k * noise_var / power) * np.eye(k))
    return _scale_to_power(x, power)


def mrt_numpy(h, power) -> np.ndarray:
    """Maximum-ratio transmission ``X ∝ H^H``, scaled to ``||X||_F^2 = P``."""
    h = _channel(h)
    return _scale_to_power(h.conj().T.copy(), _positive("power", power))


# --------------------------------------------------------------------------------------------------
# rates
# --------------------------------------------------------------------------------------------------


def sum_rate_numpy(h, x, noise_var) -> float:
    """Sum rate in bit/s/Hz: ``sum_k log2(1 + |h_k^H x_k|^2 / (sum_{j != k} |h_k^H x_j|^2 + sigma^2))``."""
    h = _channel(h)
    x = np.asarray(x, dtype=np.complex128)
    noise_var = _positive("noise_var", noise_var)
    k = h.shape[0]
    if x.shape != (h.shape[1], k):
        raise ValueError(f"precoder must be N x K = {(h.shape[1], k)}, got {x.shape}")
    rate = 0.0
    for user in range(k):
        gains = np.abs(h[user] @ x) ** 2  # |h_k^H x_j|^2 for all j
        signal = gains[user]
        interference = gains.sum() - signal
        rate += math.log2(1.0 + signal / (interference + noise_var))
    return rate


# --------------------------------------------------------------------------------------------------
# WMMSE
# --------------------------------------------------------------------------------------------------


def _find_mu(d: np.ndarray, c2: np.ndarray, power: float) -> float:
    """Smallest ``mu >= 0`` with ``p(mu) = sum_i c2_i / (d_i + mu)^2 <= power``.

    ``d`` are the eigenvalues of A (ascending), ``c2_i = sum_k |(V^H B)_ik|^2``. Eigenvalues below
    ``N eps d_max`` are treated as the null space of A, on which B has no component (its ``c2`` there
    is rounding noise), so ``p(0)`` is the power of the minimum-norm solution.
    """
    d_max = float(d.max()) if d.size else 0.0
    if d_max <= 0:
        return 0.0  # A = 0 (all receivers zero): B = 0 and any mu gives W = 0
    keep = d > d.size * np.finfo(np.float64).eps * d_max
    d, c2 = d[keep], c2[keep]

    def p(mu: float) -> float:
        return float(np.sum(c2 / (d + mu) ** 2))

    if p(0.0) <= power:
        return 0.0
    # p(mu) <= sum(c2) / mu^2, so mu = sqrt(sum(c2) / P) is feasible
    hi = math.sqrt(float(c2.sum()) / power)
    lo = hi
    while p(lo) <= power:  # p(0) > P and p is continuous, so this ends with p(lo) > P >= p(2 lo)
        hi = lo
        lo = 0.5 * lo
    while hi - lo > _MU_REL_TOL * hi:
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:  # no representable midpoint left
            break
        if p(mid) > power:
            lo = mid
        else:
            hi = mid
    return hi  # the feasible end of the bracket


def _initial_precoder(h: np.ndarray, power: float, noise_var: float, init) -> np.ndarray:
    k, n = h.shape
    if isinstance(init, str):
        if init == "rzf":
            return rzf_numpy(h, power, noise_var)
        if init == "zf":
            return zf_numpy(h, power)
        if init == "mrt":
            return mrt_numpy(h, power)
        raise ValueError(f"init must be 'rzf', 'zf', 'mrt' or an N x K array, got {init!r}")
    x = np.array(init, dtype=np.complex128)  # a copy; used as given, not rescaled
    if x.shape != (n, k):
        raise ValueError(f"init precoder must be N x K = {(n, k)}, got {x.shape}")
    return x


def wmmse_numpy(h, power, noise_var, iterations: int = 100, init="rzf", *, return_info: bool = False):
    """WMMSE (Shi et al. 2011) for one MISO channel ``h`` (K x N), N x N form, ``iterations`` sweeps.

    Args:
        h: K x N channel, row k = h_k^H.
        power: total power P; noise_var: sigma^2.
        iterations: number of (u, omega, W) sweeps (fixed, no stopping rule).
        init: ``"rzf"`` (``H^H (H H^H + K sigma^2/P I)^{-1}`` scaled to P), ``"zf"``, ``"mrt"``, or an
            explicit N x K initial precoder (used as given, not rescaled).
        return_info: also return a dict with ``"mu"`` (the multiplier of every sweep) and ``"rate"``
            (the sum rate of every iterate, index 0 the initial point).

    Returns:
        The N x K precoder (and the info dict if requested).
    """
    h = _channel(h)
    power = _positive("power", power)
    noise_var = _positive("noise_var", noise_var)
    if int(iterations) != iterations or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations}")
    k, n = h.shape
    hcols = h.conj().T  # N x K, column k = h_k (y_k = h_k^H x)
    w = _initial_precoder(h, power, noise_var, init)
    mus, rates = [], ([sum_rate_numpy(h, w, noise_var)] if return_info else [])

    for _ in range(int(iterations)):
        # receivers and weights, user by user
        u = np.empty(k, dtype=np.complex128)
        omega = np.empty(k, dtype=np.float64)
        for user in range(k):
            hw = h[user] @ w  # h_k^H w_j, j = 1..K
            u[user] = hw[user] / (np.sum(np.abs(hw) ** 2) + noise_var)
            e = 1.0 - np.conj(u[user]) * hw[user]  # MSE e_k, real in exact arithmetic
            omega[user] = 1.0 / e.real

        # transmit update: w_k = omega_k u_k (A + mu I)^{-1} h_k
        a = np.zeros((n, n), dtype=np.complex128)
        b = np.empty((n, k), dtype=np.complex128)
        for user in range(k):
            hk = hcols[:, user]
            a += omega[user] * np.abs(u[user]) ** 2 * np.outer(hk, hk.conj())
            b[:, user] = omega[user] * u[user] * hk
        a = 0.5 * (a + a.conj().T)
        d, vecs = np.linalg.eigh(a)
        c = vecs.conj().T @ b
        mu = _find_mu(d, np.sum(np.abs(c) ** 2, axis=1), power)
        if mu == 0.0:
            # minimum-norm solution A^+ B (A^{-1} B when A is nonsingular)
            d_max = d.max() if d.size else 0.0
            keep = d > n * np.finfo(np.float64).eps * d_max
            w = vecs[:, keep] @ (c[keep] / d[keep, None]) if d_max > 0 else np.zeros((n, k), np.complex128)
        else:
            w = np.linalg.solve(a + mu * np.eye(n), b)
            w = _scale_to_power(w, power)  # the optimum meets ||W||_F^2 = P with equality
        if return_info:  # diagnostics only, kept out of the timed path
            mus.append(mu)
            rates.append(sum_rate_numpy(h, w, noise_var))

    if return_info:
        return w, {"mu": np.asarray(mus), "rate": np.asarray(rates)}
    return w


def wmmse_numpy_batch(h, power, noise_var, iterations: int = 100, init="rzf", *, return_info: bool = False):
    """:func:`wmmse_numpy` for every channel of ``h`` (``B x K x N``), looping over samples.

    ``power`` and ``noise_var`` may be scalars or length-B arrays; ``init`` a name or a ``B x N x K``
    array of initial precoders. Returns ``B x N x K`` (and a list of per-sample info dicts if requested).
    """
    h = np.asarray(h)
    if h.ndim != 3:
        raise ValueError(f"a batch of channels must be B x K x N, got shape {h.shape}")
    bsz = h.shape[0]
    p = _per_sample(power, bsz, "power")
    s2 = _per_sample(noise_var, bsz, "noise_var")
    if not isinstance(init, str):
        init = np.asarray(init)
        if init.ndim != 3 or init.shape[0] != bsz:
            raise ValueError(f"a batch of initial precoders must be B x N x K with B={bsz}, got {init.shape}")
    outs, infos = [], []
    for i in range(bsz):
        r = wmmse_numpy(
            h[i], p[i], s2[i], iterations, init if isinstance(init, str) else init[i], return_info=return_info
        )
        if return_info:
            r, info = r
            infos.append(info)
        outs.append(r)
    x = np.stack(outs)
    return (x, infos) if return_info else x
