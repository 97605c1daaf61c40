"""Per-sample NumPy reference of PGA hybrid beamforming (Algorithm 1 of Nguyen et al.).

Written directly from ``shared/papers/unfolded-pga-hbf.md`` sections 2-4, one channel at a time, in
complex128, without any of beamlearn's torch code, so that the batched torch implementation
(:mod:`beamlearn.hybrid.pga`, :class:`beamlearn.unfolded.UnfoldedPGA`) can be checked against an
independent implementation (``tests/test_reference_pga.py``) and timed against it
(``benchmarks/bench_unfolded_pga.py``). It is slow by design; do not use it for experiments.

Conventions (restated; the same as beamlearn's):

* a channel ``h`` is a ``K x N`` complex array whose row ``k`` is ``h_k^H`` (user k receives
  ``y_k = h_k^H F W s + n_k``), ``h_k = conj(h[k])`` is its channel as a column vector;
* the analog precoder ``F`` is ``N x M`` with unit-modulus entries (no 1/sqrt(N)), the digital precoder
  ``W`` is ``M x K``; the total power is ``||F W||_F^2 = P`` (an equality); noise variance sigma^2;
* rates in bit/s/Hz (log2).

Gradients: Theorem 1 in its per-user trace form, with ``V = W W^H``, ``V_kbar = W_kbar W_kbar^H``
(``W_kbar``: ``W`` with column k zeroed), ``H~_k = h_k h_k^H`` and ``Hbar_k = F^H H~_k F``:

    dR/dF* = c sum_k [ H~_k F V / (tr(F V F^H H~_k) + s2) - H~_k F V_kbar / (tr(F V_kbar F^H H~_k) + s2) ]
    dR/dW* = c sum_k [ Hbar_k W / (tr(W W^H Hbar_k) + s2) - Hbar_k W_kbar / (tr(W_kbar W_kbar^H Hbar_k) + s2) ]

with ``c = 1/ln 2`` (``include_ln2=True``, the exact conjugate Wirtinger derivative of the rate in
bits, Appendix (17)-(18)) or ``c = 1`` (Theorem 1 as printed). ``H~_k`` is never formed as an N x N
matrix: with the row ``g_k = h_k^H F`` (1 x M), ``H~_k F V = h_k (g_k V)``,
``tr(F V F^H H~_k) = g_k V g_k^H`` and ``Hbar_k = g_k^H g_k`` (a loop over users, O(N M + M^2 K) each).

Algorithm 1 (spec s3.4), for step sizes ``mu`` ``[I, J]`` and ``lam`` ``[I]``:

    F, W = init (12)-(13)
    for i in 0..I-1:
        for j in 0..J-1:  F <- F + mu[i, j] dR/dF*(F, W);  F <- F / |F|     (6)-(7)
        W <- W + lam[i] dR/dW*(F, W)                                       (8), at the new F
        W <- sqrt(P) W / ||F W||_F                                         (9), sqrt(P): typo fixed

Conventional PGA is ``mu = 0.01``, ``lam = 1e-4`` everywhere with I = 30 (:func:`conventional_pga_steps`);
a trained unfolded network is the same loop with its learned ``mu`` and ``lam``.

Init (12)-(13) with the corrected phase (spec s2.4-7, s3.3): ``[F0]_{nm} = exp(+j angle([h_m]_n))``,
i.e. ``F0 = exp(j angle(h^H))`` (so ``h_m^H f_m = sum_n |h_{m,n}|``; a zero entry gets phase 0); for
``M > K`` the extra columns get i.i.d. uniform random phases from ``rng``. ``W0 = F0^+ H^+`` with
``F0^+ = (F0^H F0)^{-1} F0^H`` and the fully digital ZF ``H^+ = H^H (H H^H)^{-1}``, then (9).
"""

from __future__ import annotations

import math

import numpy as np

from .numpy_baselines import _channel, _positive, sum_rate_numpy

__all__ = [
    "conventional_pga_steps",
    "hybrid_sum_rate_numpy",
    "pga_gradients_numpy",
    "pga_init_numpy",
    "pga_numpy",
    "pga_numpy_batch",
]

_LN2 = math.log(2.0)


def _steps(mu, lam) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[1] < 1:
        raise ValueError(f"mu must be an I x J array (J >= 1), got shape {mu.shape}")
    if lam.shape != (mu.shape[0],):
        raise ValueError(f"lam must have shape ({mu.shape[0]},) to match mu {mu.shape}, got {lam.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(lam))):
        raise ValueError("step sizes must be finite")
    return mu, lam


def conventional_pga_steps(
    iterations: int = 30, inner_steps: int = 10, mu: float = 0.01, lam: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """The fixed step sizes of conventional PGA (spec s5.1) as arrays ``mu`` ``[I, J]``, ``lam`` ``[I]``."""
    return np.full((iterations, inner_steps), float(mu)), np.full(iterations, float(lam))


def _project_unit_modulus(f: np.ndarray) -> np.ndarray:
    """(7): ``F / |F|`` element-wise; a zero entry (undefined phase) becomes 1."""
    mag = np.abs(f)
    out = np.ones_like(f)
    nz = mag > 0
    out[nz] = f[nz] / mag[nz]
    return out


def _rescale(f: np.ndarray, w: np.ndarray, power: float) -> np.ndarray:
    """(9): ``W sqrt(P) / ||F W||_F`` (an all-zero ``F W`` leaves ``W`` as it is)."""
    norm = np.linalg.norm(f @ w)
    return w if norm == 0 else w * (math.sqrt(power) / norm)


def hybrid_sum_rate_numpy(h, f, w, noise_var) -> float:
    """Sum rate ``R(F, W)`` in bit/s/Hz of the hybrid precoder ``F W`` (N x K)."""
    return sum_rate_numpy(h, np.asarray(f) @ np.asarray(w), noise_var)


def pga_gradients_numpy(h, f, w, noise_var, include_ln2: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Theorem 1: ``(dR/dF*, dR/dW*)`` (N x M, M x K) for one channel, by the per-user trace form.

    See the module docstring; ``include_ln2=False`` gives (10)-(11) as printed (ln 2 times larger).
    """
    h = _channel(h)
    f = np.asarray(f, dtype=np.complex128)
    w = np.asarray(w, dtype=np.complex128)
    noise_var = _positive("noise_var", noise_var)
    k = h.shape[0]
    v = w @ w.conj().T  # V = W W^H, M x M
    gf = np.zeros_like(f)
    gw = np.zeros_like(w)
    for user in range(k):
        hk = h[user].conj()  # h_k as a vector (column)
        w_bar = w.copy()
        w_bar[:, user] = 0.0  # W_kbar
        v_bar = w_bar @ w_bar.conj().T  # V_kbar
        g = h[user] @ f  # g_k = h_k^H F, 1 x M
        t1 = (g @ v @ g.conj()).real + noise_var  # tr(F V F^H H~_k) + s2 = tr(W W^H Hbar_k) + s2
        t2 = (g @ v_bar @ g.conj()).real + noise_var  # tr(F V_kbar F^H H~_k) + s2
        gf += np.outer(hk, (g @ v) / t1 - (g @ v_bar) / t2)  # H~_k F V / t1 - H~_k F V_kbar / t2
        hbar = np.outer(g.conj(), g)  # Hbar_k = F^H h_k h_k^H F, M x M
        gw += (hbar @ w) / t1 - (hbar @ w_bar) / t2
    if include_ln2:
        gf /= _LN2
        gw /= _LN2
    return gf, gw


def pga_init_numpy(
    h, power, num_rf_chains: int | None = None, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Initial point (12)-(13) with the corrected phase; returns ``(F0, W0)`` with ``||F0 W0||_F^2 = P``."""
    h = _channel(h)
    power = _positive("power", power)
    k, n = h.shape
    m = k if num_rf_chains is None else int(num_rf_chains)
    if not k <= m <= n:
        raise ValueError(f"num_rf_chains must be in [K={k}, N={n}], got {m}")
    hh = h.conj().T  # [h_1 ... h_K], N x K
    f0 = np.exp(1j * np.angle(hh))  # (12), phase-aligned: [F0]_{nm} = exp(+j angle([h_m]_n))
    if m > k:
        rng = np.random.default_rng() if rng is None else rng
        f0 = np.concatenate([f0, np.exp(2j * np.pi * rng.uniform(size=(n, m - k)))], axis=1)
    x_zf = hh @ np.linalg.inv(h @ hh)  # fully digital ZF H^+ = H^H (H H^H)^{-1}
    w0 = np.linalg.inv(f0.conj().T @ f0) @ (f0.conj().T @ x_zf)  # (13): F0^+ H^+
    return f0, _rescale(f0, w0, power)


def pga_numpy(
    h,
    power,
    noise_var,
    mu,
    lam,
    *,
    include_ln2: bool = True,
    inner_projection: bool = True,
    num_rf_chains: int | None = None,
    rng: np.random.Generator | None = None,
    init: tuple | None = None,
    return_history: bool = False,
):
    """Algorithm 1 (PGA) for one channel ``h`` (K x N), with step sizes ``mu`` ``[I, J]`` and ``lam`` ``[I]``.

    Args:
        h: K x N channel, row k = h_k^H.
        power: total power P; noise_var: sigma^2 (the paper's steps assume sigma^2 = 1, P = 10^(SNR/10)).
        mu, lam: per-iteration step sizes (:func:`conventional_pga_steps` for conventional PGA, or the
            ``mu``/``lam`` of a trained unfolded network).
        include_ln2: gradients of the rate in bits (default) or Theorem 1 as printed.
        inner_projection: project F to unit modulus after every inner step (default, Algorithm 1 as
            in spec s3.4) or only once after the J steps.
        num_rf_chains: M in [K, N] (default K); extra RF chains start with random phases from ``rng``.
        init: optional starting point ``(F0, W0)`` (N x M, M x K) used as given instead of (12)-(13)
            (e.g. to measure how the iterations propagate a perturbation of the start).
        return_history: also return the sum rate of every iterate (``[I + 1]``, index 0 the init).

    Returns:
        ``(F, W)`` (N x M, M x K), and the rate history if requested.
    """
    h = _channel(h)
    power = _positive("power", power)
    noise_var = _positive("noise_var", noise_var)
    mu, lam = _steps(mu, lam)
    if init is None:
        f, w = pga_init_numpy(h, power, num_rf_chains, rng)
    else:
        f, w = (np.array(x, dtype=np.complex128) for x in init)
        if f.shape[0] != h.shape[1] or w.shape != (f.shape[1], h.shape[0]):
            raise ValueError(
                f"init must be (N x M, M x K) with N={h.shape[1]}, K={h.shape[0]}; got {f.shape} and {w.shape}"
            )
    rates = [hybrid_sum_rate_numpy(h, f, w, noise_var)] if return_history else None
    for i in range(mu.shape[0]):
        for j in range(mu.shape[1]):
            gf, _ = pga_gradients_numpy(h, f, w, noise_var, include_ln2)  # at (F(i, j), W(i))
            f = f + mu[i, j] * gf  # (6)
            if inner_projection:
                f = _project_unit_modulus(f)  # (7)
        if not inner_projection:
            f = _project_unit_modulus(f)
        _, gw = pga_gradients_numpy(h, f, w, noise_var, include_ln2)  # at (F(i+1), W(i))
        w = w + lam[i] * gw  # (8)
        w = _rescale(f, w, power)  # (9)
        if return_history:
            rates.append(hybrid_sum_rate_numpy(h, f, w, noise_var))
    if return_history:
        return f, w, np.asarray(rates)
    return f, w


def pga_numpy_batch(
    h,
    power,
    noise_var,
    mu,
    lam,
    *,
    include_ln2: bool = True,
    inner_projection: bool = True,
    num_rf_chains: int | None = None,
    rng: np.random.Generator | None = None,
    init: tuple | None = None,
    return_history: bool = False,
):
    """:func:`pga_numpy` for every channel of ``h`` (``B x K x N``), looping over channels.

    ``power`` and ``noise_var`` may be scalars or length-B arrays; ``init`` an optional pair of starting
    points ``(F0, W0)`` of shapes ``B x N x M`` and ``B x M x K``. Returns ``F`` ``[B, N, M]`` and
    ``W`` ``[B, M, K]`` (and the rate histories ``[B, I + 1]`` if requested).
    """
    h = np.asarray(h)
    if h.ndim != 3:
        raise ValueError(f"a batch of channels must be B x K x N, got shape {h.shape}")
    bsz = h.shape[0]
    p = np.broadcast_to(np.asarray(power, dtype=np.float64), (bsz,))
    s2 = np.broadcast_to(np.asarray(noise_var, dtype=np.float64), (bsz,))
    if init is not None:
        f0, w0 = (np.asarray(x) for x in init)
        if f0.ndim != 3 or w0.ndim != 3 or f0.shape[0] != bsz or w0.shape[0] != bsz:
            raise ValueError(f"init must be (B x N x M, B x M x K) with B={bsz}, got {f0.shape} and {w0.shape}")
    fs, ws, hist = [], [], []
    for b in range(bsz):
        out = pga_numpy(
            h[b],
            p[b],
            s2[b],
            mu,
            lam,
            include_ln2=include_ln2,
            inner_projection=inner_projection,
            num_rf_chains=num_rf_chains,
            rng=rng,
            init=None if init is None else (f0[b], w0[b]),
            return_history=return_history,
        )
        fs.append(out[0])
        ws.append(out[1])
        if return_history:
            hist.append(out[2])
    if return_history:
        return np.stack(fs), np.stack(ws), np.stack(hist)
    return np.stack(fs), np.stack(ws)
