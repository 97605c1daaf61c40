"""Training of the JCEHB networks on the shared trainer (spec s4.9, defaults of s5).

``beamlearn train jcehb --snr-db 10 --scheme joint`` trains one :class:`~.model.JCEHBNet` for one SNR.
Schemes (stages of the shared trainer, each with its own parameters and learning rates):

* ``joint`` (the paper's two-stage training, the *Joint design NN*): stage 1 trains the analog phases
  ``Psi`` (lr x 10) and the digital NN ``Omega`` with the loss (9) on the **true** equivalent channels;
  stage 2 freezes ``Psi`` and trains CEDUN (pilots and RLS layers, ``Upsilon_C``) and ``Omega`` through the
  estimation step with the loss (12);
* ``one-stage`` (Fig. 13's baseline): everything from scratch through the estimation step, one stage of
  the same total epochs;
* ``separate`` (the *Separate design NN*): stage 1 as ``joint``; stage 2 trains CEDUN alone with the MSE
  ``E||H_eq_hat - H_eq||_F^2`` under the stage-1 analog beamformers, the digital NN untouched;
* ``hbdun``: stage 1 alone (HBDUN with perfect equivalent CSI, the upper reference; ``csi="perfect"``).

Loss: minus the mean sum rate (3) in bit/s/Hz on the true equivalent channels (noise of the pilots drawn
afresh in every forward pass from the global RNG, which the trainer seeds and checkpoints). Validation
(the best epoch, epoch 0 = the untrained network): the mean sum rate of the network as deployed
(``csi="pilots"``: through CEDUN; ``hbdun``: perfect CSI) on ``val_channels`` fresh channels with pilot
noise from a fixed seed, so every epoch of every stage is scored by the same figure.

Data: channels of the scenario (``jcehb`` preset with the configuration's K, N_RF^t), training seeds
``700000 + seed``, validation ``800000 + seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..._validation import check_int, check_one_of, check_real
from ...hybrid.equivalent import normalized_noise, sum_rate_eq
from ...learned import Stage, TrainConfig, TrainingTask, option
from ...scenarios import Scenario, get_scenario
from .baselines import ConventionalJCEHB
from .blackbox import BlackBoxJCEHB
from .model import INVERSE_MODES, JCEHBNet

__all__ = ["JCEHBConfig", "JCEHBTask", "SCHEMES", "scenario_for", "train_ssca"]

SCHEMES = ("joint", "one-stage", "separate", "hbdun")


@dataclass(frozen=True)
class JCEHBConfig(TrainConfig):
    """One training run of the JCEHB system (spec s5 defaults; the shared :class:`TrainConfig` fields)."""

    snr_db: float = option(10.0, "SNR per stream in dB (the paper's P/sigma^2; sigma^2 = 10^(-SNR/10)).")
    scheme: str = option("joint", "joint (two-stage), one-stage, separate or hbdun (stage 1, perfect CSI).")
    network: str = option("du", "du (the deep-unfolded JCEHB network) or blackbox (the black-box NN benchmark).")
    scenario: str = option("jcehb", "Scenario preset (multi-antenna users with hybrid receivers).")
    num_users: int | None = option(None, "Users K (default: the preset's 4).")
    num_rf_chains: int | None = option(None, "BS RF chains N_RF^t (default: the preset's 16).")
    pilot_length: int = option(16, "Pilot length L = CEDUN layers.")
    hbdun_layers: int = option(5, "HBDUN digital layers L_h.")
    inverse_mode: str = option(
        "exact", "Inverse in (31c): exact (default, see docs/jcehb.md) or approx (C^+ B + D^-, the paper's)."
    )
    affine_mode: str = option("matrix", "CEDUN multipliers: matrix, diag or scalar.")
    stage1_epochs: int = option(50, "Epochs of stage 1 (joint, separate); the rest of --epochs is stage 2.")
    phase_lr_factor: float = option(10.0, "Learning rate of the analog phases over the others (spec: 1e-2/1e-3).")
    grad_clip: float = option(10.0, "Global gradient-norm clipping (spec s5).")
    epochs: int = option(100, "Training epochs of all stages together (spec: 50 + 50).")
    batch_size: int = option(100, "Channel realisations per step (spec: 100).")
    train_channels: int = option(5000, "Training channels (spec: 5,000).")
    val_channels: int = option(1000, "Validation channels (best epoch).")
    lr_decay: float = option(0.5, "Learning-rate factor every lr_step epochs.")
    lr_step: int | None = option(20, "Epochs between learning-rate decays (spec: x0.5 every 20).")
    model_seed: int = option(0, "Seed of the initial analog phases.")

    train_seed_offset: ClassVar[int] = 700_000
    val_seed_offset: ClassVar[int] = 800_000

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "snr_db", check_real("snr_db", self.snr_db, -50, 60))
        check_one_of("scheme", self.scheme, SCHEMES)
        check_one_of("network", self.network, ("du", "blackbox"))
        check_int("pilot_length", self.pilot_length, 1, 1024)
        check_int("hbdun_layers", self.hbdun_layers, 1, 100)
        check_one_of("inverse_mode", self.inverse_mode, INVERSE_MODES)
        check_one_of("affine_mode", self.affine_mode, ("matrix", "diag", "scalar"))
        check_int("stage1_epochs", self.stage1_epochs, 0)
        if self.scheme in ("joint", "separate") and not 1 <= self.stage1_epochs < self.epochs:
            raise ValueError(
                f"stage1_epochs must be in [1, epochs - 1] = [1, {self.epochs - 1}] for scheme {self.scheme!r} "
                f"(two stages), got {self.stage1_epochs}"
            )
        if not check_real("phase_lr_factor", self.phase_lr_factor) > 0:
            raise ValueError(f"phase_lr_factor must be > 0, got {self.phase_lr_factor}")
        if not check_real("grad_clip", self.grad_clip) > 0:
            raise ValueError(f"grad_clip must be > 0, got {self.grad_clip}")
        if self.dataset is not None:
            raise ValueError("dataset: the JCEHB system trains on its scenario's channel model (use --scenario)")
        scenario_for(self)  # validates the sizes


def scenario_for(config: JCEHBConfig) -> Scenario:
    """The scenario of a run: the preset with the configuration's K, N_RF^t and SNR."""
    sc = get_scenario(config.scenario)
    if sc.num_rx_rf_chains is None or sc.num_rf_chains is None or sc.num_rx_antennas < 2:
        raise ValueError(f"scenario {config.scenario!r} must have a hybrid transmitter and hybrid multi-antenna users")
    changes, tags = {}, []
    if config.num_users is not None and config.num_users != sc.num_users:
        changes["num_users"] = config.num_users
        tags.append(f"K={config.num_users}")
    if config.num_rf_chains is not None and config.num_rf_chains != sc.num_rf_chains:
        changes["num_rf_chains"] = config.num_rf_chains
        tags.append(f"NRF={config.num_rf_chains}")
    if tuple(sc.snr_db) != (config.snr_db,):
        changes["snr_db"] = (config.snr_db,)
    if not changes:
        return sc
    name = f"{sc.name}[{','.join(tags)}]" if tags else sc.name
    return sc.replace(name=name, **changes)


class JCEHBTask(TrainingTask):
    """The JCEHB network, its channels, the sum-rate (or, for the separate design's CEDUN, MSE) loss."""

    metric = "sum_rate"

    def __init__(self, config: JCEHBConfig):
        if not isinstance(config, JCEHBConfig):
            raise TypeError(f"config must be a JCEHBConfig, got {type(config).__name__}")
        super().__init__(config)
        self.scenario = scenario_for(config)
        power, noise = self.scenario.power_and_noise(config.snr_db)
        sc = self.scenario
        self.noise = normalized_noise(noise, power, sc.num_users, sc.num_streams)  # sigma_tilde^2

    @property
    def label(self) -> str:
        c = self.config
        return f"jcehb {c.network} {c.scheme} {c.snr_db:g} dB"

    def build_model(self) -> JCEHBNet | BlackBoxJCEHB:
        c, sc = self.config, self.scenario
        sizes = (sc.num_users, sc.num_bs_antennas, sc.num_rx_antennas, sc.num_rf_chains)
        sizes += (sc.num_rx_rf_chains, sc.num_streams)
        csi = "perfect" if c.scheme == "hbdun" else "pilots"
        if c.network == "blackbox":
            return BlackBoxJCEHB(*sizes, pilot_length=c.pilot_length, csi=csi, seed=c.model_seed)
        return JCEHBNet(
            *sizes,
            pilot_length=c.pilot_length,
            hbdun_layers=c.hbdun_layers,
            inverse_mode=c.inverse_mode,
            affine_mode=c.affine_mode,
            csi=csi,
            seed=c.model_seed,
        )

    def data(self):
        return self.channel_data()

    # -- the stages --------------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        c = self.config
        lr, phase_lr = c.learning_rate, c.learning_rate * c.phase_lr_factor
        kw = {"lr_decay": c.lr_decay, "lr_step": c.lr_step, "grad_clip": c.grad_clip}

        def analog_and_digital(m):
            return [{"params": m.analog.parameters(), "lr": phase_lr}, {"params": m.digital.parameters()}]

        def everything(m):
            return [
                {"params": m.analog.parameters(), "lr": phase_lr},
                {"params": [*m.cedun.parameters(), *m.digital.parameters()]},
            ]

        def cedun_and_digital(m):
            return [*m.cedun.parameters(), *m.digital.parameters()]

        def cedun(m):
            return list(m.cedun.parameters())

        stage1 = Stage("stage1", c.stage1_epochs, lr, analog_and_digital, options={"csi": "perfect"}, **kw)
        rest = c.epochs - c.stage1_epochs
        if c.scheme == "hbdun":
            return [Stage("stage1", c.epochs, lr, analog_and_digital, options={"csi": "perfect"}, **kw)]
        if c.scheme == "one-stage":
            return [Stage("one-stage", c.epochs, lr, everything, options={"csi": "pilots"}, **kw)]
        if c.scheme == "separate":
            return [stage1, Stage("cedun-mse", rest, lr, cedun, options={"csi": "pilots", "loss": "mse"}, **kw)]
        return [stage1, Stage("stage2", rest, lr, cedun_and_digital, options={"csi": "pilots"}, **kw)]

    # -- loss and validation --------------------------------------------------------------------------------
    def loss(self, model: JCEHBNet, h: torch.Tensor):
        opts = self.stage.options if self.stage is not None else {"csi": model.csi}
        h_eq, view, _, gram, f_bb, w_bb = model.train_forward(h, self.noise, csi=opts.get("csi", model.csi))
        rate = sum_rate_eq(h_eq, f_bb, w_bb, self.noise, gram)
        if opts.get("loss") == "mse":
            err = (view - h_eq).abs().square().sum((-3, -2, -1))  # sum over users of ||H_hat - H||_F^2
            return err.mean(), rate.detach()
        return -rate.mean(), rate.detach()

    @torch.no_grad()
    def validate(self, model: JCEHBNet, h: torch.Tensor) -> float:
        g = torch.Generator(device=h.device).manual_seed(4242)
        total = 0.0
        for start in range(0, h.shape[0], 250):  # bounded memory
            hb = h[start : start + 250]
            h_eq, _, _, gram, f_bb, w_bb = model.train_forward(hb, self.noise, generator=g)
            total += float(sum_rate_eq(h_eq, f_bb, w_bb, self.noise, gram).sum())
        return total / h.shape[0]

    def metadata(self) -> dict:
        c, sc = self.config, self.scenario
        return {
            "snr_db": c.snr_db,
            "scenario": sc.name,
            "scheme": c.scheme,
            "network": c.network,
            "noise_normalized": self.noise,
        }


def train_ssca(
    snr_db: float,
    *,
    scenario: str = "jcehb",
    num_users: int | None = None,
    num_rf_chains: int | None = None,
    samples: int = 1000,
    passes: int = 5,
    literal: bool = True,
    first_step: float = 0.1,
    seed: int = 0,
    progress: bool = False,
    **method_options,
) -> ConventionalJCEHB:
    """The long-term SSCA analog design of the conventional pipelines (spec s4.4-4.5) at ``snr_db``:
    :func:`~beamlearn.hybrid.ssca.ssca_analog` over ``samples`` training channels of the scenario (seed
    ``700000 + seed``, the DU networks' training channels) for ``passes`` passes, one sample per iteration,
    J = 10 SCA iterations, from random phases (seed ``seed``). Returns a :class:`ConventionalJCEHB`
    (``method_options``: ``digital``, ``rls_pilots``, ``sca_iterations``, ...) whose metadata records the
    training (samples, passes, step rule, seconds) and the scenario's interface fingerprint.

    ``literal=True`` (default here) uses the paper's update (22) with ``gamma = 1``; the spec's decaying
    ``gamma_t = (t+1)^-0.8`` moved the phases too little to matter (measured at the default sizes, 10 dB,
    1000 x 5 iterations, 1000 held-out channels, 30 SCA iterations: 39.66 bit/s/Hz from random phases,
    40.53 with the decaying step, 45.76 with ``gamma = 1``), and the reference must be a converged one.
    """
    import time

    from ...hybrid.equivalent import normalized_noise
    from ...hybrid.ssca import ssca_analog
    from ...learned.weights import interface_fingerprint

    cfg = JCEHBConfig(
        snr_db=snr_db,
        scenario=scenario,
        num_users=num_users,
        num_rf_chains=num_rf_chains,
        seed=seed,
        train_channels=samples,
        val_channels=1,
        batch_size=min(100, samples),
    )
    sc = scenario_for(cfg)
    power, noise = sc.power_and_noise(snr_db)
    nv = normalized_noise(noise, power, sc.num_users, sc.num_streams)
    h = sc.channel_model()(samples, seed=cfg.train_seed, dtype=torch.complex128).to(torch.complex64)
    t0 = time.perf_counter()
    out = ssca_analog(
        h,
        sc.num_rf_chains,
        sc.num_rx_rf_chains,
        sc.num_streams,
        nv,
        passes=passes,
        literal=literal,
        first_step=first_step,
        generator=torch.Generator().manual_seed(seed),
        progress=progress,
    )
    secs = time.perf_counter() - t0
    method = ConventionalJCEHB.from_phases(out.phi_f, out.phi_w, num_streams=sc.num_streams, **method_options)
    method.metadata.update(
        {
            "snr_db": float(snr_db),
            "scenario": sc.name,
            "interface_fingerprint": interface_fingerprint(sc),
            "training": {
                "algorithm": "ssca",
                "samples": samples,
                "passes": passes,
                "literal": literal,
                "first_step": first_step,
                "sca_iterations": 10,
                "seed": seed,
                "seconds": round(secs, 1),
            },
        }
    )
    return method
