"""The ``beamlearn`` command-line tool: thin, built from the list of systems.

``train SYSTEM`` takes its options from the system's configuration dataclass and ``reproduce SYSTEM``
calls the system's reproduction, so adding a system adds its commands without editing this file.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import typer

__all__ = ["build_app", "main", "RESERVED_TRAIN_OPTIONS"]


def _floats(text: str, name: str) -> list[float]:
    try:
        vals = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise typer.BadParameter(f"{name} must be a comma-separated list of numbers, got {text!r}") from None
    if not vals:
        raise typer.BadParameter(f"{name} must list at least one value")
    return vals


# What a command reports as one line (``error: ...``, exit 2) instead of a traceback: bad input, files
# that cannot be read or written (permissions, a full disk, a folder where a file is expected), and
# failures of the numerical libraries (allocation, overflow). BEAMLEARN_DEBUG=1 shows the traceback.
FAILURES = (ValueError, TypeError, ImportError, OSError, RuntimeError, MemoryError, ArithmeticError)


def _fail(e: Exception):
    import os

    if os.environ.get("BEAMLEARN_DEBUG"):
        raise e
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, (OSError, MemoryError, RuntimeError, ArithmeticError)) and not isinstance(e, ValueError):
        text = f"{type(e).__name__}: {text}"
    typer.echo(f"error: {text}", err=True)
    raise typer.Exit(2)


def evaluate(
    scenario: str = typer.Option("unfolded-pga", help="Scenario preset (see `beamlearn scenarios`)."),
    methods: str = typer.Option("all", help="Comma-separated method names, or 'all' (see `beamlearn methods`)."),
    snr_db: str | None = typer.Option(
        None, "--snr-db", help="Comma-separated SNRs in dB (default: the scenario's grid)."
    ),
    metric: str = typer.Option(
        "sum_rate", help="Metric: sum_rate, sum_rate_logdet, ser, ser_mc, ser_16qam, ser_16qam_mc."
    ),
    channels: int = typer.Option(1000, min=1, help="Number of test channels."),
    seed: int = typer.Option(0, min=0, help="Seed of the channel draw (and of observation noise and SER symbols)."),
    out: Path = typer.Option(Path("results/evaluate"), help="Output directory (results.csv, <metric>_vs_snr.png)."),
    device: str = typer.Option("cpu", help="Torch device, e.g. cpu or cuda."),
    dtype: str = typer.Option("complex64", help="complex64 or complex128."),
    batch_size: int = typer.Option(2000, min=1, help="Channels per batch."),
    resume: bool = typer.Option(True, help="Reuse finished (method, SNR) cells of a previous run in OUT."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    channel: str | None = typer.Option(
        None,
        help="Channel source instead of the scenario's: a preset name, rayleigh, clustered-ula, "
        "3gpp-umi|uma|rma, rt:SCENE or a dataset file.",
    ),
    observation: str | None = typer.Option(
        None,
        help="What the transmitter observes instead of the scenario's: perfect, pilots:T[:ls|lmmse[:POWER]] "
        "or uplink[:MAPPING[:ERROR_VAR[:PILOTS[:POWER]]]]; methods are scored on the true channel.",
    ),
    dataset: Path | None = typer.Option(
        None,
        help="Evaluate on the channels of this dataset file (see `beamlearn dataset build`); N and K follow the file.",
    ),
    model: list[Path] = typer.Option(
        [],
        help="A trained model file (OUT/model.blm of `beamlearn train SYSTEM`) to evaluate at every SNR as an "
        "extra method named after its folder; repeatable.",
    ),
):
    """Compare methods on a scenario: prints a metric-vs-SNR table, writes CSV and PNG."""
    from . import evaluate as ev
    from .experiment import format_table
    from .learned import load_model
    from .scenarios import get_scenario

    try:
        sc = get_scenario(scenario)
        snrs = _floats(snr_db, "--snr-db") if snr_db is not None else None
        models = {}
        for path in model:
            m = load_model(path)
            label = f"{m.name}[{path.parent.name or path.stem}]"
            if label in models:  # two files in folders of the same name: label by the whole path
                label = f"{m.name}[{path}]"
            if label in models:
                raise ValueError(f"--model {path} is given twice")
            models[label] = m
        source = str(dataset) if dataset is not None else channel
        rows = ev.evaluate(
            sc,
            methods if methods.strip() else [],
            snrs,
            metric=metric,
            num_channels=channels,
            seed=seed,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            channel_source=source,
            observation=observation,
            out_dir=out,
            resume=resume,
            progress=progress,
            models=models,
        )
    except FAILURES as e:
        _fail(e)
    where = f"source {source}" if source is not None else f"seed {seed}"
    n = rows[0]["channels"] if rows else channels
    typer.echo(f"scenario {sc.name}: mean {metric} over {n} channels ({where})")
    typer.echo(format_table(rows, metric))
    typer.echo(f"wrote {out / 'results.csv'} and {ev.plot_path(out, metric)}")


def dataset_build(
    source: str = typer.Option(
        ..., help="rayleigh, clustered-ula, 3gpp-umi, 3gpp-uma, 3gpp-rma or rt:SCENE (e.g. rt:munich)."
    ),
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
        header = build_dataset(
            source,
            users,
            antennas,
            drops,
            seed,
            out,
            chunk_size=chunk_size,
            dtype=dtype,
            progress=progress,
            resume=resume,
        )
    except FAILURES as e:
        _fail(e)
    typer.echo(f"wrote {out}: shape {header['shape']} {header['dtype']}, sha256 {header['sha256'][:16]}...")


def dataset_info(path: Path = typer.Argument(..., help="Dataset file.")):
    """Print a dataset's header (shape, dtype, checksum, source metadata) and verify its data."""
    import json

    from .datasets import load_channels

    try:
        _, header = load_channels(path)
    except FAILURES as e:
        _fail(e)
    typer.echo(json.dumps(header, indent=2, sort_keys=True))
    typer.echo("data verified (SHA-256 matches)")


def scenarios():
    """List the scenario presets with their parameters."""
    from .scenarios import PRESETS

    for name, sc in PRESETS.items():
        d = sc.summary()
        ch = d.pop("channel")
        for k in ("name", "source", "observation"):
            d.pop(k)
        typer.echo(f"{name}")
        typer.echo("  " + ", ".join(f"{k}={v}" for k, v in d.items() if v is not None))
        typer.echo("  channel: " + ", ".join(f"{k}={v}" for k, v in ch.items()))
        typer.echo("  observation: " + ", ".join(f"{k}={v}" for k, v in sc.observation.summary().items()))
        typer.echo(f"  source: {sc.source}")


def methods():
    """List the available methods (classical, and each system's)."""
    from .registry import method_table

    for name, m in method_table().items():
        typer.echo(f"{name:12s} [{m.kind}{', ' + m.system if m.system else ''}] {m.description}")


def systems():
    """List the systems: their methods, shipped weights, commands and docs page."""
    from .systems import all_systems

    for s in all_systems():
        typer.echo(f"{s.name}: {s.title}")
        typer.echo(f"  methods: {', '.join(m.name for m in s.methods) or 'none'}")
        shipped = {label: man for label, man in s.manifests().items() if man.entries}
        for label, man in shipped.items():
            by_sc: dict[str, list] = {}
            for e in man.entries:
                by_sc.setdefault(e.scenario, []).append(f"{e.snr_db:g}" if e.snr_db is not None else e.file)
            what = f"shipped weights ({label})" if label else "shipped weights"
            typer.echo(f"  {what}: " + "; ".join(f"{k} at {', '.join(v)} dB" for k, v in by_sc.items()))
        if not shipped:
            typer.echo("  shipped weights: none")
        cmds = [
            c
            for c, ok in (
                (f"beamlearn train {s.name}", s.train_config is not None),
                (f"beamlearn reproduce {s.name}", s.reproduce is not None),
            )
            if ok
        ]
        typer.echo(f"  commands: {', '.join(cmds) or 'none'}")
        typer.echo(f"  docs: {s.docs or '-'}")


RESERVED_TRAIN_OPTIONS = ("out", "resume", "progress")


def _option_for(field: dataclasses.Field, tp) -> tuple[object, object, list[str], Callable | None]:
    """``(annotation, default, declarations, parser)`` of the option for a configuration field.

    Scalars (int, float, str, bool, Literal) map directly; ``X | None`` becomes an optional option
    (``--x/--no-x`` for booleans); tuples and lists are given as comma-separated values and parsed back
    (``parser``); ``default_factory`` fields take the factory's value.
    """
    flag = "--" + field.name.replace("_", "-")
    if field.metadata.get("required", False):
        default = ...
    elif field.default is not dataclasses.MISSING:
        default = field.default
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        default = ...
    args = typing.get_args(tp)
    optional = type(None) in args and len(args) == 2
    inner = next(a for a in args if a is not type(None)) if optional else tp
    origin = typing.get_origin(inner)
    if origin in (tuple, list):
        item = next((a for a in typing.get_args(inner) if a is not Ellipsis), str)

        def parse(text, _item=item, _origin=origin):
            if text is None:
                return None
            try:
                return _origin(_item(t.strip()) for t in str(text).split(",") if t.strip())
            except ValueError:
                raise typer.BadParameter(
                    f"{flag} must be comma-separated {_item.__name__} values, got {text!r}"
                ) from None

        shown = None if default is None or default is ... else ",".join(str(v) for v in default)
        return Optional[str], ... if default is ... else shown, [flag], parse  # noqa: UP045
    decls = [f"{flag}/--no-{field.name.replace('_', '-')}"] if inner is bool else [flag]
    return (Optional[inner] if optional else inner), default, decls, None  # noqa: UP045


def _train_command(system):
    cfg_cls = system.train_config
    hints = typing.get_type_hints(cfg_cls)
    params = [
        inspect.Parameter(
            "out",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Path,
            default=typer.Option(..., help="Output folder: train_log.csv, checkpoint.pt, model.blm, summary.json."),
        ),
        inspect.Parameter(
            "resume",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(True, help="Continue from OUT/checkpoint.pt if present."),
        ),
        inspect.Parameter(
            "progress",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=bool,
            default=typer.Option(True, help="Show a progress bar."),
        ),
    ]
    parsers = {}
    for f in (f for f in dataclasses.fields(cfg_cls) if f.init):
        annotation, default, decls, parser = _option_for(f, hints[f.name])
        if parser is not None:
            parsers[f.name] = parser
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=annotation,
                default=typer.Option(default, *decls, help=f.metadata.get("help", "")),
            )
        )

    def command(**kw):
        from .learned import train

        out, resume, progress = kw.pop("out"), kw.pop("resume"), kw.pop("progress")
        kw = {k: parsers[k](v) if k in parsers else v for k, v in kw.items()}
        try:
            config = cfg_cls(**kw)
            summary = train(system.task(config), out, progress=progress, resume=resume, log=typer.echo)
        except FAILURES as e:
            _fail(e)
        typer.echo(
            f"best epoch {summary['best_epoch']}: validation {summary['metric']} {summary['best_val']:.4g} "
            f"(untrained {summary['untrained_val']:.4g}); model written to {summary['model_path']}"
        )

    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = f"Train {system.title} (resumable; options from its configuration)."
    return command


def _reproduce_command(system):
    def command(
        out: Path | None = typer.Option(None, help="Output folder (default results/reproduce-SYSTEM)."),
        quick: bool = typer.Option(False, help="Smoke test with few channels (not a reproduction)."),
        channels: int | None = typer.Option(None, min=1, help="Test channels (default: the system's)."),
        train: bool = typer.Option(False, help="Train the learned models here instead of using the shipped ones."),
        device: str = typer.Option("cpu", help="Torch device."),
        progress: bool = typer.Option(True, help="Show a progress bar."),
        set_: list[str] = typer.Option(
            [], "--set", help="KEY=VALUE: another argument of the system's reproduce() (e.g. seed=7); repeatable."
        ),
    ):
        from ._validation import check_device
        from .reproduction import parse_settings, render

        target = out if out is not None else Path(f"results/reproduce-{system.name}")
        try:
            check_device(device)
            extra = parse_settings(set_)
            report = system.reproduce(
                target,
                quick=quick,
                channels=channels,
                train=train,
                device=device,
                progress=progress,
                log=typer.echo,
                **extra,
            )
        except FAILURES as e:
            _fail(e)
        typer.echo(render(report))

    command.__doc__ = f"Reproduce the figures and claims of {system.title} (CSV, PNG, report.md)."
    return command


def build_app() -> typer.Typer:
    """The CLI for the systems listed (and registered) now."""
    from .systems import all_systems

    app = typer.Typer(
        add_completion=False, no_args_is_help=True, help="Learned and classical beamforming for massive MIMO."
    )
    train_app = typer.Typer(no_args_is_help=True, help="Train a learned method of a system.")
    reproduce_app = typer.Typer(no_args_is_help=True, help="Reproduce a paper's figures and claims.")
    dataset_app = typer.Typer(no_args_is_help=True, help="Build and inspect channel datasets on disk.")
    app.add_typer(train_app, name="train")
    app.add_typer(reproduce_app, name="reproduce")
    app.add_typer(dataset_app, name="dataset")
    app.command()(evaluate)
    app.command()(scenarios)
    app.command()(methods)
    app.command()(systems)
    dataset_app.command("build")(dataset_build)
    dataset_app.command("info")(dataset_info)
    for system in all_systems():
        if system.train_config is not None and system.task is not None:
            train_app.command(system.name)(_train_command(system))
        if system.reproduce is not None:
            reproduce_app.command(system.name)(_reproduce_command(system))
    return app


def __getattr__(name: str):
    """``beamlearn.cli.app``: the application built on first use (so importing this module is cheap and
    a system registered later still appears in an app built later)."""
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:  # pragma: no cover - the console script
    """Entry point of the ``beamlearn`` script."""
    build_app()()


if __name__ == "__main__":  # pragma: no cover
    main()
