"""The deep-unfolded MSER network (DU-NN), spec ``mser-unfolding-hbf.md`` s4.6 (eqs. (27)-(31)).

Each of the L layers is one iteration of the MSER gradient descent (:func:`.gd.mser_iteration`) with
trainable element-wise steps ``alpha``, offsets ``O`` and kernel widths ``rho = r sigma_n / sqrt(2)``
(r clamped to >= 0.05) per layer, user and block:

====================  =====================  ========
parameter             shape                  dtype
====================  =====================  ========
alpha_p, offset_p     [L, K, R_t, D_k]       complex
alpha_w, offset_w     [L, K, R_r, D_k]       complex
alpha_u, offset_u     [L, K, R_r, N_r]       real
alpha_f, offset_f     [L-1, N_t, R_t]        real
r_p, r_w, r_u         [L, K]                 real
r_f                   [L-1]                  real
====================  =====================  ========

The last layer's theta_F update is the plain GD rule with the fixed step ``mu_F decay^(L-1)`` and kernel
``rho_0`` (s4.6). With the initial values (``alpha`` = the GD steps of iteration l, ``O = 0``,
``r = 1``, no jitter) the network *is* L-iteration GD from the same start and symbols (spec U7); the
default configuration has 20,680 trainable real scalars (U8, :func:`parameter_count`).

The network needs J in-layer symbol vectors (known pilots, as GD does): drawn from a generator seeded
with ``symbol_seed`` at inference, so a call is deterministic; training passes fresh ones.

Zero-padding (s4.14): a network built for (N_t0, N_r0, K_0) serves any smaller (N_t1, N_r1, K_1) with the
same D_k: the channel is padded with zeros, the padded users and antennas are masked
(:class:`~.transceiver.Link`), and the beamformers are cropped back.

Parameters are stored in float64/complex128 (cast to the channel's dtype in the forward pass), so the
untrained network reproduces GD to rounding in complex128.
"""

from __future__ import annotations

import math

import torch

from ..._validation import check_bool, check_complex, check_int, check_one_of, check_power, check_real
from ...interface import Beamformers
from ...learned import LearnedMethod
from .gd import GDSteps, gd_kernel, mser_iteration
from .objective import ser_surrogate
from .transceiver import Link, MSERState, alignment_init, draw_symbols, modulation_order, stack_precoder

__all__ = ["MSERUnfolded", "parameter_count", "paper_parameter_count", "to_beamformers"]

MODULATIONS = ("qpsk", "16qam")


def parameter_count(
    layers: int, num_users: int, num_bs_antennas: int, num_rf_chains: int, num_rx_antennas: int, num_rx_rf: int, d: int
) -> int:
    """Exact trainable real scalars of the DU-NN (spec s4.6): per layer ``K(4 R_t D_k + 4 R_r D_k +
    2 R_r N_r + 3)``, plus ``2 N_t R_t + 1`` for every layer but the last."""
    per = num_users * (4 * num_rf_chains * d + 4 * num_rx_rf * d + 2 * num_rx_rf * num_rx_antennas + 3)
    return layers * per + (layers - 1) * (2 * num_bs_antennas * num_rf_chains + 1)


def paper_parameter_count(
    layers: int, num_users: int, num_bs_antennas: int, num_rf_chains: int, num_rx_antennas: int, num_rx_rf: int, d: int
) -> int:
    """The paper's formula (s5-C), ``2KL(3 + N_t D + N_r D + R_r N_r) + 2(L-1) R_t N_t`` with D the total
    number of streams (it does not match the parameter shapes; reported beside :func:`parameter_count`)."""
    dd = num_users * d
    return 2 * num_users * layers * (3 + num_bs_antennas * dd + num_rx_antennas * dd + num_rx_rf * num_rx_antennas) + (
        2 * (layers - 1) * num_rf_chains * num_bs_antennas
    )


def to_beamformers(link: Link, state: MSERState, detection: str | None = "sign") -> Beamformers:
    """The library's :class:`Beamformers` of a transceiver state: ``precoder = F V`` ``[..., Nt, D]``,
    ``combiner = U_k^H W_k`` ``[..., K, Nr, Dk]`` (stream i of user k is detected from ``c_ik^H y_k``)."""
    v = stack_precoder(state.p)
    if not link.hybrid:
        return Beamformers(precoder=v, combiner=state.w, detection=detection)
    f = link.analog_tx(state.theta_f)
    uh = link.analog_rx(state.theta_u).mH
    return Beamformers(analog=f, digital=v, rx_analog=uh, rx_digital=state.w, detection=detection)


class MSERUnfolded(LearnedMethod):
    """The MSER DU-NN: ``model(h, power, noise_var) -> Beamformers`` (hybrid, learned).

    Args:
        layers: L (default 15).
        num_bs_antennas, num_rf_chains, num_users, num_rx_antennas, num_rx_rf_chains, num_streams: the
            (largest) system the parameters are shaped for (defaults: the ``mser`` preset 64, 8, 2, 8, 4,
            3).
        modulation: ``"qpsk"`` or ``"16qam"``.
        num_samples: J in-layer symbol vectors (default 256).
        step_mode: ``"normalized"`` (default, s4.4) or ``"raw"`` gradients inside the layers.
        mu_p, mu_w, mu_u, mu_f, decay: the GD steps the parameters start from (``decay=None``: 0.98 for
            L <= 100, else 0.99), and the fixed last theta_F step.
        init_jitter: relative Gaussian jitter of the initial steps (0: the network is GD exactly).
        symbol_seed: seed of the in-layer symbols at inference.
        bp_grad_norm: normalise the back-propagated gradients of every layer's state per sample (37).

    Example:
        >>> from beamlearn.scenarios import get_scenario
        >>> sc = get_scenario("mser")
        >>> h = sc.channel_model()(4, seed=0)
        >>> bf = MSERUnfolded(layers=2)(h, *sc.power_and_noise(10.0))
        >>> bf.precoder.shape, bf.combiner.shape
        (torch.Size([4, 64, 6]), torch.Size([4, 2, 8, 3]))
    """

    name = "mser-unfolded"
    model_name = "mser-unfolded"
    hybrid = True

    def __init__(
        self,
        layers: int = 15,
        num_bs_antennas: int = 64,
        num_rf_chains: int = 8,
        num_users: int = 2,
        num_rx_antennas: int = 8,
        num_rx_rf_chains: int = 4,
        num_streams: int = 3,
        modulation: str = "qpsk",
        num_samples: int = 256,
        step_mode: str = "normalized",
        mu_p: float = 0.05,
        mu_w: float = 0.05,
        mu_u: float = 0.02,
        mu_f: float = 0.02,
        decay: float | None = None,
        init_jitter: float = 0.0,
        symbol_seed: int = 0,
        bp_grad_norm: bool = False,
    ):
        super().__init__()
        self.layers = check_int("layers", layers, 1, 1000)
        self.num_bs_antennas = check_int("num_bs_antennas", num_bs_antennas, 1)
        self.num_users = check_int("num_users", num_users, 1)
        self.num_rx_antennas = check_int("num_rx_antennas", num_rx_antennas, 1)
        self.num_rx_rf_chains = check_int("num_rx_rf_chains", num_rx_rf_chains, 1, num_rx_antennas)
        self.num_streams = check_int("num_streams", num_streams, 1, num_rx_rf_chains)
        self.num_rf_chains = check_int("num_rf_chains", num_rf_chains, num_users * num_streams, num_bs_antennas)
        self.modulation = check_one_of("modulation", modulation, MODULATIONS)
        self.num_samples = check_int("num_samples", num_samples, 1)
        self.step_mode = check_one_of("step_mode", step_mode, ("normalized", "raw"))
        self.mu_p = check_real("mu_p", mu_p, 0)
        self.mu_w = check_real("mu_w", mu_w, 0)
        self.mu_u = check_real("mu_u", mu_u, 0)
        self.mu_f = check_real("mu_f", mu_f, 0)
        self.decay = None if decay is None else check_real("decay", decay, 0, 1, open_lower=True)
        self.init_jitter = check_real("init_jitter", init_jitter, 0)
        self.symbol_seed = check_int("symbol_seed", symbol_seed, 0)
        self.bp_grad_norm = check_bool("bp_grad_norm", bp_grad_norm)
        self.metadata = {}
        L, K, nt, rt = self.layers, num_users, num_bs_antennas, num_rf_chains
        nr, rr, d = num_rx_antennas, num_rx_rf_chains, num_streams
        sched = GDSteps(mu_p, mu_w, mu_u, mu_f, decay)
        dec = sched.decay_for(L) ** torch.arange(L, dtype=torch.float64)
        gen = torch.Generator().manual_seed(12345)

        def steps(mu, shape, complex_, n=L):
            base = (mu * dec[:n]).reshape(n, *([1] * len(shape))).expand(n, *shape)
            if init_jitter:
                base = base * (1 + init_jitter * torch.randn(base.shape, generator=gen, dtype=torch.float64))
            base = base.clone()
            return torch.nn.Parameter(base.to(torch.complex128) if complex_ else base)

        def zeros(shape, complex_, n=L):
            return torch.nn.Parameter(torch.zeros(n, *shape, dtype=torch.complex128 if complex_ else torch.float64))

        self.alpha_p, self.offset_p = steps(mu_p, (K, rt, d), True), zeros((K, rt, d), True)
        self.alpha_w, self.offset_w = steps(mu_w, (K, rr, d), True), zeros((K, rr, d), True)
        self.alpha_u, self.offset_u = steps(mu_u, (K, rr, nr), False), zeros((K, rr, nr), False)
        self.alpha_f, self.offset_f = steps(mu_f, (nt, rt), False, L - 1), zeros((nt, rt), False, L - 1)
        self.r_p = torch.nn.Parameter(torch.ones(L, K, dtype=torch.float64))
        self.r_w = torch.nn.Parameter(torch.ones(L, K, dtype=torch.float64))
        self.r_u = torch.nn.Parameter(torch.ones(L, K, dtype=torch.float64))
        self.r_f = torch.nn.Parameter(torch.ones(L - 1, dtype=torch.float64))
        self.frozen_layers = 0
        for p in self.parameters():
            p.register_hook(self._freeze_hook)

    # -- helpers -------------------------------------------------------------------------------------
    @property
    def order(self) -> int:
        return modulation_order(self.modulation)

    def freeze_layers(self, first: int) -> None:
        """Transfer learning (s4.13): train only layers ``first..L-1`` (the gradients of layers
        ``0..first-1`` are zeroed by hooks, since the parameters are stacked over layers)."""
        self.frozen_layers = check_int("first", first, 0, self.layers)

    def _freeze_hook(self, g: torch.Tensor) -> torch.Tensor:
        if not self.frozen_layers:
            return g
        g = g.clone()
        g[: self.frozen_layers] = 0
        return g

    def link(self, h, power, noise_var) -> Link:
        return Link.from_channel(h, power, noise_var, self.order, hybrid=True)

    def _pad(self, h: torch.Tensor) -> torch.Tensor:
        k, nr, nt = h.shape[-3:]
        sizes = (self.num_users, self.num_rx_antennas, self.num_bs_antennas)
        if (k, nr, nt) == sizes:
            return h
        if k > sizes[0] or nr > sizes[1] or nt > sizes[2]:
            raise ValueError(
                f"channel (K, Nr, Nt) = {(k, nr, nt)} exceeds the network's system {sizes}; a network serves "
                "only systems at most its size (zero-padding, s4.14)"
            )
        out = h.new_zeros(*h.shape[:-3], *sizes)
        out[..., :k, :nr, :nt] = h
        return out

    def symbols(self, batch: tuple[int, ...], dtype, device, generator=None) -> torch.Tensor:
        """The in-layer symbol block at inference: one ``[D, J]`` block (known pilots) drawn from
        ``symbol_seed`` and shared by every channel, so a channel's result does not depend on the batch."""
        gen = generator if generator is not None else torch.Generator().manual_seed(self.symbol_seed)
        s = draw_symbols(
            (), self.num_users * self.num_streams, self.num_samples, self.order, generator=gen, dtype=dtype
        )
        return s.to(device).expand(*batch, *s.shape)

    # -- the network ---------------------------------------------------------------------------------
    def unrolled(self, link: Link, s: torch.Tensor, state: MSERState | None = None, *, record: bool = False):
        """Run the L layers from ``state`` (default: the alignment start) with in-layer symbols ``s``
        ``[..., D, J]``; returns the final state (and every layer's state with ``record=True``)."""
        if state is None:
            gen = torch.Generator().manual_seed(self.symbol_seed)  # deterministic fill of rank-deficient starts
            state = alignment_init(link, self.num_rf_chains, self.num_rx_rf_chains, self.num_streams, generator=gen)
        ct, rt = link.h.dtype, link.h.real.dtype
        half = link.sigma_n / math.sqrt(2)
        half_u = half[..., None] if isinstance(half, torch.Tensor) and half.dim() else half
        sched = GDSteps(self.mu_p, self.mu_w, self.mu_u, self.mu_f, self.decay)
        create = torch.is_grad_enabled() and self.training
        states = [state] if record else None
        for l in range(self.layers):
            last = l == self.layers - 1
            steps = {
                "p": self.alpha_p[l].to(ct),
                "w": self.alpha_w[l].to(ct),
                "theta_u": self.alpha_u[l].to(rt),
            }
            offsets = {"p": self.offset_p[l].to(ct), "w": self.offset_w[l].to(ct), "theta_u": self.offset_u[l].to(rt)}
            kern = {
                "p": self.r_p[l].clamp_min(0.05).to(rt) * half_u,
                "w": self.r_w[l].clamp_min(0.05).to(rt) * half_u,
                "theta_u": self.r_u[l].clamp_min(0.05).to(rt) * half_u,
            }
            if not last:
                steps["theta_f"] = self.alpha_f[l].to(rt)
                offsets["theta_f"] = self.offset_f[l].to(rt)
                kern["theta_f"] = self.r_f[l].clamp_min(0.05).to(rt) * half
            else:  # (25): the plain GD step of iteration L-1 with kernel rho_0, nothing trainable
                steps["theta_f"] = sched.at(l, self.layers)["theta_f"]
                kern["theta_f"] = gd_kernel(link)
            state = mser_iteration(
                link, state, s, steps, kern, offsets=offsets, step_mode=self.step_mode, create_graph=create
            )
            if self.bp_grad_norm and create:
                _normalise_backward(state)
            if record:
                states.append(state)
        return (state, states) if record else state

    def design(self, link: Link, s: torch.Tensor | None = None) -> MSERState:
        if s is None:
            s = self.symbols(link.h.shape[:-3], link.h.dtype, link.h.device)
        return self.unrolled(link, s)

    def forward(self, h: torch.Tensor, power, noise_var) -> Beamformers:
        """Beamformers for channels ``h`` ``[..., K, Nr, Nt]`` (at most the network's system size)."""
        check_complex("h", h)
        if h.dim() < 3:
            raise ValueError(f"h must be [..., K, Nr, Nt], got shape {tuple(h.shape)}")
        check_power("power", power)
        check_power("noise_var", noise_var)
        k, nr, nt = h.shape[-3:]
        link = self.link(self._pad(h), power, noise_var)
        st = self.design(link)
        bf = to_beamformers(link, st, "sign" if self.order == 4 else "equalized")
        if (k, nr, nt) == tuple(link.h.shape[-3:]):
            return bf
        d = self.num_streams
        return Beamformers(
            analog=bf.analog[..., :nt, :],
            digital=bf.digital[..., : k * d],
            rx_analog=bf.rx_analog[..., :k, :nr, :],
            rx_digital=bf.rx_digital[..., :k, :, :],
            detection=bf.detection,
        )

    def loss(self, link: Link, s_layers: torch.Tensor, s_loss: torch.Tensor) -> torch.Tensor:
        """(31): the mean over channels of the SER bound with the true noise kernel, on loss symbols
        ``s_loss`` independent of the in-layer ``s_layers`` (s4.6)."""
        st = self.unrolled(link, s_layers)
        return ser_surrogate(link, st, s_loss).mean()


def _normalise_backward(state: MSERState) -> None:
    """(37): hooks scaling the gradient reaching each block of this layer's state to ``K / sum_k
    ||g_k||_F`` per sample (theta_F: unit norm)."""

    def per_user(g):
        k = g.shape[-3]
        n = torch.sqrt((g.abs() ** 2).sum((-1, -2))).sum(-1)  # [...]
        return k * g / n.clamp_min(torch.finfo(n.dtype).tiny)[..., None, None, None]

    def whole(g):
        n = torch.sqrt((g.abs() ** 2).sum((-1, -2)))
        return g / n.clamp_min(torch.finfo(n.dtype).tiny)[..., None, None]

    for t, fn in ((state.p, per_user), (state.w, per_user), (state.theta_u, per_user), (state.theta_f, whole)):
        if t is not None and t.requires_grad:
            t.register_hook(fn)
