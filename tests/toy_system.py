"""A toy learned system built only from beamlearn's public extension points (not shipped).

The model is regularised zero forcing with a learned regularisation ``alpha = exp(log_scale) K sigma^2 / P``
(one scalar), trained unsupervised on the sum rate. It exercises everything a real system uses: a
:class:`LearnedMethod` with a ``model_name``, a :class:`TrainConfig` subclass whose fields become CLI
options, a :class:`TrainingTask`, a catalogue entry, a reproduction with a grid figure and claims.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from beamlearn.experiment import run_grid
from beamlearn.interface import Beamformers
from beamlearn.learned import LearnedMethod, TrainConfig, TrainingTask, load_model, option
from beamlearn.learned import train as train_model
from beamlearn.metrics import sum_rate
from beamlearn.precoding import rzf_precoder
from beamlearn.registry import MethodInfo, build_method
from beamlearn.reproduction import Report, check, grid_figure, write_report
from beamlearn.scenarios import get_scenario
from beamlearn.systems import System


class ToyRZF(LearnedMethod):
    name = "toy-rzf"
    model_name = "toy-rzf"

    def __init__(self, init_scale: float = 1.0):
        super().__init__()
        self.init_scale = init_scale
        self.log_scale = torch.nn.Parameter(torch.tensor(float(init_scale)).log().double())

    def forward(self, h, power, noise_var) -> Beamformers:
        alpha = self.log_scale.exp() * h.shape[-2] * noise_var / power
        return Beamformers(precoder=rzf_precoder(h, power, alpha=alpha.to(h.real.dtype)))


@dataclass(frozen=True)
class ToyConfig(TrainConfig):
    snr_db: float = option(0.0, "Training SNR in dB.")
    init_scale: float = option(3.0, "Initial regularisation scale (1: the MMSE value).")
    epochs: int = option(2, "Training epochs.")
    train_channels: int = option(64, "Training channels.")
    val_channels: int = option(32, "Validation channels.")
    batch_size: int = option(16, "Channels per step.")
    lr: float | None = option(0.2, "Learning rate.")


class ToyTask(TrainingTask):
    metric = "rate"

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.scenario = get_scenario("rayleigh")
        self.power, self.noise_var = self.scenario.power_and_noise(config.snr_db)

    def build_model(self):
        return ToyRZF(self.config.init_scale)

    def data(self):
        cm = self.scenario.channel_model()
        c = self.config
        return (
            cm(c.train_channels, seed=10 + c.seed, dtype=torch.complex128),
            cm(c.val_channels, seed=20 + c.seed, dtype=torch.complex128),
        )

    def loss(self, model, h):
        r = sum_rate(h, model(h, self.power, self.noise_var).precoder, self.noise_var)
        return -r.mean(), r

    def validate(self, model, h):
        return float(sum_rate(h, model(h, self.power, self.noise_var).precoder, self.noise_var).mean())

    def metadata(self):
        return {"snr_db": self.config.snr_db, "scenario": "rayleigh"}


def reproduce(out_dir, *, quick=False, channels=None, train=False, device="cpu", progress=True, log=print):
    sc = get_scenario("rayleigh")
    n = channels or (64 if quick else 512)
    h = sc.channel_model()(n, seed=5, dtype=torch.complex128)
    model = ToyRZF(1.0)
    if train:
        summary = train_model(ToyTask(ToyConfig()), f"{out_dir}/model", progress=False, log=None)
        model = load_model(summary["model_path"])
    grid = run_grid(
        sc,
        {"toy-rzf": model, "zf": lambda: build_method("zf", sc)},
        [0.0, 10.0],
        h,
        cache_dir=f"{out_dir}/cache",
        description={"system": "toy"},
        progress=progress,
    )
    grid_figure(out_dir, "toy", grid, ["toy-rzf", "zf"], [0.0, 10.0], title="toy")
    gain = grid.mean("toy-rzf", 0.0) - grid.mean("zf", 0.0)
    report = Report(
        "Toy system",
        claims=[check("RZF beats ZF at 0 dB", "> 0", gain, at_least=0.0)],
        results={"gain": gain},
        quick=quick,
    )
    write_report(out_dir, report)
    return report


SYSTEM = System(
    name="toy",
    title="Toy learned RZF (test only)",
    docs="tests/toy_system.py",
    methods=(
        MethodInfo(
            "toy-rzf",
            "RZF with the MMSE regularisation (untrained toy model)",
            lambda sc: ToyRZF(1.0),
            kind="learned",
            system="toy",
        ),
    ),
    train_config=ToyConfig,
    task=ToyTask,
    reproduce=reproduce,
)
