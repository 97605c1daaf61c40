"""One trainer for every learned system: configuration, stages, checkpoints, resume, best epoch, log.

A system supplies a :class:`TrainingTask` (its model, data, loss and validation) and a configuration
dataclass derived from :class:`TrainConfig`; :func:`train` does the rest:

* an atomic checkpoint after every epoch (model, optimiser, scheduler, shuffling and global RNG
  states, best epoch, log), so a run killed at any point resumes losing at most one epoch and ends
  with the same weights as an uninterrupted run;
* resuming with a different configuration is refused with the differing fields named (only
  ``epochs`` may change, to extend a run);
* the model of the best epoch on the validation set is kept (epoch 0 is the untrained model);
* ``train_log.csv`` (rewritten atomically each epoch), a progress bar and one log line per epoch;
* training in **stages** (:class:`Stage`): each with its own parameters, optimiser, learning rate,
  schedule and number of epochs (ASNet's phases, JCEHB's two stages, MSER's layer freezing).

Output folder: ``train_log.csv`` (columns ``epoch, stage, train_<metric>, val_<metric>, lr, seconds``;
``train_<metric>`` is the mean of the task's per-sample training metric over the epoch's batches, each
taken before its optimiser step), ``checkpoint.pt`` (loads with ``torch.load(weights_only=True)``),
``model.blm`` (the best epoch, :meth:`~beamlearn.learned.LearnedMethod.save`) and ``summary.json``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from .._dtypes import resolve_dtype
from .._validation import check_device, check_int, check_one_of, check_real
from ..io import atomic_torch_save, write_csv, write_json
from .base import LearnedMethod

__all__ = ["TrainConfig", "Stage", "TrainingTask", "train", "option"]

OPTIMIZERS = ("adam", "sgd")


def option(default, help: str = "", **kw):  # noqa: A002 - mirrors typer's name
    """A configuration field with a help text (shown by ``beamlearn train SYSTEM --help``)."""
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class TrainConfig:
    """What every training run has; a system's configuration subclasses it and adds its own fields.

    Subclasses validate their fields in ``__post_init__`` after calling ``super().__post_init__()``
    and may override :meth:`default_lr`.
    """

    epochs: int = option(20, "Training epochs (of all stages together when the task has several).")
    batch_size: int = option(10, "Samples per optimiser step.")
    lr: float | None = option(None, "Learning rate (default: the system's).")
    lr_decay: float = option(1.0, "Learning-rate factor per epoch (or per lr_step epochs), in (0, 1].")
    lr_step: int | None = option(None, "Apply lr_decay every lr_step epochs (StepLR) instead of every epoch.")
    seed: int = option(0, "Seed of the data and the shuffling.")
    dtype: str = option("complex64", "Training precision: complex64 or complex128.")
    device: str = option("cpu", "Torch device, e.g. cpu or cuda.")
    train_channels: int = option(500, "Training samples (channels).")
    val_channels: int = option(200, "Validation samples (best epoch).")
    dataset: str | None = option(
        None, "Train and validate on this channel dataset file (first drops train, next validate)."
    )

    def __post_init__(self):
        check_int("epochs", self.epochs, 0)
        check_int("train_channels", self.train_channels, 1)
        check_int("val_channels", self.val_channels, 1)
        check_int("batch_size", self.batch_size, 1, self.train_channels)
        if self.lr is not None:
            object.__setattr__(self, "lr", check_real("lr", self.lr))
            if self.lr <= 0:
                raise ValueError(f"lr must be > 0 (or None for the default), got {self.lr!r}")
        decay = check_real("lr_decay", self.lr_decay)
        if not 0 < decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1], got {self.lr_decay!r}")
        object.__setattr__(self, "lr_decay", decay)
        if self.lr_step is not None:
            check_int("lr_step", self.lr_step, 1)
        check_int("seed", self.seed, 0, 2**40)
        resolve_dtype(self.dtype)
        check_device(self.device)
        if self.dataset is not None:
            object.__setattr__(self, "dataset", str(self.dataset))

    # seeds of the training and validation channels: offset + seed (a system may move its offsets)
    train_seed_offset: ClassVar[int] = 100_000
    val_seed_offset: ClassVar[int] = 200_000

    def default_lr(self) -> float:
        return 1e-3

    @property
    def train_seed(self) -> int:
        """Seed of the training channels (``train_seed_offset + seed``)."""
        return self.train_seed_offset + self.seed

    @property
    def val_seed(self) -> int:
        """Seed of the validation channels (``val_seed_offset + seed``)."""
        return self.val_seed_offset + self.seed

    @property
    def learning_rate(self) -> float:
        """The learning rate actually used (``lr``, or the system's default)."""
        return self.lr if self.lr is not None else self.default_lr()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Stage:
    """A training stage: which parameters are trained, how, and for how many epochs.

    Attributes:
        name: label in the log.
        epochs: epochs of this stage.
        lr: initial learning rate.
        parameters: ``parameters(model) -> iterable of nn.Parameter`` (``None``: all), or of torch
            parameter groups (dicts ``{"params": [...], "lr": ...}``: e.g. a larger rate for phases); the
            others are frozen (``requires_grad=False``) during the stage.
        optimizer: ``"adam"`` or ``"sgd"``.
        lr_decay, lr_step: per-epoch exponential decay, or a step decay every ``lr_step`` epochs.
        momentum, weight_decay: optimiser options.
        grad_clip: clip the global gradient norm of the stage's parameters at this value (``None``: no
            clipping); with clipping, a step whose gradient norm is not finite is skipped (and counted in
            the epoch's log line) instead of writing NaN into the parameters.
        options: free-form settings the task reads from ``self.stage`` (e.g. which loss this phase uses).
    """

    name: str
    epochs: int
    lr: float
    parameters: Callable[[torch.nn.Module], Iterable[torch.nn.Parameter]] | None = None
    optimizer: str = "adam"
    lr_decay: float = 1.0
    lr_step: int | None = None
    momentum: float = 0.0
    weight_decay: float = 0.0
    grad_clip: float | None = None
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        check_int("epochs", self.epochs, 0)
        check_one_of("optimizer", self.optimizer, OPTIMIZERS)
        if not check_real("lr", self.lr) > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.grad_clip is not None and not check_real("grad_clip", self.grad_clip) > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip!r}")

    def build(self, model: torch.nn.Module):
        items = list(model.parameters() if self.parameters is None else self.parameters(model))
        if items and isinstance(items[0], dict):
            groups = [dict(g, params=list(g["params"])) for g in items]
            params = [p for g in groups for p in g["params"]]
        else:
            groups = params = items
        if self.optimizer == "adam":
            opt = torch.optim.Adam(groups, lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        if self.lr_step is None:
            sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=self.lr_decay)
        else:
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=self.lr_step, gamma=self.lr_decay)
        return params, opt, sched


class TrainingTask:
    """What a system supplies to :func:`train`. Override :meth:`build_model`, :meth:`data`,
    :meth:`loss` and :meth:`validate`; :meth:`stages` and :meth:`metadata` have defaults.

    Attributes:
        config: the :class:`TrainConfig` (subclass) of the run.
        scenario: the :class:`~beamlearn.scenarios.Scenario` the model is trained for, if any: its
            interface fingerprint (and observation, for models that consume observations) is written into
            the model's metadata, so that ``evaluate --model`` and manifests can check where it applies.
        metric: name of the training/validation figure in the log (``train_<metric>``).
        label: progress-bar label.
    """

    metric: str = "metric"
    scenario = None

    def __init__(self, config: TrainConfig):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.stage: Stage | None = None  # the stage being trained (set by the trainer before each epoch)

    def state_dict(self) -> dict:
        """State of the task's own random generators etc., saved in checkpoints (tensors and plain values)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (on resume)."""

    @property
    def label(self) -> str:
        return type(self).__name__

    def build_model(self) -> LearnedMethod:  # pragma: no cover - abstract
        raise NotImplementedError

    def data(self) -> tuple[Any, Any]:
        """``(train, val)``: ``train`` a tensor (or tuple of tensors) indexed by sample along dim 0."""
        raise NotImplementedError  # pragma: no cover - abstract

    def loss(self, model, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, per-sample training metric [B])`` of one batch (the loss is minimised)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def validate(self, model, data) -> float:
        """Validation figure on ``data`` (higher is better); also reports epoch 0 on the training set."""
        raise NotImplementedError  # pragma: no cover - abstract

    def channel_data(self):
        """``(train, val)`` channels of ``self.scenario``: drawn from its channel model with the
        configuration's seeds, in complex128 on the CPU (training then cast to ``dtype``, so the data do not
        depend on the precision; validation stays complex128), or the first drops of ``config.dataset``;
        both moved to ``config.device``. A default for :meth:`data`."""
        c, sc = self.config, self.scenario
        dtype = resolve_dtype(c.dtype)
        need = c.train_channels + c.val_channels
        if c.dataset is not None:
            from ..datasets import load_channels

            h_all, _ = load_channels(c.dataset, num_users=sc.num_users, num_antennas=sc.num_bs_antennas)
            want = (sc.num_users, sc.num_bs_antennas)
            if sc.num_rx_antennas > 1:
                want = (sc.num_users, sc.num_rx_antennas, sc.num_bs_antennas)
            if tuple(h_all.shape[1:]) != want or h_all.shape[0] < need:
                raise ValueError(
                    f"dataset {c.dataset} has {h_all.shape[0]} drops of shape {tuple(h_all.shape[1:])}; training "
                    f"needs {need} drops (train_channels + val_channels) of shape {want}"
                )
            h_all = h_all.to(torch.complex128)
            h_train, h_val = h_all[: c.train_channels].to(dtype), h_all[c.train_channels : need]
        else:
            cm = sc.channel_model()
            h_train = cm(c.train_channels, seed=c.train_seed, dtype=torch.complex128).to(dtype)
            h_val = cm(c.val_channels, seed=c.val_seed, dtype=torch.complex128)
        return h_train.to(c.device), h_val.to(c.device)

    def stages(self) -> list[Stage]:
        """One Adam stage over all parameters with the configuration's learning rate and schedule."""
        c = self.config
        return [Stage("train", c.epochs, c.learning_rate, lr_decay=c.lr_decay, lr_step=c.lr_step)]

    def metadata(self) -> dict:
        """Extra metadata saved with the model (e.g. the SNR and scenario it was trained for)."""
        return {}


def _size(data) -> int:
    return (data[0] if isinstance(data, (tuple, list)) else data).shape[0]


def _take(data, idx):
    return tuple(d[idx] for d in data) if isinstance(data, (tuple, list)) else data[idx]


def _mismatch(saved: dict, now: dict) -> list[str]:
    """Differing fields; ``epochs`` may grow (to extend a run) and ``device`` may change (resume elsewhere)."""
    return [
        f"{k}: checkpoint {saved.get(k)!r} vs config {now.get(k)!r}"
        for k in sorted(set(saved) | set(now))
        if k not in ("epochs", "device") and saved.get(k) != now.get(k)
    ]


def _derived(seed: int, what: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(repr((seed, what)).encode()).digest()[:7], "little")


def _stage_layout(stage: Stage) -> dict:
    return {
        "name": stage.name,
        "epochs": stage.epochs,
        "lr": stage.lr,
        "optimizer": stage.optimizer,
        "lr_decay": stage.lr_decay,
        "lr_step": stage.lr_step,
        "momentum": stage.momentum,
        "weight_decay": stage.weight_decay,
    }


def _check_layout(saved: list, now: list, current: int | None, path) -> None:
    """A resumed run keeps every stage it has started; only the last stage may grow longer."""
    for i in range(0 if current is None else current + 1):
        a = saved[i] if i < len(saved) else None
        b = now[i] if i < len(now) else None
        last = i == len(now) - 1 and i == len(saved) - 1
        same = a is not None and b is not None and {**a, "epochs": 0} == {**b, "epochs": 0}
        if not same or b["epochs"] < a["epochs"] or (b["epochs"] != a["epochs"] and not last):
            raise ValueError(
                f"checkpoint {path} was written with other training stages (stage {i}: {a} vs {b}); only the "
                "last stage may be extended; use another output folder or resume=False"
            )


def _stage_of(stages: list[Stage], epoch: int) -> tuple[int, int]:
    """(stage index, epoch within the stage) of global epoch ``epoch`` (1-based)."""
    start = 0
    for i, s in enumerate(stages):
        if epoch <= start + s.epochs:
            return i, epoch - start
        start += s.epochs
    raise ValueError(f"epoch {epoch} is beyond the stages' {start} epochs")


def train(
    task: TrainingTask,
    out_dir: str | Path,
    *,
    progress: bool = True,
    resume: bool = True,
    log: Callable[[str], None] | None = print,
    num_threads: int | None = 1,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict:
    """Train ``task``'s model into ``out_dir``; see the module docstring for the files.

    Args:
        task: a :class:`TrainingTask`.
        out_dir: output folder (created if missing).
        progress: show a tqdm progress bar over the batches of all epochs.
        resume: continue from ``out_dir/checkpoint.pt`` when present; ``False`` starts afresh.
        log: called with one line per epoch (``None``: silent).
        num_threads: torch intra-op threads during training (restored afterwards; ``None``: leave as
            is). 1 is the fastest for small batched ops on a busy CPU.
        on_epoch_end: called with the epoch number after its checkpoint is written.

    Returns:
        A summary: ``best_epoch``, ``best_val``, ``untrained_val``, ``last_val``, ``train_seconds``
        (summed over resumed sessions), ``epochs``, ``metric``, ``config``, ``log`` and the paths.
    """
    if not isinstance(task, TrainingTask):
        raise TypeError(f"task must be a TrainingTask, got {type(task).__name__}")
    if num_threads is None:
        return _train(task, Path(out_dir), progress, resume, log, on_epoch_end)
    num_threads = check_int("num_threads", num_threads, 1)
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        return _train(task, Path(out_dir), progress, resume, log, on_epoch_end)
    finally:
        torch.set_num_threads(before)


def _train(task: TrainingTask, out: Path, progress: bool, resume: bool, log, on_epoch_end) -> dict:
    config = task.config
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path, model_path = out / "checkpoint.pt", out / "train_log.csv", out / "model.blm"
    emit = (lambda s: None) if log is None else log
    if progress and log is print:
        from tqdm.auto import tqdm as _tq

        emit = _tq.write
    m = task.metric
    columns = ["epoch", "stage", f"train_{m}", f"val_{m}", "lr", "seconds"]

    device = torch.device(config.device)
    # the global RNGs (random initialisation, noise drawn in a loss) start from the seed on a fresh run
    # and from the checkpoint on a resumed one, so a run is a function of its configuration
    torch.manual_seed(_derived(config.seed, "global"))
    train_data, val_data = task.data()
    for label, data in (("training", train_data), ("validation", val_data)):
        for t in data if isinstance(data, (tuple, list)) else (data,):
            if (
                isinstance(t, torch.Tensor)
                and t.is_floating_point() | t.is_complex()
                and not bool(torch.isfinite(t).all())
            ):
                raise ValueError(f"the {label} data of {task.label} hold non-finite values (NaN or inf)")
    model = task.build_model().to(device)
    stages = task.stages()
    layout = [_stage_layout(s) for s in stages]
    total_epochs = sum(s.epochs for s in stages)
    if total_epochs != config.epochs:
        raise ValueError(
            f"the stages of {task.label} add up to {total_epochs} epochs, the configuration has epochs={config.epochs}"
        )
    shuffle = torch.Generator()
    shuffle.manual_seed(config.seed)
    cfg = json_config(config)

    start_epoch, opt_state, sched_state, ck_stage = 0, None, None, None
    resumed = resume and ckpt_path.exists()
    if resumed:
        try:
            ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            ck["config"], ck["epoch"], ck["model"]  # noqa: B018 - the keys every checkpoint has
        except Exception as e:  # noqa: BLE001 - a damaged or foreign file
            raise ValueError(
                f"checkpoint {ckpt_path} is unreadable ({type(e).__name__}); delete it or start afresh with "
                "resume=False (--no-resume)"
            ) from None
        diffs = _mismatch(ck["config"], cfg)
        if diffs:
            raise ValueError(
                f"checkpoint {ckpt_path} was written with a different configuration ("
                + "; ".join(diffs)
                + "); use another output folder or resume=False"
            )
        if int(ck["epoch"]) > config.epochs:
            raise ValueError(
                f"checkpoint {ckpt_path} is at epoch {int(ck['epoch'])}, beyond epochs={config.epochs}; "
                "use another output folder or resume=False"
            )
        _check_layout(ck.get("stages", []), layout, ck["stage"], ckpt_path)
        model.load_state_dict(ck["model"])
        opt_state, sched_state, ck_stage = ck["optimizer"], ck["scheduler"], ck["stage"]
        shuffle.set_state(ck["shuffle_rng"])
        torch.set_rng_state(ck["rng"])
        if ck.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ck["cuda_rng"])
        task.load_state_dict(ck.get("task") or {})
        start_epoch = int(ck["epoch"])
        best = {"epoch": int(ck["best_epoch"]), "val": float(ck["best_val"]), "state": ck["best_state"]}
        rows = list(ck["log"])
        train_seconds = float(ck["train_seconds"])
        emit(f"resuming {out} after epoch {start_epoch} (best epoch {best['epoch']}, val {best['val']:.4f})")
    else:
        t0 = time.perf_counter()
        model.eval()
        with torch.no_grad():
            train0 = float(task.validate(model, train_data))
            val0 = float(task.validate(model, val_data))
        train_seconds = time.perf_counter() - t0
        lr0 = stages[0].lr if stages else config.learning_rate
        rows = [
            {
                "epoch": 0,
                "stage": "untrained",
                f"train_{m}": train0,
                f"val_{m}": val0,
                "lr": lr0,
                "seconds": train_seconds,
            }
        ]
        best = {"epoch": 0, "val": val0, "state": copy.deepcopy(model.state_dict())}
        emit(f"epoch 0 (untrained): train {train0:.4f}  val {val0:.4f}")

    state = {"stage": None, "opt": None, "sched": None, "params": None}

    def enter_stage(index: int) -> None:
        for p in model.parameters():
            p.requires_grad_(False)
        params, opt, sched = stages[index].build(model)
        for p in params:
            p.requires_grad_(True)
        state.update(stage=index, opt=opt, sched=sched, params=params)

    def checkpoint(epoch: int) -> None:
        write_csv(log_path, rows, columns)
        atomic_torch_save(
            {
                "config": cfg,
                "epoch": epoch,
                "stage": state["stage"],
                "model": model.state_dict(),
                "optimizer": state["opt"].state_dict() if state["opt"] is not None else None,
                "scheduler": state["sched"].state_dict() if state["sched"] is not None else None,
                "shuffle_rng": shuffle.get_state(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "task": task.state_dict(),
                "stages": layout,
                "best_epoch": best["epoch"],
                "best_val": best["val"],
                "best_state": best["state"],
                "log": rows,
                "train_seconds": train_seconds,
            },
            ckpt_path,
        )

    if not resumed:
        checkpoint(0)

    n = _size(train_data)
    nb = math.ceil(n / config.batch_size)
    bar = None
    if progress and config.epochs > start_epoch:
        from tqdm.auto import tqdm

        bar = tqdm(total=(config.epochs - start_epoch) * nb, desc=task.label, unit="batch", leave=False)
    try:
        for epoch in range(start_epoch + 1, config.epochs + 1):
            index, _ = _stage_of(stages, epoch)
            if state["stage"] != index:
                enter_stage(index)
                if opt_state is not None and ck_stage == index:  # resume inside the checkpoint's stage
                    state["opt"].load_state_dict(opt_state)
                    state["sched"].load_state_dict(sched_state)
                opt_state = None
            opt, sched = state["opt"], state["sched"]
            task.stage = stages[index]
            t0 = time.perf_counter()
            lr_now = opt.param_groups[0]["lr"]
            perm = torch.randperm(n, generator=shuffle)
            metric_sum = torch.zeros((), dtype=torch.float64)
            skipped = 0
            model.train()
            for b in range(nb):
                idx = perm[b * config.batch_size : (b + 1) * config.batch_size]
                loss, per_sample = task.loss(model, _take(train_data, idx))
                if not bool(torch.isfinite(loss)):
                    raise FloatingPointError(
                        f"{task.label}: the loss became {float(loss.detach())} at epoch {epoch}, batch {b + 1}; "
                        f"training diverged (lower the learning rate; the checkpoint of epoch {epoch - 1} is kept)"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if stages[index].grad_clip is not None:
                    norm = torch.nn.utils.clip_grad_norm_(state["params"], stages[index].grad_clip)
                    if not bool(torch.isfinite(norm)):  # a NaN/inf gradient would poison every parameter
                        skipped += 1
                        opt.zero_grad(set_to_none=True)
                        continue
                opt.step()
                metric_sum += per_sample.detach().double().sum().cpu()
                if bar is not None:
                    bar.update(1)
            if skipped == nb:
                raise FloatingPointError(
                    f"{task.label}: every gradient of epoch {epoch} was non-finite; training diverged (lower the "
                    f"learning rate; the checkpoint of epoch {epoch - 1} is kept)"
                )
            sched.step()
            model.eval()
            train_metric = float(metric_sum) / n
            with torch.no_grad():
                val = float(task.validate(model, val_data))
            secs = time.perf_counter() - t0
            train_seconds += secs
            rows.append(
                {
                    "epoch": epoch,
                    "stage": stages[index].name,
                    f"train_{m}": train_metric,
                    f"val_{m}": val,
                    "lr": lr_now,
                    "seconds": secs,
                }
            )
            if val > best["val"] or (math.isnan(best["val"]) and not math.isnan(val)):  # NaN never wins
                best = {"epoch": epoch, "val": val, "state": copy.deepcopy(model.state_dict())}
            checkpoint(epoch)
            if bar is not None:
                bar.set_postfix(train=f"{train_metric:.3f}", val=f"{val:.3f}", best=best["epoch"])
            emit(
                f"epoch {epoch}/{config.epochs} [{stages[index].name}]: train {train_metric:.4f}  val {val:.4f}  "
                f"lr {lr_now:.3g}  {secs:.1f} s"
                + ("  *" if best["epoch"] == epoch else "")
                + (f"  ({skipped} of {nb} steps skipped: non-finite gradient)" if skipped else "")
            )

            if on_epoch_end is not None:
                on_epoch_end(epoch)
    finally:
        if bar is not None:
            bar.close()

    for p in model.parameters():
        p.requires_grad_(True)
    model.load_state_dict(best["state"])
    model.eval()
    summary = {
        "metric": m,
        "best_epoch": best["epoch"],
        "best_val": best["val"],
        "untrained_val": rows[0][f"val_{m}"],
        "last_val": rows[-1][f"val_{m}"],
        "train_seconds": train_seconds,
        "epochs": config.epochs,
        "lr": config.learning_rate,
        "config": cfg,
        "log": rows,
        "out_dir": str(out),
        "model_path": str(model_path),
        "log_path": str(log_path),
        "checkpoint_path": str(ckpt_path),
    }
    training = {
        k: summary[k]
        for k in ("metric", "best_epoch", "best_val", "untrained_val", "last_val", "train_seconds", "epochs", "lr")
    }
    meta = dict(task.metadata())
    if task.scenario is not None:  # what the model serves: checked by evaluate --model and manifests
        from .weights import interface_fingerprint

        meta.setdefault("scenario", task.scenario.name)
        meta["interface_fingerprint"] = interface_fingerprint(task.scenario)
        if model.observes == "observation":
            meta["observation"] = task.scenario.observation.summary()
    meta["training"] = training | {"config": cfg, "torch_version": str(torch.__version__)}
    model.save(model_path, metadata=meta)
    write_json(out / "summary.json", {k: v for k, v in summary.items() if k != "log"})
    return summary


def json_config(config: TrainConfig) -> dict:
    """The configuration as plain JSON values (as written in checkpoints and model metadata)."""
    import json

    return json.loads(json.dumps(config.to_dict(), default=str))
