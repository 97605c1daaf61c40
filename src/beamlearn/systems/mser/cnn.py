"""The black-box benchmark CNN of the MSER paper (spec ``mser-unfolding-hbf.md`` s4.11, Fig. 4).

Four CNNs map a channel ``H`` ``[..., K, Nr, Nt]`` to the hybrid transceiver of s2 end to end:

====================  ===============================================  =====================================
network               input (real [Re, Im] stacks)                      output
====================  ===============================================  =====================================
theta_F-NN            all users' ``H_k``: ``2K x Nr x Nt``               ``Nt R_t`` phases ``pi tanh(.)``
theta_U-NN (shared)   one user's ``H_k``: ``2 x Nr x Nt``                ``R_r Nr`` phases ``pi tanh(.)``
P-NN                  all users' ``A_k = U_k H_k F``: ``2K x R_r x R_t``  ``2 R_t D`` -> ``V``, then (26)
W-NN (shared)         one user's ``A_k V``, own streams first: ``2 x R_r x D``  ``2 R_r D_k`` -> ``W_k``, s4.3
====================  ===============================================  =====================================

so ``F = exp(j theta_F)`` and ``U_k = exp(j theta_U,k)`` are unit modulus, ``||F V||_F^2 = P_T`` and
``||U_k^H w_ik|| = 1``. The shared networks run on the users stacked into the batch. Gradients flow
through the whole chain (the P- and W-NN inputs depend on the phases).

Every CNN is the spec's concrete block (DEFAULT, not in the paper, which only says "17 layers of
convolution, pooling, fully-connected and batch-normalisation layers")::

    [Conv3x3(C) -> BN -> ReLU] x2 -> MaxPool2x2 -> [Conv3x3(2C) -> BN -> ReLU] x2
    -> AdaptiveMaxPool(4x4) -> Flatten -> FC(512) -> BN -> ReLU -> FC(256) -> BN -> ReLU -> FC(out)

with 'same' padding. Choices made here:

* **Pooling**: ``MaxPool2x2`` uses ``ceil_mode=True``, so no input is too small: a side of 1 stays 1
  and an odd side keeps its last row/column (default sizes: 8 x 64 -> 4 x 32, P-NN 4 x 8 -> 2 x 4,
  W-NN 4 x 6 -> 2 x 3; all even, so ceil_mode changes nothing there). ``AdaptiveMaxPool(4x4)`` then
  brings any map to 4 x 4 (replicating cells of maps smaller than 4 x 4, e.g. the W-NN's 2 x 3).
* **Input scaling**: every input sample (one complex stack: all users for theta_F-NN and P-NN, one
  user for theta_U-NN and W-NN) is divided by ``sqrt(mean |x|^2)`` over its complex entries, so it has
  unit average power per complex entry (the raw channels have about 0.09 per entry; a zero input stays
  zero). The beamformers are normalised anyway, so the absolute channel gain carries no information the
  networks need at a fixed SNR (one model per SNR, as for the DU-NN).
* **Biases**: convolutions and the two hidden FC layers have no bias (the BatchNorm after them has
  one); the output FC layer has a bias.
* **Precision**: the CNNs run in their parameters' dtype (float32 unless converted); the transceiver
  algebra (effective channels, normalisations) runs in the channel's dtype.
* **BatchNorm**: a new model is put in eval mode (running statistics) so calls are per-channel and
  deterministic; the trainer switches to train mode for the optimiser steps (batch statistics) and back.
  In train mode a batch must hold at least 2 channels.

The loss (:func:`cnn_loss`) is the SER bound (15)/(31) with the true-noise kernel of s4.6 on fresh
symbols (criterion ``"ser"``, MSER-CNN) or the closed-form sum MSE of s4.10 (``"mse"``, MMSE-CNN).
Transfer learning (s4.13) fine-tunes the FC layers only (:func:`freeze_except_fc`, or
``CNNConfig(fc_only=True, init_from=...)``).

Training (:class:`CNNConfig`, :class:`CNNTask`, the shared trainer): SGD with momentum 0.9, learning
rate 0.01 halved every 10 epochs, batch 20, 10 000 training channels, 100 epochs, the model of the best
validation epoch kept. The shared trainer has no early stopping; the best-epoch selection stands in for
the spec's "early stop on validation loss" (the remaining epochs still run).

Example:
    >>> import torch
    >>> from beamlearn.scenarios import get_scenario
    >>> sc = get_scenario("mser")
    >>> h = sc.channel_model()(4, seed=0)
    >>> bf = BenchmarkCNN(channels=8)(h, *sc.power_and_noise(10.0))
    >>> bf.precoder.shape, bf.analog.shape, bf.rx_analog.shape, bf.rx_digital.shape
    (torch.Size([4, 64, 6]), torch.Size([4, 64, 8]), torch.Size([4, 2, 8, 4]), torch.Size([4, 2, 4, 3]))
    >>> bool(torch.allclose(bf.precoder.abs().pow(2).sum((-1, -2)), torch.ones(4)))
    True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..._validation import check_bool, check_complex, check_int, check_one_of, check_power, check_real
from ...interface import Beamformers
from ...learned import LearnedMethod, Stage, TrainConfig, TrainingTask, option
from ...scenarios import PRESETS, get_scenario
from .objective import ser_surrogate, sum_mse
from .transceiver import Link, MSERState, draw_symbols, modulation_order, split_precoder, stack_precoder, system_sizes

__all__ = [
    "BenchmarkCNN",
    "CNNConfig",
    "CNNTask",
    "cnn_block",
    "cnn_loss",
    "fc_parameters",
    "freeze_except_fc",
    "parameter_count",
]

CRITERIA = ("ser", "mse")
MODULATIONS = ("qpsk", "16qam")
VAL_SYMBOL_SEED_OFFSET = 300_000  # the fixed validation symbols
VAL_SAMPLES = 1000  # symbol vectors per validation channel (spec s9 #37)
VAL_CHUNK = 500  # channels per validation forward pass


def cnn_block(in_channels: int, out_features: int, channels: int = 32) -> nn.Sequential:
    """One CNN of s4.11: ``[B, in_channels, H, W]`` real -> ``[B, out_features]`` (any ``H, W >= 1``).

    ``[Conv3x3(C) -> BN -> ReLU] x2 -> MaxPool2x2 (ceil_mode) -> [Conv3x3(2C) -> BN -> ReLU] x2 ->
    AdaptiveMaxPool(4x4) -> Flatten -> FC(512) -> BN -> ReLU -> FC(256) -> BN -> ReLU -> FC(out)``.
    """
    c, c2 = channels, 2 * channels

    def conv(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(
        *conv(in_channels, c),
        *conv(c, c),
        nn.MaxPool2d(2, ceil_mode=True),
        *conv(c, c2),
        *conv(c2, c2),
        nn.AdaptiveMaxPool2d(4),
        nn.Flatten(),
        nn.Linear(16 * c2, 512, bias=False),
        nn.BatchNorm1d(512),
        nn.ReLU(),
        nn.Linear(512, 256, bias=False),
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Linear(256, out_features),
    )


def parameter_count(
    num_bs_antennas: int = 64,
    num_rf_chains: int = 8,
    num_users: int = 2,
    num_rx_antennas: int = 8,
    num_rx_rf_chains: int = 4,
    num_streams: int = 3,
    channels: int = 32,
) -> int:
    """Trainable real scalars of :class:`BenchmarkCNN` (BatchNorm affine parameters included, running
    statistics excluded); 3,061,272 for the defaults."""
    c, c2 = channels, 2 * channels

    def block(cin, out):
        convs = 9 * (cin * c + c * c + c * c2 + c2 * c2) + 2 * (2 * c + 2 * c2)
        fcs = 16 * c2 * 512 + 512 * 256 + 256 * out + out + 2 * (512 + 256)
        return convs + fcs

    k, d = num_users, num_users * num_streams
    return (
        block(2 * k, num_bs_antennas * num_rf_chains)
        + block(2, num_rx_rf_chains * num_rx_antennas)
        + block(2 * k, 2 * num_rf_chains * d)
        + block(2, 2 * num_rx_rf_chains * num_streams)
    )


def _unit_power(x: torch.Tensor, dims: int) -> torch.Tensor:
    """``x / sqrt(mean |x|^2)`` over the last ``dims`` dimensions (complex); an all-zero sample stays 0."""
    p = (x.real.square() + x.imag.square()).flatten(-dims).mean(-1)
    p = p.reshape(*p.shape, *([1] * dims))
    ok = p > torch.finfo(p.dtype).tiny
    return x * torch.where(ok, torch.rsqrt(torch.where(ok, p, torch.ones_like(p))), torch.zeros_like(p))


def _stack(x: torch.Tensor, dtype) -> torch.Tensor:
    """Complex ``[B, G, H, W]`` -> real ``[B, 2G, H, W]`` (``[Re x_1, Im x_1, Re x_2, ...]``) in ``dtype``."""
    b, g, hh, ww = x.shape
    return torch.view_as_real(x).permute(0, 1, 4, 2, 3).reshape(b, 2 * g, hh, ww).to(dtype)


def _complex(y: torch.Tensor, shape: tuple[int, ...], dtype) -> torch.Tensor:
    """Real ``[B, 2 n]`` (first half Re, second half Im) -> complex ``[B, *shape]`` in ``dtype``."""
    re, im = y.chunk(2, dim=-1)
    return torch.complex(re, im).reshape(y.shape[0], *shape).to(dtype)


class BenchmarkCNN(LearnedMethod):
    """The 4-CNN black-box benchmark of s4.11: ``model(h, power, noise_var) -> Beamformers``.

    Args:
        num_bs_antennas, num_rf_chains: N_t and R_t (defaults 64, 8).
        num_users: K (default 2).
        num_rx_antennas, num_rx_rf_chains, num_streams: N_r, R_r and D_k per user (defaults 8, 4, 3);
            ``D_k <= R_r <= N_r`` and ``K D_k <= R_t <= N_t``.
        channels: C, the width of the first convolutions (the second pair has 2C; default 32).
        criterion: ``"ser"`` (MSER-CNN, loss = SER bound) or ``"mse"`` (MMSE-CNN, loss = sum MSE); read
            by :func:`cnn_loss`.
        modulation: ``"qpsk"`` or ``"16qam"`` (the symbols of the loss; also in ``metadata``).

    Attributes:
        theta_f_net, theta_u_net, p_net, w_net: the four CNNs (:func:`cnn_block`).
        metadata: ``{"modulation": ..., "modulation_order": 4 or 16}`` plus what training adds.

    The model serves exactly the (K, N_r, N_t) it was built for (channels ``[..., K, Nr, Nt]``, any
    leading dims). Power and noise follow the library convention (unit-energy symbols, ``||F V||_F^2 =
    power``, SNR = power / noise_var); the Link maps them to the paper's unnormalised symbols (s3.2).
    See the module docstring for the architecture, input scaling and BatchNorm mode.
    """

    name = "mser-cnn"
    model_name = "mser-cnn"
    hybrid = True

    def __init__(
        self,
        num_bs_antennas: int = 64,
        num_rf_chains: int = 8,
        num_users: int = 2,
        num_rx_antennas: int = 8,
        num_rx_rf_chains: int = 4,
        num_streams: int = 3,
        channels: int = 32,
        criterion: str = "ser",
        modulation: str = "qpsk",
    ):
        super().__init__()
        self.num_bs_antennas = check_int("num_bs_antennas", num_bs_antennas, 1)
        self.num_users = check_int("num_users", num_users, 1)
        self.num_rx_antennas = check_int("num_rx_antennas", num_rx_antennas, 1)
        self.num_rx_rf_chains = check_int("num_rx_rf_chains", num_rx_rf_chains, 1, self.num_rx_antennas)
        self.num_streams = check_int("num_streams", num_streams, 1, self.num_rx_rf_chains)
        self.num_rf_chains = check_int(
            "num_rf_chains", num_rf_chains, self.num_users * self.num_streams, self.num_bs_antennas
        )
        self.channels = check_int("channels", channels, 1)
        self.criterion = check_one_of("criterion", criterion, CRITERIA)
        self.modulation = check_one_of("modulation", modulation, MODULATIONS)
        self.order = modulation_order(modulation)
        k, nt, rt = self.num_users, self.num_bs_antennas, self.num_rf_chains
        nr, rr, dk = self.num_rx_antennas, self.num_rx_rf_chains, self.num_streams
        self.theta_f_net = cnn_block(2 * k, nt * rt, self.channels)
        self.theta_u_net = cnn_block(2, rr * nr, self.channels)
        self.p_net = cnn_block(2 * k, 2 * rt * k * dk, self.channels)
        self.w_net = cnn_block(2, 2 * rr * dk, self.channels)
        self.metadata = {"modulation": self.modulation, "modulation_order": self.order}
        self.eval()

    # -- computation -----------------------------------------------------------------------------
    def link(self, h: torch.Tensor, power, noise_var) -> Link:
        """The hybrid :class:`~.transceiver.Link` of channels ``h`` at ``power`` and ``noise_var``
        (library convention) with this model's modulation."""
        return Link.from_channel(h, power, noise_var, self.order, hybrid=True)

    def _check_shape(self, h: torch.Tensor) -> None:
        want = (self.num_users, self.num_rx_antennas, self.num_bs_antennas)
        if h.dim() < 3 or tuple(h.shape[-3:]) != want:
            raise ValueError(
                f"h must be [..., K={want[0]}, Nr={want[1]}, Nt={want[2]}] for this model, got shape {tuple(h.shape)}"
            )

    def design(self, link: Link) -> MSERState:
        """The transceiver ``(P, W, theta_U, theta_F)`` for ``link`` (``h`` ``[..., K, Nr, Nt]``):
        ``P`` ``[..., K, R_t, D_k]`` with ``||F V||_F^2 = P_T``, ``W`` ``[..., K, R_r, D_k]`` with
        ``||U_k^H w_ik|| = 1``, phases ``theta_U`` ``[..., K, R_r, N_r]`` and ``theta_F`` ``[..., N_t, R_t]``
        in (-pi, pi) (radians). Differentiable with respect to the CNN parameters."""
        if not link.hybrid:
            raise ValueError("the benchmark CNN designs a hybrid transceiver; build the Link with hybrid=True")
        h = link.h
        self._check_shape(h)
        lead = h.shape[:-3]
        k, nr, nt = h.shape[-3:]
        rt, rr, dk = self.num_rf_chains, self.num_rx_rf_chains, self.num_streams
        net_dtype = next(self.parameters()).dtype
        rdtype = h.real.dtype
        hb = h.reshape(-1, k, nr, nt)  # [B, K, Nr, Nt]
        b = hb.shape[0]

        # theta_F-NN: all users' channels, scaled per channel
        x = _stack(_unit_power(hb, 3), net_dtype)  # [B, 2K, Nr, Nt]
        theta_f = (math.pi * torch.tanh(self.theta_f_net(x))).reshape(*lead, nt, rt).to(rdtype)
        # theta_U-NN: shared over users, scaled per user
        x = _stack(_unit_power(hb.reshape(b * k, 1, nr, nt), 3), net_dtype)  # [B K, 2, Nr, Nt]
        theta_u = (math.pi * torch.tanh(self.theta_u_net(x))).reshape(*lead, k, rr, nr).to(rdtype)
        # P-NN: the effective channels A_k = U_k H_k F of all users
        a = link.effective(theta_u, theta_f)  # [..., K, Rr, Rt]
        x = _stack(_unit_power(a.reshape(b, k, rr, rt), 3), net_dtype)  # [B, 2K, Rr, Rt]
        v = _complex(self.p_net(x), (rt, k * dk), h.dtype).reshape(*lead, rt, k * dk)
        p = link.normalize_power(split_precoder(v, k), theta_f)  # [..., K, Rt, Dk]
        # W-NN: shared over users, input A_k V with user k's own streams rotated to the front (the shared
        # network must know which columns are its user's)
        av = a @ stack_precoder(p).unsqueeze(-3)  # [..., K, Rr, D]
        d = k * dk
        own_first = (torch.arange(d, device=h.device)[None, :] + dk * torch.arange(k, device=h.device)[:, None]) % d
        av = torch.gather(av, -1, own_first[:, None, :].expand(av.shape))
        x = _stack(_unit_power(av.reshape(b * k, 1, rr, k * dk), 3), net_dtype)  # [B K, 2, Rr, D]
        w = _complex(self.w_net(x), (rr, dk), h.dtype).reshape(*lead, k, rr, dk)
        w = link.normalize_combiners(w, theta_u)
        return MSERState(p, w, theta_u, theta_f)

    def forward(self, h: torch.Tensor, power, noise_var) -> Beamformers:
        """Beamformers for channels ``h`` ``[..., K, Nr, Nt]``: ``precoder = F V`` ``[..., Nt, D]``,
        ``analog = F`` ``[..., Nt, R_t]``, ``digital = V`` ``[..., R_t, D]``, ``rx_analog = U_k^H``
        ``[..., K, Nr, R_r]``, ``rx_digital = W`` ``[..., K, R_r, D_k]`` (so ``combiner = U_k^H W_k``), and
        ``detection`` ``"sign"`` (QPSK; ``"equalized"`` for 16-QAM, which the paper's phase-aligned slicer
        equals)."""
        check_complex("h", h)
        self._check_shape(h)
        check_power("power", power)
        check_power("noise_var", noise_var)
        link = self.link(h, power, noise_var)
        st = self.design(link)
        f = link.analog_tx(st.theta_f)
        uh = link.analog_rx(st.theta_u).mH
        kw = {}
        if "detection" in {fl.name for fl in dataclasses.fields(Beamformers)}:
            kw["detection"] = "sign" if self.order == 4 else "equalized"
        v = stack_precoder(st.p)
        return Beamformers(precoder=f @ v, analog=f, digital=v, rx_analog=uh, rx_digital=st.w, **kw)


def _symbols(link: Link, d: int, j: int, generator) -> torch.Tensor:
    """``[..., D, J]`` symbols for ``link`` drawn with ``generator`` (on its own device) or the global RNG."""
    batch = tuple(link.h.shape[:-3])
    dev = link.h.device
    if generator is None:
        return draw_symbols(batch, d, j, link.m, dtype=link.h.dtype, device=dev)
    s = draw_symbols(batch, d, j, link.m, generator=generator, dtype=link.h.dtype, device=generator.device)
    return s.to(dev)


def _objective(model: BenchmarkCNN, link: Link, state: MSERState, generator, num_samples: int) -> torch.Tensor:
    """Per-channel objective ``[...]`` of ``model.criterion`` for a designed ``state``."""
    if model.criterion == "mse":
        return sum_mse(link, state)
    d = state.p.shape[-3] * state.p.shape[-1]
    return ser_surrogate(link, state, _symbols(link, d, num_samples, generator))


def cnn_loss(
    model: BenchmarkCNN, link: Link, generator: torch.Generator | None = None, num_samples: int = 256
) -> torch.Tensor:
    """The training loss of the benchmark CNN on ``link`` (channels ``[..., K, Nr, Nt]``), a scalar.

    * criterion ``"ser"`` (spec s4.11, (15)/(31)): the mean over channels of
      :func:`~.objective.ser_surrogate` ``(link, state, s)`` with the true-noise kernel
      ``sigma_n ||U_k^H w_ik|| / sqrt(2)`` (s4.6) and ``num_samples`` fresh symbol vectors
      ``s = draw_symbols(batch, K D_k, num_samples, m)`` (from ``generator``, or the global RNG): the
      sum over streams of the bound ``P_R + P_I`` (dimensionless);
    * criterion ``"mse"`` (s4.10): the mean of :func:`~.objective.sum_mse` (closed form, no symbols; in
      the paper's unnormalised-symbol units).
    """
    check_int("num_samples", num_samples, 1)
    return _objective(model, link, model.design(link), generator, num_samples).mean()


def fc_parameters(model: BenchmarkCNN) -> list[nn.Parameter]:
    """The parameters of the FC (``nn.Linear``) layers of the four CNNs (3 layers each)."""
    return [p for mod in model.modules() if isinstance(mod, nn.Linear) for p in mod.parameters()]


def freeze_except_fc(model: BenchmarkCNN) -> list[nn.Parameter]:
    """Transfer learning (s4.13, DEFAULT): only the FC layers train. Sets ``requires_grad`` to ``False``
    on every other parameter (convolutions, BatchNorm affine) and ``True`` on the FC ones, and returns
    the FC parameters (for an optimiser). BatchNorm running statistics are buffers: they still adapt to
    the new channels when the model is in train mode (use ``model.eval()`` to keep them)."""
    fc = fc_parameters(model)
    keep = {id(p) for p in fc}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    return fc


# ------------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CNNConfig(TrainConfig):
    """Configuration of a benchmark-CNN training run (s4.11): the shared fields of
    :class:`~beamlearn.learned.TrainConfig` with the spec's defaults, and the network's own."""

    snr_db: float = option(20.0, "Training SNR in dB (P_T = 1, sigma^2 = P_T / 10^(SNR/10)).", required=True)
    scenario: str = option("mser", "Hybrid multi-antenna-user scenario preset supplying sizes, channels and power.")
    modulation: str = option("qpsk", "qpsk or 16qam.")
    criterion: str = option("ser", "ser (MSER-CNN: SER bound loss) or mse (MMSE-CNN: sum-MSE loss).")
    channels: int = option(32, "Width C of the first convolutions (the second pair has 2C).")
    num_samples: int = option(256, "Fresh symbol vectors J per channel in the SER loss.")
    momentum: float = option(0.9, "SGD momentum, in [0, 1).")
    fc_only: bool = option(False, "Train the FC layers only (transfer learning, s4.13).")
    init_from: str | None = option(None, "Start from the weights of this mser-cnn model file (transfer learning).")
    epochs: int = option(100, "Training epochs.")
    batch_size: int = option(20, "Channels per SGD step.")
    lr: float | None = option(0.01, "SGD learning rate.")
    lr_decay: float = option(0.5, "Learning-rate factor every lr_step epochs.")
    lr_step: int | None = option(10, "Apply lr_decay every lr_step epochs.")
    train_channels: int = option(10000, "Training channels.")
    val_channels: int = option(100, "Validation channels (best epoch).")

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "snr_db", check_real("snr_db", self.snr_db, -100.0, 100.0))
        check_one_of("scenario", self.scenario, tuple(PRESETS))
        sc = PRESETS[self.scenario]
        if sc.num_rx_antennas < 2 or sc.num_rf_chains is None or sc.num_rx_rf_chains is None:
            raise ValueError(
                f"scenario must be a hybrid scenario with multi-antenna users (num_rx_antennas >= 2, "
                f"num_rf_chains and num_rx_rf_chains set); {self.scenario!r} is not"
            )
        check_one_of("modulation", self.modulation, MODULATIONS)
        check_one_of("criterion", self.criterion, CRITERIA)
        check_int("channels", self.channels, 1, 1024)
        check_int("num_samples", self.num_samples, 1, 1_000_000)
        object.__setattr__(self, "momentum", check_real("momentum", self.momentum, 0.0, 1.0, open_upper=True))
        check_bool("fc_only", self.fc_only)
        if self.init_from is not None:
            object.__setattr__(self, "init_from", str(self.init_from))
        if self.train_channels % self.batch_size == 1:
            raise ValueError(
                f"train_channels % batch_size must not be 1 (train_channels={self.train_channels}, "
                f"batch_size={self.batch_size}): BatchNorm cannot train on a last batch of one channel"
            )

    def default_lr(self) -> float:
        return 0.01


class CNNTask(TrainingTask):
    """The benchmark CNN, its channels, loss (:func:`cnn_loss`) and validation, for :func:`~beamlearn.learned.train`.

    Data: channels of the scenario with seeds ``100000 + seed`` (training) and ``200000 + seed``
    (validation), drawn in complex128 on the CPU and cast (training: to ``dtype``; validation stays
    complex128), as for unfolded PGA; or the first drops of ``dataset``.

    Metric ``minus_ser_bound`` (as the DU-NN task): **minus** the mean per-stream SER bound
    ``(P_R + P_I)`` with the true-noise kernel (the shared trainer keeps the epoch with the *highest*
    validation figure, so the SER is negated).
    Validation averages over the streams of all channels with 1000 fixed symbol vectors per channel
    (seed ``300000 + seed``), so it is the same function at every epoch; the training column is the same
    bound on the batches' fresh loss symbols (criterion ``"mse"``: computed beside the loss).

    Stages: one SGD stage (momentum, lr, StepLR ``lr_step``/``lr_decay``) over all parameters, or over
    the FC layers only with ``fc_only``.
    """

    metric = "minus_ser_bound"

    def __init__(self, config: CNNConfig):
        if not isinstance(config, CNNConfig):
            raise TypeError(f"config must be a CNNConfig, got {type(config).__name__}")
        super().__init__(config)
        self.scenario = get_scenario(config.scenario)
        self.power, self.noise_var = self.scenario.power_and_noise(config.snr_db)

    @property
    def label(self) -> str:
        c = self.config
        return f"mser-cnn ({c.criterion}) {c.snr_db:g} dB"

    def build_model(self) -> BenchmarkCNN:
        c, sc = self.config, self.scenario
        model = BenchmarkCNN(
            **system_sizes(sc),
            channels=c.channels,
            criterion=c.criterion,
            modulation=c.modulation,
        )
        if c.init_from is not None:
            from ...learned import load_model

            src = load_model(c.init_from)
            if not isinstance(src, BenchmarkCNN):
                raise ValueError(f"init_from {c.init_from} holds a {type(src).__name__}, not a BenchmarkCNN")
            try:
                model.load_state_dict(src.state_dict())
            except RuntimeError as e:
                raise ValueError(
                    f"init_from {c.init_from}: its sizes do not fit this configuration: {' '.join(str(e).split())}"
                ) from None
        return model

    def data(self):
        return self.channel_data()

    def stages(self) -> list[Stage]:
        c = self.config
        return [
            Stage(
                "fc" if c.fc_only else "train",
                c.epochs,
                c.learning_rate,
                parameters=fc_parameters if c.fc_only else None,
                optimizer="sgd",
                momentum=c.momentum,
                lr_decay=c.lr_decay,
                lr_step=c.lr_step,
            )
        ]

    def _link(self, model: BenchmarkCNN, h: torch.Tensor) -> Link:
        return model.link(h, self.power, self.noise_var)

    @staticmethod
    def _streams(link: Link, model: BenchmarkCNN) -> torch.Tensor:
        return (link.user_mask.sum(-1) * model.num_streams).clamp_min(1)

    def loss(self, model, h):
        link = self._link(model, h)
        state = model.design(link)
        value = _objective(model, link, state, None, self.config.num_samples)  # [B]
        if model.criterion == "ser":
            ser = value.detach()
        else:  # the logged figure stays the SER bound (fresh symbols from the checkpointed global RNG)
            with torch.no_grad():
                d = state.p.shape[-3] * state.p.shape[-1]
                ser = ser_surrogate(link, _detach(state), _symbols(link, d, self.config.num_samples, None))
        return value.mean(), -ser / self._streams(link, model)

    def validate(self, model, h) -> float:
        """Minus the mean per-stream SER bound on ``h`` (complex128 transceiver algebra, fixed symbols)."""
        gen = torch.Generator().manual_seed(VAL_SYMBOL_SEED_OFFSET + self.config.seed)
        h = h.to(torch.complex128)
        total = torch.zeros((), dtype=torch.float64)
        streams = torch.zeros((), dtype=torch.float64)
        d = model.num_users * model.num_streams
        for chunk in h.split(VAL_CHUNK):
            link = self._link(model, chunk)
            s = _symbols(link, d, VAL_SAMPLES, gen)
            total += ser_surrogate(link, model.design(link), s).double().sum().cpu()
            streams += self._streams(link, model).double().sum().cpu()
        return -float(total / streams)

    def metadata(self) -> dict:
        c, sc = self.config, self.scenario
        return {
            "snr_db": c.snr_db,
            "scenario": c.scenario,
            "criterion": c.criterion,
            "modulation": c.modulation,
            "modulation_order": modulation_order(c.modulation),
            "num_bs_antennas": sc.num_bs_antennas,
            "num_rf_chains": sc.num_rf_chains,
            "num_users": sc.num_users,
            "num_rx_antennas": sc.num_rx_antennas,
            "num_rx_rf_chains": sc.num_rx_rf_chains,
            "num_streams": sc.num_streams,
            "noise_var": self.noise_var,
            "power": self.power,
        }


def _detach(state: MSERState) -> MSERState:
    return MSERState(*(None if t is None else t.detach() for t in state))
