"""Compare beamforming methods on a scenario: sum rate against SNR, with timing, CSV and plot.

All methods see the same channels (drawn once from the scenario's model with ``seed``). Rates are
in bit/s/Hz; for multi-antenna users the per-stream SINR form is used with each method's combiners
(MMSE combiners when a method returns none), see :func:`beamlearn.metrics.sum_rate`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ._validation import check_channel, check_int
from .io import atomic_savefig, read_csv, write_csv, write_json
from .methods import build_method, resolve_methods
from .metrics import sum_rate
from .scenarios import Scenario

__all__ = ["COLUMNS", "evaluate", "format_table", "plot_sum_rate", "method_style", "method_sum_rates"]

COLUMNS = ["method", "snr_db", "sum_rate_mean", "sum_rate_std", "channels", "seconds"]
_DTYPES = {"complex64": torch.complex64, "complex128": torch.complex128}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def method_sum_rates(method, h: torch.Tensor, power: float, noise_var: float, batch_size: int,
                     progress: tqdm | None = None) -> tuple[torch.Tensor, float]:
    """Per-channel sum rates ``[B]`` of ``method`` on ``h``, and the seconds spent inside the method."""
    rates, seconds = [], 0.0
    with torch.no_grad():
        for start in range(0, h.shape[0], batch_size):
            hb = h[start:start + batch_size]
            _sync(hb.device)
            t0 = time.perf_counter()
            bf = method(hb, power, noise_var)
            _sync(hb.device)
            seconds += time.perf_counter() - t0
            if bf.sum_rate is not None:
                r = bf.sum_rate
            else:
                r = sum_rate(hb, bf.precoder, noise_var, combiner=bf.combiner)
            rates.append(r.to(torch.float64))
            if progress is not None:
                progress.update(1)
    return torch.cat(rates), seconds


def evaluate(
    scenario: Scenario,
    methods: str | Sequence[str] = "all",
    snr_db: Sequence[float] | None = None,
    *,
    num_channels: int = 1000,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "complex64",
    batch_size: int = 2000,
    channels: torch.Tensor | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    models: dict | None = None,
) -> list[dict]:
    """Evaluate ``methods`` on ``scenario`` at each SNR; return rows with :data:`COLUMNS`.

    ``models`` adds methods that are not in the registry, e.g. learned models loaded from files:
    ``{"unfolded-pga[munich]": UnfoldedPGA.load(path)}``; they run at every SNR after ``methods``.

    With ``out_dir``, writes ``results.csv`` after every (method, SNR) pair (atomically), the run
    configuration ``run.json`` and ``sum_rate_vs_snr.png``; with ``resume``, pairs already present in
    a previous ``results.csv`` of the same configuration are not computed again.
    """
    snrs = [float(s) for s in (scenario.snr_db if snr_db is None else snr_db)]
    if not snrs or not all(math.isfinite(s) for s in snrs):
        raise ValueError(f"snr_db must be a non-empty list of finite values, got {snr_db!r}")
    names = resolve_methods(methods, scenario, snrs) if methods else []
    extra = dict(models or {})
    clash = [n for n in extra if n in names]
    if clash:
        raise ValueError(f"model names {clash} clash with registry methods; rename them")
    names += list(extra)
    if not names:
        raise ValueError("nothing to evaluate: give methods and/or models")
    batch_size = check_int("batch_size", batch_size, 1)
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
        dtype = _DTYPES[dtype]
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but no CUDA device is available")

    if channels is None:
        num_channels = check_int("num_channels", num_channels, 1)
        h = scenario.channel_model()(num_channels, seed=seed, device=device, dtype=dtype)
    else:
        h = check_channel("channels", channels.to(device=device, dtype=dtype), num_antennas=scenario.num_bs_antennas)
        num_channels = h.shape[0]

    config = {"scenario": scenario.summary(), "methods": names, "snr_db": snrs, "channels": num_channels,
              "seed": seed, "device": device.type, "dtype": str(dtype).removeprefix("torch."),
              "channel_source": "scenario" if channels is None else "given",
              "models": {k: getattr(v, "source_path", type(v).__name__) for k, v in extra.items()}}
    if channels is not None:  # identify the given channels, so a resumed run never mixes two data sets
        import hashlib

        config["channels_sha256"] = hashlib.sha256(h.cpu().numpy().tobytes()).hexdigest()
    config = json.loads(json.dumps(config, default=str))
    rows: list[dict] = []
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and resume and (out / "results.csv").exists() and (out / "run.json").exists():
        old = json.loads((out / "run.json").read_text())
        same = {k: v for k, v in old.items() if k not in ("methods", "snr_db")} == \
               {k: v for k, v in config.items() if k not in ("methods", "snr_db")}
        if same:
            rows = [r for r in read_csv(out / "results.csv") if r["method"] in names and float(r["snr_db"]) in snrs]
            for r in rows:
                r["snr_db"] = float(r["snr_db"])
    done = {(r["method"], float(r["snr_db"])) for r in rows}
    if out is not None:
        write_json(out / "run.json", config)

    todo = [(m, s) for m in names for s in snrs if (m, s) not in done]
    n_chunks = -(-num_channels // batch_size)
    torch.manual_seed(seed)
    bar = tqdm(total=len(todo) * n_chunks, desc=f"evaluate {scenario.name}", unit="batch", disable=not progress,
               leave=False)
    built = {}
    for name, snr in todo:
        if name not in built:
            built[name] = (extra[name] if name in extra else build_method(name, scenario, snrs)).to(device)
            with torch.no_grad():  # warm-up outside the timing (lazy library initialisation)
                built[name](h[:2], *scenario.power_and_noise(snr))
        bar.set_postfix_str(f"{name} @ {snr:g} dB")
        p, s2 = scenario.power_and_noise(snr)
        r, secs = method_sum_rates(built[name], h, p, s2, batch_size, bar)
        finite = torch.isfinite(r)
        if not bool(finite.all()):
            raise FloatingPointError(f"method {name!r} produced non-finite rates at {snr} dB "
                                     f"for {int((~finite).sum())} of {r.numel()} channels")
        rows.append({"method": name, "snr_db": snr, "sum_rate_mean": float(r.mean()),
                     "sum_rate_std": float(r.std()) if r.numel() > 1 else 0.0,
                     "channels": num_channels, "seconds": secs})
        if out is not None:
            write_csv(out / "results.csv", _ordered(rows, names, snrs), COLUMNS)
    bar.close()
    rows = _ordered(rows, names, snrs)
    if out is not None:
        write_csv(out / "results.csv", rows, COLUMNS)
        plot_sum_rate(rows, out / "sum_rate_vs_snr.png", title=f"{scenario.name}: {num_channels} channels")
    return rows


def _ordered(rows, names, snrs):
    key = {(m, s): i for i, (m, s) in enumerate((m, s) for m in names for s in snrs)}
    return sorted(rows, key=lambda r: key.get((r["method"], float(r["snr_db"])), len(key)))


def format_table(rows: list[dict]) -> str:
    """Sum-rate table: one line per SNR, one column per method (mean bit/s/Hz)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    snrs = sorted({float(r["snr_db"]) for r in rows})
    val = {(r["method"], float(r["snr_db"])): float(r["sum_rate_mean"]) for r in rows}
    width = max(9, *(len(m) + 2 for m in methods))
    lines = ["SNR [dB]".rjust(8) + "".join(m.rjust(width) for m in methods)]
    for s in snrs:
        cells = "".join((f"{val[(m, s)]:.3f}" if (m, s) in val else "-").rjust(width) for m in methods)
        lines.append(f"{s:8g}" + cells)
    secs = {m: sum(float(r["seconds"]) for r in rows if r["method"] == m) for m in methods}
    lines.append("seconds".rjust(8) + "".join(f"{secs[m]:.2f}".rjust(width) for m in methods))
    return "\n".join(lines)


_MARKERS = "osD^v<>pPX*h"


def method_style(name: str, index: int) -> dict:
    """Distinct colour (tab20), marker and line style per method, for up to 20 methods in one plot."""
    import matplotlib

    return {"color": matplotlib.colormaps["tab20"](index % 20), "marker": _MARKERS[index % len(_MARKERS)],
            "ms": 4, "ls": "--" if name == "capacity" else "-"}


def plot_sum_rate(rows: list[dict], path, title: str = "") -> None:
    """Write a sum-rate-vs-SNR PNG (one line per method)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, m in enumerate(dict.fromkeys(r["method"] for r in rows)):
        pts = sorted((float(r["snr_db"]), float(r["sum_rate_mean"])) for r in rows if r["method"] == m)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], **method_style(m, i), label=m)
    ax.set_xlabel("SNR [dB]")
    ax.set_ylabel("sum rate [bit/s/Hz]")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
