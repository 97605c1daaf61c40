"""The ``beamlearn`` command-line tool."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Learned and classical beamforming for massive MIMO.")


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
):
    """Compare methods on a scenario: prints a sum-rate-vs-SNR table, writes CSV and PNG."""
    from . import evaluate as ev
    from .scenarios import get_scenario

    try:
        sc = get_scenario(scenario)
        snrs = _floats(snr_db, "--snr-db") if snr_db is not None else None
        rows = ev.evaluate(sc, methods, snrs, num_channels=channels, seed=seed, device=device, dtype=dtype,
                           batch_size=batch_size, out_dir=out, resume=resume, progress=progress)
    except (ValueError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(f"scenario {sc.name}: mean sum rate [bit/s/Hz] over {channels} channels (seed {seed})")
    typer.echo(ev.format_table(rows))
    typer.echo(f"wrote {out / 'results.csv'} and {out / 'sum_rate_vs_snr.png'}")


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


if __name__ == "__main__":  # pragma: no cover
    app()
