"""Reproductions: figures and claims of a paper beside our measurements, written as one report.

A system's ``reproduce`` computes its figures (grids through :func:`beamlearn.experiment.run_grid`,
custom curves through :func:`write_series`) and returns a :class:`Report` of :class:`Claim` rows
(the paper's statement, its value, ours, and whether it holds) and tables; :func:`write_report`
writes ``report.md`` and ``results.json`` atomically. :func:`grid_figure` writes a grid's CSV and PNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .experiment import GridResult, columns, plot_grid
from .io import atomic_write_text, write_csv, write_json

__all__ = [
    "Claim",
    "Table",
    "Report",
    "check",
    "grid_figure",
    "write_series",
    "write_report",
    "render",
    "parse_settings",
]


@dataclass
class Claim:
    """One claim: the paper's statement, the reference value (paper or spec), ours, the acceptance
    criterion (tolerance) and the verdict. ``holds`` is ``None`` for rows reported but not checked.
    """

    text: str
    reference: str
    measured: str
    holds: bool | None = None
    value: float | None = None
    criterion: str = ""


def check(
    text: str,
    reference: str,
    value: float,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    fmt: str = "{:.3f}",
    measured: str | None = None,
) -> Claim:
    """A claim that holds when ``value`` lies in ``[at_least, at_most]`` (NaN never holds)."""
    ok = math.isfinite(value) and (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
    bounds = [f"{op} {b:.6g}" for op, b in ((">=", at_least), ("<=", at_most)) if b is not None]
    return Claim(
        text, reference, measured if measured is not None else fmt.format(value), ok, float(value), " and ".join(bounds)
    )


@dataclass
class Table:
    """A markdown table of the report."""

    title: str
    header: list[str]
    rows: list[list]
    note: str = ""


@dataclass
class Report:
    """What a reproduction returns and :func:`write_report` writes."""

    title: str
    intro: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    quick: bool = False
    reference_header: str = "reference"

    @property
    def all_hold(self) -> bool:
        return all(c.holds is not False for c in self.claims)


def _ok(holds: bool | None) -> str:
    return "-" if holds is None else ("yes" if holds else "**no**")


def render(report: Report) -> str:
    """The report as markdown."""
    lines = [f"# {report.title}", "", *report.intro]
    if report.intro:
        lines.append("")
    if report.quick:
        lines += ["**Quick run** (`--quick`): too few channels for the tolerances below; a smoke test only.", ""]
    if report.claims:
        lines += [
            "## Claims",
            "",
            f"| claim (paper) | {report.reference_header} | measured here | holds |",
            "|---|---|---|---|",
        ]
        lines += [f"| {c.text} | {c.reference} | {c.measured} | {_ok(c.holds)} |" for c in report.claims]
        lines.append("")
    for t in report.tables:
        lines += [f"## {t.title}", "", "| " + " | ".join(t.header) + " |", "|" + "---|" * len(t.header)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in t.rows]
        lines.append("")
        if t.note:
            lines += [t.note, ""]
    lines += report.notes
    return "\n".join(lines).rstrip() + "\n"


def write_report(out_dir: str | Path, report: Report) -> Path:
    """Write ``report.md`` and ``results.json`` (the report's results and claims) atomically."""
    out = Path(out_dir)
    write_json(
        out / "results.json", {**report.results, "claims": [asdict(c) for c in report.claims], "quick": report.quick}
    )
    atomic_write_text(out / "report.md", render(report))
    return out / "report.md"


def grid_figure(
    out_dir: str | Path, name: str, result: GridResult, methods: Sequence[str], snrs: Sequence[float], title: str = ""
) -> list[dict]:
    """Write ``name.csv`` (:func:`~beamlearn.experiment.columns`) and ``name.png`` of a grid; return the rows."""
    out = Path(out_dir)
    rows = result.rows(methods, sorted(float(s) for s in snrs))
    write_csv(out / f"{name}.csv", rows, columns(result.metric))
    plot_grid(rows, out / f"{name}.png", result.metric, title=title)
    return rows


def parse_settings(items) -> dict:
    """``["seed=7", "snr_db=[0,10]", "name=x"]`` -> ``{"seed": 7, "snr_db": [0, 10], "name": "x"}``: values
    are read as JSON where they parse, else kept as strings (``reproduce SYSTEM --set KEY=VALUE``)."""
    import json

    out = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"--set takes KEY=VALUE with KEY a Python name, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def write_series(out_dir: str | Path, name: str, rows: list[dict], cols: list[str]) -> None:
    """Write a custom figure's data (e.g. a convergence curve) as ``name.csv``."""
    write_csv(Path(out_dir) / f"{name}.csv", rows, cols)
