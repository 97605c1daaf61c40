"""Compare beamforming methods on a scenario: one metric against SNR, with timing, CSV and plot.

All methods see the same true channels (drawn once from the scenario's channel source with ``seed``,
or read from a dataset file); each method gets what the scenario says the transmitter observes
(:mod:`beamlearn.observation`) and is scored on the true channels with the chosen metric
(:mod:`beamlearn.metrics.table`: ``sum_rate`` in bit/s/Hz, ``ser``, ... ). The grid runs through
:func:`beamlearn.experiment.run_grid`, whose per-cell cache is the resume mechanism.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from ._dtypes import resolve_dtype
from ._validation import check_channel, check_complex, check_device, check_int, check_snr_db
from .experiment import columns, format_table, plot_grid, run_grid
from .io import write_csv, write_json
from .metrics.table import get_metric
from .observation import ObservationSpec
from .registry import build_method, resolve_methods
from .scenarios import Scenario, get_scenario

__all__ = ["COLUMNS", "evaluate", "format_table", "plot_path"]

COLUMNS = columns("sum_rate")


def plot_path(out_dir: str | Path, metric: str = "sum_rate") -> Path:
    """Where :func:`evaluate` writes its plot: ``DIR/<metric>_vs_snr.png``."""
    return Path(out_dir) / f"{metric}_vs_snr.png"


def evaluate(
    scenario: Scenario | str,
    methods: str | Sequence[str] = "all",
    snr_db: Sequence[float] | None = None,
    *,
    metric: str = "sum_rate",
    num_channels: int = 1000,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "complex64",
    batch_size: int = 2000,
    channel_source: str | None = None,
    observation: str | ObservationSpec | None = None,
    dataset: str | Path | None = None,
    channels: torch.Tensor | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    models: dict | None = None,
) -> list[dict]:
    """Evaluate ``methods`` on ``scenario`` at each SNR; return rows with :func:`~beamlearn.experiment.columns`.

    Args:
        scenario: a :class:`Scenario` or a preset name.
        methods: names (``"zf,wmmse"`` or a list) or ``"all"`` (every method that applies, without
            bounds when the metric needs a precoder); empty to run only ``models``.
        snr_db: SNRs in dB (default: the scenario's grid).
        metric: a name of :data:`beamlearn.metrics.METRICS` (``sum_rate``, ``ser``, ...).
        num_channels: channels drawn from the scenario (or at most this many read from the start of a
            dataset file).
        channel_source: draw from this source instead of the scenario's (``rayleigh``, ``3gpp-umi``,
            ``rt:munich``, a dataset file, ...; :meth:`Scenario.with_channel`).
        observation: what the transmitter observes instead of the scenario's (an
            :class:`~beamlearn.observation.ObservationSpec` or its spelling, e.g. ``"pilots:64:lmmse"``).
        dataset: read the channels from this dataset file (N, K and Nr follow the file).
        channels: evaluate on these channels ``[B, K, N]`` instead.
        out_dir: write ``results.csv`` (after every cell, atomically), ``run.json``, the plot
            ``<metric>_vs_snr.png`` and the cell cache ``cache/``.
        resume: reuse the cached cells of a previous run with the same configuration.
        models: extra methods by name (e.g. learned models loaded with
            :func:`beamlearn.learned.load_model`); they run at every SNR after ``methods``.
    """
    sc = get_scenario(scenario) if isinstance(scenario, str) else scenario
    if dataset is not None:
        channel_source = str(dataset)
    if channel_source is not None:
        sc = sc.with_channel(channel_source)
    if observation is not None:
        obs = observation if isinstance(observation, ObservationSpec) else ObservationSpec.parse(observation)
        sc = sc.replace(observation=obs)
    snrs = list(dict.fromkeys(check_snr_db("snr_db", s) for s in (sc.snr_db if snr_db is None else snr_db)))
    met = get_metric(metric)
    names = resolve_methods(methods, sc, snrs, needs_precoder=met.needs_precoder) if methods else []
    extra = dict(models or {})
    clash = [n for n in extra if n in names]
    if clash:
        raise ValueError(f"model names {clash} clash with catalogue methods; rename them")
    for label, m in extra.items():
        reason = m.unsupported(sc, snrs) if hasattr(m, "unsupported") else None
        if reason:
            raise ValueError(f"model {label!r} does not apply to scenario {sc.name!r}: {reason}")
    if not names and not extra:
        raise ValueError("nothing to evaluate: give methods and/or models")
    batch_size = check_int("batch_size", batch_size, 1)
    dtype = resolve_dtype(dtype)
    device = check_device(device)

    uplink = None
    if channels is None:
        num_channels = check_int("num_channels", num_channels, 1)
        model = sc.channel_model()
        if sc.channel.kind == "dataset":  # at most num_channels drops, from the start of the file
            num_channels = min(num_channels, model.drops)
        if getattr(model, "paired", False) and sc.observation.kind == "uplink":
            h, uplink = model.pair(num_channels, seed=seed, device=device, dtype=dtype)
        else:
            h = model(num_channels, seed=seed, device=device, dtype=dtype)
        source = sc.channel.describe()
    else:
        check_complex("channels", channels)
        h = check_channel("channels", channels.to(device=device, dtype=dtype), num_antennas=sc.num_bs_antennas)
        source = "given"
    num_channels = h.shape[0]

    config = {
        "scenario": sc.summary(),
        "methods": names + list(extra),
        "snr_db": snrs,
        "metric": met.name,
        "channels": num_channels,
        "seed": seed,
        "device": device.type,
        "dtype": str(dtype).removeprefix("torch."),
        "channel_source": source,
        "models": {k: getattr(v, "source_path", type(v).__name__) for k, v in extra.items()},
    }
    config = json.loads(json.dumps(config, default=str))
    out = Path(out_dir) if out_dir is not None else None
    builders = {n: (lambda n=n: build_method(n, sc, snrs)) for n in names} | extra
    order = names + list(extra)

    def on_cell(result):
        if out is not None:
            write_csv(out / "results.csv", result.rows(order, snrs), columns(met.name))

    if out is not None:
        write_json(out / "run.json", config)
    description = {k: v for k, v in config.items() if k not in ("methods", "snr_db", "metric")}
    result = run_grid(
        sc,
        builders,
        snrs,
        h,
        metric=met,
        description=description,
        cache_dir=None if out is None else out / "cache",
        resume=resume,
        batch_size=batch_size,
        seed=seed,
        warmup=True,
        progress=progress,
        desc=f"evaluate {sc.name}",
        on_cell=on_cell,
        uplink=uplink,
    )
    rows = result.rows(order, snrs)
    if out is not None:
        write_csv(out / "results.csv", rows, columns(met.name))
        plot_grid(rows, plot_path(out, met.name), met.name, title=f"{sc.name}: {num_channels} channels")
    return rows
