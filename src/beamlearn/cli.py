"""The ``beamlearn`` command-line tool."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Learned and classical beamforming for massive MIMO.")
train_app = typer.Typer(no_args_is_help=True, help="Train a learned method.")
reproduce_app = typer.Typer(no_args_is_help=True, help="Reproduce a paper's figures and claims.")
app.add_typer(train_app, name="train")
app.add_typer(reproduce_app, name="reproduce")
dataset_app = typer.Typer(no_args_is_help=True, help="Build and inspect channel datasets on disk.")
app.add_typer(dataset_app, name="dataset")


def _floats(text: str, name: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise typer.BadParameter(f"{name} must be a comma-separated list of numbers, got {text!r}") from None
    if not vals:
        raise typer.BadParameter(f"{name} must list at least one value")
    return vals


@app.command()
def evaluate(
    scenario: str = typer.Option("unfolded-pga", help="Scenario preset (see `beamlearn scenarios`)."),
    methods: str = typer.Option("all", help="Comma-separated method names, or 'all' (see `beamlearn methods`)."),
    snr_db: Optional[str] = typer.Option(None, "--snr-db", help="Comma-separated SNRs in dB (default: the scenario's grid)."),
    channels: int = typer.Option(1000, min=1, help="Number of test channels."),
    seed: int = typer.Option(0, min=0, help="Seed of the channel draw."),
    out: Path = typer.Option(Path("results/evaluate"), help="Output directory (results.csv, sum_rate_vs_snr.png)."),
    device: str = typer.Option("cpu", help="Torch device, e.g. cpu or cuda."),
    dtype: str = typer.Option("complex64", help="complex64 or complex128."),
    batch_size: int = typer.Option(2000, min=1, help="Channels per batch."),
    resume: bool = typer.Option(True, help="Reuse finished (method, SNR) rows of a previous run in OUT."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    dataset: Optional[Path] = typer.Option(None, help="Evaluate on the channels of this dataset file (see `beamlearn dataset build`) instead of drawing them; N and K follow the file."),
    model: list[Path] = typer.Option([], help="A trained model file (e.g. OUT/model.pt of `beamlearn train unfolded-pga`) to evaluate at every SNR as an extra method named after its folder; repeatable."),
):
    """Compare methods on a scenario: prints a sum-rate-vs-SNR table, writes CSV and PNG."""
    from . import evaluate as ev
    from .scenarios import get_scenario

    try:
        sc = get_scenario(scenario)
        snrs = _floats(snr_db, "--snr-db") if snr_db is not None else None
        h = None
        if dataset is not None:
            h, sc = _dataset_channels(dataset, sc, channels)
        models = {}
        for path in model:
            from .unfolded import UnfoldedPGA

            m = UnfoldedPGA.load(path)
            m.source_path = str(path)
            models[f"{m.name}[{path.parent.name or path.stem}]"] = m
        rows = ev.evaluate(sc, methods if methods.strip() else [], snrs, num_channels=channels, seed=seed,
                           device=device, dtype=dtype, batch_size=batch_size, out_dir=out, resume=resume,
                           progress=progress, channels=h, models=models)
    except (ValueError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    where = f"dataset {dataset}" if dataset is not None else f"seed {seed}"
    n = rows[0]["channels"] if rows else channels
    typer.echo(f"scenario {sc.name}: mean sum rate [bit/s/Hz] over {n} channels ({where})")
    typer.echo(ev.format_table(rows))
    typer.echo(f"wrote {out / 'results.csv'} and {out / 'sum_rate_vs_snr.png'}")


def _dataset_channels(path: Path, sc, channels: int):
    """Channels of a dataset file (at most ``channels`` of them, from the start) and the scenario
    adapted to the file's N and K (hybrid RF chains kept when still valid)."""
    from .datasets import load_channels

    h, header = load_channels(path)
    k, n = h.shape[1], h.shape[-1]
    nr = h.shape[2] if h.dim() == 4 else 1
    changes = {}
    if (sc.num_bs_antennas, sc.num_users, sc.num_rx_antennas) != (n, k, nr):
        rf = sc.num_rf_chains
        if rf is not None and not (k * sc.num_streams <= rf <= n):
            rf = None
        streams = min(sc.num_streams, nr)
        changes = dict(name=f"{sc.name}@{path.name}", num_bs_antennas=n, num_users=k, num_rx_antennas=nr,
                       num_streams=streams, num_rf_chains=rf, num_rx_rf_chains=None)
    else:
        changes = dict(name=f"{sc.name}@{path.name}")
    return h[:channels], sc.replace(**changes)


@dataset_app.command("build")
def dataset_build(
    source: str = typer.Option(..., help="rayleigh, clustered-ula, 3gpp-umi, 3gpp-uma, 3gpp-rma or rt:SCENE (e.g. rt:munich)."),
    users: int = typer.Option(..., min=1, help="Users K."),
    antennas: int = typer.Option(..., min=1, help="BS antennas N."),
    drops: int = typer.Option(..., min=1, help="Number of channel realisations (drops)."),
    seed: int = typer.Option(0, min=0, help="Seed; the same seed gives the same file."),
    out: Path = typer.Option(..., help="Output file (.blch)."),
    chunk_size: int = typer.Option(100, min=1, help="Drops per resumable chunk."),
    dtype: str = typer.Option("complex64", help="complex64 or complex128."),
    resume: bool = typer.Option(True, help="Reuse finished chunks of an interrupted build."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
):
    """Draw channels from a source and write them, with metadata, to a dataset file."""
    from .datasets import build_dataset

    try:
        header = build_dataset(source, users, antennas, drops, seed, out, chunk_size=chunk_size, dtype=dtype,
                               progress=progress, resume=resume)
    except (ValueError, TypeError, ImportError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(f"wrote {out}: shape {header['shape']} {header['dtype']}, sha256 {header['sha256'][:16]}...")


@dataset_app.command("info")
def dataset_info(path: Path = typer.Argument(..., help="Dataset file.")):
    """Print a dataset's header (shape, dtype, checksum, source metadata) and verify its data."""
    import json

    from .datasets import load_channels

    try:
        _, header = load_channels(path)
    except (ValueError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(header, indent=2, sort_keys=True))
    typer.echo("data verified (SHA-256 matches)")


@app.command()
def scenarios():
    """List the scenario presets with their parameters."""
    from .scenarios import PRESETS

    for name, sc in PRESETS.items():
        d = sc.summary()
        ch = d.pop("channel")
        d.pop("name")
        d.pop("source")
        typer.echo(f"{name}")
        typer.echo("  " + ", ".join(f"{k}={v}" for k, v in d.items() if v is not None))
        typer.echo("  channel: " + ", ".join(f"{k}={v}" for k, v in ch.items()))
        typer.echo(f"  source: {sc.source}")


@app.command()
def methods():
    """List the available methods."""
    from .methods import METHODS

    for name, m in METHODS.items():
        typer.echo(f"{name:10s} [{m.kind}] {m.description}")


@train_app.command("unfolded-pga")
def train_unfolded_pga(
    snr_db: float = typer.Option(..., "--snr-db", help="Training SNR in dB (P = 10^(SNR/10), sigma^2 = 1)."),
    out: Path = typer.Option(..., help="Output folder: train_log.csv, checkpoint.pt, model.pt, summary.json."),
    layers: int = typer.Option(10, help="Unfolded layers I."),
    inner_steps: int = typer.Option(10, help="Inner analog steps J per layer."),
    epochs: int = typer.Option(20, help="Training epochs."),
    train_channels: int = typer.Option(500, help="Training channels."),
    val_channels: int = typer.Option(200, help="Validation channels (best epoch)."),
    batch_size: int = typer.Option(10, help="Channels per Adam step."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (default 1e-3; 1e-4 at SNR >= 20 dB)."),
    lr_decay: float = typer.Option(0.97, help="Learning-rate decay per epoch."),
    loss: str = typer.Option("sum_layers", help="final (eq. 14) or sum_layers."),
    seed: int = typer.Option(0, min=0, help="Seed of data and shuffling."),
    dtype: str = typer.Option("complex64", help="Training precision: complex64 or complex128."),
    resume: bool = typer.Option(True, help="Continue from OUT/checkpoint.pt if present."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    dataset: Optional[Path] = typer.Option(None, help="Train and validate on this dataset file (first drops train, next validate)."),
):
    """Train an unfolded PGA model at one SNR (unsupervised, the paper's recipe)."""
    from .training import TrainConfig, train_unfolded_pga as train

    try:
        cfg = TrainConfig(snr_db=snr_db, layers=layers, inner_steps=inner_steps, epochs=epochs,
                          train_channels=train_channels, val_channels=val_channels, batch_size=batch_size,
                          lr=lr, lr_decay=lr_decay, loss=loss, seed=seed, dtype=dtype,
                          dataset=None if dataset is None else str(dataset))
        summary = train(cfg, out, progress=progress, resume=resume, log=typer.echo)
    except (ValueError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(f"best epoch {summary['best_epoch']}: validation sum rate {summary['best_val_rate']:.3f} bit/s/Hz "
               f"(untrained {summary['untrained_val_rate']:.3f}); model written to {out / 'model.pt'}")


@reproduce_app.command("unfolded-pga")
def reproduce_unfolded_pga(
    out: Path = typer.Option(Path("results/reproduce-unfolded-pga"), help="Output folder."),
    quick: bool = typer.Option(False, help="Smoke test: 100 channels, 3 SNRs (not a reproduction)."),
    channels: Optional[int] = typer.Option(None, help="Test channels (default 1000; quick 100)."),
    train: bool = typer.Option(False, help="Train the unfolded models here instead of using the shipped ones."),
    device: str = typer.Option("cpu", help="Torch device."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
):
    """Reproduce Fig. 2(a), Fig. 2(b) and the claims of the unfolded-PGA paper (CSV, PNG, report.md)."""
    from .reproduce import reproduce_unfolded_pga as run

    try:
        run(out, quick=quick, channels=channels, train=train, device=device, progress=progress, log=typer.echo)
    except (ValueError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo((out / "report.md").read_text())


if __name__ == "__main__":  # pragma: no cover
    app()
