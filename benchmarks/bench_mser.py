"""Cost of the MSER system (system 2): inference of every design and training of the DU-NN and the CNN.

Measures, in one run and side by side (complex64; CPU by default, ``--device cuda`` on a GPU):

1. **Inference** on a batch of ``--channels`` channels of the ``mser`` preset (N_t = 64, R_t = 8,
   K = 2, N_r = 8, R_r = 4, D_k = 3) at 15 dB, under ``torch.no_grad()`` (as ``evaluate`` runs them):
   seconds per batch, channels per second and the latency at batch 1 of

   * the MSER DU-NN (:class:`~beamlearn.systems.mser.MSERUnfolded`, 15 layers; an untrained network
     costs exactly what a trained one does: the same operations on other numbers),
   * MSER hybrid GD (:class:`~beamlearn.systems.mser.methods.MSERGD`) with 500 and with 15 iterations,
   * MMSE hybrid GD (500 iterations), MMSE fully digital, MMSE-OMP, MMSE-MO,
   * the benchmark CNN (:class:`~beamlearn.systems.mser.BenchmarkCNN`, eval mode).

   and the ratio time(GD-500) / time(DU-NN): the paper's claim is a test cost of about 15/500 of GD's;
   spec A13 asks for a DU-NN wall clock of at most 10 % of GD-500's (on a GPU, batched). The DU-NN
   and the CNN are also timed at batch 1 on the (N_t, K, R_r) = (64, 3, 2) system of Table IV.
2. **Training**: seconds per epoch of the DU-NN (:class:`~beamlearn.systems.mser.MSERTask`, Adam,
   lr 1e-3) and of the CNN (:class:`~beamlearn.systems.mser.cnn.CNNTask`, criterion ``ser``, its SGD),
   both on the same ``--train-channels`` (500) channels, batch 20, through the shared trainer
   (:func:`beamlearn.learned.train`, in a temporary folder: an epoch includes the validation on 100
   channels and the checkpoint), for (64, 2, 4) and (64, 3, 2) of Table IV. ``--epochs`` epochs are
   timed after one warm-up epoch. The paper's Table IV gives minutes of whole trainings of unknown
   length, so only the direction of the claim (the DU-NN trains faster) is comparable: the table
   prints our seconds per epoch, their ratio CNN / DU-NN, and an extrapolation to the two default
   recipes (the epochs and training channels of ``MSERConfig`` and ``CNNConfig``: at the time of
   writing 24 epochs of 500 channels and 100 epochs of 10,000 channels).
3. **FLOP model** (spec s7): the analytic ratio L / T = 15 / 500 of the DU-NN's and GD's test cost
   O(L J S Omega) vs O(T J S Omega), with Omega = K N_t D + K N_r D + K R_r N_r + R_t N_t (D = K D_k
   streams; 1440 for the default system), and the trainable parameter counts.

Usage::

    python benchmarks/bench_mser.py --threads 1                        # full run (about 10 minutes on 2 CPU cores)
    python benchmarks/bench_mser.py --threads 1 --channels 50 --skip-slow   # quick check (a few minutes)
    python benchmarks/bench_mser.py --device cuda                      # on a GPU (synchronised timings)

The results go to ``--out`` (JSON, default ``results/bench_mser.json``) and to stdout (markdown tables).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _common.py, also when not run as a script
from _common import WARMUP_CHANNELS, _loadavg, machine_description, set_thread_env  # noqa: E402

if __name__ == "__main__":
    set_thread_env(sys.argv[1:])  # --threads, before numpy/torch load their BLAS/OpenMP runtimes

import torch  # noqa: E402

import beamlearn.scenarios as scenarios  # noqa: E402
from beamlearn.learned import train  # noqa: E402
from beamlearn.scenarios import get_scenario  # noqa: E402
from beamlearn.systems.mser import BenchmarkCNN, MSERConfig, MSERTask, MSERUnfolded  # noqa: E402
from beamlearn.systems.mser.cnn import CNNConfig, CNNTask  # noqa: E402
from beamlearn.systems.mser.methods import MMSEFDGD, MMSEGD, MMSEMO, MMSEOMP, MSERGD  # noqa: E402
from beamlearn.systems.mser.model import paper_parameter_count, parameter_count  # noqa: E402
from beamlearn.systems.mser.transceiver import system_sizes  # noqa: E402

SNR_DB = 15.0
LAYERS = 15  # L of the DU-NN
GD_ITERS = 500  # T of the reference GD
NUM_SAMPLES = 256  # J symbol vectors of GD and of the DU-NN's layers
BATCH = 20  # training batch (paper)
K3_PRESET = "mser-k3"  # the (64, 3, 2) system of Table IV, registered for the duration of the run

# the paper's Table IV, rows (N_t, K, R_r) = (64, 2, 4) and (64, 3, 2): train DU-NN / CNN (min), test DU-NN / CNN (s)
PAPER_TABLE_IV = {
    (64, 2, 4): {"train_du_min": 5.35, "train_cnn_min": 8.73, "test_du_s": 0.01, "test_cnn_s": 0.01},
    (64, 3, 2): {"train_du_min": 12.46, "train_cnn_min": 21.58, "test_du_s": 0.01, "test_cnn_s": 0.1},
}
# the default recipes, for the extrapolation of a whole training (MSERConfig / CNNConfig defaults)
RECIPES = {"du": (MSERConfig.epochs, MSERConfig.train_channels), "cnn": (CNNConfig.epochs, CNNConfig.train_channels)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, x, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn(x)
    _sync(device)
    return time.perf_counter() - t0


def time_call(fn, h: torch.Tensor, repeats: int, budget: float) -> tuple[float, int]:
    """Median wall time of ``fn(h)`` over up to ``repeats`` calls (at least one; no new call once
    ``budget`` seconds have been spent), and the number of calls. The caller warms ``fn`` up first."""
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < budget):
        times.append(_timed(fn, h, h.device))
    return statistics.median(times), len(times)


def _scenario(key: tuple[int, int, int]):
    return get_scenario("mser") if key == (64, 2, 4) else get_scenario(K3_PRESET)


def _du(sc) -> MSERUnfolded:
    return MSERUnfolded(layers=LAYERS, num_samples=NUM_SAMPLES, **system_sizes(sc))


def _cnn(sc) -> BenchmarkCNN:
    return BenchmarkCNN(**system_sizes(sc))


def _methods(sc, skip_slow: bool) -> list[tuple[str, torch.nn.Module]]:
    rt, rr, d = sc.num_rf_chains, sc.num_rx_rf_chains, sc.num_streams
    out = [
        (f"MSER DU-NN (L={LAYERS})", _du(sc)),
        (f"MSER hybrid GD ({GD_ITERS} it.)", MSERGD(rt, rr, d, iterations=GD_ITERS, num_samples=NUM_SAMPLES)),
        (f"MSER hybrid GD ({LAYERS} it.)", MSERGD(rt, rr, d, iterations=LAYERS, num_samples=NUM_SAMPLES)),
    ]
    if not skip_slow:
        out.append((f"MMSE hybrid GD ({GD_ITERS} it.)", MMSEGD(rt, rr, d, iterations=GD_ITERS)))
    out += [("MMSE fully digital", MMSEFDGD(d)), ("MMSE-OMP", MMSEOMP(rt, rr, d))]
    if not skip_slow:
        out.append(("MMSE-MO", MMSEMO(rt, rr, d)))
    out.append(("benchmark CNN (17 layers)", _cnn(sc)))
    return out


def _wrap(model: torch.nn.Module, power: float, noise_var: float):
    def fn(h):
        with torch.no_grad():
            return model(h, power, noise_var)

    return fn


def bench_inference(args, device, log=print) -> tuple[list[dict], list[dict]]:
    sc = get_scenario("mser")
    power, noise_var = sc.power_and_noise(SNR_DB)
    h_all = sc.channel_model()(args.channels, seed=1234, dtype=torch.complex128)
    h = h_all.to(device=device, dtype=torch.complex64)
    rows = []
    for name, model in _methods(sc, args.skip_slow):
        row = {"method": name, "system": [64, 2, 4], "batch": args.channels}
        try:
            model = model.to(device).eval()
            fn = _wrap(model, power, noise_var)
            _timed(fn, h[:WARMUP_CHANNELS], device)  # warm-up: library loading, allocator, kernels
            secs, calls = time_call(fn, h, args.repeats, args.max_seconds)
            _timed(fn, h[:1], device)
            lat, lat_calls = time_call(fn, h[:1], args.latency_repeats, args.max_seconds / 2)
            row |= {
                "seconds_per_batch": secs,
                "calls": calls,
                "channels_per_s": args.channels / secs,
                "latency_s": lat,
                "latency_calls": lat_calls,
            }
            log(
                f"{name:32s} {args.channels:5d} ch in {secs:9.4f} s = {args.channels / secs:10.1f} ch/s "
                f"({calls} calls); batch 1: {lat * 1e3:9.2f} ms ({lat_calls} calls)"
            )
        except Exception as e:  # noqa: BLE001 - one failing method must not lose the others' numbers
            row["error"] = f"{type(e).__name__}: {e}"
            log(f"{name:32s} ERROR {row['error']}")
        rows.append(row)

    # batch-1 latency of the two networks on the (64, 3, 2) system of Table IV
    sc3 = get_scenario(K3_PRESET)
    p3, n3 = sc3.power_and_noise(SNR_DB)
    h3 = sc3.channel_model()(1, seed=1234, dtype=torch.complex128).to(device=device, dtype=torch.complex64)
    rows_k3 = []
    for name, model in ((f"MSER DU-NN (L={LAYERS})", _du(sc3)), ("benchmark CNN (17 layers)", _cnn(sc3))):
        row = {"method": name, "system": [64, 3, 2], "batch": 1}
        try:
            fn = _wrap(model.to(device).eval(), p3, n3)
            _timed(fn, h3, device)
            lat, lat_calls = time_call(fn, h3, args.latency_repeats, args.max_seconds / 2)
            row |= {"latency_s": lat, "latency_calls": lat_calls}
            log(f"{name:32s} (64, 3, 2) batch 1: {lat * 1e3:9.2f} ms ({lat_calls} calls)")
        except Exception as e:  # noqa: BLE001
            row["error"] = f"{type(e).__name__}: {e}"
            log(f"{name:32s} (64, 3, 2) ERROR {row['error']}")
        rows_k3.append(row)
    return rows, rows_k3


def _epoch_seconds(task, epochs: int) -> tuple[list[float], float]:
    """Seconds of each of ``epochs`` epochs after one warm-up epoch, and the seconds of one validation
    pass over the validation channels (the part of an epoch that does not scale with the training set)."""
    with tempfile.TemporaryDirectory(prefix="bench_mser_") as tmp:
        summary = train(task, tmp, progress=False, resume=False, log=None, num_threads=None)
    per_epoch = [float(r["seconds"]) for r in summary["log"][2:]]  # row 0: untrained, row 1: warm-up
    model = task.build_model().to(task.config.device).eval()
    _, val_data = task.data()
    t0 = time.perf_counter()
    with torch.no_grad():
        task.validate(model, val_data)
    _sync(torch.device(task.config.device))
    return per_epoch, time.perf_counter() - t0


def bench_training(args, device, log=print) -> list[dict]:
    keys = [(64, 2, 4)] if args.skip_slow else list(PAPER_TABLE_IV)
    rows = []
    for key in keys:
        preset = "mser" if key == (64, 2, 4) else K3_PRESET
        common = dict(
            snr_db=SNR_DB,
            scenario=preset,
            epochs=1 + args.epochs,
            batch_size=BATCH,
            train_channels=args.train_channels,
            val_channels=100,
            device=device.type,
            dtype="complex64",
        )
        tasks = {
            "du": MSERTask(MSERConfig(optimizer="adam", lr=1e-3, **common)),
            "cnn": CNNTask(CNNConfig(criterion="ser", **common)),
        }
        row: dict = {"system": list(key), "scenario": preset, "train_channels": args.train_channels}
        for label, task in tasks.items():
            try:
                per_epoch, val_s = _epoch_seconds(task, args.epochs)
                sec = statistics.median(per_epoch)
                n_full_epochs, n_full_channels = RECIPES[label]
                train_part = max(sec - val_s, 0.0)
                full_min = n_full_epochs * (train_part * n_full_channels / args.train_channels + val_s) / 60
                row[label] = {
                    "seconds_per_epoch": sec,
                    "epochs_timed": per_epoch,
                    "validation_seconds": val_s,
                    "recipe": {"epochs": n_full_epochs, "train_channels": n_full_channels},
                    "extrapolated_recipe_minutes": full_min,
                }
                log(
                    f"train {label:3s} {key}: {sec:8.2f} s/epoch ({args.train_channels} ch, batch {BATCH}; "
                    f"validation {val_s:.2f} s of it); recipe {n_full_epochs} ep. x {n_full_channels} ch "
                    f"~ {full_min:.1f} min"
                )
            except Exception as e:  # noqa: BLE001
                row[label] = {"error": f"{type(e).__name__}: {e}"}
                log(f"train {label:3s} {key}: ERROR {row[label]['error']}")
        if "seconds_per_epoch" in row["du"] and "seconds_per_epoch" in row["cnn"]:
            row["cnn_over_du_per_epoch"] = row["cnn"]["seconds_per_epoch"] / row["du"]["seconds_per_epoch"]
            row["cnn_over_du_recipe"] = (
                row["cnn"]["extrapolated_recipe_minutes"] / row["du"]["extrapolated_recipe_minutes"]
            )
        rows.append(row)
    return rows


def flop_model() -> dict:
    out = {"L": LAYERS, "T": GD_ITERS, "J": NUM_SAMPLES, "L_over_T": LAYERS / GD_ITERS, "systems": []}
    for key in PAPER_TABLE_IV:
        sc = _scenario(key)
        k, nt, rt = sc.num_users, sc.num_bs_antennas, sc.num_rf_chains
        nr, rr, dk = sc.num_rx_antennas, sc.num_rx_rf_chains, sc.num_streams
        d = k * dk
        omega = k * nt * d + k * nr * d + k * rr * nr + rt * nt
        cnn = _cnn(sc)
        out["systems"].append(
            {
                "system": list(key),
                "D_k": dk,
                "R_t": rt,
                "N_r": nr,
                "omega": omega,
                "gd_units_per_channel": GD_ITERS * NUM_SAMPLES * omega,
                "du_units_per_channel": LAYERS * NUM_SAMPLES * omega,
                "du_parameters": parameter_count(LAYERS, k, nt, rt, nr, rr, dk),
                "du_parameters_paper_formula": paper_parameter_count(LAYERS, k, nt, rt, nr, rr, dk),
                "cnn_parameters": sum(p.numel() for p in cnn.parameters() if p.requires_grad),
            }
        )
    return out


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def markdown(result: dict) -> str:
    inf = result["inference"]
    du = next((r for r in inf if r["method"].startswith("MSER DU-NN") and "seconds_per_batch" in r), None)
    lines = [
        f"Inference, `mser` preset (64, 2, 4), {SNR_DB:g} dB, complex64, {result['settings']['device']}:",
        "",
        "| method | batch | s / batch | channels/s | latency at batch 1 (ms) | time / DU-NN time (batch; batch 1) |",
        "|:--|--:|--:|--:|--:|--:|",
    ]
    for r in inf:
        if "error" in r:
            lines.append(f"| {r['method']} | {r['batch']} | error: {r['error']} | | | |")
            continue
        rel = (
            f"{r['seconds_per_batch'] / du['seconds_per_batch']:.2f}; {r['latency_s'] / du['latency_s']:.2f}"
            if du
            else "—"
        )
        lines.append(
            f"| {r['method']} | {r['batch']} | {r['seconds_per_batch']:.4f} | {r['channels_per_s']:,.1f} | "
            f"{r['latency_s'] * 1e3:.2f} | {rel} |"
        )
    ratio = result["ratios"]
    lines += [
        "",
        f"GD-{GD_ITERS} time / DU-NN time: {_fmt(ratio.get('gd500_over_du_batch'), '.1f')} (batch "
        f"{result['settings']['channels']}), {_fmt(ratio.get('gd500_over_du_latency'), '.1f')} (batch 1); "
        f"DU-NN / GD-{GD_ITERS} = {_fmt(ratio.get('du_over_gd500_batch_percent'), '.1f')} % "
        f"(spec A13: <= 10 %); analytic L/T = {LAYERS}/{GD_ITERS} = {LAYERS / GD_ITERS:.3f} "
        f"(GD-{GD_ITERS}/DU-NN = {GD_ITERS / LAYERS:.1f}); GD-{LAYERS} / DU-NN = "
        f"{_fmt(ratio.get('gd15_over_du_batch'), '.2f')}.",
        "",
        f"Training, {result['settings']['train_channels']} channels, batch {BATCH}, seconds per epoch "
        f"(median of {result['settings']['epochs']} after a warm-up epoch; an epoch includes validation on 100 "
        "channels), beside the paper's Table IV (whole trainings, CPU):",
        "",
        "| (N_t, K, R_r) | DU-NN s/epoch | CNN s/epoch | CNN / DU-NN per epoch | recipe: DU-NN min | recipe: "
        "CNN min | CNN / DU-NN recipe | paper DU-NN min | paper CNN min | paper CNN / DU-NN | DU-NN latency "
        "(ms) | CNN latency (ms) | paper test DU-NN / CNN (s) |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    lat = {(tuple(r["system"]), r["method"].startswith("MSER DU")): r.get("latency_s") for r in result["inference"]}
    lat |= {(tuple(r["system"]), r["method"].startswith("MSER DU")): r.get("latency_s") for r in result["inference_k3"]}
    for r in result["training"]:
        key = tuple(r["system"])
        p = PAPER_TABLE_IV[key]
        d, c = r["du"], r["cnn"]
        lines.append(
            f"| {key} | {_fmt(d.get('seconds_per_epoch'), '.2f')} | {_fmt(c.get('seconds_per_epoch'), '.2f')} | "
            f"{_fmt(r.get('cnn_over_du_per_epoch'), '.2f')} | {_fmt(d.get('extrapolated_recipe_minutes'), '.1f')} | "
            f"{_fmt(c.get('extrapolated_recipe_minutes'), '.1f')} | {_fmt(r.get('cnn_over_du_recipe'), '.1f')} | "
            f"{p['train_du_min']} | {p['train_cnn_min']} | {p['train_cnn_min'] / p['train_du_min']:.2f} | "
            f"{_fmt(_ms(lat.get((key, True))), '.2f')} | {_fmt(_ms(lat.get((key, False))), '.2f')} | "
            f"{p['test_du_s']} / {p['test_cnn_s']} |"
        )
    lines += ["", "FLOP model (spec s7): test cost O(L J S Omega) (DU-NN) vs O(T J S Omega) (GD):", ""]
    lines += [
        "| (N_t, K, R_r) | D_k | Omega | GD-500 units / channel | DU-NN units / channel | DU / GD | DU-NN "
        "parameters (exact; paper formula) | CNN parameters |",
        "|:--|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in result["flop_model"]["systems"]:
        lines.append(
            f"| {tuple(s['system'])} | {s['D_k']} | {s['omega']} | {s['gd_units_per_channel']:,} | "
            f"{s['du_units_per_channel']:,} | {s['du_units_per_channel'] / s['gd_units_per_channel']:.3f} | "
            f"{s['du_parameters']:,}; {s['du_parameters_paper_formula']:,} | {s['cnn_parameters']:,} |"
        )
    return "\n".join(lines)


def _ms(x):
    return None if x is None else x * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device (default cpu)")
    ap.add_argument("--channels", type=int, default=200, help="inference batch (default 200)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per batch (median; default 5)")
    ap.add_argument("--latency-repeats", type=int, default=20, help="timed calls at batch 1 (median; default 20)")
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=20.0,
        help="no new timed call of a method once this many seconds were spent on it (batch 1: half; default 20)",
    )
    ap.add_argument("--epochs", type=int, default=1, help="timed training epochs after a warm-up epoch (default 1)")
    ap.add_argument("--train-channels", type=int, default=500, help="training channels (default 500)")
    ap.add_argument(
        "--skip-slow",
        action="store_true",
        help="skip MMSE hybrid GD and MMSE-MO (inference) and the (64, 3, 2) training (a quick check)",
    )
    ap.add_argument("--no-training", action="store_true", help="skip the training part")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads and OPENBLAS/MKL/OMP_NUM_THREADS (set before import); default: the libraries'",
    )
    ap.add_argument("--out", default="results/bench_mser.json", help="JSON output (default results/bench_mser.json)")
    args = ap.parse_args(argv)
    if args.channels < WARMUP_CHANNELS:
        ap.error(f"--channels must be >= {WARMUP_CHANNELS}")
    if args.epochs < 1:
        ap.error("--epochs must be >= 1")

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch.cuda.is_available() is False")
    device = torch.device(args.device)

    machine = machine_description()
    command = " ".join([os.path.basename(sys.executable), *sys.argv])
    print("command: " + command)
    for key, value in machine.items():
        print(f"{key}: {value}")
    settings = {
        "device": args.device,
        "dtype": "complex64",
        "snr_db": SNR_DB,
        "channels": args.channels,
        "repeats": args.repeats,
        "latency_repeats": args.latency_repeats,
        "max_seconds": args.max_seconds,
        "epochs": args.epochs,
        "train_channels": args.train_channels,
        "batch_size": BATCH,
        "skip_slow": args.skip_slow,
        "no_training": args.no_training,
    }
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))

    # the (64, 3, 2) system of Table IV (D_k = min(3, R_r) = 2, spec s9 #24), registered as a preset for
    # the duration of the run: MSERConfig and CNNConfig take a preset name
    had = K3_PRESET in scenarios.PRESETS
    old = scenarios.PRESETS.get(K3_PRESET)
    scenarios.PRESETS[K3_PRESET] = get_scenario("mser").replace(
        name=K3_PRESET, num_users=3, num_rx_rf_chains=2, num_streams=2
    )
    t0 = time.perf_counter()
    try:
        print("\n-- inference")
        inference, inference_k3 = bench_inference(args, device)
        print("\n-- training")
        training = [] if args.no_training else bench_training(args, device)
        flops = flop_model()
    finally:
        if had:
            scenarios.PRESETS[K3_PRESET] = old
        else:
            del scenarios.PRESETS[K3_PRESET]
    total = time.perf_counter() - t0

    by = {r["method"]: r for r in inference if "seconds_per_batch" in r}
    du = by.get(f"MSER DU-NN (L={LAYERS})")
    gd = by.get(f"MSER hybrid GD ({GD_ITERS} it.)")
    gd15 = by.get(f"MSER hybrid GD ({LAYERS} it.)")
    ratios = {}
    if du and gd:
        ratios = {
            "gd500_over_du_batch": gd["seconds_per_batch"] / du["seconds_per_batch"],
            "gd500_over_du_latency": gd["latency_s"] / du["latency_s"],
            "du_over_gd500_batch_percent": 100 * du["seconds_per_batch"] / gd["seconds_per_batch"],
            "a13_wallclock_du_le_10_percent": du["seconds_per_batch"] <= 0.1 * gd["seconds_per_batch"],
        }
    if du and gd15:
        ratios["gd15_over_du_batch"] = gd15["seconds_per_batch"] / du["seconds_per_batch"]
    ratios["analytic_l_over_t"] = LAYERS / GD_ITERS

    result = {
        "command": command,
        "machine": machine,
        "loadavg_end": _loadavg(),
        "total_seconds": total,
        "settings": settings,
        "inference": inference,
        "inference_k3": inference_k3,
        "ratios": ratios,
        "training": training,
        "paper_table_iv": {str(k): v for k, v in PAPER_TABLE_IV.items()},
        "flop_model": flops,
    }
    print(f"\ntotal benchmark time {total:.1f} s; load average at end: {result['loadavg_end']}\n")
    print(markdown(result))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
