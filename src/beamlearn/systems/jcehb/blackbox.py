"""The black-box NN benchmark of the JCEHB paper (spec s4.14, Section VII-A, Fig. 8).

The same pipeline as :class:`~.model.JCEHBNet` (:class:`~.model.JCEHBPipeline`: long-term analog stage,
pilots sounded through it, estimator of the equivalent channels, digital design), with the two short-term
networks replaced by fully connected ones:

* ``analog`` (:class:`~.model.AnalogNet`): trainable phases ``Psi_F`` ``[N, M]``, ``Psi_W`` ``[K, Nr, R]``,
  exactly as in the DU network.
* ``cedun`` (:class:`BlackBoxEstimator`, the channel-estimation black box): trainable pilots ``[K, M, L]``
  (real pairs, DFT init, unit-norm columns) and, per user with weights shared across users, the received
  pilots ``Y_k`` ``[R, L]`` as ``2 R L`` reals -> FC(2RL -> 512) + BN + ReLU -> FC(512 -> 512) + BN + ReLU ->
  FC(512 -> 2 R M) -> ``H_eq_hat,k`` ``[R, M]``.
* ``digital`` (:class:`BlackBoxDigital`, the beamforming black box): all users' ``H_eq_hat`` as ``2 K R M``
  reals -> FC(2KRM -> 1024) + BN + ReLU -> FC(1024 -> 1024) + BN + ReLU -> FC(1024 -> 2 K (M Ns + R Ns)) ->
  ``F_BB,k`` ``[M, Ns]`` and ``W_BB,k`` ``[R, Ns]`` -> per-user power projection ``||F_RF F_BB,k||_F^2 = Ns``.

At the paper's sizes (``K = 4``, ``M = N_RF^t = 16``, ``R = N_RF^r = 4``, ``Ns = 4``, ``L = 16``) the
widths are 128 -> 512 -> 512 -> 128 and 512 -> 1024 -> 1024 -> 640 as in the spec.

Fixed number of users: the digital black box reads all ``K`` users at once, so a model serves exactly the
``num_users`` it was built for (any other ``K`` raises ``ValueError``), unlike the DU network's ``k mod K``.

Scaling: the networks see ``Y / scale`` and ``H_eq_hat / scale`` and the estimator outputs ``scale`` times
its last layer, with the fixed buffer ``scale = sqrt(0.1)`` (:data:`CHANNEL_RMS`): the RMS of an entry of
``H_eq,k`` for the ``jcehb`` preset (``sigma_alpha^2 = 0.1``, eq. 45) under random analog phases
(``E|[H_eq,k]_ij|^2 = E||H_k||_F^2 / (N_t N_r) = sigma_alpha^2``; measured 0.0997 on 500 channels). In the
networks' units (unit pilot power, noise ``sigma_tilde^2``, :mod:`beamlearn.hybrid.equivalent`) the
features are then O(1). BatchNorm1d runs over the flattened batch (times users for the estimator) dimension.

Precision: the layers are real (``nn.Linear``); complex inputs enter through :func:`torch.view_as_real`,
the networks run in their parameters' dtype (float32 unless the module is cast) and their outputs are cast
to the input's complex dtype, so complex128 channels (the trainer's validation) work, and the power
projection is done in the input's precision.

Training: the JCEHB task's stages apply unchanged (stage 1: ``analog`` + ``digital`` on the true ``H_eq``;
stage 2: ``cedun`` + ``digital``), loss minus the sum rate (3); spec s5: lr 1e-3, 200 epochs per stage.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._validation import check_int
from ...estimation import orthogonal_pilots
from ...hybrid.equivalent import user_power_projection
from .model import AnalogNet, JCEHBPipeline

__all__ = ["BlackBoxJCEHB", "BlackBoxEstimator", "BlackBoxDigital", "CHANNEL_RMS"]

CHANNEL_RMS = math.sqrt(0.1)
"""RMS of an entry of ``H_eq,k`` for the ``jcehb`` preset with random analog phases (``sigma_alpha^2 = 0.1``)."""


def _mlp(n_in: int, width: int, n_out: int) -> nn.Sequential:
    """FC(n_in -> width) + BN + ReLU -> FC(width -> width) + BN + ReLU -> FC(width -> n_out) (linear)."""
    return nn.Sequential(
        nn.Linear(n_in, width),
        nn.BatchNorm1d(width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.BatchNorm1d(width),
        nn.ReLU(),
        nn.Linear(width, n_out),
    )


def _real_dtype(module: nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype


def _complex_of(real_dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if real_dtype == torch.float64 else torch.complex64


class BlackBoxEstimator(nn.Module):
    """The channel-estimation black box (spec s4.14): trainable pilots and one MLP shared by the users.

    ``pilots``: ``[K, M, L, 2]`` (real pairs of ``X_k`` ``[M, L]``, init DFT
    :func:`~beamlearn.estimation.orthogonal_pilots` for every user); :meth:`pilot_matrix` returns them with
    unit-norm columns ``[K, M, L]``. ``forward(y)``: received pilots ``[..., K', R, L]`` (unit pilot power)
    -> ``H_eq_hat`` ``[..., K', R, M]`` in ``y``'s complex dtype; each user is one row of the BatchNorm batch.

    Example:
        >>> est = BlackBoxEstimator(2, 8, 2, pilot_length=8, width=32)
        >>> est.pilot_matrix().shape
        torch.Size([2, 8, 8])
        >>> est(torch.randn(5, 2, 2, 8, dtype=torch.complex64)).shape
        torch.Size([5, 2, 2, 8])
    """

    def __init__(self, num_users: int, num_rf: int, num_rx_rf: int, *, pilot_length: int = 16, width: int = 512):
        super().__init__()
        k, m, r = num_users, num_rf, num_rx_rf
        big_l = check_int("pilot_length", pilot_length, 1)
        x = orthogonal_pilots(m, big_l, 1.0, dtype=torch.complex64).expand(k, m, big_l)
        self.pilots = nn.Parameter(torch.view_as_real(x).clone())
        self.register_buffer("scale", torch.tensor(CHANNEL_RMS))
        self.num_rx_rf, self.num_rf = r, m
        self.net = _mlp(2 * r * big_l, check_int("ce_width", width, 1), 2 * r * m)

    def pilot_matrix(self) -> torch.Tensor:
        """Pilots ``[K, M, L]`` (complex, in the parameters' precision) with unit-norm columns."""
        x = torch.view_as_complex(self.pilots)
        return x / torch.linalg.vector_norm(x, dim=-2, keepdim=True).clamp_min(torch.finfo(self.pilots.dtype).tiny)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        rdtype = _real_dtype(self.net)
        r, m = self.num_rx_rf, self.num_rf
        lead = y.shape[:-2]  # [..., K']
        feats = torch.view_as_real(y.to(_complex_of(rdtype))).reshape(-1, 2 * r * y.shape[-1])
        out = self.net(feats / self.scale.to(rdtype)) * self.scale.to(rdtype)
        h = torch.view_as_complex(out.reshape(*lead, r, m, 2).contiguous())
        return h.to(y.dtype)


class BlackBoxDigital(nn.Module):
    """The beamforming black box (spec s4.14) for exactly ``num_users`` users.

    ``forward(h_eq, f_rf_gram) -> (f_bb, w_bb)``: ``h_eq`` ``[..., K, R, M]`` (estimated equivalent
    channels), ``f_rf_gram = F_RF^H F_RF`` ``[M, M]``; outputs ``f_bb`` ``[..., K, M, Ns]`` with
    ``||F_RF F_BB,k||_F^2 = Ns`` (:func:`~beamlearn.hybrid.equivalent.user_power_projection`) and the
    network's combiners ``w_bb`` ``[..., K, R, Ns]``, both in ``h_eq``'s complex dtype.

    Example:
        >>> net = BlackBoxDigital(2, 8, 2, 2, width=32)
        >>> f, w = net(torch.randn(5, 2, 2, 8, dtype=torch.complex64), torch.eye(8, dtype=torch.complex64))
        >>> f.shape, w.shape
        (torch.Size([5, 2, 8, 2]), torch.Size([5, 2, 2, 2]))
    """

    def __init__(self, num_users: int, num_rf: int, num_rx_rf: int, num_streams: int, *, width: int = 1024):
        super().__init__()
        self.num_users, self.num_rf, self.num_rx_rf, self.num_streams = num_users, num_rf, num_rx_rf, num_streams
        k, m, r, ns = num_users, num_rf, num_rx_rf, num_streams
        self.register_buffer("scale", torch.tensor(CHANNEL_RMS))
        self.net = _mlp(2 * k * r * m, check_int("bf_width", width, 1), 2 * k * (m * ns + r * ns))

    def forward(self, h_eq: torch.Tensor, f_rf_gram: torch.Tensor):
        k, m, r, ns = self.num_users, self.num_rf, self.num_rx_rf, self.num_streams
        if h_eq.shape[-3:] != (k, r, m):
            raise ValueError(
                f"the digital black box is built for num_users={k} users with equivalent channels [K={k}, R={r}, "
                f"M={m}], got {tuple(h_eq.shape)}"
            )
        rdtype = _real_dtype(self.net)
        lead = h_eq.shape[:-3]
        feats = torch.view_as_real(h_eq.to(_complex_of(rdtype))).reshape(-1, 2 * k * r * m)
        out = self.net(feats / self.scale.to(rdtype))
        n_f = 2 * k * m * ns
        f = torch.view_as_complex(out[:, :n_f].reshape(*lead, k, m, ns, 2).contiguous()).to(h_eq.dtype)
        w = torch.view_as_complex(out[:, n_f:].reshape(*lead, k, r, ns, 2).contiguous()).to(h_eq.dtype)
        return user_power_projection(f, f_rf_gram.to(h_eq.dtype), ns), w


class BlackBoxJCEHB(JCEHBPipeline):
    """The black-box JCEHB benchmark (spec s4.14): analog phases + FC channel estimator + FC digital stage.

    Args:
        num_users, num_bs_antennas, num_rx_antennas: K (fixed: the model serves exactly K users), N_t, N_r.
        num_rf_chains, num_rx_rf_chains, num_streams: N_RF^t = M, N_RF^r = R, Ns.
        pilot_length: L, pilot symbols per user (default 16).
        ce_width: hidden width of the channel-estimation black box (spec: 512).
        bf_width: hidden width of the beamforming black box (spec: 1024).
        noise_cov: ``"exact"`` (``R_k = W_RF,k^H W_RF,k``) or ``"identity"`` (the noise Gram the base
            returns; the black boxes do not use it, the rate does).
        csi: ``"pilots"`` (estimate from the pilots it sounds) or ``"perfect"`` (true equivalent channels).
        phase_bits: Q_RF, quantisation of the analog phases at inference (``None``: infinite resolution).
        seed: seed of the whole initialisation (analog phases and the layers' weights; the global RNG is
            left untouched).

    Submodules (the JCEHB training stages use these names): ``analog`` (:class:`~.model.AnalogNet`),
    ``cedun`` (:class:`BlackBoxEstimator`, with the pilots), ``digital`` (:class:`BlackBoxDigital`).
    The library call ``model(observation_or_h, power, noise_var)`` is :class:`~.model.JCEHBPipeline`'s.

    Example:
        >>> net = BlackBoxJCEHB(2, 16, 8, 8, 2, 2, pilot_length=8, ce_width=32, bf_width=64, csi="perfect")
        >>> h = torch.randn(3, 2, 8, 16, dtype=torch.complex64)
        >>> bf = net.eval()(h, 4.0, 0.1)
        >>> bf.precoder.shape, bf.combiner.shape
        (torch.Size([3, 16, 4]), torch.Size([3, 2, 8, 2]))
    """

    model_name = "jcehb-blackbox"

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
        ce_width: int = 512,
        bf_width: int = 1024,
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
        self.ce_width = check_int("ce_width", ce_width, 1)
        self.bf_width = check_int("bf_width", bf_width, 1)
        self.seed = check_int("seed", seed)
        k, m, r = self.num_users, self.num_rf_chains, self.num_rx_rf_chains
        self.analog = AnalogNet(k, self.num_bs_antennas, self.num_rx_antennas, m, r, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.cedun = BlackBoxEstimator(k, m, r, pilot_length=self.pilot_length, width=self.ce_width)
            self.digital = BlackBoxDigital(k, m, r, self.num_streams, width=self.bf_width)

    def _check_users(self, k: int) -> None:
        if k != self.num_users:
            raise ValueError(
                f"the black-box network is built for num_users={self.num_users} users (its digital stage reads "
                f"all users at once), got {k} users"
            )

    def analog_stage(self, num_users: int, dtype=torch.complex64, *, quantize: bool = False):
        self._check_users(num_users)
        return super().analog_stage(num_users, dtype, quantize=quantize)

    def analog_phases(self):
        return self.analog.phase_f, self.analog.phase_w

    def pilot_matrix(self) -> torch.Tensor:
        return self.cedun.pilot_matrix()

    def estimate(self, y: torch.Tensor) -> torch.Tensor:
        self._check_users(y.shape[-3])
        return self.cedun(y)

    def design(self, h_eq_view, f_rf_gram, gram, nv):
        """The beamforming black box on ``h_eq_view`` ``[..., K, R, M]`` (``gram`` and ``nv`` unused: the
        network sees only the channels, one model per SNR)."""
        self._check_users(h_eq_view.shape[-3])
        return self.digital(h_eq_view, f_rf_gram)
