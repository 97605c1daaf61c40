"""The learned networks of the uplink model-driven beamforming paper (spec ``uplink-model-driven-bf.md``).

Layouts: the uplink information (``H_U`` or the pilot statistic ``Y X^H / (L P)``) and the learned
downlink channel are in the paper's layout ``[B, N, K]`` (column k: user k); the library's downlink
channel is ``[B, K, N]`` with row k = ``h_{D,k}^H``, i.e. ``H_D.mH``; precoders are ``[B, N, K]``.
Power convention: ``P`` is the total transmit power and ``N_0`` the noise variance per user
(``SNR = P / N_0``, the uplink presets fix ``N_0 = 1``).

* :class:`UplinkMDL` (spec s4.2, Fig. 1): CSI-Net (uplink info -> ``H_D`` estimate) cascaded into
  Power-Net (-> ``p, q``, two softmax heads times P) and the parameter-free beamforming recovery
  module, the optimal structure (7) (:func:`beamlearn.precoding.optimal_structure`).
* :class:`LearnedChannelBF` (spec s5.2/s5.3): the two-step baselines, a CSI-Net trained alone on the
  channel MSE followed by ZF on the learned channel or by a beamforming network; with pilots, the
  CSI-Net reads the uplink LMMSE estimate (15)-(17) made from the stored uplink statistics.

Inputs are scaled by one global factor per tensor kind (the RMS of the training set's entries, spec
s4.2): ``input_scale`` for the uplink information, ``output_scale`` for the downlink channel.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._validation import check_int, check_one_of, check_positive
from ...estimation import lmmse_estimate
from ...interface import Beamformers
from ...learned import LearnedMethod
from ...observation import Observation
from ...precoding import optimal_structure, zf_precoder

__all__ = [
    "ARCHS",
    "CSINet",
    "PowerNetFC",
    "PowerNetCNN",
    "UplinkMDL",
    "LearnedChannelBF",
    "to_real",
    "from_real",
    "uplink_input",
]

ARCHS = ("small", "massive")


def to_real(x: torch.Tensor) -> torch.Tensor:
    """``[B, N, K]`` complex -> ``[B, 2NK]`` real: ``cat(Re(x).flatten, Im(x).flatten)`` (spec s4.2)."""
    return torch.cat([x.real.flatten(1), x.imag.flatten(1)], dim=1)


def from_real(v: torch.Tensor, n: int, k: int) -> torch.Tensor:
    """Inverse of :func:`to_real`: ``[B, 2NK]`` -> complex ``[B, N, K]``."""
    half = n * k
    return torch.complex(v[:, :half], v[:, half:]).reshape(-1, n, k)


def _linear(i: int, o: int) -> nn.Linear:
    layer = nn.Linear(i, o)
    nn.init.xavier_uniform_(layer.weight)  # Keras' Glorot-uniform default (spec s6)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(width_in: int, width: int, layers: int, width_out: int, *, batch_norm: bool, act) -> nn.Sequential:
    mods: list[nn.Module] = []
    w = width_in
    for _ in range(layers):
        mods.append(_linear(w, width))
        if batch_norm:
            mods.append(nn.BatchNorm1d(width))
        mods.append(act())
        w = width
    mods.append(_linear(w, width_out))
    return nn.Sequential(*mods)


def _widths(arch: str, n: int, k: int) -> tuple[int, int]:
    """(hidden layers, width) of the CSI-Net (spec s4.2): small 4 x 4KN, massive 3 x 2NK."""
    return (4, 4 * k * n) if arch == "small" else (3, 2 * n * k)


class CSINet(nn.Module):
    """Uplink information -> downlink channel (spec s4.2): fully connected, tanh hidden layers, linear
    output of ``2NK`` reals. ``forward(x)``: ``[B, 2NK]`` (scaled) -> ``[B, 2NK]``.

    ``per_user=True`` is the spec's shared per-user variant (s4.2 note): one network of the same hidden
    widths maps each user's column (``2N`` reals -> ``2N``), so a sample gives K training examples; it
    presumes the users' UL/DL maps are identical (``c_mode="common_fixed"``)."""

    def __init__(self, n: int, k: int, arch: str = "small", batch_norm: bool = False, per_user: bool = False):
        super().__init__()
        layers, width = _widths(arch, n, k)
        self.n, self.k, self.per_user = n, k, per_user
        m = 2 * n if per_user else 2 * n * k
        self.net = _mlp(m, width, layers, m, batch_norm=batch_norm, act=nn.Tanh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.per_user:
            return self.net(x)
        n, k = self.n, self.k
        cols = x.view(-1, 2, n, k).permute(0, 3, 1, 2).reshape(-1, 2 * n)  # [B*K, (Re, Im) x N]
        out = self.net(cols).view(-1, k, 2, n).permute(0, 2, 3, 1)  # [B, 2, N, K]
        return out.reshape(-1, 2 * n * k)


class _SoftmaxHeads(nn.Module):
    """``2K`` logits -> the fractions ``p/P`` and ``q/P`` (two K-way softmaxes, spec s10 #4)."""

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = z.shape[-1] // 2
        return torch.softmax(z[..., :k], -1), torch.softmax(z[..., k:], -1)


class PowerNetFC(nn.Module):
    """Small-scale Power-Net (spec s4.2): 4 x [FC 4KN -> BatchNorm -> ReLU] -> FC 2K -> softmax heads.
    ``forward(x)``: ``[B, 2NK]`` -> fractions ``([B, K], [B, K])``."""

    def __init__(self, n: int, k: int):
        super().__init__()
        self.net = _mlp(2 * n * k, 4 * k * n, 4, 2 * k, batch_norm=True, act=nn.ReLU)
        self.heads = _SoftmaxHeads()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.net(x))


class PowerNetCNN(nn.Module):
    """Massive-MIMO Power-Net (spec s4.2, s10 #18-19): Conv1D(16, kernel 3, same) -> BN -> ReLU ->
    Dropout(0.3) -> Conv1D(8) -> BN -> ReLU -> Dropout(0.3) -> Flatten -> FC 256 ReLU -> FC 2K ->
    softmax heads, along the antenna axis with ``2K`` input channels (Re/Im per user).
    ``forward(h)``: complex ``[B, N, K]`` (scaled) -> fractions ``([B, K], [B, K])``."""

    def __init__(self, n: int, k: int, filters: tuple[int, int] = (16, 8), dropout: float = 0.3):
        super().__init__()
        c1, c2 = filters
        self.features = nn.Sequential(
            nn.Conv1d(2 * k, c1, 3, padding=1),
            nn.BatchNorm1d(c1),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(c1, c2, 3, padding=1),
            nn.BatchNorm1d(c2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Flatten(),
        )
        self.head = nn.Sequential(_linear(c2 * n, 256), nn.ReLU(), _linear(256, 2 * k))
        self.heads = _SoftmaxHeads()

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([h.real, h.imag], dim=-1).transpose(1, 2)  # [B, 2K, N]
        return self.heads(self.head(self.features(x)))


def uplink_input(observation) -> torch.Tensor:
    """The uplink information ``[B, N, K]`` of an observation (``H_U``, or the pilot statistic when the
    users sent pilots), or the tensor itself."""
    if isinstance(observation, torch.Tensor):
        return observation
    if not isinstance(observation, Observation) or observation.uplink is None:
        raise ValueError(
            "this method learns from the uplink: give it an 'uplink' observation (a scenario such as uplink-s1, "
            "or --observation uplink:paired), or the uplink tensor [B, N, K]"
        )
    return observation.uplink


def _check_uplink(u: torch.Tensor, n: int, k: int) -> torch.Tensor:
    if not u.is_complex() or u.dim() != 3 or tuple(u.shape[1:]) != (n, k):
        raise ValueError(f"uplink information must be complex [B, N={n}, K={k}], got {tuple(u.shape)} {u.dtype}")
    return u


class _UplinkNet(LearnedMethod):
    """Shared parts: sizes, scales, the CSI-Net and the uplink input."""

    observes = "observation"

    def _setup(self, num_bs_antennas, num_users, arch, input_scale, output_scale, csi_per_user=False):
        self.num_bs_antennas = check_int("num_bs_antennas", num_bs_antennas, 1)
        self.num_users = check_int("num_users", num_users, 1)
        self.arch = check_one_of("arch", arch, ARCHS)
        self.input_scale = check_positive("input_scale", input_scale)
        self.output_scale = check_positive("output_scale", output_scale)
        self.csi_per_user = bool(csi_per_user)
        self.csi = CSINet(self.num_bs_antennas, self.num_users, self.arch, per_user=self.csi_per_user)

    def _real_dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def learned_channel(self, u: torch.Tensor) -> torch.Tensor:
        """CSI-Net: uplink information ``[B, N, K]`` -> downlink channel estimate ``[B, N, K]`` (paper layout)."""
        n, k = self.num_bs_antennas, self.num_users
        x = to_real(_check_uplink(u, n, k)).to(self._real_dtype()) / self.input_scale
        return from_real(self.csi(x) * self.output_scale, n, k)


class UplinkMDL(_UplinkNet):
    """The proposed model-driven network (spec s4.2-4.4): CSI-Net -> Power-Net -> structure (7).

    Args:
        num_bs_antennas, num_users: N and K.
        arch: ``"small"`` (S0/S1 widths, FC Power-Net) or ``"massive"`` (S2 widths, CNN Power-Net).
        input_scale, output_scale: global scales of the uplink information and of ``H_D`` (training RMS).
        zf_inference: output ZF on the learned channel instead of the structure (spec s4.7 option).
        csi_per_user: one CSI-Net shared by the users' columns (spec s4.2 note; see :class:`CSINet`).

    Call: ``model(observation, P, N_0) -> Beamformers(precoder [B, N, K])`` with ``||W||_F^2 = P``.

    Example:
        >>> import torch
        >>> m = UplinkMDL(4, 2).eval()
        >>> u = torch.randn(3, 4, 2, dtype=torch.complex64)
        >>> w = m(u, 10.0, 1.0).precoder
        >>> w.shape, bool(torch.allclose((w.abs() ** 2).sum((1, 2)), torch.tensor(10.0)))
        (torch.Size([3, 4, 2]), True)
    """

    model_name = "uplink-mdl"

    def __init__(
        self,
        num_bs_antennas: int,
        num_users: int,
        arch: str = "small",
        input_scale: float = 1.0,
        output_scale: float = 1.0,
        zf_inference: bool = False,
        csi_per_user: bool = False,
    ):
        super().__init__()
        self._setup(num_bs_antennas, num_users, arch, input_scale, output_scale, csi_per_user)
        self.zf_inference = bool(zf_inference)
        n, k = self.num_bs_antennas, self.num_users
        self.power_net = PowerNetFC(n, k) if self.arch == "small" else PowerNetCNN(n, k)
        self.name = "uplink-mdl"

    def heads(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(H_D estimate [B, N, K], p/P [B, K], q/P [B, K])`` from the uplink information."""
        h_hat = self.learned_channel(u)
        scaled = h_hat / self.output_scale
        pf, qf = self.power_net(to_real(scaled) if self.arch == "small" else scaled)
        return h_hat, pf, qf

    def beamformer(self, h_hat, pf, qf, power, noise_var, *, form: str = "push") -> torch.Tensor:
        """The structure (7) on the learned channel: ``[B, N, K]`` of total power P. ``form`` as in
        :func:`~beamlearn.precoding.optimal_structure` (all give the same W; ``"full"`` and
        ``"reduced"`` are the paper's original and reduced-dimension costs)."""
        p = torch.as_tensor(power, dtype=pf.dtype, device=pf.device)
        p = p[..., None] if p.dim() else p
        return optimal_structure(h_hat.mH, pf * p, qf * p, noise_var, form=form)

    def forward(self, observation, power, noise_var) -> Beamformers:
        u = uplink_input(observation)
        h_hat, pf, qf = self.heads(u)
        if self.zf_inference:
            w = zf_precoder(h_hat.mH, power)
        else:
            w = self.beamformer(h_hat, pf, qf, power, noise_var)
        return Beamformers(precoder=w.to(u.dtype))


class LearnedChannelBF(_UplinkNet):
    """The two-step baselines (spec s5.2, s5.3, s5.6): a CSI-Net trained on the channel MSE, then ZF on
    the learned channel (``beamformer="zf"``) or a beamforming network (``"bf"``: the CSI-Net
    architecture with BatchNorm in every hidden layer, ``2NK`` outputs -> ``W`` scaled to
    ``||W||_F^2 = P``). With uplink pilots and ``lmmse=True`` the CSI-Net reads the LMMSE estimate
    (15)-(17) of ``H_U`` from ``Y`` with the stored mean ``ul_mean`` ``[N, K]`` and row covariance
    ``ul_cov = Q / N`` ``[K, K]`` of the training uplink channels (both kept as real pairs).

    Example:
        >>> import torch
        >>> m = LearnedChannelBF(4, 2, beamformer="zf").eval()
        >>> m(torch.randn(3, 4, 2, dtype=torch.complex64), 10.0, 1.0).precoder.shape
        torch.Size([3, 4, 2])
    """

    model_name = "uplink-learned-channel"

    def __init__(
        self,
        num_bs_antennas: int,
        num_users: int,
        arch: str = "small",
        beamformer: str = "zf",
        input_scale: float = 1.0,
        output_scale: float = 1.0,
        lmmse: bool = False,
        csi_per_user: bool = False,
    ):
        super().__init__()
        self._setup(num_bs_antennas, num_users, arch, input_scale, output_scale, csi_per_user)
        self.beamformer = check_one_of("beamformer", beamformer, ("zf", "bf"))
        self.lmmse = bool(lmmse)
        n, k = self.num_bs_antennas, self.num_users
        if self.beamformer == "bf":
            layers, width = _widths(self.arch, n, k)
            self.bf_net = _mlp(2 * n * k, width, layers, 2 * n * k, batch_norm=True, act=nn.Tanh)
        # stored as real pairs [..., 2]: Module.to(float32) would drop the imaginary part of complex buffers
        self.register_buffer("ul_mean", torch.zeros(n, k, 2))
        self.register_buffer("ul_cov", torch.view_as_real(torch.eye(k, dtype=torch.complex64)).clone())
        self.name = "learned-channel-" + self.beamformer

    def set_uplink_statistics(self, mean: torch.Tensor, row_cov: torch.Tensor) -> None:
        """Store the training set's uplink mean ``[N, K]`` and row covariance ``E[dH^H dH] / N`` ``[K, K]``."""
        self.ul_mean = torch.view_as_real(mean.detach().to(torch.complex128)).to(self.ul_mean).clone()
        self.ul_cov = torch.view_as_real(row_cov.detach().to(torch.complex128)).to(self.ul_cov).clone()

    def channel_input(self, observation, noise_var) -> torch.Tensor:
        """The CSI-Net's input ``[B, N, K]``: the uplink channel, or its LMMSE estimate from pilots."""
        if isinstance(observation, Observation) and observation.received is not None and self.lmmse:
            y, x = observation.received, observation.pilots
            rd = y.real.dtype
            cov = torch.view_as_complex(self.ul_cov.to(rd).contiguous())
            mean = torch.view_as_complex(self.ul_mean.to(rd).contiguous())
            return lmmse_estimate(y, x, noise_var, cov, mean=mean)
        return uplink_input(observation)

    def bf_precoder(self, h_hat: torch.Tensor, power) -> torch.Tensor:
        """The beamforming network on the learned channel: ``[B, N, K]`` with ``||W||_F^2 = P``."""
        n, k = self.num_bs_antennas, self.num_users
        w = from_real(self.bf_net(to_real(h_hat / self.output_scale)), n, k)
        p = torch.as_tensor(power, dtype=w.real.dtype, device=w.device)
        p = p[..., None, None] if p.dim() else p
        nrm = torch.sqrt((w.real**2 + w.imag**2).sum((-2, -1), keepdim=True)).clamp_min(1e-30)
        return w * (torch.sqrt(p) / nrm)

    def forward(self, observation, power, noise_var) -> Beamformers:
        u = self.channel_input(observation, noise_var)
        h_hat = self.learned_channel(u)
        if self.beamformer == "zf":
            w = zf_precoder(h_hat.mH, power)
        else:
            w = self.bf_precoder(h_hat, power)
        return Beamformers(precoder=w.to(u.dtype))


def rms(x: torch.Tensor) -> float:
    """Root mean square of the entries (real and imaginary parts) of ``x``: a global input scale."""
    return float(math.sqrt(float((x.real**2 + x.imag**2).mean()) / 2)) or 1.0
