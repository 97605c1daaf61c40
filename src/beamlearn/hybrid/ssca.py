"""The conventional long-term analog design of the JCEHB paper: stochastic successive convex approximation
(SSCA, Kang et al. 2022, eqs. 18-22, spec s4.4) over the analog phases, with the digital stage given by SCA
(Algorithm 2, :func:`~beamlearn.hybrid.digital.sca_digital`) on every channel sample.

The analog beamformers are parameterised by real phases (18): ``F_RF = exp(j phi_F) / sqrt(N)`` ``[N, M]``
(shared by the K users) and ``W_RF,k = exp(j phi_W,k) / sqrt(Nr)`` ``[K, Nr, R]``
(:func:`~beamlearn.hybrid.equivalent.analog_from_phases`), so the unit-modulus constraints (7b)/(7c) hold by
construction. Shapes, the per-user power convention (7d) and the normalised noise ``sigma_tilde^2`` are those
of :mod:`beamlearn.hybrid.equivalent`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .._validation import check_bool, check_complex, check_int, check_one_of, check_positive, check_real
from .digital import sca_digital
from .equivalent import (
    NOISE_MODES,
    analog_from_phases,
    equivalent_channel,
    noise_gram,
    sum_rate_eq,
    user_power_projection,
)

__all__ = ["SSCAResult", "ssca_analog"]


@dataclass
class SSCAResult:
    """Output of :func:`ssca_analog`: the phases ``phi_f`` ``[N, M]`` of ``F_RF`` and ``phi_w`` ``[K, Nr, R]`` of
    the ``W_RF,k`` (real, radians, not wrapped to ``[0, 2 pi)``), and, with ``record=True``, the objective
    recursion ``f^t`` (21) after every iteration ``[iterations]`` (an average of ``-sum rate``), else ``None``."""

    phi_f: torch.Tensor
    phi_w: torch.Tensor
    objective: torch.Tensor | None = None


def _check_phases(name: str, phases, shape: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(phases, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of phases, got {type(phases).__name__}")
    if phases.is_complex() or not phases.is_floating_point():
        raise ValueError(f"{name} must be a real floating-point tensor of angles in radians, got {phases.dtype}")
    if tuple(phases.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(phases.shape)}")
    return phases


def _batch(channels: torch.Tensor, t: int, batch_size: int) -> torch.Tensor:
    """Mini-batch ``t`` of the cyclic sample stream ``H^0, H^1, ..., H^{T-1}, H^0, ...`` ``[B, K, Nr, N]``."""
    num = channels.shape[0]
    start = (t * batch_size) % num
    stop = start + batch_size
    if stop <= num:
        return channels[start:stop]
    parts = [channels[start:]]
    left = stop - num
    while left > 0:  # wraps over the end of the set (only when batch_size does not divide T)
        parts.append(channels[: min(left, num)])
        left -= min(left, num)
    return torch.cat(parts)


def _objective_and_gradient(
    h: torch.Tensor,
    phi_f: torch.Tensor,
    phi_w: torch.Tensor,
    noise_var: float,
    num_streams: int,
    sca_iterations: int,
    noise_cov: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One SSCA sample step: ``r0 = -mean sum rate`` at ``phi`` with the SCA digital ``M^J`` of ``H_eq(phi)``
    held constant, and its gradient ``(dr0/dphi_F, dr0/dphi_W)``."""
    with torch.enable_grad():
        pf = phi_f.detach().requires_grad_(True)
        pw = phi_w.detach().requires_grad_(True)
        f_rf = analog_from_phases(pf)  # [N, M]
        w_rf = analog_from_phases(pw)  # [K, Nr, R]
        h_eq = equivalent_channel(h, f_rf, w_rf)  # [B, K, R, M]
        f_gram = f_rf.mH @ f_rf  # [M, M]
        gram = noise_gram(w_rf, noise_cov)  # [K, R, R]
        with torch.no_grad():  # M^J: J iterations of Algorithm 2 on the true H_eq, detached
            digital = sca_digital(
                h_eq.detach(), f_gram.detach(), gram.detach(), noise_var, num_streams, iterations=sca_iterations
            )
        # (7d) at the evaluated point: the fixed F_BB re-projected under F_RF(phi) (a no-op in value at phi^t)
        f_bb = user_power_projection(digital.f_bb, f_gram, num_streams)
        r0 = -sum_rate_eq(h_eq, f_bb, digital.w_bb, noise_var, gram).mean()
        g_f, g_w = torch.autograd.grad(r0, (pf, pw))
    return r0.detach(), g_f, g_w


def ssca_analog(
    channels: torch.Tensor,
    num_tx_rf: int,
    num_rx_rf: int,
    num_streams: int,
    noise_var: float,
    *,
    passes: int = 5,
    batch_size: int = 1,
    sca_iterations: int = 10,
    rho_exponent: float = 0.6,
    gamma_exponent: float = 0.8,
    literal: bool = False,
    first_step: float = 0.1,
    noise_cov: str = "exact",
    generator: torch.Generator | None = None,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    record: bool = False,
    progress: bool = False,
) -> SSCAResult:
    """JCEHB SSCA (eqs. 18-22, spec s4.4): long-term analog phases from a set of full channel samples.

    The samples are visited in order, ``batch_size`` per iteration, ``passes`` times over the set (a cyclic
    stream: ``ceil(T * passes / batch_size)`` iterations; a mini-batch wraps over the end of the set when
    ``batch_size`` does not divide ``T``). Iteration ``t`` (from 0), with the mini-batch ``H^t``:

    * ``H_eq^t = W_RF(phi^t)^H H^t F_RF(phi^t)`` and ``M^J = {F_BB, W_BB}`` = ``sca_iterations`` iterations of
      SCA (Algorithm 2, matched-filter start) on ``H_eq^t``, detached;
    * ``r0(phi) = -mean_batch sum_k sum_l log2(1 + Gamma_kl)`` (3) with ``M^J`` held constant (spec: "M^J held
      constant"): the rate is ``sum_rate_eq(H_eq(phi), F_BB', W_BB, sigma_tilde^2, R(phi))`` with
      ``R(phi) = noise_gram(W_RF(phi))`` and ``F_BB' = user_power_projection(F_BB, F_RF(phi)^H F_RF(phi))``, the
      fixed digital precoder re-projected under the current ``F_RF`` so that the power constraint (7d) holds at
      every evaluated ``phi``. At ``phi^t`` the projection is a no-op in value (SCA already projected with the
      same ``F_RF``) but it enters the gradient ``grad = dr0/dphi`` (autograd through ``analog_from_phases``,
      :func:`equivalent_channel`, :func:`noise_gram` and :func:`sum_rate_eq`);
    * (20) ``f_phi^t = (1 - rho_t) f_phi^{t-1} + rho_t grad``; (21) ``f^t = (1 - rho_t) f^{t-1} + rho_t r0``
      (``f_phi^{-1} = 0``, ``f^{-1} = 0``);
    * (22) ``phi_bar = phi^t - eta f_phi^t`` (the minimiser of the surrogate (19), ``eta = 1 / (2 tau_s)``),
      ``phi^{t+1} = (1 - gamma_t) phi^t + gamma_t phi_bar``.

    Step sizes (spec s9 item 15): ``rho_t = (t+1)^-rho_exponent``, ``gamma_t = (t+1)^-gamma_exponent``, or
    ``gamma_t = 1`` with ``literal=True`` (the paper's (22) as printed). The SSCA convergence conditions want
    ``0.5 < rho_exponent <= 1`` and ``gamma_exponent > rho_exponent``; any exponent in ``(0, 1]`` is accepted.
    ``eta`` is fixed at the first iteration (the first with a nonzero ``f_phi``) so that that update's largest
    phase change is ``first_step`` radians: ``eta = first_step / max|f_phi^0|`` over both phase sets.

    Args:
        channels: full training channel samples ``[T, K, Nr, N]`` (complex).
        num_tx_rf: M, BS RF chains, ``1 <= M <= N`` (``K Ns > M`` is an overloaded design, still defined).
        num_rx_rf: R, RF chains per user, ``1 <= R <= Nr``.
        num_streams: Ns per user, ``1 <= Ns <= R``.
        noise_var: the normalised noise ``sigma_tilde^2 = sigma^2 / P`` (> 0) of :mod:`~beamlearn.hybrid.equivalent`.
        passes: passes over the sample set (>= 1).
        batch_size: samples per iteration, ``1 <= batch_size <= T``; gradient and objective are batch means.
        sca_iterations: J, SCA iterations per sample (>= 0; 0 is the projected matched filter).
        rho_exponent, gamma_exponent: exponents of ``rho_t`` and ``gamma_t``, in ``(0, 1]``.
        literal: ``gamma_t = 1`` (paper-literal (22)).
        first_step: the largest phase change of the first update, radians (> 0).
        noise_cov: ``"exact"`` (``R_k = W_RF,k^H W_RF,k``) or ``"identity"`` (the printed formula).
        generator: CPU generator of the random initial phases ``U[0, 2 pi)`` (drawn on the CPU in the channels'
            real dtype, then moved to their device); ignored with ``init``.
        init: initial phases ``(phi_F [N, M], phi_W [K, Nr, R])`` (real); copied, not modified.
        record: also return the objective recursion ``f^t`` of every iteration.
        progress: show a tqdm progress bar over the iterations.

    Returns:
        :class:`SSCAResult` with the final phases (on the channels' device, their real dtype).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> h = torch.randn(8, 2, 4, 8, dtype=torch.complex64, generator=g)  # [T, K, Nr, N]
        >>> out = ssca_analog(h, 4, 2, 2, 0.1, passes=2, generator=g, record=True)
        >>> out.phi_f.shape, out.phi_w.shape, out.objective.shape
        (torch.Size([8, 4]), torch.Size([2, 4, 2]), torch.Size([16]))
        >>> f_rf = analog_from_phases(out.phi_f)  # F_RF with |entries| = 1/sqrt(N)
        >>> bool(torch.allclose(f_rf.abs(), torch.full((8, 4), 8**-0.5)))
        True
    """
    check_complex("channels", channels)
    if channels.dim() != 4:
        raise ValueError(f"channels must be [T, K, Nr, N] samples of multi-antenna users, got {tuple(channels.shape)}")
    num_samples, k, nr, n = channels.shape
    if num_samples < 1:
        raise ValueError("channels must hold at least one sample (T >= 1)")
    m = check_int("num_tx_rf", num_tx_rf, 1, n)
    r = check_int("num_rx_rf", num_rx_rf, 1, nr)
    ns = check_int("num_streams", num_streams, 1, r)
    nv = check_positive("noise_var", noise_var)
    passes = check_int("passes", passes, 1)
    batch_size = check_int("batch_size", batch_size, 1, num_samples)
    sca_iterations = check_int("sca_iterations", sca_iterations, 0)
    rho_exponent = check_real("rho_exponent", rho_exponent, 0.0, 1.0, open_lower=True)
    gamma_exponent = check_real("gamma_exponent", gamma_exponent, 0.0, 1.0, open_lower=True)
    literal = check_bool("literal", literal)
    first_step = check_real("first_step", first_step, 0.0, None, open_lower=True)
    check_one_of("noise_cov", noise_cov, NOISE_MODES)
    record = check_bool("record", record)
    progress = check_bool("progress", progress)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")

    rdtype, device = channels.real.dtype, channels.device
    if init is None:
        phi_f = torch.rand(n, m, generator=generator, dtype=rdtype) * (2 * math.pi)
        phi_w = torch.rand(k, nr, r, generator=generator, dtype=rdtype) * (2 * math.pi)
    else:
        if not isinstance(init, (tuple, list)) or len(init) != 2:
            raise ValueError("init must be a pair (phi_F [N, M], phi_W [K, Nr, R]) of real phase tensors")
        phi_f = _check_phases("init[0] (phi_F)", init[0], (n, m)).detach().clone()
        phi_w = _check_phases("init[1] (phi_W)", init[1], (k, nr, r)).detach().clone()
    phi_f, phi_w = phi_f.to(device=device, dtype=rdtype), phi_w.to(device=device, dtype=rdtype)

    iterations = math.ceil(num_samples * passes / batch_size)
    avg_f, avg_w = torch.zeros_like(phi_f), torch.zeros_like(phi_w)  # f_phi^{-1} = 0
    avg_obj = torch.zeros((), dtype=rdtype, device=device)  # f^{-1} = 0
    eta: torch.Tensor | None = None
    history = []
    for t in tqdm(range(iterations), desc="SSCA", unit="it", disable=not progress, leave=False):
        h = _batch(channels, t, batch_size)
        r0, g_f, g_w = _objective_and_gradient(h, phi_f, phi_w, nv, ns, sca_iterations, noise_cov)
        rho = (t + 1) ** -rho_exponent
        avg_f = (1 - rho) * avg_f + rho * g_f  # (20)
        avg_w = (1 - rho) * avg_w + rho * g_w
        avg_obj = (1 - rho) * avg_obj + rho * r0  # (21)
        if eta is None:  # one host synchronisation, at the first iteration (normally)
            peak = float(torch.maximum(avg_f.abs().max(), avg_w.abs().max()))
            if math.isfinite(peak) and peak > 0:
                eta = torch.tensor(first_step / peak, dtype=rdtype, device=device)
        if eta is not None:
            gamma = 1.0 if literal else (t + 1) ** -gamma_exponent
            phi_f = phi_f - gamma * eta * avg_f  # (22): (1 - gamma) phi + gamma (phi - eta f_phi)
            phi_w = phi_w - gamma * eta * avg_w
        if record:
            history.append(avg_obj)
    return SSCAResult(phi_f, phi_w, torch.stack(history) if record else None)
