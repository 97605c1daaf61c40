"""The experiment grid: every (method, SNR) cell of one metric, cached per cell and resumable.

Used by ``evaluate`` and by every reproduction, so both share one resume mechanism. The data path of a
cell: true channels ``h`` -> the scenario's observation (:mod:`beamlearn.observation`) -> the method
-> :class:`~beamlearn.interface.Beamformers` -> the metric on the true channels (one value per
channel) -> mean and standard deviation in a CSV row.

Caching: with ``cache_dir``, each finished cell's per-channel values and timing are written atomically
to ``cache_dir/<key>/<method>@<snr>_n<channels>.pt`` (``torch.load(weights_only=True)``), where
``<key>`` digests everything that determines the numbers (the caller's description of the experiment,
the channels' SHA-256, the metric, the observation, the batch size, the seed). A rerun with the same
key skips finished cells; a run with any other key computes its own.

Randomness is seeded per cell and per batch from ``seed`` and the SNR (observation noise, metric symbol
draws) and per cell for the global torch RNG, so a cell's numbers do not depend on which other cells
were computed before it, and all methods see the same observations at an SNR.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ._validation import check_channel, check_snr_db
from .interface import BeamformingMethod
from .io import atomic_savefig, atomic_torch_save
from .metrics.table import Metric, get_metric
from .observation import PERFECT_CSI, ObservationSpec

__all__ = ["columns", "GridResult", "run_grid", "format_table", "plot_grid", "method_style", "experiment_key"]


def columns(metric: str) -> list[str]:
    """CSV columns of a grid of ``metric``: ``method,snr_db,<metric>_mean,<metric>_std,channels,seconds``."""
    return ["method", "snr_db", f"{metric}_mean", f"{metric}_std", "channels", "seconds"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _derived_seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:7], "little")


def experiment_key(description: Mapping) -> str:
    """16 hex digits digesting a JSON-able description of an experiment."""
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class GridResult:
    """Per-channel values ``[B]`` (float64, CPU) and method seconds of each ``(method, snr_db)`` cell."""

    metric: str
    values: dict[tuple[str, float], torch.Tensor] = field(default_factory=dict)
    seconds: dict[tuple[str, float], float] = field(default_factory=dict)

    def mean(self, method: str, snr_db: float) -> float:
        return float(self.values[(method, float(snr_db))].mean())

    def rows(self, methods: Sequence[str] | None = None, snrs: Sequence[float] | None = None) -> list[dict]:
        """CSV rows (:func:`columns`) in the order methods x SNRs."""
        methods = list(dict.fromkeys(m for m, _ in self.values)) if methods is None else methods
        snrs = sorted({s for _, s in self.values}) if snrs is None else [float(s) for s in snrs]
        m = self.metric
        out = []
        for name in methods:
            for s in snrs:
                if (name, s) not in self.values:
                    continue
                v = self.values[(name, s)]
                out.append(
                    {
                        "method": name,
                        "snr_db": s,
                        f"{m}_mean": float(v.mean()),
                        f"{m}_std": float(v.std()) if v.numel() > 1 else 0.0,
                        "channels": v.numel(),
                        "seconds": self.seconds[(name, s)],
                    }
                )
        return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def run_grid(
    scenario,
    methods: Mapping[str, BeamformingMethod | Callable[[], BeamformingMethod]],
    snr_db: Sequence[float],
    channels: torch.Tensor,
    *,
    metric: str | Metric = "sum_rate",
    observation: ObservationSpec | None = None,
    description: Mapping | None = None,
    cache_dir: str | Path | None = None,
    resume: bool = True,
    batch_size: int = 2000,
    seed: int = 0,
    subsets: Mapping[str, int] | None = None,
    warmup: bool = False,
    progress: bool = True,
    desc: str = "",
    on_cell: Callable[[GridResult], None] | None = None,
    uplink: torch.Tensor | None = None,
) -> GridResult:
    """Compute ``metric`` for every method at every SNR on the true ``channels`` ``[B, K, N]`` (or
    ``[B, K, Nr, N]``).

    Args:
        scenario: gives ``power_and_noise(snr_db)`` (and the observation, unless ``observation``).
        methods: name -> method, or a zero-argument builder called on first use.
        snr_db: the SNR grid in dB.
        metric: a metric name of :data:`beamlearn.metrics.METRICS` or a :class:`Metric`.
        observation: what the transmitter sees (default: the scenario's, or perfect CSI).
        description: JSON-able facts that identify the experiment in the cache key (scenario, data
            source, models' files, ...).
        cache_dir: where finished cells are kept (``None``: no cache).
        resume: reuse cached cells (``False``: recompute and overwrite them).
        batch_size: channels per method call.
        seed: seeds the observation noise, the metric's random symbols and the global RNG per cell.
        subsets: method -> number of channels (the first ones) for methods too slow for all of them.
        warmup: call each method once on two channels before timing it (lazy initialisation).
        progress: show a progress bar over the batches.
        on_cell: called with the partial result after every finished cell (e.g. to write a CSV).
        uplink: the uplink channels ``[B, N, K]`` of ``channels`` drawn by a paired UL/DL channel source
            (:meth:`~beamlearn.channels.uplink_pairs.UplinkPairChannel.pair`), for an ``"uplink"``
            observation.
    """
    met = get_metric(metric)
    obs = observation if observation is not None else getattr(scenario, "observation", None) or PERFECT_CSI
    snrs = list(dict.fromkeys(check_snr_db("snr_db", s) for s in snr_db))  # each SNR once
    if not snrs:
        raise ValueError(f"snr_db must be a non-empty list of SNRs in dB, got {snr_db!r}")
    check_channel("channels", channels)
    if uplink is not None:
        if obs.kind != "uplink":
            raise ValueError(f"uplink channels were given, but the observation is {obs.kind!r}, not 'uplink'")
        if uplink.shape[0] != channels.shape[0]:
            raise ValueError(f"uplink has {uplink.shape[0]} channels, channels {channels.shape[0]}")
        uplink = uplink.to(channels.device)
    if batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    subsets = dict(subsets or {})
    b = channels.shape[0]
    result = GridResult(met.name)
    device = channels.device
    built = {name: (m if isinstance(m, torch.nn.Module) else m()).to(device) for name, m in methods.items()}
    covariance = _long_term_covariance(scenario, channels, seed) if obs.kind == "pilots" else None
    cache = None
    if cache_dir is not None:
        from . import __version__

        digest = hashlib.sha256(channels.detach().cpu().contiguous().numpy().tobytes())
        if uplink is not None:
            digest.update(uplink.detach().cpu().contiguous().numpy().tobytes())
        digest = digest.hexdigest()
        key = experiment_key(
            {
                "description": dict(description or {}),
                "scenario": scenario.summary(),
                "channels_sha256": digest,
                "shape": list(channels.shape),
                "dtype": str(channels.dtype),
                "metric": met.name,
                "observation": obs.summary(),
                "batch_size": batch_size,
                "seed": seed,
                "beamlearn": __version__,
            }
        )
        cache = Path(cache_dir) / key
        cache.mkdir(parents=True, exist_ok=True)

    def n_of(name):
        return min(int(subsets.get(name, b)), b)

    todo = []
    for name, method in built.items():
        tag = f"{_safe(name)}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
        fp = method.fingerprint() if cache is not None else ""
        for s in snrs:
            f = None if cache is None else cache / f"{tag}@{s!r}_n{n_of(name)}_{fp}.pt"
            cached = _read_cell(f, n_of(name)) if f is not None and resume and f.exists() else None
            if cached is not None:
                result.values[(name, s)], result.seconds[(name, s)] = cached
            else:
                todo.append((name, s, f))
    total = sum(-(-n_of(name) // batch_size) for name, _, _ in todo)
    bar = tqdm(total=total, desc=desc or f"{met.name} grid", unit="batch", disable=not progress, leave=False)
    warm: set[str] = set()
    rng_devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=rng_devices):  # per-cell seeding must not leak to the caller
            for name, s, f in todo:
                method = built[name]
                if warmup and name not in warm:
                    warm.add(name)
                    with torch.no_grad():
                        p, s2 = scenario.power_and_noise(s)
                        ul = None if uplink is None else uplink[:2]
                        o = obs.observe(channels[:2], p, s2, covariance=covariance, uplink=ul)
                        method(_view(method, o, channels[:2]), p, s2)
                bar.set_postfix_str(f"{name} @ {s:g} dB")
                ul = None if uplink is None else uplink[: n_of(name)]
                values, secs = _cell(
                    method, channels[: n_of(name)], scenario, s, met, obs, batch_size, seed, name, bar, covariance, ul
                )
                finite = torch.isfinite(values)
                if not bool(finite.all()):
                    raise FloatingPointError(
                        f"method {name!r} produced non-finite {met.name} at {s:g} dB "
                        f"for {int((~finite).sum())} of {values.numel()} channels"
                    )
                result.values[(name, s)], result.seconds[(name, s)] = values, secs
                if f is not None:
                    atomic_torch_save({"values": values, "seconds": secs}, f)
                if on_cell is not None:
                    on_cell(result)
    finally:
        bar.close()
    return result


def _read_cell(path: Path, n: int):
    """A cached cell ``(values, seconds)``, or ``None`` (recompute) when the file is unreadable or does
    not hold ``n`` finite values: a damaged cache costs time, never a wrong number."""
    try:
        obj = torch.load(path, weights_only=True)
        values, seconds = obj["values"], float(obj["seconds"])
    except Exception:  # noqa: BLE001 - any damage means: compute the cell again
        return None
    if not isinstance(values, torch.Tensor) or values.shape != (n,) or not bool(torch.isfinite(values).all()):
        return None
    return values, seconds


def _long_term_covariance(scenario, channels: torch.Tensor, seed: int, samples: int = 2000) -> torch.Tensor:
    """The long-term channel covariance ``E[h^H h]`` of a user's row ``[N, N]`` that a pilot observation
    hands to its estimator: estimated once per experiment from ``samples`` channels drawn independently
    of the test channels (derived seed) when the scenario's channel model matches their shape, else
    from all the test channels (a dataset file: the file is the distribution)."""
    model = None
    if getattr(scenario, "channel", None) is not None and scenario.channel.kind != "dataset":
        model = scenario.channel_model()
    if model is not None and tuple(model(1, seed=0, dtype=channels.dtype).shape[1:]) == tuple(channels.shape[1:]):
        draw = model(samples, seed=_derived_seed(seed, "covariance") % 2**62, dtype=torch.complex128)
    else:
        draw = channels.detach().to("cpu", torch.complex128)
    rows = draw.reshape(-1, draw.shape[-1])
    return (rows.mH @ rows / rows.shape[0]).to(device=channels.device, dtype=channels.dtype)


def _view(method, observation, h):
    """What ``method`` is handed: the observation's channel view, the whole observation, or (a
    perfect-CSI reference, ``observes == "truth"``) the true channel."""
    if method.observes == "truth":
        return h
    return observation.channel if method.observes == "channel" else observation


@torch.no_grad()
def _cell(method, h, scenario, snr, met: Metric, obs: ObservationSpec, batch_size, seed, name, bar, covariance, uplink):
    p, s2 = scenario.power_and_noise(snr)
    dev = h.device
    g_obs = torch.Generator(device=dev)
    g_obs.manual_seed(_derived_seed(seed, snr, "observation"))
    g_met = torch.Generator(device=dev)
    g_met.manual_seed(_derived_seed(seed, snr, "metric"))
    torch.manual_seed(_derived_seed(seed, snr, name))
    vals, secs = [], 0.0
    for start in range(0, h.shape[0], batch_size):
        hb = h[start : start + batch_size]
        ub = None if uplink is None else uplink[start : start + batch_size]
        o = obs.observe(hb, p, s2, g_obs, covariance=covariance, uplink=ub)
        x = _view(method, o, hb)
        _sync(dev)
        t0 = time.perf_counter()
        bf = method(x, p, s2)
        _sync(dev)
        secs += time.perf_counter() - t0
        v = met(hb, bf, p, s2, g_met).detach().cpu()
        if v.shape != (hb.shape[0],):
            raise ValueError(
                f"method {name!r} gave {met.name} of shape {tuple(v.shape)} for {hb.shape[0]} channels of shape "
                f"{tuple(hb.shape[1:])}: its outputs do not fit the scenario (a model for other array sizes?)"
            )
        vals.append(v)
        bar.update(1)
    return torch.cat(vals), secs


def format_table(rows: list[dict], metric: str = "sum_rate") -> str:
    """Text table of a grid: one line per SNR, one column per method (mean), and the seconds."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    snrs = sorted({float(r["snr_db"]) for r in rows})
    val = {(r["method"], float(r["snr_db"])): float(r[f"{metric}_mean"]) for r in rows}
    width = max(9, *(len(m) + 2 for m in methods)) if methods else 9
    fmt = "{:.3e}" if get_metric(metric).log_scale else "{:.3f}"
    lines = ["SNR [dB]".rjust(8) + "".join(m.rjust(width) for m in methods)]
    for s in snrs:
        cells = "".join((fmt.format(val[(m, s)]) if (m, s) in val else "-").rjust(width) for m in methods)
        lines.append(f"{s:8g}" + cells)
    secs = {m: sum(float(r["seconds"]) for r in rows if r["method"] == m) for m in methods}
    lines.append("seconds".rjust(8) + "".join(f"{secs[m]:.2f}".rjust(width) for m in methods))
    return "\n".join(lines)


_MARKERS = "osD^v<>pPX*h"


def method_style(name: str, index: int) -> dict:
    """Distinct colour (tab20), marker and line style per method, for up to 20 methods in one plot."""
    import matplotlib

    return {
        "color": matplotlib.colormaps["tab20"](index % 20),
        "marker": _MARKERS[index % len(_MARKERS)],
        "ms": 4,
        "ls": "--" if name == "capacity" else "-",
    }


def plot_grid(rows: list[dict], path, metric: str = "sum_rate", title: str = "") -> None:
    """Write a metric-vs-SNR PNG (one line per method; logarithmic y-axis for error rates)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    met = get_metric(metric)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, m in enumerate(dict.fromkeys(r["method"] for r in rows)):
        pts = sorted((float(r["snr_db"]), float(r[f"{metric}_mean"])) for r in rows if r["method"] == m)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], **method_style(m, i), label=m)
    if met.log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("SNR [dB]")
    ax.set_ylabel(met.label)
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both" if met.log_scale else "major")
    ax.legend()
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
