"""Reproduce the MSER paper's SER results and put each claim beside our measurement.

Spec ``shared/papers/mser-unfolding-hbf.md`` s6 and s8.2. Writes to ``out_dir``:

* ``fig8.csv`` / ``fig8.png``: QPSK SER against SNR for the DU-NN, MSER hybrid GD (500 iterations),
  GD truncated to 15 iterations, MSER fully digital GD and the MMSE designs (hybrid GD, fully digital,
  OMP, MO); no CNN curves (no CNN weights are shipped: docs/mser.md);
* (full run) Table II's GD column at 20 dB and Table VI (16-QAM at 25 dB: DU-NN, MSER GD, MMSE GD) as
  tables of ``report.md``;
* ``report.md`` / ``results.json``: Table I beside the paper's numbers, the SER-matched comparison
  (spec s9 #3), the parameter counts, and the acceptance claims A1-A4, A12, A13 of s8.2 with our
  numbers; what did not run is listed with the reason;
* ``cache/``: per-channel results of every (method, SNR) cell (an interrupted run resumes).

The SER is the library's ``ser`` metric: exact given the symbol vector (no Gaussian approximation of
the interference) and averaged over 256 random symbol vectors per channel, with the detector each
method declares (sign detection for QPSK, eq. (6)); all methods see the same test channels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..._validation import check_int
from ...experiment import run_grid
from ...learned import PerSNRModels, WeightsManifest
from ...learned import train as train_task
from ...registry import build_method
from ...reproduction import Claim, Report, Table, check, grid_figure, write_report, write_series
from ...scenarios import get_scenario
from .gd import run_gd
from .methods import MMSEGD, MSERGD
from .model import paper_parameter_count, parameter_count
from .train import MSERConfig, MSERTask
from .transceiver import Link, alignment_init, draw_symbols

__all__ = ["reproduce", "FIG8_METHODS", "TABLE1"]

FIG8_METHODS = ("mser-unfolded", "mser-gd", "mser-gd-15", "mser-fd-gd", "mmse-gd", "mmse-fd-gd", "mmse-omp", "mmse-mo")
# Table I of the paper (QPSK): SER of hybrid GD (500 it.), benchmark CNN, DU-NN
TABLE1 = {5: (4.11e-2, 5.92e-2, 4.27e-2), 15: (1.06e-2, 1.51e-2, 1.09e-2), 25: (1.09e-3, 1.54e-3, 1.11e-3)}
TABLE6 = {25: (9.8e-3, 1.36e-2, 1.01e-2)}
# Table II: hybrid GD SER at 20 dB for (K, R_r); D_k = min(3, R_r) (spec s9 #24)
TABLE2 = {(1, 4): 1.15e-3, (2, 4): 3.64e-3, (3, 2): 6.83e-3, (4, 2): 1.56e-2}
MATCH_TARGETS = (4e-2, 1e-2, 1e-3)


def _train_models(snrs, out: Path, sc, modulation: str, progress: bool, log, device: str) -> WeightsManifest:
    manifest = WeightsManifest(out / "models" / modulation, system="mser")
    for s in snrs:
        cfg = MSERConfig(snr_db=s, modulation=modulation, device=device)  # the shipped models' recipe
        summary = train_task(MSERTask(cfg), out / "models" / f"{modulation}_snr{s:g}", progress=progress, log=None)
        manifest.add(summary["model_path"], sc, file=f"{modulation}_snr{s:g}.blm")
        log(f"trained the MSER DU-NN ({modulation}) at {s:g} dB in {summary['train_seconds']:.0f} s")
    return manifest


def _matched_snr(snrs, sers, target) -> float | None:
    """SNR at which a (log-)SER curve crosses ``target`` by linear interpolation of log10 SER."""
    pts = sorted(zip(snrs, sers, strict=True))
    for (s0, e0), (s1, e1) in zip(pts, pts[1:], strict=False):
        if e0 > 0 and e1 > 0 and (e0 - target) * (e1 - target) <= 0 and e0 != e1:
            a = (math.log10(target) - math.log10(e0)) / (math.log10(e1) - math.log10(e0))
            return s0 + a * (s1 - s0)
    return None


def reproduce(
    out_dir: str | Path,
    *,
    quick: bool = False,
    channels: int | None = None,
    snr_db: Sequence[float] = (0, 5, 10, 15, 20, 25),
    gd_iterations: int = 500,
    seed: int = 2024,
    train: bool = False,
    fig7: bool = False,
    table3: bool = False,
    fig56: bool = False,
    device: str = "cpu",
    progress: bool = True,
    log=print,
) -> Report:
    """Run the reproduction; returns the :class:`~beamlearn.reproduction.Report` (also ``report.md``).

    ``train``: train the QPSK DU-NNs of ``snr_db`` in ``out_dir/models`` first (the shipped recipe; the
    16-QAM table keeps the shipped 16-QAM model). ``quick``: 40 channels at 5 and 15 dB, GD with 100
    iterations, no Table II or VI: a smoke test of the pipeline (about 2 minutes on 2 cores), not a
    reproduction. Default: 500 test channels (the paper
    uses 5000), SNRs 0:5:25 dB, 500 GD iterations (one start; the paper keeps the best of 50).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda *_: None)
    n = check_int("channels", channels if channels is not None else (40 if quick else 500), 1)
    snrs = [float(s) for s in ((5, 15) if quick and tuple(snr_db) == (0, 5, 10, 15, 20, 25) else snr_db)]
    iters = check_int("gd_iterations", 100 if quick else gd_iterations, 1)
    dev = torch.device(device)
    sc = get_scenario("mser")
    h = sc.channel_model()(n, seed=seed, dtype=torch.complex128, device=dev).to(torch.complex64)
    t0 = time.perf_counter()

    from . import WEIGHTS, WEIGHTS_16QAM

    manifest = _train_models(snrs, out, sc, "qpsk", progress, log, device) if train else WEIGHTS
    have = set(manifest.snrs(sc))
    du_snrs = [s for s in snrs if s in have]
    k, rt, rr, d = sc.num_users, sc.num_rf_chains, sc.num_rx_rf_chains, sc.num_streams
    methods = {
        "mser-unfolded": PerSNRModels("mser-unfolded", manifest, sc),
        "mser-gd": MSERGD(rt, rr, d, iterations=iters),
        "mser-gd-15": MSERGD(rt, rr, d, iterations=15),
        "mser-fd-gd": lambda: build_method("mser-fd-gd", sc).__class__(d, iterations=iters),
        "mmse-gd": MMSEGD(rt, rr, d, iterations=iters),
        "mmse-fd-gd": lambda: build_method("mmse-fd-gd", sc),
        "mmse-omp": lambda: build_method("mmse-omp", sc),
        "mmse-mo": lambda: build_method("mmse-mo", sc),
    }
    grid = _grid(sc, methods, snrs, du_snrs, h, out, iters, manifest, progress)
    grid_figure(out, "fig8", grid, list(FIG8_METHODS), snrs, title=f"Fig. 8: QPSK, {n} channels")
    mean = {key: float(v.mean()) for key, v in grid.values.items()}

    # -- A1: GD lowers its objective on >= 95 % of channels ----------------------------------------
    a1_snr = 10.0 if 10.0 in snrs else snrs[0]
    p, s2 = sc.power_and_noise(a1_snr)
    sub = h[: min(n, 100)]
    link = Link.from_channel(sub, p, s2, 4)
    s = draw_symbols((sub.shape[0],), k * d, 256, 4, generator=torch.Generator().manual_seed(seed))
    _, hist = run_gd(link, alignment_init(link, rt, rr, d), s.to(sub.dtype), iters, record=True)
    lowered = float((hist[:, -1] < hist[:, 0]).double().mean())

    claims = [
        check(
            f"A1: MSER hybrid GD ({iters} it.) lowers its objective on >= 95 % of channels at {a1_snr:g} dB",
            ">= 95 %",
            100 * lowered,
            at_least=95.0,
            measured=f"{100 * lowered:.1f} % of {sub.shape[0]}",
        )
    ]
    gd = {s_: mean[("mser-gd", s_)] for s_ in snrs}
    for s_ in snrs:
        if gd[s_] > 5e-2:
            continue
        worst = min(mean[(m, s_)] for m in ("mmse-gd", "mmse-omp", "mmse-mo"))
        text = f"A2: every MMSE hybrid design >= 1.3 x SER of MSER GD at {s_:g} dB"
        if gd[s_] > 0:
            r = worst / gd[s_]
            claims.append(
                check(
                    text, ">= 1.3", r, at_least=1.3, measured=f"{r:.3g} (MSER GD {gd[s_]:.3g}, best MMSE {worst:.3g})"
                )
            )
        else:
            claims.append(Claim(text, ">= 1.3", "not measurable: MSER GD SER is 0 in float32", None))
    for s_ in du_snrs:
        du, g15 = mean[("mser-unfolded", s_)], mean[("mser-gd-15", s_)]
        claims.append(
            Claim(
                f"A3: DU-NN (15 layers) <= GD truncated at 15 iterations at {s_:g} dB",
                "DU <= GD-15",
                f"{du:.3g} vs {g15:.3g}",
                du <= g15,
            )
        )
        text = f"A4: SER(GD-{iters}) / SER(DU-NN) >= 0.90 at {s_:g} dB (paper 0.96-0.98)"
        ref = "0.963 / 0.972 / 0.982 at 5 / 15 / 25 dB"
        if du > 0 and gd[s_] > 0:
            claims.append(
                check(
                    text, ref, gd[s_] / du, at_least=0.90, measured=f"{gd[s_] / du:.3g} (GD {gd[s_]:.3g}, DU {du:.3g})"
                )
            )
        else:
            claims.append(Claim(text, ref, f"not measurable: GD {gd[s_]:.3g}, DU {du:.3g} (0 in float32)", None))
    matched = []
    for target in MATCH_TARGETS:
        m_snr = _matched_snr(snrs, [gd[s_] for s_ in snrs], target)
        near = min(du_snrs, key=lambda s_: abs(s_ - m_snr)) if (m_snr is not None and du_snrs) else None
        matched.append(
            [
                f"{target:.0e}",
                "-" if m_snr is None else f"{m_snr:.1f}",
                "-" if near is None else f"{near:g}",
                "-"
                if near is None or mean[("mser-unfolded", near)] == 0
                else f"{gd[near] / mean[('mser-unfolded', near)]:.3g}",
            ]
        )
    # A13: complexity. The analytic model (s7: O(L J S Omega) vs O(T J S Omega)) is arithmetic, L / T, shown
    # in the parameters table; the claim checked here is the measured wall clock of this run's cells.
    t_du = grid.seconds.get(("mser-unfolded", du_snrs[0])) if du_snrs else None
    t_gd = grid.seconds.get(("mser-gd", du_snrs[0])) if du_snrs else None
    if t_du and t_gd:
        claims.append(
            check(
                f"A13: wall-clock of DU-NN inference <= 10 % of GD-{iters} (CPU; cells may come from the cache of "
                "an earlier run; the spec asks it on a GPU)",
                "<= 0.10",
                t_du / t_gd,
                at_most=0.10,
                measured=f"{t_du / t_gd:.3f} ({t_du:.2f} s vs {t_gd:.2f} s for {n} channels)",
            )
        )

    table1 = []
    for s_ in (5, 15, 25):
        if float(s_) not in snrs:
            continue
        ref = TABLE1[s_]
        du = mean.get(("mser-unfolded", float(s_)))
        table1.append(
            [
                f"{s_}",
                f"{gd[float(s_)]:.3g} ({ref[0]:.3g})",
                f"- ({ref[1]:.3g})",
                "-" if du is None else f"{du:.3g} ({ref[2]:.3g})",
                "-" if du is None else f"{gd[float(s_)] / max(du, 1e-300):.3f} ({ref[0] / ref[2]:.3f})",
            ]
        )
    fig8_rows = [
        [f"{s_:g}", *(f"{mean[(m, s_)]:.3g}" if (m, s_) in mean else "-" for m in FIG8_METHODS)] for s_ in snrs
    ]

    tables = [
        Table(
            "Table I: QPSK SER (paper's value in parentheses)",
            ["SNR (dB)", f"hybrid GD ({iters} it.)", "benchmark CNN", "DU-NN (15 layers)", "GD / DU"],
            table1,
            "Absolute SER levels are not comparable (spec s9 #3): our GD falls much faster with SNR than the paper's.",
        ),
        Table("Fig. 8: QPSK SER against SNR", ["SNR (dB)", *FIG8_METHODS], fig8_rows, ""),
        Table(
            "SER-matched comparison (spec s9 #3): SNR where GD reaches the target, the nearest trained DU-NN",
            ["GD SER target", "matched SNR (dB)", "nearest DU-NN SNR", "GD / DU there"],
            matched,
            "The DU-NN is trained per SNR on the 5 dB grid, so the matched SNR is approximated by the nearest model.",
        ),
        Table(
            "Parameters and complexity (U8, s4.6, s5-C, s7)",
            ["count", "value"],
            [
                ["exact, this parametrisation (L=15)", f"{parameter_count(15, k, 64, rt, 8, rr, d):,}"],
                ["paper's formula", f"{paper_parameter_count(15, k, 64, rt, 8, rr, d):,}"],
                ["analytic FLOPs, DU-NN / GD (L / T, s7)", f"15 / {iters} = {15 / iters:.3f} (A13 asks <= 0.04)"],
            ],
            "",
        ),
    ]

    # -- Table II, GD column: configurations at 20 dB (the DU-NN column needs one trained model each) ----
    if not quick:
        rows2, gd2 = [], []
        n2 = min(n, 100)
        for (kk, rr2), ref in TABLE2.items():
            sc2 = sc.replace(name=f"mser-k{kk}-r{rr2}", num_users=kk, num_rx_rf_chains=rr2, num_streams=min(3, rr2))
            h2 = sc2.channel_model()(n2, seed=seed, dtype=torch.complex128, device=dev).to(torch.complex64)
            g2 = run_grid(
                sc2,
                {"mser-gd": MSERGD(rt, rr2, min(3, rr2), iterations=iters)},
                [20.0],
                h2,
                metric="ser",
                cache_dir=out / "cache_table2",
                batch_size=500,
                description={"system": "mser", "table": 2, "gd_iterations": iters},
                progress=progress,
                desc=f"reproduce mser Table II (K={kk}, R_r={rr2})",
            )
            v = g2.mean("mser-gd", 20.0)
            gd2.append(v)
            rows2.append([f"({kk}, {rr2})", f"{min(3, rr2)}", f"{v:.3g} ({ref:.3g})"])
        tables.append(
            Table(
                f"Table II: hybrid GD SER at 20 dB against (K, R_r), {n2} channels (paper's value in parentheses)",
                ["(K, R_r)", "D_k", f"hybrid GD ({iters} it.)"],
                rows2,
                "The DU-NN and CNN rows need one trained model per configuration and were not run.",
            )
        )
        claims.append(
            Claim(
                "A6 (GD part): the hybrid GD SER increases with K at 20 dB (Table II)",
                " < ".join(f"{v:.3g}" for v in TABLE2.values()),
                " < ".join(f"{v:.3g}" for v in gd2),
                all(a < b for a, b in zip(gd2, gd2[1:], strict=False)),
            )
        )

    # -- 16-QAM at 25 dB (Table VI) -----------------------------------------------------------------
    if not quick and 25.0 in snrs:
        q_have = set(WEIGHTS_16QAM.snrs(sc))
        qm = {
            "mser-gd-16qam": MSERGD(rt, rr, d, "16qam", iterations=iters),
            "mmse-gd-16qam": MMSEGD(rt, rr, d, "16qam", iterations=iters),
        }
        if 25.0 in q_have:
            qm = {"mser-unfolded-16qam": PerSNRModels("mser-unfolded-16qam", WEIGHTS_16QAM, sc), **qm}
        qg = run_grid(
            sc,
            qm,
            [25.0],
            h,
            metric="ser_16qam",
            cache_dir=out / "cache16",
            batch_size=500,
            description={"system": "mser", "modulation": "16qam", "gd_iterations": iters},
            progress=progress,
            desc="reproduce mser 16-QAM",
        )
        qmean = {key[0]: float(v.mean()) for key, v in qg.values.items()}
        ref = TABLE6[25]
        tables.append(
            Table(
                "Table VI: 16-QAM SER at 25 dB (paper's value in parentheses)",
                ["method", "SER"],
                [[m, f"{v:.3g}"] for m, v in qmean.items()],
                f"Paper: hybrid GD {ref[0]:.3g}, CNN {ref[1]:.3g}, DU-NN {ref[2]:.3g}.",
            )
        )
        if "mser-unfolded-16qam" in qmean:
            r = qmean["mser-gd-16qam"] / max(qmean["mser-unfolded-16qam"], 1e-300)
            claims.append(check("A12: 16-QAM SER(GD) / SER(DU) >= 0.90 at 25 dB", "0.970", r, at_least=0.90))
        claims.append(
            Claim(
                "A12: 16-QAM SER(MMSE hybrid GD) > SER(MSER hybrid GD) at 25 dB",
                "MSER better",
                f"{qmean['mmse-gd-16qam']:.3g} vs {qmean['mser-gd-16qam']:.3g}",
                qmean["mmse-gd-16qam"] > qmean["mser-gd-16qam"],
            )
        )

    if fig7:
        rows7, a8 = layer_sweep(out / "fig7", device=device, progress=progress, log=log)
        claims.append(a8)
        last = {}
        for r in rows7:
            last[r["layers"]] = min(last.get(r["layers"], math.inf), r["val_ser_bound"])
        tables.append(
            Table(
                "Fig. 7: best validation SER bound (per stream) against the number of layers, 10 dB",
                ["layers", "SER bound"],
                [[str(n), f"{v:.3g}"] for n, v in sorted(last.items())],
                "12 epochs on 200 training channels per network (fig7.csv has the curves).",
            )
        )

    if fig56:
        rows5, rows6, c56 = training_hyper_sweeps(out, device=device, progress=progress, log=log)
        claims.extend(c56)
        tables.append(
            Table("Fig. 5: best validation SER bound against the batch size, 10 dB", ["batch", "SER bound"], rows5, "")
        )
        tables.append(
            Table(
                "Fig. 6: best validation SER bound against the (Adam) learning rate, 10 dB",
                ["lr", "SER bound"],
                rows6,
                "",
            )
        )

    if table3 and 10.0 in snrs:
        rows3, a7 = training_size_sweep(out / "table3", h, gd[10.0], device=device, progress=progress, log=log)
        claims.append(a7)
        tables.append(
            Table(
                "Table III (DU-NN row): SER at 10 dB against the number of training channels",
                ["training channels", "DU-NN SER", f"GD-{iters} / DU-NN"],
                rows3,
                "12 epochs per network; the paper: 92.83 / 95.04 / 96.21 / 97.37 / 97.85 % at 100-500 (20 dB).",
            )
        )

    not_run = [
        "A5 / Table I CNN column / Fig. 8 CNN curves: the 17-layer CNN (10,000 channels, 100 epochs in the paper) "
        "is implemented and trainable (`beamlearn.systems.mser.cnn`), but no CNN weights are shipped yet.",
        "A6 DU-NN part, A9-A11 (Tables II DU/CNN rows, V; Figs. 9, 10, 12; Figs. 5-7 and Table III unless "
        "--set fig56=true / fig7=true / table3=true): implemented as "
        "options (configurations, training-set size, layers, imperfect CSI, layer freezing, zero-padding) but "
        "each needs models trained per setting, which this CPU budget did not cover.",
    ]
    elapsed = time.perf_counter() - t0
    report = Report(
        title="MSER deep unfolding (Shi et al.): reproduction report",
        intro=[
            f"Test set: {n} channels of the `mser` scenario (Nt=64, Rt=8, K=2, Nr=8, Rr=4, D_k=3; clustered "
            f"channel of spec s3.1), seed {seed}; SNR = P_T / sigma^2 with unit-energy symbols.",
            f"SER: exact given the symbol vector, mean over 256 vectors per channel; GD: {iters} iterations, one "
            "start (the channel-alignment init; the paper keeps the best of 50 random starts).",
            "DU-NN: "
            + ("trained in this run" if train else "the shipped models")
            + f" at {', '.join(f'{x:g}' for x in du_snrs) or 'no'} dB.",
            *[f"Not run: {x}" for x in ([] if not quick else ["quick mode (smoke test, not a reproduction)"])],
            *[f"Not run: {x}" for x in not_run],
            f"Run time: {elapsed:.0f} s.",
        ],
        claims=claims,
        tables=tables,
        results={
            "channels": n,
            "snr_db": snrs,
            "gd_iterations": iters,
            "mean_ser": {f"{m}@{s_:g}": v for (m, s_), v in mean.items()},
        },
    )
    write_report(out, report)
    return report


def _grid(sc, methods, snrs, du_snrs, h, out, iters, manifest, progress):
    """The Fig. 8 grid: the DU-NN only at the SNRs it has models for."""
    others = {m: f for m, f in methods.items() if m != "mser-unfolded"}
    # the DU-NN's fingerprint already digests its model files: classical cells survive new weights
    desc = {"system": "mser", "gd_iterations": iters}
    g = run_grid(
        sc,
        others,
        snrs,
        h,
        metric="ser",
        cache_dir=out / "cache",
        batch_size=500,
        description=desc,
        progress=progress,
        desc="reproduce mser",
    )
    if du_snrs:
        g2 = run_grid(
            sc,
            {"mser-unfolded": methods["mser-unfolded"]},
            du_snrs,
            h,
            metric="ser",
            cache_dir=out / "cache",
            batch_size=500,
            description=desc,
            progress=progress,
            desc="reproduce mser (DU-NN)",
        )
        g.values.update(g2.values)
        g.seconds.update(g2.seconds)
    return g


def curve_sweep(
    out_dir: str | Path,
    name: str,
    key: str,
    values: Sequence,
    *,
    snr_db: float = 10.0,
    epochs: int = 12,
    train_channels: int = 200,
    device: str = "cpu",
    progress: bool = False,
    log=print,
) -> tuple[list[dict], dict]:
    """Train one DU-NN per value of the :class:`MSERConfig` field ``key`` (layers, batch size, learning
    rate: Figs. 5-7) and write the validation curves as ``name.csv`` / ``name.png``; resumable under
    ``out_dir/<key><value>``. Returns the rows ``{epoch, key, val_ser_bound}`` and the best validation
    SER bound per value. Budget: ``epochs`` and ``train_channels`` (default 12 and 200), below the
    shipped models'."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda *_: None)

    def config(v):
        return MSERConfig(snr_db=snr_db, epochs=epochs, train_channels=train_channels, device=device, **{key: v})

    rows, summaries = _train_family(out, key, values, config, progress, log)
    final = {v: -float(sm["best_val"]) for v, sm in summaries.items()}
    write_series(out, name, rows, ["epoch", key, "val_ser_bound"])
    _plot_curves(rows, key, f"{name}: {key}, {snr_db:g} dB", out / f"{name}.png")
    return rows, final


def layer_sweep(
    out_dir: str | Path,
    *,
    layers: Sequence[int] = (6, 9, 12, 15, 18),
    snr_db: float = 10.0,
    epochs: int = 12,
    train_channels: int = 200,
    device: str = "cpu",
    progress: bool = False,
    log=print,
) -> tuple[list[dict], Claim]:
    """Fig. 7 (spec s6, A8): :func:`curve_sweep` over the number of layers; the A8 claim holds when the
    residual validation SER bound at L = 15 is at most the one at L = 6."""
    rows, final = curve_sweep(
        out_dir,
        "fig7",
        "layers",
        layers,
        snr_db=snr_db,
        epochs=epochs,
        train_channels=train_channels,
        device=device,
        progress=progress,
        log=log,
    )
    a8 = (
        Claim(
            f"A8: residual validation SER bound at L=15 <= at L=6 ({snr_db:g} dB, {epochs} epochs, "
            f"{train_channels} channels)",
            "L=15 <= L=6",
            ", ".join(f"L={n}: {v:.3g}" for n, v in final.items()),
            final[15] <= final[6],
        )
        if 6 in final and 15 in final
        else Claim("A8: needs L=6 and L=15 in the sweep", "L=15 <= L=6", "not run", None)
    )
    return rows, a8


def training_hyper_sweeps(out_dir: str | Path, *, device: str = "cpu", progress: bool = False, log=print):
    """Figs. 5 and 6 (spec s6, s9 #34): batch sizes {10, 20, 40, 80} and learning rates at 10 dB, 12
    epochs on 200 channels. The learning rates are Adam's {3e-4, 1e-3, 3e-3, 1e-2} (our optimiser; the
    paper's SGD rates {0.005, ..., 0.05} barely move the parameters, docs/mser.md). Returns the two
    tables' rows and the claims: smaller batches reach a lower residual (batch 10 <= batch 80), and the
    largest rate leaves a higher residual than the chosen 1e-3."""
    out = Path(out_dir)
    _, fb = curve_sweep(out / "fig5", "fig5", "batch_size", (10, 20, 40, 80), device=device, progress=progress, log=log)
    _, fl = curve_sweep(out / "fig6", "fig6", "lr", (3e-4, 1e-3, 3e-3, 1e-2), device=device, progress=progress, log=log)
    claims = [
        Claim(
            "Fig. 5: smaller batches reach a lower residual SER (batch 10 <= batch 80; 10 dB, 12 epochs)",
            "N = 10 lowest, N = 20 chosen",
            ", ".join(f"N={n}: {v:.3g}" for n, v in fb.items()),
            fb[10] <= fb[80],
        ),
        Claim(
            "Fig. 6: a larger learning rate leaves a higher residual SER (Adam 1e-2 >= 1e-3; 10 dB, 12 epochs)",
            "0.02 chosen as the trade-off (SGD)",
            ", ".join(f"lr={lr:g}: {v:.3g}" for lr, v in fl.items()),
            fl[1e-2] >= fl[1e-3],
        ),
    ]
    rows5 = [[str(n), f"{v:.3g}"] for n, v in fb.items()]
    rows6 = [[f"{lr:g}", f"{v:.3g}"] for lr, v in fl.items()]
    return rows5, rows6, claims


def _train_family(out: Path, key: str, values, make_config, progress, log):
    """Train one DU-NN per value of ``key`` (resumable under ``out/<key><value>``); returns the per-epoch
    validation rows ``{epoch, key, val_ser_bound}`` and the training summaries by value."""
    rows, summaries = [], {}
    for v in values:
        summary = train_task(MSERTask(make_config(v)), out / f"{key}{v}", progress=progress, resume=True, log=None)
        for rec in summary["log"]:
            rows.append({"epoch": rec["epoch"], key: v, "val_ser_bound": -float(rec["val_minus_ser_bound"])})
        summaries[v] = summary
        log(f"{key}={v}: best validation SER bound {-float(summary['best_val']):.3g}")
    return rows, summaries


def training_size_sweep(
    out_dir: str | Path,
    h_test: torch.Tensor,
    gd_ser: float,
    *,
    sizes: Sequence[int] = (100, 200, 300, 400, 500),
    snr_db: float = 10.0,
    epochs: int = 12,
    device: str = "cpu",
    progress: bool = False,
    log=print,
) -> tuple[list[list[str]], Claim]:
    """Table III's DU-NN row (spec s6, A7): one DU-NN per number of training channels, each scored by the
    ``ser`` metric on ``h_test`` against the GD SER ``gd_ser`` of the same channels. Resumable under
    ``out_dir/train_channels{n}``; returns the table rows and the A7 claim (ratio >= 0.85 at the smallest
    size, non-decreasing within 1 %, >= 0.90 at 500)."""
    from ...metrics import get_metric

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda *_: None)
    _, summaries = _train_family(
        out,
        "train_channels",
        sizes,
        lambda n: MSERConfig(snr_db=snr_db, epochs=epochs, train_channels=n, device=device),
        progress,
        log,
    )
    sc = get_scenario("mser")
    p, s2 = sc.power_and_noise(snr_db)
    metric = get_metric("ser")
    ratios, table = {}, []
    for n, summary in summaries.items():
        from ...learned import load_model

        model = load_model(summary["model_path"]).to(h_test.device)
        with torch.no_grad():
            ser = float(
                metric(h_test, model(h_test, p, s2), p, s2, torch.Generator(device=h_test.device).manual_seed(7)).mean()
            )
        ratios[n] = gd_ser / ser if ser > 0 else math.nan
        table.append([str(n), f"{ser:.3g}", f"{ratios[n]:.3f}"])
    r = [ratios[n] for n in sizes]
    holds = (
        r[0] >= 0.85
        and all(b >= a - 0.01 for a, b in zip(r, r[1:], strict=False))
        and (500 not in ratios or ratios[500] >= 0.90)
    )
    claim = Claim(
        f"A7: DU-NN ratio >= 0.85 with {sizes[0]} training channels, non-decreasing, >= 0.90 at 500 "
        f"({snr_db:g} dB, {epochs} epochs)",
        "92.83 % ... 97.85 % (100 ... 500)",
        ", ".join(f"{n}: {v:.3f}" for n, v in ratios.items()),
        holds,
    )
    return table, claim


def _plot_curves(rows, key, title, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...io import atomic_savefig

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for v in sorted({r[key] for r in rows}):
        pts = [(r["epoch"], r["val_ser_bound"]) for r in rows if r[key] == v]
        ax.semilogy([p[0] for p in pts], [p[1] for p in pts], "-o", ms=3, label=f"{key} = {v:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation SER bound (per stream)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=120)
    plt.close(fig)
