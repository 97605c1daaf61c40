"""The JCEHB networks: the analog NN, the HBDUN digital NN and the joint network (spec s4.6-4.7, s4.10).

* :class:`AnalogNet`: the long-term analog stage, trainable phases ``Psi_F`` ``[N, M]`` and ``Psi_W``
  ``[K, Nr, R]``; ``F_RF = exp(j Psi_F) / sqrt(N)``, ``W_RF,k = exp(j Psi_W,k) / sqrt(Nr)`` (unit modulus
  by construction), optionally quantised to ``Q_RF`` bits at test time (s4.15).
* :class:`DigitalNet`: the SSCA/SCA-induced digital NN of HBDUN (eqs. 29-31): ``L_h`` layers of
  Algorithm 2 (:mod:`beamlearn.hybrid.digital`) with trainable multipliers and offsets on every update,
  a trainable ``mu`` in place of ``1 / ln alpha`` and the learned inverse ``C^+ B + D^-`` in place of
  ``C^{-1}`` (``inverse_mode="approx"``). With ``inverse_mode="exact"`` and its initial parameters the
  network *is* ``L_h`` iterations of Algorithm 2 (test A6).
* :class:`JCEHBNet`: analog NN -> pilots through the analog stage -> CEDUN (:mod:`.cedun`) -> digital NN,
  a :class:`~beamlearn.learned.LearnedMethod` with the library's call. ``csi="pilots"`` (the joint and
  separate designs) consumes the scenario's observation and sounds ``L`` pilot symbols of its own design
  through ``F_RF`` and ``W_RF``; ``csi="perfect"`` (HBDUN with perfect equivalent CSI, the paper's upper
  reference) reads the true channel.

Units (:mod:`beamlearn.hybrid.equivalent`): the networks work with the per-stream power normalised to 1,
``||F_RF F_BB,k||_F^2 = Ns`` and the normalised noise ``sigma_tilde^2 = sigma^2 / P`` with
``P = P_tot / (K Ns)``; pilots have ``||x||^2 = 1`` in these units (``P`` in the scenario's). The returned
:class:`~beamlearn.interface.Beamformers` carry ``sqrt(P)`` so that the library's metrics score them at
the scenario's total power.

Per-user parameters: a model trained for ``K`` users serves ``K'`` users with parameter set ``k mod K``
(spec s9 item 22).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._validation import check_int, check_one_of, check_real
from ...channels.base import complex_normal
from ...hybrid.digital import (
    LAMBDA_MIN,
    T_MAX,
    matched_filter_init,
    sca_covariance,
    sca_precoders,
    sca_regularizer,
)
from ...hybrid.equivalent import (
    analog_from_phases,
    equivalent_channel,
    mmse_combiner_eq,
    noise_gram,
    normalized_noise,
    stack_users,
    stream_mse,
    user_power_projection,
)
from ...interface import Beamformers
from ...learned import LearnedMethod
from .cedun import CEDUN

__all__ = ["AnalogNet", "DigitalNet", "JCEHBNet", "JCEHBPipeline", "INVERSE_MODES", "CSI_MODES"]

INVERSE_MODES = ("approx", "exact")
CSI_MODES = ("pilots", "perfect")


def _complex_param(shape, init: str) -> nn.Parameter:
    """A complex parameter stored as a real ``[..., 2]`` tensor (optimiser portability, spec s5)."""
    if init == "eye":
        n = shape[-1]
        z = torch.eye(n, dtype=torch.complex64).expand(*shape).clone()
    else:
        z = torch.zeros(shape, dtype=torch.complex64)
    return nn.Parameter(torch.view_as_real(z).clone())


def _c(p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The complex view of a real-pair parameter, in the dtype of ``like`` (complex)."""
    return torch.view_as_complex(p.to(like.real.dtype).contiguous())


def _users(p: torch.Tensor, k: int) -> torch.Tensor:
    """Parameter sets ``k mod K`` of a per-user parameter ``[K, ...]`` for ``k`` users."""
    if p.shape[0] == k:
        return p
    return p[torch.arange(k, device=p.device) % p.shape[0]]


class AnalogNet(nn.Module):
    """Trainable analog phases (spec s4.7 "Analog NN"): ``phase_f`` ``Psi_F`` ``[N, M]`` and ``phase_w``
    ``Psi_W`` ``[K, Nr, R]``, init i.i.d. U[0, 2 pi) from ``seed``; the matrices are built by
    :meth:`JCEHBPipeline.analog_stage` (:func:`~beamlearn.hybrid.equivalent.analog_from_phases`).

    Example:
        >>> net = AnalogNet(2, 16, 8, 4, 2)
        >>> net.phase_f.shape, net.phase_w.shape
        (torch.Size([16, 4]), torch.Size([2, 8, 2]))
    """

    def __init__(self, num_users: int, num_bs_antennas: int, num_rx_antennas: int, num_rf: int, num_rx_rf: int, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))
        self.phase_f = nn.Parameter(torch.rand(num_bs_antennas, num_rf, generator=g) * 2 * math.pi)
        self.phase_w = nn.Parameter(torch.rand(num_users, num_rx_antennas, num_rx_rf, generator=g) * 2 * math.pi)


class DigitalNet(nn.Module):
    """The HBDUN digital NN (eqs. 31a-31d, spec s4.7), ``layers`` layers for ``num_users`` parameter sets.

    ``forward(h_eq, f_rf_gram, gram, noise_var) -> (f_bb, w_bb)``: ``h_eq`` ``[..., K, R, M]``, outputs
    ``[..., K, M, Ns]`` (``||F_RF F_BB,k||_F^2 = Ns``) and the MMSE combiners (24) of the output precoders
    ``[..., K, R, Ns]`` (the spec's final refresh). Layer ``i`` (Algorithm 2 order, spec s9 item 11):

    * (31a) ``W = T_w (MMSE(F^{i-1})) + Q_w``;
    * (31b) ``lambda = T_lambda (mu alpha^t) + q_lambda`` (>= 1e-6), ``C`` as in (S3);
    * (31c) ``f_kl = T_f (lambda_kl (C^+ B_f + D_f^-) H_k^H w_kl) + q_f`` (``"approx"``; ``"exact"``:
      ``C^{-1}``), then the power projection (7d);
    * (31d) ``t = T_t (t + mu (1 - eps alpha^t)) + q_t`` (<= 30), ``eps`` the MSE (23).

    Example:
        >>> net = DigitalNet(2, 16, 4, 4, layers=3, inverse_mode="exact")
        >>> h = torch.randn(5, 2, 4, 16, dtype=torch.complex64)
        >>> g = torch.eye(4, dtype=h.dtype).expand(5, 2, 4, 4)
        >>> f, w = net(h, torch.eye(16, dtype=h.dtype), g, 0.1)
        >>> f.shape, w.shape
        (torch.Size([5, 2, 16, 4]), torch.Size([5, 2, 4, 4]))
    """

    def __init__(
        self,
        num_users: int,
        num_rf: int,
        num_rx_rf: int,
        num_streams: int,
        layers: int = 5,
        alpha: float = 2.0,
        inverse_mode: str = "exact",
    ):
        super().__init__()
        k, m, r = num_users, num_rf, num_rx_rf
        ns = check_int("num_streams", num_streams, 1, r)
        n_l = check_int("layers", layers, 1)
        self.alpha = check_real("alpha", alpha, 1.0, None, open_lower=True)
        self.inverse_mode = check_one_of("inverse_mode", inverse_mode, INVERSE_MODES)
        self.num_streams = ns
        self.t_w = _complex_param((n_l, k, r, r), "eye")
        self.q_w = _complex_param((n_l, k, r, ns), "zero")
        self.t_lam = nn.Parameter(torch.ones(n_l, k))
        self.q_lam = nn.Parameter(torch.zeros(n_l, k))
        self.t_f = _complex_param((n_l, k, m, m), "eye")
        self.q_f = _complex_param((n_l, k, m), "zero")
        self.t_t = nn.Parameter(torch.ones(n_l, k))
        self.q_t = nn.Parameter(torch.zeros(n_l, k))
        self.b_f = _complex_param((n_l, k, m, m), "eye")
        self.d_f = _complex_param((n_l, k, m, m), "zero")
        self.mu = nn.Parameter(torch.full((n_l, k), 1.0 / math.log(self.alpha)))

    @property
    def layers(self) -> int:
        return self.mu.shape[0]

    def forward(self, h_eq, f_rf_gram, gram, noise_var, *, layers: int | None = None):
        k = h_eq.shape[-3]
        ns = self.num_streams
        rdtype = h_eq.real.dtype
        n_l = self.layers if layers is None else check_int("layers", layers, 1, self.layers)
        f = matched_filter_init(h_eq, ns, f_rf_gram)
        t = torch.zeros((*h_eq.shape[:-2], ns), dtype=rdtype, device=h_eq.device)

        def real(p, i):  # [K] -> [K, 1] broadcast over streams
            return _users(p[i], k).to(rdtype)[:, None]

        for i in range(n_l):
            mu = real(self.mu, i)
            w = mmse_combiner_eq(h_eq, f, noise_var, gram)
            w = _users(_c(self.t_w[i], h_eq), k) @ w + _users(_c(self.q_w[i], h_eq), k)  # (31a)
            lam = (real(self.t_lam, i) * (mu * torch.pow(self.alpha, t)) + real(self.q_lam, i)).clamp_min(LAMBDA_MIN)
            c, u = sca_covariance(h_eq, w, lam, sca_regularizer(lam, w, gram, noise_var))  # (31b)
            if self.inverse_mode == "exact":
                f = sca_precoders(c, u, lam)
            else:
                d = c.diagonal(dim1=-2, dim2=-1).real
                c_plus = 1.0 / d.clamp_min(torch.finfo(rdtype).tiny)  # A^+: reciprocals of the diagonal
                d_f = _users(_c(self.d_f[i], h_eq), k)
                d_minus = d_f - 1j * torch.diag_embed(d_f.diagonal(dim1=-2, dim2=-1).imag).to(d_f.dtype)  # D^-
                inv = c_plus[..., None, :, None].to(h_eq.dtype) * _users(_c(self.b_f[i], h_eq), k) + d_minus
                f = inv @ (u * lam[..., None, :].to(u.dtype))  # [..., K, M, Ns]
            f = _users(_c(self.t_f[i], h_eq), k) @ f + _users(_c(self.q_f[i], h_eq), k)[..., None]  # (31c)
            f = user_power_projection(f, f_rf_gram, ns)
            eps = stream_mse(h_eq, f, w, noise_var, gram)
            t = (real(self.t_t, i) * (t + mu * (1 - eps * torch.pow(self.alpha, t))) + real(self.q_t, i)).clamp_max(
                T_MAX
            )  # (31d)
        return f, mmse_combiner_eq(h_eq, f, noise_var, gram)


class JCEHBPipeline(LearnedMethod):
    """What every JCEHB method shares: a long-term analog stage, pilots sounded through it, an estimator of
    the equivalent channels and a digital design on them (spec s2.5, s4.10). Subclasses implement
    :meth:`analog_phases`, :meth:`pilot_matrix`, :meth:`estimate` and :meth:`design`, and call
    :meth:`_set_link` in their constructor (sizes, ``noise_cov``, ``csi``, ``phase_bits``).

    The library call ``method(observation, power, noise_var)`` (``observes = "observation"``): the method
    sounds its pilots ``sqrt(P) F_RF X_k`` (``P = P_tot / (K Ns)``, unit-power columns ``X_k``
    ``[M, L]``) through the observation's sounder and its combiners ``W_RF,k`` (``Y_k = W_RF,k^H (H_k F_RF
    X_k sqrt(P) + Z_k)``, spec s2.4 with ``pilot_interference="none"``), estimates ``H_eq`` from ``Y / sqrt(P)``,
    designs the digital stage and returns :class:`~beamlearn.interface.Beamformers` scaled by ``sqrt(P)``.
    With ``csi="perfect"`` (``observes = "truth"``), or an observation without a sounder (perfect CSI), the
    true equivalent channels are used instead of pilots.
    """

    hybrid = True

    def analog_phases(self) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        """``(Psi_F [N, M], Psi_W [K, Nr, R])``."""
        raise NotImplementedError

    def pilot_matrix(self) -> torch.Tensor:  # pragma: no cover - abstract
        """Pilots ``[K, M, L]`` with unit-power columns."""
        raise NotImplementedError

    def estimate(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Equivalent channels ``[..., K, R, M]`` from received pilots ``[..., K, R, L]`` (unit pilot power)."""
        raise NotImplementedError

    def design(self, h_eq_view, f_rf_gram, gram, nv):  # pragma: no cover - abstract
        """``(f_bb [..., K, M, Ns], w_bb [..., K, R, Ns])`` from the equivalent channels it is given."""
        raise NotImplementedError

    def _set_link(self, sizes: tuple[int, ...], noise_cov: str, csi: str, phase_bits: int | None) -> None:
        """Check and store what every JCEHB method has: the sizes ``(K, N, Nr, N_RF^t, N_RF^r, Ns)``, the
        noise covariance mode, the CSI mode (which sets ``observes``) and the phase resolution."""
        k, n, nr, m, r, ns = sizes
        self.num_users = check_int("num_users", k, 1)
        self.num_bs_antennas = check_int("num_bs_antennas", n, 1)
        self.num_rx_antennas = check_int("num_rx_antennas", nr, 1)
        self.num_rf_chains = check_int("num_rf_chains", m, 1, n)
        self.num_rx_rf_chains = check_int("num_rx_rf_chains", r, 1, nr)
        self.num_streams = check_int("num_streams", ns, 1, r)
        self.noise_cov = check_one_of("noise_cov", noise_cov, ("exact", "identity"))
        self.csi = check_one_of("csi", csi, CSI_MODES)
        self.phase_bits = None if phase_bits is None else check_int("phase_bits", phase_bits, 1, 24)
        self.observes = "observation" if self.csi == "pilots" else "truth"

    def analog_stage(self, num_users: int, dtype=torch.complex64, *, quantize: bool = False):
        """``(F_RF [N, M], W_RF [K, Nr, R], F_RF^H F_RF, R_k per unit noise [K, R, R])`` for ``num_users``
        users (parameter set ``k mod K``), phases quantised to ``phase_bits`` when ``quantize``."""
        rdtype = torch.float64 if dtype == torch.complex128 else torch.float32
        phase_f, phase_w = self.analog_phases()
        bits = self.phase_bits if quantize else None
        f_rf = analog_from_phases(phase_f.to(rdtype), bits)
        w_rf = analog_from_phases(_users(phase_w, num_users).to(rdtype), bits)
        return f_rf, w_rf, f_rf.mH @ f_rf, noise_gram(w_rf, self.noise_cov)

    def receive(self, h_eq: torch.Tensor, nv, w_rf: torch.Tensor, generator=None) -> torch.Tensor:
        """Received pilots ``Y_k = H_eq,k X_k + W_RF,k^H Z_k`` ``[..., K, R, L]`` in unit pilot power units,
        ``Z`` i.i.d. CN(0, ``nv``) per antenna (drawn from ``generator``, or the global RNG)."""
        k = h_eq.shape[-3]
        x = self.pilot_matrix().to(h_eq.dtype)
        x = x[torch.arange(k, device=x.device) % x.shape[0]]
        nr, big_l = w_rf.shape[-2], x.shape[-1]
        z = complex_normal((*h_eq.shape[:-2], nr, big_l), generator, h_eq.device, h_eq.dtype, float(nv))
        return h_eq @ x + w_rf.mH @ z

    def train_forward(self, h, nv, *, csi: str | None = None, generator=None):
        """The training path on full channels ``h`` ``[B, K, Nr, N]`` at normalised noise ``nv``: returns
        ``(h_eq_true, h_eq_view, f_rf_gram, gram, f_bb, w_bb)`` (``h_eq_view`` the estimate, or the truth
        with ``csi="perfect"``); pilot noise drawn afresh (from ``generator`` or the global RNG)."""
        csi = self.csi if csi is None else csi
        f_rf, w_rf, f_gram, gram = self.analog_stage(h.shape[-3], h.dtype)
        h_eq = equivalent_channel(h, f_rf, w_rf)
        view = h_eq if csi == "perfect" else self.estimate(self.receive(h_eq, nv, w_rf, generator))
        f_bb, w_bb = self.design(view, f_gram, gram, nv)
        return h_eq, view, f_gram, gram, f_bb, w_bb

    def forward(self, obs, power, noise_var) -> Beamformers:
        from ...observation import Observation

        if isinstance(obs, Observation):
            if obs.kind == "uplink":
                raise ValueError("JCEHB methods sound downlink pilots; an 'uplink' observation is not supported")
            h_view, sound = obs.channel, obs.sound
        else:
            h_view, sound = obs, None
        if h_view.dim() < 4 or h_view.shape[-2:] != (self.num_rx_antennas, self.num_bs_antennas):
            raise ValueError(
                f"this method is for channels [B, K, Nr={self.num_rx_antennas}, N={self.num_bs_antennas}], got "
                f"{tuple(h_view.shape)}"
            )
        k, ns = h_view.shape[-3], self.num_streams
        p_stream = torch.as_tensor(power, dtype=h_view.real.dtype, device=h_view.device) / (k * ns)
        nv = normalized_noise(noise_var, power, k, ns)
        f_rf, w_rf, f_gram, gram = self.analog_stage(k, h_view.dtype, quantize=True)
        amp = torch.sqrt(p_stream).to(h_view.dtype)
        amp = amp.reshape(*amp.shape, 1, 1, 1) if amp.dim() else amp
        if self.csi == "pilots" and sound is not None:
            x = self.pilot_matrix().to(h_view.dtype)
            x = x[torch.arange(k, device=x.device) % x.shape[0]]  # [K, M, L]
            view = self.estimate(sound(amp * (f_rf @ x), w_rf) / amp)  # W_RF^H (H F_RF X sqrt(P) + Z) / sqrt(P)
        else:  # perfect CSI: csi="perfect", or an observation without a sounder (the true channel)
            view = equivalent_channel(h_view, f_rf, w_rf)
        f_bb, w_bb = self.design(view, f_gram, gram, nv)
        b = h_view.shape[:-3]
        return Beamformers(
            analog=f_rf.expand(*b, *f_rf.shape),
            digital=amp.squeeze(-1) * stack_users(f_bb),
            rx_analog=w_rf.expand(*b, *w_rf.shape),
            rx_digital=w_bb,
        )


class JCEHBNet(JCEHBPipeline):
    """The JCEHB network: analog NN + CEDUN + HBDUN digital NN (spec s4.6-4.10), one model per SNR.

    Args:
        num_users, num_bs_antennas, num_rx_antennas: K, N_t, N_r.
        num_rf_chains, num_rx_rf_chains, num_streams: N_RF^t, N_RF^r, Ns (``K Ns <= N_RF^t`` is not
            required: overloaded configurations stay defined, spec s9 item 21).
        pilot_length: L = CEDUN layers (default 16).
        hbdun_layers: L_h (default 5).
        inverse_mode: ``"exact"`` (default: a Cholesky solve of the M x M ``C``) or ``"approx"`` (``C^+ B +
            D^-``, the paper's; measured weaker here, see docs/jcehb.md).
        affine_mode: CEDUN's multipliers, ``"matrix"``, ``"diag"`` or ``"scalar"``.
        alpha, forgetting, delta: the SCA base and the RLS forgetting factor and ``P^0 = delta^{-1} I``.
        noise_cov: ``"exact"`` (``R_k = W_RF,k^H W_RF,k``) or ``"identity"``.
        csi: ``"pilots"`` (CEDUN estimates the equivalent channels from the pilots it sounds) or
            ``"perfect"`` (the true equivalent channels; the HBDUN upper reference).
        phase_bits: Q_RF, quantisation of the analog phases at inference (``None``: infinite resolution).
        seed: seed of the initial analog phases.

    Example:
        >>> net = JCEHBNet(2, 16, 8, 8, 2, 2, pilot_length=8, hbdun_layers=2, csi="perfect")
        >>> h = torch.randn(3, 2, 8, 16, dtype=torch.complex64)
        >>> bf = net(h, 4.0, 0.1)
        >>> bf.precoder.shape, bf.combiner.shape
        (torch.Size([3, 16, 4]), torch.Size([3, 2, 8, 2]))
    """

    model_name = "jcehb-net"

    def __init__(
        self,
        num_users: int = 4,
        num_bs_antennas: int = 64,
        num_rx_antennas: int = 32,
        num_rf_chains: int = 16,
        num_rx_rf_chains: int = 4,
        num_streams: int = 4,
        *,
        pilot_length: int = 16,
        hbdun_layers: int = 5,
        inverse_mode: str = "exact",
        affine_mode: str = "matrix",
        alpha: float = 2.0,
        forgetting: float = 0.99,
        delta: float = 0.01,
        noise_cov: str = "exact",
        csi: str = "pilots",
        phase_bits: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self._set_link(
            (num_users, num_bs_antennas, num_rx_antennas, num_rf_chains, num_rx_rf_chains, num_streams),
            noise_cov,
            csi,
            phase_bits,
        )
        self.pilot_length = check_int("pilot_length", pilot_length, 1)
        self.hbdun_layers = check_int("hbdun_layers", hbdun_layers, 1)
        self.inverse_mode = check_one_of("inverse_mode", inverse_mode, INVERSE_MODES)
        self.affine_mode = affine_mode
        self.alpha = alpha
        self.forgetting = forgetting
        self.delta = delta
        self.seed = seed
        self.analog = AnalogNet(num_users, num_bs_antennas, num_rx_antennas, num_rf_chains, num_rx_rf_chains, seed)
        self.cedun = CEDUN(
            num_users,
            num_rf_chains,
            num_rx_rf_chains,
            pilot_length=pilot_length,
            forgetting=forgetting,
            delta=delta,
            affine_mode=affine_mode,
            pilot_power=1.0,
        )
        self.digital = DigitalNet(
            num_users, num_rf_chains, num_rx_rf_chains, num_streams, hbdun_layers, alpha, inverse_mode
        )

    def analog_phases(self):
        return self.analog.phase_f, self.analog.phase_w

    def pilot_matrix(self) -> torch.Tensor:
        return self.cedun.pilot_matrix()

    def estimate(self, y: torch.Tensor) -> torch.Tensor:
        return self.cedun(y)

    def design(self, h_eq_view, f_rf_gram, gram, nv):
        return self.digital(h_eq_view, f_rf_gram, gram, nv)
