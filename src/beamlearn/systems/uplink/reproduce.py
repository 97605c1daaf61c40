"""Reproduce the single-cell results of the uplink model-driven beamforming paper (Figs. 2, 4, 5, Table I).

Spec ``shared/papers/uplink-model-driven-bf.md`` (s3.1-3.3, s4.3-4.7, s5, s7, s9.3). Writes to ``out_dir``:

* ``fig2.csv`` / ``fig2.png``: sum rate against N = K on S0 (toy squared map, 20 dB): proposed (hybrid
  loss), supervised (alpha_R = 0) and unsupervised (alpha_H = alpha_P = 0);
* ``fig4a.csv`` / ``fig4a.png``: sum rate against N = K on S1 (front-end mismatch, 20 dB): proposed
  (original loss (7)), proposed (ZF loss), learned channel + ZF, learned channel + BF, WMMSE and ZF with
  perfect downlink CSI; ``fig4b.csv`` / ``fig4b.png``: the channel NMSE ``E ||H_hat - H_D||^2 / ||H_D||^2``
  of the CSI-Nets of the same models;
* ``fig5a.csv`` / ``fig5a.png``: sum rate against K on S2 (massive FDD ray model, N = 64, 10 dB);
  ``fig5b.csv`` / ``fig5b.png``: against the number of uplink pilots L (K = 6), same methods;
* ``table1.csv``: Table I, the time of one training step (forward, loss, backward, Adam; batch 100) of
  the proposed massive-MIMO network with the original, reduced-dimension and ZF losses, as an epoch of
  10^5 samples (1000 steps) and as percentages of the original, beside the paper's numbers;
* ``report.md`` / ``results.json``: every single-cell acceptance criterion of spec s9.3 as a claim (the
  paper's or spec's value beside ours; what did not run says why), the tables of the figures and the
  training budget of every model;
* ``cache/`` (the per-channel rates of every grid cell and the Table I timings: an interrupted run
  resumes), ``models/`` (with ``train``: one resumable training folder per model) and ``data/`` (the
  generated training data with WMMSE labels, shared by the methods of a configuration).

Every figure's CSV has the columns ``x, method, sum_rate_mean, sum_rate_ci95, channels, scenario``
(``nmse_mean, nmse_ci95`` for Fig. 4b), with the 95 % half-width ``1.96 std / sqrt(n)``.

Models: without ``train`` the shipped models (the manifests of :data:`beamlearn.systems.uplink.WEIGHTS`)
are evaluated at every configuration that has one trained on that configuration's own channel
distribution, and the references at the configurations the project ships (S1 with N = K = 4; S2 with
K = 4 and 6; S2 with K = 6 and L = 6 pilots); a method without a shipped model is listed as "not
shipped". With ``train`` every model of the selected sweeps is trained here first with a reduced budget
(``train_channels``, ``epochs``: the paper uses 10^5-10^6 samples and 200 epochs).

Test set: ``channels`` (default 1000, the paper's 10^3) pairs drawn with ``test_seed`` (default 2022;
the training and validation sets use the seeds 500000 + seed and 600000 + seed), complex128; every
method is scored on the true downlink channel.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..._validation import check_int
from ...experiment import experiment_key, method_style, run_grid
from ...io import atomic_savefig, write_csv, write_json
from ...reproduction import Claim, Report, Table, check, write_report
from .train import UplinkConfig, UplinkTask, scenario_for

__all__ = ["reproduce", "FIGURES", "LEARNED", "REFERENCES", "TABLE1"]

FIGURES = ("2", "4a", "4b", "5a", "5b")
# learned method -> (UplinkConfig fields, label); names as in the registry where the project ships them
LEARNED = {
    "uplink-mdl": ({"method": "proposed", "loss": "original"}, "proposed (original loss (7))"),
    "uplink-mdl-zf": ({"method": "proposed", "loss": "zf"}, "proposed (ZF loss (24))"),
    "uplink-mdl-supervised": ({"method": "supervised"}, "supervised (alpha_R = 0)"),
    "uplink-mdl-unsupervised": ({"method": "unsupervised"}, "unsupervised (alpha_H = alpha_P = 0)"),
    "learned-channel-zf": ({"method": "learned-channel"}, "learned channel + ZF"),
    "learned-channel-bf": ({"method": "learned-channel-bf"}, "learned channel + BF"),
}
SHIPPED_ONLY = ("uplink-mdl-reduced",)  # evaluated when shipped (same network as uplink-mdl), not trained here
REFERENCES = ("wmmse-perfect-csi", "zf-perfect-csi")
_FAMILY_METHODS = {
    "2": ("uplink-mdl", "uplink-mdl-supervised", "uplink-mdl-unsupervised"),
    "4": ("uplink-mdl", "uplink-mdl-zf", "learned-channel-zf", "learned-channel-bf"),
    "5a": ("uplink-mdl", "uplink-mdl-zf", "learned-channel-zf", "learned-channel-bf"),
    "5b": ("uplink-mdl", "uplink-mdl-zf", "learned-channel-zf", "learned-channel-bf"),
}
_PRESET = {"2": "uplink-s0", "4": "uplink-s1", "5a": "uplink-s2", "5b": "uplink-s2-pilots"}
_XNAME = {"2": "N = K", "4": "N = K", "5a": "K", "5b": "L"}
# the configurations the project ships models for (the no-train references are computed there)
_NAMED = {"4": (4,), "5a": (4, 6), "5b": (6,)}
# Table I of the paper (N = 64): K -> (T_0 in s, reduced %, ZF %)
TABLE1 = {
    2: (1570, 67.24, 60.11),
    4: (2314, 80.98, 73.69),
    6: (3388, 102.86, 84.02),
    8: (4716, 95.68, 87.78),
    10: (6683, 99.98, 93.13),
}
_STEPS_PER_EPOCH = 1000  # 10^5 samples / batch 100


def _ints(name: str, value, default) -> list[int]:
    """A list of positive ints from a setting: ``4``, ``"2,4"``, ``[2, 4]`` or ``None`` (the default)."""
    if value is None:
        return list(default)
    if isinstance(value, str):
        items = [v for v in value.replace(";", ",").split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    try:
        out = [int(str(v).strip()) if not isinstance(v, int) else v for v in items]
    except ValueError:
        raise ValueError(f"{name} must be a list of integers such as 2,4 or [2,4], got {value!r}") from None
    for v in out:
        check_int(name, v, 1)
    if not out:
        raise ValueError(f"{name} must name at least one value, got {value!r}")
    return list(dict.fromkeys(out))


def _figures(value) -> list[str]:
    if value is None:
        return list(FIGURES)
    items = _ints_or_words(value)
    out = []
    for it in items:
        it = it.lower().removeprefix("fig").removeprefix(".").strip()
        if it == "all":
            out += FIGURES
        elif it == "4":
            out += ["4a", "4b"]
        elif it == "5":
            out += ["5a", "5b"]
        elif it in FIGURES:
            out.append(it)
        else:
            raise ValueError(f"figs: unknown figure {it!r}; choose from {', '.join(FIGURES)} (or 4, 5, all)")
    return list(dict.fromkeys(out))


def _ints_or_words(value) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


@dataclass(frozen=True)
class _Point:
    """One x value of one figure family: the uplink preset and its sizes."""

    family: str
    x: int
    preset: str
    sizes: tuple[tuple[str, int], ...]

    def config(self, **fields) -> UplinkConfig:
        return UplinkConfig(scenario=self.preset, **dict(self.sizes), **fields)

    def scenario(self):
        return scenario_for(self.config())


def _point(family: str, x: int, n5: int | None, k5b: int) -> _Point:
    if family in ("2", "4"):
        sizes = (("num_users", x), ("num_bs_antennas", x))
    elif family == "5a":
        sizes = (("num_users", x),) + ((("num_bs_antennas", n5),) if n5 is not None else ())
    else:
        sizes = (("num_users", k5b), ("pilots", x)) + ((("num_bs_antennas", n5),) if n5 is not None else ())
    return _Point(family, x, _PRESET[family], sizes)


def _stats(v: torch.Tensor) -> tuple[float, float]:
    v = v.double()
    n = v.numel()
    sd = float(v.std()) if n > 1 else 0.0
    return float(v.mean()), 1.96 * sd / math.sqrt(n)


def _references(wmmse_iterations: int) -> dict:
    from ...interface import PerfectCSI
    from ...precoding import WMMSE, ZF

    # spec s5.1: best of MRT and RZF starts, up to 500 iterations (the registry's wmmse: 100, RZF start)
    return {
        "wmmse-perfect-csi": PerfectCSI(WMMSE(iterations=wmmse_iterations, init=("mrt", "rzf"))),
        "zf-perfect-csi": PerfectCSI(ZF()),
    }


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in text).strip("_")


def _comparable(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k not in ("device", "data_cache")}


def _train_model(point: _Point, key: str, budget: dict, out: Path, device: str, progress: bool, log):
    """Train (or reuse) ``key`` at ``point``; returns ``(model, info)``."""
    from ...learned import load_model
    from ...learned import train as train_task
    from ...learned.trainer import json_config

    cfg = point.config(**LEARNED[key][0], **budget, data_cache=str((out / "data").resolve()), device=device)
    plain = _comparable(json_config(cfg))
    digest = hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:8]
    sc = scenario_for(cfg)
    folder = out / "models" / _safe(sc.name) / f"{key}-{digest}"
    summary_path, model_path = folder / "summary.json", folder / "model.blm"
    summary = None
    if summary_path.is_file() and model_path.is_file():
        try:
            old = json.loads(summary_path.read_text())
            if _comparable(old.get("config", {})) == plain:
                summary = old
        except ValueError:
            summary = None
    if summary is None:
        summary = train_task(UplinkTask(cfg), folder, progress=progress, resume=True, log=None)
        log(
            f"trained {key} for {sc.name}: validation {summary['best_val']:.3f} bit/s/Hz at epoch "
            f"{summary['best_epoch']}/{summary['epochs']} ({summary['train_seconds']:.0f} s)"
        )
    model = load_model(model_path).eval()
    info = {
        "source": f"trained here ({folder.relative_to(out)})",
        "train_channels": cfg.train_channels,
        "val_channels": cfg.val_channels,
        "epochs": cfg.epochs,
        "best_epoch": summary.get("best_epoch"),
        "label_iterations": cfg.label_iterations,
        "train_seconds": summary.get("train_seconds"),
        "best_val": summary.get("best_val"),
    }
    return model, info


def _shipped_model(key: str, sc):
    """The shipped model of ``key`` for ``sc`` and its budget, or ``(None, reason)``."""
    from ...registry import build_method
    from . import WEIGHTS

    man = WEIGHTS.get(key)
    if man is None:
        return None, "no shipped models of this ablation (run with --train)"
    snr = float(sc.snr_db[0])
    own = {e.file for e in man.trained_on(sc)}
    entries = [
        e for e in man.for_scenario(sc) if e.file in own and e.snr_db is not None and abs(float(e.snr_db) - snr) <= 1e-6
    ]
    if not entries:
        other = sorted({e.scenario for e in man.for_scenario(sc)})
        extra = f"; the shipped models of these sizes were trained on {', '.join(other)}" if other else ""
        return None, f"not shipped for {sc.name} at {snr:g} dB{extra} (run with --train)"
    e = entries[0]
    try:
        method = build_method(key, sc, [snr])
    except ValueError as err:  # pragma: no cover - the manifest says it applies
        return None, f"not usable: {err}"
    cfg = (e.training or {}).get("config", {})
    info = {
        "source": f"shipped ({e.file})",
        "train_channels": cfg.get("train_channels"),
        "val_channels": cfg.get("val_channels"),
        "epochs": (e.training or {}).get("epochs", cfg.get("epochs")),
        "best_epoch": (e.training or {}).get("best_epoch"),
        "label_iterations": cfg.get("label_iterations"),
        "train_seconds": (e.training or {}).get("train_seconds"),
        "best_val": (e.training or {}).get("best_val"),
    }
    return method, info


def _network(method, snr_db: float):
    """The trained network behind a method (a shipped family resolves to its model at ``snr_db``)."""
    from ...learned import PerSNRModels

    if isinstance(method, PerSNRModels):
        return method.model_for(snr_db)
    return method


@torch.no_grad()
def _nmse(model, u: torch.Tensor, h: torch.Tensor, snr_db: float) -> torch.Tensor | None:
    """Per-sample ``||H_hat - H_D||^2 / ||H_D||^2`` of the CSI-Net of ``model`` on uplink info ``u``."""
    net = _network(model, snr_db)
    if not hasattr(net, "learned_channel"):
        return None
    net.to(u.device)
    was = net.training
    net.eval()
    hh = net.learned_channel(u).to(torch.complex128)
    net.train(was)
    hd = h.mH.to(torch.complex128)
    return (((hh - hd).abs() ** 2).sum((-2, -1)) / (hd.abs() ** 2).sum((-2, -1))).cpu()


def _table1(
    out: Path, users: list[int], antennas: int, steps: int, warmup: int, rounds: int, device: str, log
) -> dict[int, dict[str, float]]:
    """Seconds per training step for each K and loss (the minimum over ``rounds`` of the median over
    ``steps``), cached under ``out/cache`` so a rerun reports the same numbers."""
    from .timing import TIMED_LOSSES, loss_step_seconds

    key = experiment_key(
        {
            "table1": 1,
            "users": users,
            "antennas": antennas,
            "steps": steps,
            "warmup": warmup,
            "rounds": rounds,
            "device": device,
            "threads": torch.get_num_threads(),
            "torch": str(torch.__version__),
        }
    )
    path = out / "cache" / f"table1-{key}.json"
    if path.is_file():
        try:
            raw = json.loads(path.read_text())
            return {int(k): {loss: float(s) for loss, s in v.items()} for k, v in raw.items()}
        except (ValueError, AttributeError):
            pass
    res: dict[int, dict[str, float]] = {k: {} for k in users}
    for _ in range(rounds):
        for k in users:
            for loss in TIMED_LOSSES:
                s = loss_step_seconds(antennas, k, loss, steps=steps, warmup=warmup, device=device)
                res[k][loss] = min(res[k].get(loss, math.inf), s)
    write_json(path, {str(k): v for k, v in res.items()})
    log(f"Table I: timed {len(users)} user counts x 3 losses ({rounds} round(s) of {steps} steps)")
    return res


def _plot(rows: list[dict], path: Path, metric: str, xlabel: str, ylabel: str, title: str, log_y: bool = False):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for i, m in enumerate(methods):
        pts = sorted((r["x"], r[f"{metric}_mean"], r[f"{metric}_ci95"]) for r in rows if r["method"] == m)
        ax.errorbar(
            [p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], capsize=3, **method_style(m, i), label=m
        )
    if not rows:
        ax.text(0.5, 0.5, "no data in this run (see report.md)", ha="center", va="center", transform=ax.transAxes)
    if log_y and rows:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both" if log_y else "major")
    if rows:
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)


class _Results:
    """Per-channel values of every (family, x, method) cell, and why missing cells are missing."""

    def __init__(self, train: bool, figs: list[str], grids: dict[str, list[int]]):
        self.train = train
        self.figs = figs
        self.planned = grids  # the x values asked for
        self.grids: dict[str, list[int]] = {}  # the x values evaluated (set after the sweep)
        self.rate: dict[tuple[str, int, str], torch.Tensor] = {}
        self.nmse: dict[tuple[str, int, str], torch.Tensor] = {}
        self.missing: dict[tuple[str, int, str], str] = {}
        self.scenarios: dict[tuple[str, int], str] = {}

    def mean(self, fam: str, x: int, m: str) -> float | None:
        v = self.rate.get((fam, x, m))
        return None if v is None else float(v.double().mean())

    def xs(self, fam: str) -> list[int]:
        return sorted({x for f, x, _ in self.rate if f == fam})

    def why(self, fam: str, x: int | None, methods, figure: str) -> str:
        """Why a claim on ``methods`` at ``x`` (at every evaluated x when ``None``) cannot be checked."""
        if figure not in self.figs:
            return f"Fig. {figure} not selected (set figs=...)"
        xn = _XNAME[fam]
        xs = [x] if x is not None else (self.grids.get(fam) or self.planned.get(fam, []))
        for m in methods:
            for xx in xs:
                if (fam, xx, m) in self.rate:
                    continue
                reason = self.missing.get((fam, xx, m))
                if reason:
                    return f"no {m} at {xn} = {xx}: {reason}"
                if xx not in self.planned.get(fam, []):
                    return f"{xn} = {xx} is not in this run's grid"
                return f"{m} not evaluated at {xn} = {xx}"
        if not xs:
            return f"nothing evaluated for Fig. {figure}"
        return "not enough points in this run's grid"

    def why_none(self, fam: str, figure: str, methods, what: str, pred=lambda x: True, need: int = 1) -> str:
        """Why fewer than ``need`` x values satisfying ``pred`` (``what``) have every one of ``methods``."""
        if figure not in self.figs:
            return f"Fig. {figure} not selected (set figs=...)"
        planned = [x for x in self.planned.get(fam, []) if pred(x)]
        if len(planned) < need:
            return f"needs {what} in the grid" if need > 1 else f"no {what} in this run's grid"
        for x in planned:
            reason = self.why(fam, x, methods, figure)
            if not reason.startswith("not enough"):
                return reason
        return f"{what} not evaluated"


def reproduce(
    out_dir: str | Path,
    *,
    quick: bool = False,
    train: bool = False,
    channels: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    log=print,
    figs=None,
    fig2_sizes=None,
    fig4_sizes=None,
    fig5a_users=None,
    fig5b_pilots=None,
    fig5b_users: int | None = None,
    num_bs_antennas: int | None = None,
    train_channels: int | None = None,
    val_channels: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    label_iterations: int | None = None,
    seed: int = 0,
    test_seed: int = 2022,
    wmmse_iterations: int | None = None,
    table1: bool = True,
    table1_users=None,
    table1_antennas: int = 64,
    timing_steps: int | None = None,
    timing_warmup: int | None = None,
    timing_rounds: int | None = None,
    num_threads: int | None = 1,
) -> Report:
    """Run the reproduction; returns the :class:`~beamlearn.reproduction.Report` (also ``report.md``).

    Settings (``beamlearn reproduce uplink --set KEY=VALUE``; lists as ``2,4`` or ``[2,4]``):

    * ``figs``: figures to compute, from ``2, 4a, 4b, 5a, 5b`` (``4`` = 4a and 4b; default all); Table I
      is always timed unless ``table1=false``;
    * grids: ``fig2_sizes`` (N = K, default 2,4,6,8,10), ``fig4_sizes`` (N = K, default 2,4,6,8),
      ``fig5a_users`` (K, default 2,4,6,8,10), ``fig5b_pilots`` (L, default 1..10), ``fig5b_users`` (K of
      Fig. 5b, default 6), ``num_bs_antennas`` (N of Fig. 5, default 64; 32 is the caption's value);
    * training budget (with ``train``): ``train_channels`` (20000), ``val_channels`` (1000), ``epochs``
      (40), ``batch_size`` (100), ``label_iterations`` (WMMSE iterations of the power labels, 200),
      ``seed`` (0: training seeds 500000 + seed, validation 600000 + seed);
    * evaluation: ``test_seed`` (2022), ``wmmse_iterations`` (500, best of MRT and RZF starts);
    * Table I: ``table1_users`` (2,4,6,8,10), ``table1_antennas`` (64), ``timing_steps`` (20),
      ``timing_warmup`` (3), ``timing_rounds`` (2; the minimum over rounds of the median step time);
    * ``num_threads``: torch intra-op threads for the whole run (default 1, restored afterwards; ``None``
      leaves the setting alone): on a busy CPU more threads make the small batched ops many times slower.

    ``quick``: a smoke test of the whole pipeline (not a reproduction): 100 test channels, WMMSE with 30
    iterations, Table I with 2 steps; with ``train`` the models are trained on 300 samples for 2 epochs
    (labels from 10 WMMSE iterations) at N = K = 2 (Figs. 2, 4), K = 2 (Fig. 5a) and K = 2 with
    L in {1, 2} (Fig. 5b).
    """
    kw = dict(locals())
    threads = kw.pop("num_threads")
    if threads is None:
        return _reproduce(**kw)
    before = torch.get_num_threads()
    torch.set_num_threads(check_int("num_threads", threads, 1))
    try:
        return _reproduce(**kw)
    finally:
        torch.set_num_threads(before)


def _reproduce(
    out_dir,
    quick,
    train,
    channels,
    device,
    progress,
    log,
    figs,
    fig2_sizes,
    fig4_sizes,
    fig5a_users,
    fig5b_pilots,
    fig5b_users,
    num_bs_antennas,
    train_channels,
    val_channels,
    epochs,
    batch_size,
    label_iterations,
    seed,
    test_seed,
    wmmse_iterations,
    table1,
    table1_users,
    table1_antennas,
    timing_steps,
    timing_warmup,
    timing_rounds,
) -> Report:
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda *_: None)
    selected = _figures(figs)
    n = check_int("channels", channels if channels is not None else (100 if quick else 1000), 1)
    quick_train = quick and train
    grids = {
        "2": _ints("fig2_sizes", fig2_sizes, (2,) if quick else (2, 4, 6, 8, 10)),
        "4": _ints("fig4_sizes", fig4_sizes, (2,) if quick else (2, 4, 6, 8)),
        "5a": _ints("fig5a_users", fig5a_users, (2,) if quick else (2, 4, 6, 8, 10)),
        "5b": _ints("fig5b_pilots", fig5b_pilots, (1, 2) if quick else tuple(range(1, 11))),
    }
    k5b = check_int("fig5b_users", fig5b_users if fig5b_users is not None else (2 if quick_train else 6), 1)
    n5 = None if num_bs_antennas is None else check_int("num_bs_antennas", num_bs_antennas, 1)
    iters = check_int("wmmse_iterations", wmmse_iterations if wmmse_iterations is not None else (30 if quick else 500))
    test_seed = check_int("test_seed", test_seed, 0, 2**62)
    if 500_000 <= test_seed < 700_000:
        log(f"warning: test_seed {test_seed} may coincide with a training or validation seed (500000/600000 + seed)")
    budget = {
        "train_channels": check_int(
            "train_channels", train_channels if train_channels is not None else (300 if quick else 20000), 1
        ),
        "val_channels": check_int(
            "val_channels", val_channels if val_channels is not None else (100 if quick else 1000), 1
        ),
        "epochs": check_int("epochs", epochs if epochs is not None else (2 if quick else 40), 1),
        "batch_size": check_int("batch_size", batch_size if batch_size is not None else (50 if quick else 100), 1),
        "label_iterations": check_int(
            "label_iterations", label_iterations if label_iterations is not None else (10 if quick else 200), 1
        ),
        "seed": check_int("seed", seed, 0, 2**40),
    }
    budget["batch_size"] = min(budget["batch_size"], budget["train_channels"])
    families = [f for f in ("2", "4", "5a", "5b") if f in selected or (f == "4" and {"4a", "4b"} & set(selected))]
    if not train:  # the configurations the project ships (their references are always computed)
        for fam, xs in _NAMED.items():
            grids[fam] = sorted(set(grids[fam]) | set(xs))
    res = _Results(train, selected, {f: sorted(grids[f]) for f in grids})
    models_info: dict[tuple[str, str], dict] = {}
    dev = torch.device(device)
    refs = _references(iters)

    for fam in families:
        for x in sorted(grids[fam]):
            pt = _point(fam, x, n5, k5b)
            sc = pt.scenario()
            res.scenarios[(fam, x)] = sc.name
            keys = list(_FAMILY_METHODS[fam]) + ([] if (train or fam == "2") else list(SHIPPED_ONLY))
            methods = {}
            for key in keys:
                if train and key in LEARNED:
                    model, info = _train_model(pt, key, budget, out, device, progress, log)
                else:
                    model, info = _shipped_model(key, sc)
                if model is None:
                    if key not in SHIPPED_ONLY:
                        res.missing[(fam, x, key)] = info
                    continue
                methods[key] = model
                models_info[(sc.name, key)] = {"figure": fam, "x": x, **info}
            if not methods and (train or x not in _NAMED.get(fam, ())):
                continue  # nothing to evaluate here (references only at the shipped configurations)
            h, u = sc.channel_model().pair(n, seed=test_seed, dtype=torch.complex128)
            h, u = h.to(dev), u.to(dev)
            snr = float(sc.snr_db[0])
            if methods:
                g = run_grid(
                    sc,
                    methods,
                    [snr],
                    h,
                    uplink=u,
                    metric="sum_rate",
                    cache_dir=out / "cache",
                    batch_size=1000,
                    seed=test_seed,
                    description={"system": "uplink", "test_seed": test_seed},
                    progress=progress,
                    desc=f"reproduce uplink Fig. {fam} ({_XNAME[fam]} = {x})",
                )
                for key in methods:
                    res.rate[(fam, x, key)] = g.values[(key, snr)]
            if fam != "2":
                from ...observation import ObservationSpec

                ref_sc = sc.replace(
                    name=f"uplink-reference-{sc.channel.params.get('map')}[N={sc.num_bs_antennas},K={sc.num_users}]",
                    observation=ObservationSpec("uplink", mapping="paired"),
                )
                g = run_grid(
                    ref_sc,
                    refs,
                    [snr],
                    h,
                    uplink=u,
                    metric="sum_rate",
                    cache_dir=out / "cache",
                    batch_size=1000,
                    seed=test_seed,
                    description={"system": "uplink", "reference": True, "wmmse_iterations": iters},
                    progress=progress,
                    desc=f"reproduce uplink references (N={sc.num_bs_antennas}, K={sc.num_users})",
                )
                for key in refs:
                    res.rate[(fam, x, key)] = g.values[(key, snr)]
            if fam == "4" and "4b" in selected:
                x_in = u if sc.observation.pilot_length is None else None
                for key, m in methods.items():
                    if x_in is None:
                        break
                    v = _nmse(m, x_in, h, snr)
                    if v is not None:
                        res.nmse[(fam, x, key)] = v

    res.grids = {f: res.xs(f) for f in ("2", "4", "5a", "5b")}

    # -- figure files ---------------------------------------------------------------------------------
    written = []
    fig_of = {"2": "2", "4a": "4", "5a": "5a", "5b": "5b"}
    titles = {
        "2": "Fig. 2: S0 (h_d = h_u^2), 20 dB",
        "4a": "Fig. 4(a): S1 (c Phi mismatch), 20 dB",
        "5a": f"Fig. 5(a): S2, N = {n5 or 64}, 10 dB",
        "5b": f"Fig. 5(b): S2, N = {n5 or 64}, K = {k5b}, 10 dB, pilots",
    }
    cols = ["x", "method", "sum_rate_mean", "sum_rate_ci95", "channels", "scenario"]
    fig_rows: dict[str, list[dict]] = {}
    for fig in ("2", "4a", "5a", "5b"):
        if fig not in selected:
            continue
        fam = fig_of[fig]
        rows = []
        order = list(_FAMILY_METHODS[fam]) + list(SHIPPED_ONLY) + list(REFERENCES)
        for m in order:
            for x in sorted(grids[fam]):
                v = res.rate.get((fam, x, m))
                if v is None:
                    continue
                mu, ci = _stats(v)
                rows.append(
                    {
                        "x": x,
                        "method": m,
                        "sum_rate_mean": mu,
                        "sum_rate_ci95": ci,
                        "channels": v.numel(),
                        "scenario": res.scenarios[(fam, x)],
                    }
                )
        fig_rows[fig] = rows
        write_csv(out / f"fig{fig}.csv", rows, cols)
        _plot(rows, out / f"fig{fig}.png", "sum_rate", _XNAME[fam], "sum rate [bit/s/Hz]", f"{titles[fig]}, {n} ch.")
        written.append(f"fig{fig}")
    if "4b" in selected:
        rows = []
        for m in _FAMILY_METHODS["4"]:
            for x in sorted(grids["4"]):
                v = res.nmse.get(("4", x, m))
                if v is None:
                    continue
                mu, ci = _stats(v)
                rows.append(
                    {
                        "x": x,
                        "method": m,
                        "nmse_mean": mu,
                        "nmse_ci95": ci,
                        "channels": v.numel(),
                        "scenario": res.scenarios[("4", x)],
                    }
                )
        fig_rows["4b"] = rows
        write_csv(out / "fig4b.csv", rows, ["x", "method", "nmse_mean", "nmse_ci95", "channels", "scenario"])
        _plot(rows, out / "fig4b.png", "nmse", "N = K", "channel NMSE", f"Fig. 4(b): CSI-Net NMSE, {n} ch.", True)
        written.append("fig4b")

    # -- Table I ----------------------------------------------------------------------------------------
    t1 = None
    t_users = _ints("table1_users", table1_users, (2, 4, 6, 8, 10))
    if table1:
        t1 = _table1(
            out,
            t_users,
            check_int("table1_antennas", table1_antennas, 1),
            check_int("timing_steps", timing_steps if timing_steps is not None else (2 if quick else 20), 1),
            check_int("timing_warmup", timing_warmup if timing_warmup is not None else (1 if quick else 3), 0),
            check_int("timing_rounds", timing_rounds if timing_rounds is not None else (1 if quick else 2), 1),
            device,
            log,
        )
        t1_rows = []
        for k in t_users:
            s = t1[k]
            paper = TABLE1.get(k)
            t1_rows.append(
                {
                    "K": k,
                    "original_step_s": s["original"],
                    "reduced_step_s": s["reduced"],
                    "zf_step_s": s["zf"],
                    "T0_epoch_s": s["original"] * _STEPS_PER_EPOCH,
                    "reduced_pct": 100 * s["reduced"] / s["original"],
                    "zf_pct": 100 * s["zf"] / s["original"],
                    "paper_T0_s": paper[0] if paper else "",
                    "paper_reduced_pct": paper[1] if paper else "",
                    "paper_zf_pct": paper[2] if paper else "",
                }
            )
        write_csv(out / "table1.csv", t1_rows, list(t1_rows[0]))
        written.append("table1")

    claims = _claims(res, selected, t1, t_users, k5b, n5)
    tables = _tables(res, selected, fig_rows, t1, t_users, k5b)
    tables.append(_models_table(models_info))
    missing = _missing_lines(res, selected)
    elapsed = time.perf_counter() - t_start
    report = Report(
        title="Uplink model-driven downlink beamforming (Zhang et al.): reproduction report (single cell)",
        intro=[
            f"Test set: {n} channel pairs per configuration (seed {test_seed}, complex128; the training sets use "
            f"seeds 500000 + seed, validation 600000 + seed), every method scored on the true downlink channel.",
            f"References with perfect downlink CSI: WMMSE ({iters} iterations, best of MRT and RZF starts, spec "
            "s5.1) and ZF. 95 % intervals: 1.96 std / sqrt(n) over the test channels (CSV columns `*_ci95`).",
            "Models: "
            + (
                f"trained in this run with a reduced budget: {budget['train_channels']} training samples, "
                f"{budget['epochs']} epochs, batch {budget['batch_size']}, WMMSE labels from "
                f"{budget['label_iterations']} iterations (the paper: 10^5 samples, 10^6 for S0/S1, 200 epochs)."
                if train
                else "the shipped models (`beamlearn/systems/uplink/weights`); methods without a shipped model for "
                "a configuration are listed as not shipped (`--train` trains them here)."
            ),
            f"Figures: {', '.join(selected)}; Fig. 5 at N = {n5 or 64}, Fig. 5(b) at K = {k5b}. "
            f"Run time: {elapsed:.0f} s.",
        ],
        claims=claims,
        tables=tables,
        notes=[
            *(["## Not shipped / not run", "", *missing, ""] if missing else []),
            f"Table I is timed on this run's device ({device}; on a CPU with {torch.get_num_threads()} intra-op "
            "thread(s), our runs on a loaded 2-core CPU), not on the paper's GPU: compare the ratios and their "
            "trend in K, not the seconds. The timings are cached in `cache/table1-*.json`; delete the file to time "
            "again.",
        ],
        results={
            "channels": n,
            "test_seed": test_seed,
            "wmmse_iterations": iters,
            "trained_here": train,
            "budget": budget if train else None,
            "figures": selected,
            "grids": {f: sorted(v) for f, v in grids.items()},
            "fig5b_users": k5b,
            "fig5_antennas": n5 or 64,
            "sum_rate": {f"fig{f}|{x}|{m}": _stats(v)[0] for (f, x, m), v in res.rate.items()},
            "nmse": {f"fig4b|{x}|{m}": _stats(v)[0] for (_, x, m), v in res.nmse.items()},
            "table1_step_seconds": {str(k): v for k, v in (t1 or {}).items()},
            "models": [{"scenario": s, "method": m, **info} for (s, m), info in models_info.items()],
            "missing": {f"fig{f}|{x}|{m}": r for (f, x, m), r in res.missing.items()},
            "seconds": elapsed,
        },
        quick=quick,
        reference_header="paper / spec",
    )
    write_report(out, report)
    log(f"wrote {out / 'report.md'} and {', '.join(written)}")
    return report


# -- claims -----------------------------------------------------------------------------------------------


def _nr(text: str, ref: str, why: str, criterion: str = "") -> Claim:
    return Claim(text, ref, f"not run: {why}", None, None, criterion)


def _ratio_claims(res, fam, figure, thresholds, ref_of, text_of, generic: str) -> list[Claim]:
    """``R(uplink-mdl) >= t(x) R(WMMSE)`` at every evaluated x (one claim per x; ``generic`` when none)."""
    if not res.grids.get(fam):
        return [_nr(generic, ref_of(None), res.why_none(fam, figure, ("uplink-mdl", "wmmse-perfect-csi"), "point"))]
    out = []
    for x in res.grids.get(fam, []):
        t = thresholds(x)
        text, ref = text_of(x, t), ref_of(x)
        p, w = res.mean(fam, x, "uplink-mdl"), res.mean(fam, x, "wmmse-perfect-csi")
        if figure not in res.figs or p is None or w is None:
            out.append(_nr(text, ref, res.why(fam, x, ("uplink-mdl", "wmmse-perfect-csi"), figure)))
            continue
        out.append(check(text, ref, p / w, at_least=t, measured=f"{p / w:.3f} ({p:.2f} vs {w:.2f})"))
    return out


def _monotone_ok(values: list[float], tol: float = 0.0, violations: int = 0, increasing: bool = True) -> bool:
    bad = sum(1 for a, b in zip(values, values[1:], strict=False) if (b < a - tol if increasing else b > a + tol))
    return bad <= violations


def _claims(res: _Results, figs, t1, t_users, k5b, n5) -> list[Claim]:
    claims: list[Claim] = []
    P, SUP, UNS = "uplink-mdl", "uplink-mdl-supervised", "uplink-mdl-unsupervised"
    ZFL, LCZ, LCB, W = "uplink-mdl-zf", "learned-channel-zf", "learned-channel-bf", "wmmse-perfect-csi"

    # -- Fig. 2 -------------------------------------------------------------------------------------------
    text = "Fig. 2: R(proposed) >= 1.05 x R(supervised) at N = K = 10"
    ref = "paper: about +10 % (spec >= 1.05)"
    p, s = res.mean("2", 10, P), res.mean("2", 10, SUP)
    if "2" in figs and p is not None and s is not None:
        claims.append(check(text, ref, p / s, at_least=1.05, measured=f"{p / s:.3f} ({p:.2f} vs {s:.2f})"))
    else:
        claims.append(_nr(text, ref, res.why("2", 10, (P, SUP), "2")))
    text = "Fig. 2: R(unsupervised) < R(supervised) at every K >= 6"
    ref = "unsupervised the lowest curve"
    ks = [k for k in res.grids.get("2", []) if k >= 6]
    pairs = [(k, res.mean("2", k, UNS), res.mean("2", k, SUP)) for k in ks]
    if "2" in figs and ks and all(a is not None and b is not None for _, a, b in pairs):
        claims.append(
            Claim(
                text,
                ref,
                "; ".join(f"K={k}: {a:.2f} vs {b:.2f}" for k, a, b in pairs),
                all(a < b for _, a, b in pairs),
            )
        )
    else:
        claims.append(_nr(text, ref, res.why_none("2", "2", (UNS, SUP), "K >= 6", lambda k: k >= 6)))
    text = "Fig. 2: the gain (proposed - supervised) / supervised is non-decreasing in K (one violation allowed)"
    ref = "the gap grows with N_t"
    ks = [k for k in res.grids.get("2", []) if res.mean("2", k, P) is not None and res.mean("2", k, SUP) is not None]
    if "2" in figs and len(ks) >= 2:
        gains = [res.mean("2", k, P) / res.mean("2", k, SUP) - 1 for k in ks]
        claims.append(
            Claim(
                text,
                ref,
                ", ".join(f"K={k}: {100 * g:+.1f} %" for k, g in zip(ks, gains, strict=True)),
                _monotone_ok(gains, violations=1),
            )
        )
    else:
        claims.append(
            _nr(
                text,
                ref,
                res.why_none("2", "2", (P, SUP), "at least two K", need=2),
            )
        )

    # -- Fig. 4a ------------------------------------------------------------------------------------------
    claims += _ratio_claims(
        res,
        "4",
        "4a",
        lambda k: 0.90 if k <= 4 else 0.85,
        lambda k: "paper: proposed ~ WMMSE",
        lambda k, t: f"Fig. 4(a): R(proposed) >= {t:.2f} x R(WMMSE) at N = K = {k}",
        "Fig. 4(a): R(proposed) >= 0.90 x R(WMMSE) at N = K <= 4 and >= 0.85 x at N = K in {6, 8}",
    )
    text = "Fig. 4(a): ordering proposed > learned channel + ZF > learned channel + BF at every K >= 4"
    ref = "LC+BF worst; LC+ZF much lower than proposed"
    ks = [k for k in res.grids.get("4", []) if k >= 4]
    vals = [(k, res.mean("4", k, P), res.mean("4", k, LCZ), res.mean("4", k, LCB)) for k in ks]
    if "4a" in figs and ks and all(None not in v for v in vals):
        claims.append(
            Claim(
                text,
                ref,
                "; ".join(f"K={k}: {a:.2f} > {b:.2f} > {c:.2f}" for k, a, b, c in vals),
                all(a > b > c for _, a, b, c in vals),
            )
        )
    else:
        claims.append(_nr(text, ref, res.why_none("4", "4a", (P, LCZ, LCB), "K >= 4", lambda k: k >= 4)))
    claims.append(
        _close_claim(
            res,
            "4",
            "4a",
            "Fig. 4(a): proposed (ZF loss) within 5 % of proposed (original) at every K",
            "almost no loss",
            ZFL,
            P,
            0.05,
        )
    )

    # -- Fig. 4b ------------------------------------------------------------------------------------------
    text = "Fig. 4(b): NMSE(two-step CSI-Net) < NMSE(proposed CSI-Net) at every K"
    ref = "the benchmark has the lower NMSE"
    ks = res.grids.get("4", [])
    vals = [(k, res.nmse.get(("4", k, LCZ)), res.nmse.get(("4", k, P))) for k in ks]
    if "4b" in figs and ks and all(a is not None and b is not None for _, a, b in vals):
        v2 = [(k, float(a.mean()), float(b.mean())) for k, a, b in vals]
        claims.append(
            Claim(text, ref, "; ".join(f"K={k}: {a:.3g} vs {b:.3g}" for k, a, b in v2), all(a < b for _, a, b in v2))
        )
    else:
        claims.append(_nr(text, ref, res.why("4", None, (LCZ, P), "4b")))
    text = "Fig. 4(b): ... yet R(proposed) > R(learned channel + ZF) at every K"
    ref = "much lower sum rate for the benchmark"
    vals = [(k, res.mean("4", k, P), res.mean("4", k, LCZ)) for k in ks]
    if "4b" in figs and ks and all(a is not None and b is not None for _, a, b in vals):
        claims.append(
            Claim(
                text, ref, "; ".join(f"K={k}: {a:.2f} vs {b:.2f}" for k, a, b in vals), all(a > b for _, a, b in vals)
            )
        )
    else:
        claims.append(_nr(text, ref, res.why("4", None, (P, LCZ), "4b")))

    # -- Fig. 5a ------------------------------------------------------------------------------------------
    claims += _ratio_claims(
        res,
        "5a",
        "5a",
        lambda k: 0.95 if k <= 6 else 0.92,
        lambda k: "paper: very close to WMMSE",
        lambda k, t: f"Fig. 5(a): R(proposed) >= {t:.2f} x R(WMMSE) at K = {k}",
        "Fig. 5(a): R(proposed) >= 0.95 x R(WMMSE) at K <= 6 and >= 0.92 x at K in {8, 10}",
    )
    claims.append(
        _close_claim(
            res,
            "5a",
            "5a",
            "Fig. 5(a): |R(ZF loss) - R(original)| <= 2 % of R(original) at every K",
            "ZF loss costs almost nothing",
            ZFL,
            P,
            0.02,
        )
    )
    text = "Fig. 5(a): R(proposed) >= 1.05 x R(learned channel + ZF), averaged over K"
    ref = "paper: about +10 %"
    ks = res.grids.get("5a", [])
    vals = [(k, res.mean("5a", k, P), res.mean("5a", k, LCZ)) for k in ks]
    if "5a" in figs and ks and all(a is not None and b is not None for _, a, b in vals):
        r = sum(a / b for _, a, b in vals) / len(vals)
        claims.append(
            check(
                text,
                ref,
                r,
                at_least=1.05,
                measured=f"{r:.3f} (" + ", ".join(f"K={k}: {a / b:.3f}" for k, a, b in vals) + ")",
            )
        )
    else:
        claims.append(_nr(text, ref, res.why("5a", None, (P, LCZ), "5a")))
    text = "Fig. 5(a): learned channel + BF is the lowest curve at every K"
    ref = "LC+BF the worst"
    curves = (W, P, ZFL, LCZ, LCB)
    vals = [(k, {m: res.mean("5a", k, m) for m in curves}) for k in ks]
    if "5a" in figs and ks and all(None not in d.values() for _, d in vals):
        claims.append(
            Claim(
                text,
                ref,
                "; ".join(
                    f"K={k}: {d[LCB]:.2f} vs next {min(v for m, v in d.items() if m != LCB):.2f}" for k, d in vals
                ),
                all(d[LCB] < min(v for m, v in d.items() if m != LCB) for _, d in vals),
            )
        )
    else:
        claims.append(_nr(text, ref, res.why("5a", None, curves, "5a")))
    text = "Fig. 5(a): also run at N = 32 (the caption's value)"
    if n5 == 32:
        claims.append(Claim(text, "N = 32 and 64", "this run uses N = 32 (the claims above are at N = 32)", None))
    else:
        claims.append(
            _nr(text, "N = 32 and 64", f"this run uses N = {n5 or 64}; --set num_bs_antennas=32 runs Fig. 5 at N = 32")
        )

    # -- Fig. 5b ------------------------------------------------------------------------------------------
    ls = res.grids.get("5b", [])
    text = "Fig. 5(b): R(proposed) non-decreasing in L (within 1 %)"
    ref = "improves with L"
    pts = [(L, res.mean("5b", L, P)) for L in ls]
    have = [(L, v) for L, v in pts if v is not None]
    if "5b" in figs and len(have) >= 2 and len(have) == len(pts):
        vals = [v for _, v in have]
        ok = all(b >= 0.99 * a for a, b in zip(vals, vals[1:], strict=False))
        claims.append(Claim(text, ref, ", ".join(f"L={L}: {v:.2f}" for L, v in have), ok))
    else:
        claims.append(_nr(text, ref, res.why_none("5b", "5b", (P,), "at least two L", need=2)))
    high = [L for L in ls if L >= k5b]
    text = f"Fig. 5(b): R(proposed) >= 0.93 x R(WMMSE) for every L >= K = {k5b}"
    ref = "close to WMMSE for L >= 6"
    vals = [(L, res.mean("5b", L, P), res.mean("5b", L, W)) for L in high]
    if "5b" in figs and high and all(a is not None and b is not None for _, a, b in vals):
        r = min(a / b for _, a, b in vals)
        claims.append(check(text, ref, r, at_least=0.93, measured="; ".join(f"L={L}: {a / b:.3f}" for L, a, b in vals)))
    else:
        claims.append(_nr(text, ref, res.why_none("5b", "5b", (P, W), f"L >= {k5b}", lambda x: x >= k5b)))
    text = f"Fig. 5(b): |R(ZF loss) - R(proposed)| <= 2 % for every L >= K = {k5b}"
    ref = "almost identical for L >= 6"
    vals = [(L, res.mean("5b", L, ZFL), res.mean("5b", L, P)) for L in high]
    if "5b" in figs and high and all(a is not None and b is not None for _, a, b in vals):
        d = max(abs(a - b) / b for _, a, b in vals)
        claims.append(
            check(text, ref, d, at_most=0.02, measured="; ".join(f"L={L}: {abs(a - b) / b:.3f}" for L, a, b in vals))
        )
    else:
        claims.append(_nr(text, ref, res.why_none("5b", "5b", (ZFL, P), f"L >= {k5b}", lambda x: x >= k5b)))
    low = [L for L in ls if L <= k5b // 2]
    text = f"Fig. 5(b): R(proposed) at L <= K/2 = {k5b // 2} at least 3 % below L = K = {k5b}"
    ref = "visibly lower for L <= 3"
    top = res.mean("5b", k5b, P)
    vals = [(L, res.mean("5b", L, P)) for L in low]
    if "5b" in figs and low and top is not None and all(v is not None for _, v in vals):
        r = max(v / top for _, v in vals)
        claims.append(
            check(text, ref, r, at_most=0.97, measured="; ".join(f"L={L}: {v / top:.3f} of L={k5b}" for L, v in vals))
        )
    else:
        planned = res.planned.get("5b", [])
        if "5b" in figs and k5b in planned and any(x <= k5b // 2 for x in planned):
            why = res.why_none("5b", "5b", (P,), "those L", lambda x: x == k5b or x <= k5b // 2)
        else:
            why = res.why_none("5b", "5b", (), f"L = {k5b} and some L <= {k5b // 2}", need=10**9)
        claims.append(_nr(text, ref, why))
    text = "Fig. 5(b): R(proposed) > R(learned channel + BF) at every L"
    ref = "significant gap to LC+BF"
    vals = [(L, res.mean("5b", L, P), res.mean("5b", L, LCB)) for L in ls]
    if "5b" in figs and ls and all(a is not None and b is not None for _, a, b in vals):
        claims.append(
            Claim(
                text, ref, "; ".join(f"L={L}: {a:.2f} vs {b:.2f}" for L, a, b in vals), all(a > b for _, a, b in vals)
            )
        )
    else:
        claims.append(_nr(text, ref, res.why("5b", None, (P, LCB), "5b")))

    # -- Table I ------------------------------------------------------------------------------------------
    claims += _table1_claims(t1, t_users)
    return claims


def _close_claim(res, fam, figure, text, ref, a_key, b_key, tol) -> Claim:
    xs = res.grids.get(fam, [])
    vals = [(x, res.mean(fam, x, a_key), res.mean(fam, x, b_key)) for x in xs]
    if figure in res.figs and xs and all(a is not None and b is not None for _, a, b in vals):
        d = max(abs(a - b) / b for _, a, b in vals)
        xn = _XNAME[fam].split()[-1]
        return check(
            text, ref, d, at_most=tol, measured="; ".join(f"{xn}={x}: {abs(a - b) / b:.3f}" for x, a, b in vals)
        )
    return _nr(text, ref, res.why(fam, None, (a_key, b_key), figure))


def _table1_claims(t1, users) -> list[Claim]:
    texts = [
        ("Table I: ZF-loss step time < original at K = 2", "60.11 %"),
        ("Table I: reduced-dimension step time < original at K = 2", "67.24 %"),
        ("Table I: the ZF-loss ratio increases with K (one violation allowed)", "60.1 / 73.7 / 84.0 / 87.8 / 93.1 %"),
        ("Table I: the ZF-loss ratio exceeds 0.8 at K = 10", "93.13 %"),
    ]
    if t1 is None:
        return [_nr(t, r, "Table I not timed (table1=false)") for t, r in texts]
    ratio = {k: {loss: t1[k][loss] / t1[k]["original"] for loss in ("reduced", "zf")} for k in users}
    out = []
    for (text, ref), loss in zip(texts[:2], ("zf", "reduced"), strict=True):
        if 2 in ratio:
            out.append(check(text, ref, ratio[2][loss], at_most=1 - 1e-12, measured=f"{100 * ratio[2][loss]:.1f} %"))
        else:
            out.append(_nr(text, ref, "K = 2 not timed"))
    ks = sorted(ratio)
    if len(ks) >= 2:
        z = [ratio[k]["zf"] for k in ks]
        out.append(
            Claim(
                texts[2][0], texts[2][1], " / ".join(f"{100 * v:.1f}" for v in z) + " %", _monotone_ok(z, violations=1)
            )
        )
    else:
        out.append(_nr(*texts[2], "needs at least two K"))
    if 10 in ratio:
        out.append(check(*texts[3], ratio[10]["zf"], at_least=0.8 + 1e-12, measured=f"{100 * ratio[10]['zf']:.1f} %"))
    else:
        out.append(_nr(*texts[3], "K = 10 not timed"))
    return out


# -- tables -----------------------------------------------------------------------------------------------


def _tables(res: _Results, figs, fig_rows, t1, t_users, k5b) -> list[Table]:
    tables = []
    names = {
        "2": "Fig. 2: mean sum rate [bit/s/Hz] against N = K (S0, 20 dB)",
        "4a": "Fig. 4(a): mean sum rate [bit/s/Hz] against N = K (S1, 20 dB)",
        "5a": "Fig. 5(a): mean sum rate [bit/s/Hz] against K (S2, 10 dB)",
        "5b": f"Fig. 5(b): mean sum rate [bit/s/Hz] against L (S2, K = {k5b}, 10 dB)",
        "4b": "Fig. 4(b): channel NMSE of the CSI-Nets against N = K (S1)",
    }
    for fig in ("2", "4a", "4b", "5a", "5b"):
        rows = fig_rows.get(fig)
        if fig not in figs or rows is None:
            continue
        metric = "nmse" if fig == "4b" else "sum_rate"
        methods = list(dict.fromkeys(r["method"] for r in rows))
        xs = sorted({r["x"] for r in rows})
        val = {(r["x"], r["method"]): r for r in rows}
        fmt = "{:.3g} +- {:.2g}" if fig == "4b" else "{:.2f} +- {:.2f}"
        body = [
            [
                str(x),
                *(
                    fmt.format(val[(x, m)][f"{metric}_mean"], val[(x, m)][f"{metric}_ci95"]) if (x, m) in val else "-"
                    for m in methods
                ),
            ]
            for x in xs
        ]
        fam = {"2": "2", "4a": "4", "4b": "4", "5a": "5a", "5b": "5b"}[fig]
        tables.append(
            Table(
                names[fig],
                [_XNAME[fam], *methods] if methods else [_XNAME[fam]],
                body or [["(no data: nothing shipped or trained for this figure, see below)"]],
                "Mean +- 95 % half-width. The paper gives no curve values (spec s7): only the claims are comparable.",
            )
        )
    if t1 is not None:
        rows = []
        for k in t_users:
            s = t1[k]
            p = TABLE1.get(k)
            rows.append(
                [
                    str(k),
                    f"{1000 * s['original']:.1f}",
                    f"{s['original'] * _STEPS_PER_EPOCH:.0f} ({p[0] if p else '-'})",
                    f"{s['original'] * _STEPS_PER_EPOCH * 200 / 3600:.1f} h",
                    f"{100 * s['reduced'] / s['original']:.1f} % ({p[1] if p else '-'} %)",
                    f"{100 * s['zf'] / s['original']:.1f} % ({p[2] if p else '-'} %)",
                ]
            )
        tables.append(
            Table(
                "Table I: training time, N = 64, original / reduced-dimension / ZF loss (paper's value in parentheses)",
                ["K", "step (ms)", "T_0: s per epoch (paper T_0)", "200 epochs", "reduced", "ZF loss"],
                rows,
                "One step = forward, hybrid loss, backward and Adam on a batch of 100; an epoch of 10^5 samples is "
                "1000 steps. The paper's T_0 does not say whether it is per epoch or per training; the percentages "
                "are the comparable numbers.",
            )
        )
    return tables


def _models_table(models_info: dict) -> Table:
    rows = []
    order = {m: i for i, m in enumerate([*LEARNED, *SHIPPED_ONLY])}
    fams = {f: i for i, f in enumerate(("2", "4", "5a", "5b"))}
    for (scn, key), info in sorted(
        models_info.items(), key=lambda kv: (fams[kv[1]["figure"]], kv[1]["x"], order.get(kv[0][1], 99))
    ):

        def f(v, fmt="{}"):
            return "-" if v is None else fmt.format(v)

        rows.append(
            [
                scn,
                key,
                info["source"],
                f(info.get("train_channels")),
                f(info.get("epochs")),
                f(info.get("best_epoch")),
                f(info.get("label_iterations")),
                f(info.get("train_seconds"), "{:.1f}"),
                f(info.get("best_val"), "{:.3f}"),
            ]
        )
    return Table(
        "Models evaluated and their training budget",
        [
            "configuration",
            "method",
            "source",
            "training samples",
            "epochs",
            "best epoch",
            "label WMMSE it.",
            "train s",
            "val. rate",
        ],
        rows or [["(none)", "-", "-", "-", "-", "-", "-", "-", "-"]],
        "The paper trains on 10^5 samples (10^6 for S0/S1) for 200 epochs; a reduced budget lowers the learned curves.",
    )


def _missing_lines(res: _Results, figs) -> list[str]:
    grouped: dict[tuple[str, str, str], list[int]] = {}
    for (fam, x, m), reason in sorted(res.missing.items()):
        generic = reason.split(" for ")[0] if reason.startswith("not shipped") else reason
        grouped.setdefault((fam, m, generic), []).append(x)
    lines = []
    label = {"2": "Fig. 2", "4": "Fig. 4", "5a": "Fig. 5(a)", "5b": "Fig. 5(b)"}
    for (fam, m, reason), xs in grouped.items():
        lines.append(f"* {label[fam]}, {m} at {_XNAME[fam]} = {', '.join(map(str, xs))}: {reason}.")
    for fig in FIGURES:
        if fig not in figs:
            lines.append(f"* Fig. {fig}: not selected (figs=...).")
    return lines
