"""Unsupervised training of the unfolded PGA network (spec ``unfolded-pga-hbf.md`` s4).

Recipe (paper): Adam, learning rate 1e-3 decayed by 0.97 per epoch (``ExponentialLR``), 500 training
channels, batch size 10, 20 epochs, loss = minus the mean sum rate (bits) of the last layer (eq. 14);
one model per SNR. Options and safeguards (spec s4 and s8, not in the paper):

* ``loss="sum_layers"`` (the **default** here; spec s8 #9 defaults to ``"final"``): minus the sum over
  layers 1..I of the mean rate. It gives a monotone per-layer curve (the "3 layers" reading of the
  paper's claim) and, in our 10 dB runs, a slightly higher final rate than ``"final"`` (test set:
  16.50 vs 16.46 bit/s/Hz), whose intermediate layers dip far below the init;
* the model of the best epoch on a validation set (200 channels, complex128) is kept, epoch 0 being
  the untrained network (= conventional PGA with I iterations);
* **deviation**: the default learning rate is 1e-4 instead of 1e-3 when ``snr_db >= 20``, where
  training with 1e-3 is unstable (spec s4, "stability safeguards"); give ``lr`` explicitly to override.

Output folder: ``train_log.csv`` (epoch, train_rate, val_rate, lr, seconds; rewritten atomically after
every epoch; ``train_rate`` is the mean final-layer rate of the training batches during the epoch, each
taken before its Adam step, ``val_rate`` the final-layer rate on the validation set after the epoch,
``lr`` the learning rate used during the epoch; row 0 is the untrained network), ``checkpoint.pt``
(everything needed to resume, written atomically after every epoch), ``model.pt`` (the best epoch, :meth:`UnfoldedPGA.save`) and ``summary.json``.

Data: channels of the scenario (default ``"unfolded-pga"``) with seeds ``100000 + seed`` (training)
and ``200000 + seed`` (validation), drawn in complex128 on the CPU and then cast to ``dtype``, so the
data do not depend on the training precision.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Callable

import torch

from ..io import write_csv, write_json
from ..scenarios import PRESETS, get_scenario
from ..io import atomic_torch_save
from ..unfolded.pga_net import UnfoldedPGA

__all__ = ["TrainConfig", "train_unfolded_pga", "evaluate_layers"]

LOSSES = ("final", "sum_layers")
DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}
LOG_COLUMNS = ["epoch", "train_rate", "val_rate", "lr", "seconds"]
TRAIN_SEED_OFFSET = 100_000
VAL_SEED_OFFSET = 200_000


def _int(name, v, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, Integral):
        raise TypeError(f"{name} must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must be an integer in [{lo if lo is not None else '-inf'}, "
                         f"{hi if hi is not None else 'inf'}], got {v}")
    return int(v)


def _real(name, v):
    if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite real number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class TrainConfig:
    """Configuration of :func:`train_unfolded_pga` (validated on construction).

    Attributes:
        snr_db: training (and intended evaluation) SNR in dB; P = 10^(SNR/10), sigma^2 = 1.
        layers: I; inner_steps: J.
        epochs: passes over the training set (0: only evaluate and save the untrained network).
        train_channels, val_channels: sizes of the training and validation sets.
        batch_size: channels per Adam step (in [1, train_channels]).
        lr: Adam learning rate; ``None``: 1e-3, or 1e-4 when ``snr_db >= 20`` (documented deviation).
        lr_decay: ``ExponentialLR`` factor per epoch, in (0, 1].
        loss: ``"final"`` (eq. 14) or ``"sum_layers"``.
        seed: seeds the shuffling (and the data seeds, see the module docstring).
        dtype: ``"complex64"`` (default, faster) or ``"complex128"`` for the training forward passes;
            validation always runs in complex128.
        include_ln2, inner_projection, num_rf_chains: passed to :class:`UnfoldedPGA`.
        scenario: a single-antenna-user scenario preset supplying channels and the noise variance.
        dataset: optional channel dataset file (:mod:`beamlearn.datasets`); its first
            ``train_channels`` drops train and the next ``val_channels`` validate, instead of channels
            drawn from the scenario. Its K and N must match the scenario's.
    """

    snr_db: float = 10.0
    layers: int = 10
    inner_steps: int = 10
    epochs: int = 20
    train_channels: int = 500
    val_channels: int = 200
    batch_size: int = 10
    lr: float | None = None
    lr_decay: float = 0.97
    loss: str = "sum_layers"
    seed: int = 0
    dtype: str = "complex64"
    include_ln2: bool = True
    inner_projection: bool = True
    num_rf_chains: int | None = None
    scenario: str = "unfolded-pga"
    dataset: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "snr_db", _real("snr_db", self.snr_db))
        _int("layers", self.layers, 1)
        _int("inner_steps", self.inner_steps, 1)
        _int("epochs", self.epochs, 0)
        _int("train_channels", self.train_channels, 1)
        _int("val_channels", self.val_channels, 1)
        _int("batch_size", self.batch_size, 1, self.train_channels)
        if self.lr is not None:
            lr = _real("lr", self.lr)
            if lr <= 0:
                raise ValueError(f"lr must be > 0 (or None for the default), got {self.lr!r}")
            object.__setattr__(self, "lr", lr)
        decay = _real("lr_decay", self.lr_decay)
        if not 0 < decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], got {self.lr_decay!r}")
        object.__setattr__(self, "lr_decay", decay)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        _int("seed", self.seed, 0, 2**40)
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {self.dtype!r}")
        for nm in ("include_ln2", "inner_projection"):
            if not isinstance(getattr(self, nm), bool):
                raise TypeError(f"{nm} must be True or False, got {getattr(self, nm)!r}")
        if self.scenario not in PRESETS:
            raise ValueError(f"scenario must be one of {', '.join(PRESETS)}, got {self.scenario!r}")
        sc = PRESETS[self.scenario]
        if sc.num_rx_antennas != 1:
            raise ValueError(f"scenario must have single-antenna users; {self.scenario!r} has "
                             f"num_rx_antennas={sc.num_rx_antennas}")
        if self.num_rf_chains is not None:
            _int("num_rf_chains", self.num_rf_chains, sc.num_users, sc.num_bs_antennas)

    @property
    def learning_rate(self) -> float:
        """The learning rate actually used (the default depends on ``snr_db``)."""
        if self.lr is not None:
            return self.lr
        return 1e-4 if self.snr_db >= 20 else 1e-3

    @property
    def train_seed(self) -> int:
        return TRAIN_SEED_OFFSET + self.seed

    @property
    def val_seed(self) -> int:
        return VAL_SEED_OFFSET + self.seed

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def build_model(self) -> UnfoldedPGA:
        return UnfoldedPGA(layers=self.layers, inner_steps=self.inner_steps, include_ln2=self.include_ln2,
                           inner_projection=self.inner_projection, num_rf_chains=self.num_rf_chains)


@torch.no_grad()
def evaluate_layers(model: UnfoldedPGA, h: torch.Tensor, power, noise_var, batch_size: int = 1000) -> torch.Tensor:
    """Mean sum rate after every layer over the channels ``h`` ``[B, K, N]``, ``[I + 1]`` (float64)."""
    total = None
    for start in range(0, h.shape[0], batch_size):
        r = model.forward_layers(h[start:start + batch_size], power, noise_var).double().sum(0)
        total = r if total is None else total + r
    return total / h.shape[0]


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


def _config_mismatch(saved: dict, now: dict) -> list[str]:
    diffs = []
    for key in sorted(set(saved) | set(now)):
        if key == "epochs":  # a run may be extended to more epochs
            continue
        if saved.get(key) != now.get(key):
            diffs.append(f"{key}: checkpoint {saved.get(key)!r} vs config {now.get(key)!r}")
    return diffs


def train_unfolded_pga(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    resume: bool = True,
    log: Callable[[str], None] | None = print,
    num_threads: int | None = 1,
) -> dict:
    """Train an :class:`UnfoldedPGA` model; see the module docstring for the recipe and the files.

    Args:
        config: a :class:`TrainConfig`.
        out_dir: output folder (created if missing).
        progress: show a tqdm progress bar over the batches of all epochs.
        resume: continue from ``out_dir/checkpoint.pt`` when present (its configuration must match,
            except that ``epochs`` may be larger); ``False`` starts afresh and overwrites.
        log: called with one line per epoch (``None``: silent).
        num_threads: torch intra-op threads during training (restored afterwards; ``None``: leave as
            is). The default 1 is the fastest for these tiny batched ops: with several threads on a
            busy CPU, thread synchronisation made training tens of times slower in our measurements.

    Returns:
        A summary dict: ``snr_db``, ``best_epoch``, ``best_val_rate``, ``untrained_val_rate``,
        ``last_val_rate``, ``train_seconds`` (summed over resumed sessions), ``epochs``, ``lr``,
        ``config``, ``log`` (the rows of ``train_log.csv``) and the output paths.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if num_threads is None:
        return _train(config, out_dir, progress, resume, log)
    num_threads = _int("num_threads", num_threads, 1)
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        return _train(config, out_dir, progress, resume, log)
    finally:
        torch.set_num_threads(before)


def _train(config: TrainConfig, out_dir, progress: bool, resume: bool, log) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path, model_path = out / "checkpoint.pt", out / "train_log.csv", out / "model.pt"
    emit = (lambda s: None) if log is None else log
    if progress and log is print:
        from tqdm.auto import tqdm as _tq

        emit = _tq.write

    sc = get_scenario(config.scenario)
    power, noise_var = sc.power_and_noise(config.snr_db)
    dtype = DTYPES[config.dtype]
    if config.dataset is not None:
        from ..datasets import load_channels

        h_all, _ = load_channels(config.dataset, num_users=sc.num_users, num_antennas=sc.num_bs_antennas)
        need = config.train_channels + config.val_channels
        if h_all.dim() != 3 or h_all.shape[0] < need:
            raise ValueError(f"dataset {config.dataset} has {h_all.shape[0]} drops of shape {tuple(h_all.shape[1:])}; "
                             f"training needs {need} single-antenna-user drops (train_channels + val_channels)")
        h_all = h_all.to(torch.complex128)
        h_train = h_all[:config.train_channels].to(dtype)
        h_val = h_all[config.train_channels:need]
    else:
        cm = sc.channel_model()
        h_train = cm(config.train_channels, seed=config.train_seed, dtype=torch.complex128).to(dtype)
        h_val = cm(config.val_channels, seed=config.val_seed, dtype=torch.complex128)
    lr0 = config.learning_rate

    model = config.build_model()
    opt = torch.optim.Adam(model.parameters(), lr=lr0)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config.lr_decay)
    shuffle = torch.Generator()
    shuffle.manual_seed(config.seed)
    cfg = config.to_dict()

    def validate() -> float:
        return float(evaluate_layers(model, h_val, power, noise_var)[-1])

    start_epoch = 0
    resumed = resume and ckpt_path.exists()
    if resumed:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        diffs = _config_mismatch(ck["config"], cfg)
        if diffs:
            raise ValueError(f"checkpoint {ckpt_path} was written with a different configuration ("
                             + "; ".join(diffs) + "); use another out_dir or resume=False")
        if int(ck["epoch"]) > config.epochs:
            raise ValueError(f"checkpoint {ckpt_path} is at epoch {int(ck['epoch'])}, beyond epochs={config.epochs}; "
                             "use another out_dir or resume=False")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        shuffle.set_state(ck["shuffle_rng"])
        torch.set_rng_state(ck["rng"]["torch"])
        start_epoch = int(ck["epoch"])
        best = {"epoch": int(ck["best_epoch"]), "val_rate": float(ck["best_val_rate"]), "state": ck["best_state"]}
        rows = list(ck["log"])
        train_seconds = float(ck["train_seconds"])
        emit(f"resuming {out} after epoch {start_epoch} (best epoch {best['epoch']}, val {best['val_rate']:.4f})")
    else:
        t0 = time.perf_counter()
        with torch.no_grad():
            train0 = float(evaluate_layers(model, h_train.to(torch.complex128), power, noise_var)[-1])
        val0 = validate()
        train_seconds = time.perf_counter() - t0
        rows = [{"epoch": 0, "train_rate": train0, "val_rate": val0, "lr": lr0, "seconds": train_seconds}]
        best = {"epoch": 0, "val_rate": val0, "state": copy.deepcopy(model.state_dict())}
        emit(f"epoch 0 (untrained): train {train0:.4f}  val {val0:.4f}")

    def checkpoint(epoch: int) -> None:
        write_csv(log_path, rows, LOG_COLUMNS)
        atomic_torch_save({
            "config": cfg, "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "shuffle_rng": shuffle.get_state(), "rng": _rng_state(),
            "best_epoch": best["epoch"], "best_val_rate": best["val_rate"], "best_state": best["state"],
            "log": rows, "train_seconds": train_seconds,
        }, ckpt_path)

    if not resumed:
        checkpoint(0)

    n = config.train_channels
    nb = math.ceil(n / config.batch_size)
    bar = None
    if progress and config.epochs > start_epoch:
        from tqdm.auto import tqdm

        bar = tqdm(total=(config.epochs - start_epoch) * nb, desc=f"unfolded-pga {config.snr_db:g} dB",
                   unit="batch", leave=False)
    try:
        for epoch in range(start_epoch + 1, config.epochs + 1):
            t0 = time.perf_counter()
            lr_now = opt.param_groups[0]["lr"]
            perm = torch.randperm(n, generator=shuffle)
            rate_sum = torch.zeros((), dtype=torch.float64)
            model.train()
            for b in range(nb):
                idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                rates = model.forward_layers(h_train[idx], power, noise_var)  # [B, I+1]
                if config.loss == "final":
                    loss = -rates[:, -1].mean()
                else:
                    loss = -rates[:, 1:].mean(0).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                rate_sum += rates[:, -1].detach().double().sum()
                if bar is not None:
                    bar.update(1)
            sched.step()
            model.eval()
            train_rate = float(rate_sum) / n
            val = validate()
            secs = time.perf_counter() - t0
            train_seconds += secs
            rows.append({"epoch": epoch, "train_rate": train_rate, "val_rate": val, "lr": lr_now, "seconds": secs})
            if val > best["val_rate"]:  # NaN never wins
                best = {"epoch": epoch, "val_rate": val, "state": copy.deepcopy(model.state_dict())}
            checkpoint(epoch)
            if bar is not None:
                bar.set_postfix(train=f"{train_rate:.3f}", val=f"{val:.3f}", best=best["epoch"])
            emit(f"epoch {epoch}/{config.epochs}: train {train_rate:.4f}  val {val:.4f}  lr {lr_now:.3g}  "
                 f"{secs:.1f} s" + ("  *" if best["epoch"] == epoch else ""))
    finally:
        if bar is not None:
            bar.close()

    last_val = rows[-1]["val_rate"]
    model.load_state_dict(best["state"])
    model.eval()
    summary = {
        "snr_db": config.snr_db,
        "best_epoch": best["epoch"],
        "best_val_rate": best["val_rate"],
        "untrained_val_rate": rows[0]["val_rate"],
        "last_val_rate": last_val,
        "train_seconds": train_seconds,
        "epochs": config.epochs,
        "lr": lr0,
        "config": cfg,
        "log": rows,
        "out_dir": str(out),
        "model_path": str(model_path),
        "log_path": str(log_path),
        "checkpoint_path": str(ckpt_path),
    }
    meta = {"snr_db": config.snr_db, "scenario": config.scenario, "num_bs_antennas": sc.num_bs_antennas,
            "num_users": sc.num_users, "num_rf_chains": config.num_rf_chains or sc.num_users,
            "noise_var": noise_var, "power": power,
            "training": {k: summary[k] for k in ("best_epoch", "best_val_rate", "untrained_val_rate",
                                                 "last_val_rate", "train_seconds", "epochs", "lr")}
            | {"config": cfg, "torch_version": str(torch.__version__)}}
    model.save(model_path, metadata=meta)
    write_json(out / "summary.json", {k: v for k, v in summary.items() if k != "log"})
    return summary
