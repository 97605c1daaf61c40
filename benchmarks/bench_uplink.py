"""Cost of the uplink model-driven beamforming system (system 4): training losses, inference, structure (7).

Measures, in one run and side by side, on scenario S2 (single-cell massive-MIMO FDD ULA ray channels,
:class:`~beamlearn.channels.uplink_pairs.RayUplinkChannel`, N = 64, P = 10 dB, N_0 = 1; spec s3.3):

1. **Table I trend** (spec s4.6-4.8, s7): seconds per training step (forward, hybrid loss, backward,
   Adam; batch 100) of the proposed network (:class:`~beamlearn.systems.uplink.UplinkMDL`, massive
   widths) with the original loss (structure (7) with its N x N matrix), the reduced-dimension loss
   ((22)-(23): a K x K ``eigh``) and the ZF loss ((24): a K x K inverse), measured by
   :func:`beamlearn.systems.uplink.timing.loss_step_seconds` for K in {2, 4, 6, 8, 10}, and the seconds
   per epoch (10^5 samples = 1000 steps). The three losses are timed in ``--rounds`` interleaved rounds
   (the order of the losses rotated each round; the median over rounds of the median step), so that a
   change of the machine's load hits the three alike. The ratios reduced / original and ZF / original
   are printed beside the paper's Table I (GP100 GPU, Keras).
2. **Inference** (complex64, ``torch.no_grad()``) on 1000 S2 channels and at batch 1, for K = 4 and 6:
   the proposed network (``UplinkMDL(64, K, arch="massive")``; untrained weights cost what trained ones
   do), its two heads alone (CSI-Net + Power-Net), WMMSE with perfect downlink CSI (100 and 500
   iterations, the best of the MRT and RZF starts per channel, as the references use), and the structure
   (7) alone (:func:`~beamlearn.precoding.optimal_structure`) in its three forms ``"full"``, ``"push"``,
   ``"reduced"``.
3. **Structure (7) against a per-sample NumPy reference**: :func:`structure_numpy` (below; a Python loop
   over samples with ``numpy.linalg.solve`` on the N x N matrix A, complex128) against the batched torch
   forms (complex128 and complex64) on the same channels and powers, with the largest absolute
   difference of W (complex128 forms: the agreement check; complex64: the rounding of the network's
   dtype).

Usage::

    python benchmarks/bench_uplink.py                 # full run (about 4 minutes on 2 shared CPU cores)
    python benchmarks/bench_uplink.py --quick         # quick check (K = 2, 10 for Table I; K = 4; ~10 s)
    python benchmarks/bench_uplink.py --device cuda --json results/bench_uplink_cuda.json

Threads: one by default (``--threads``; torch ``set_num_threads`` and OMP/OPENBLAS/MKL_NUM_THREADS, set
before numpy and torch load). Results go to stdout (markdown tables) and with ``--json`` to a JSON file.
Speed is never asserted anywhere: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _common.py, also when not run as a script
from _common import THREAD_VARS, _early_threads, _loadavg, machine_description, time_numpy  # noqa: E402

if __name__ == "__main__":
    _threads = _early_threads(sys.argv[1:]) or "1"  # one thread unless told otherwise, before numpy/torch load
    for _var in THREAD_VARS:
        os.environ[_var] = _threads

import numpy as np  # noqa: E402
import torch  # noqa: E402

from beamlearn.channels.uplink_pairs import RayUplinkChannel  # noqa: E402
from beamlearn.precoding import wmmse  # noqa: E402
from beamlearn.precoding.structure import optimal_structure  # noqa: E402
from beamlearn.systems.uplink.model import UplinkMDL  # noqa: E402
from beamlearn.systems.uplink.timing import TIMED_LOSSES, loss_step_seconds  # noqa: E402

N = 64  # N_t of Table I
POWER = 10.0  # P = 10 dB
NOISE_VAR = 1.0
TRAIN_BATCH = 100
TRAIN_SAMPLES = 10**5
STEPS_PER_EPOCH = TRAIN_SAMPLES // TRAIN_BATCH
PAPER_EPOCHS = 200  # spec s6
FORMS = ("full", "push", "reduced")

# Table I of the paper (N_t = 64): T_0 (s) of the original formulation, and reduced / ZF in % of T_0
PAPER_TABLE_I = {
    2: (1570, 67.24, 60.11),
    4: (2314, 80.98, 73.69),
    6: (3388, 102.86, 84.02),
    8: (4716, 95.68, 87.78),
    10: (6683, 99.98, 93.13),
}

FULL = {
    "table_ks": (2, 4, 6, 8, 10),
    "steps": 20,
    "warmup": 3,
    "rounds": 3,
    "inference_ks": (4, 6),
    "batch": 1000,
    "wmmse_iterations": (100, 500),
    "numpy_samples": 1000,
    "repeats": 5,
    "latency_repeats": 20,
    "max_seconds": 20.0,
}
QUICK = {
    "table_ks": (2, 10),
    "steps": 5,
    "warmup": 1,
    "rounds": 1,
    "inference_ks": (4,),
    "batch": 100,
    "wmmse_iterations": (100,),
    "numpy_samples": 100,
    "repeats": 3,
    "latency_repeats": 5,
    "max_seconds": 5.0,
}


def structure_numpy(h: np.ndarray, p: np.ndarray, q: np.ndarray, noise_var: float) -> np.ndarray:
    """The structure (7) for one sample, written from the equation: ``h`` ``[K, N]`` (row k is
    ``h_{D,k}^H``), powers ``p``, ``q`` ``[K]`` -> ``W`` ``[N, K]`` with
    ``w_k = sqrt(p_k) A^{-1} h_{D,k} / ||A^{-1} h_{D,k}||``, ``A = I_N + sum_j (q_j / N_0) h_{D,j} h_{D,j}^H``."""
    hd = h.conj().T  # H_D, [N, K], column k = h_{D,k}
    a = np.eye(hd.shape[0], dtype=hd.dtype)
    for j in range(hd.shape[1]):
        a += (q[j] / noise_var) * np.outer(hd[:, j], hd[:, j].conj())
    x = np.linalg.solve(a, hd)  # A^{-1} H_D
    return x * (np.sqrt(p) / np.linalg.norm(x, axis=0))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, x, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn(x)
    _sync(device)
    return time.perf_counter() - t0


def time_call(fn, x, device: torch.device, repeats: int, budget: float) -> tuple[float, int]:
    """Median wall time of ``fn(x)`` over up to ``repeats`` calls (at least one; no new call once ``budget``
    seconds have been spent), after one warm-up call on the first (up to) 16 samples of ``x`` (library
    loading, allocator, kernels); and the number of timed calls."""
    _timed(fn, _slice(x, 16), device)
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < budget):
        times.append(_timed(fn, x, device))
    return statistics.median(times), len(times)


def _powers(b: int, k: int, seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Generic powers ``p, q`` ``[b, K]`` summing to P (softmax of Gaussian logits, as the Power-Net gives)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(2, b, k, generator=g, dtype=torch.float64)
    pq = POWER * torch.softmax(z, -1)
    return pq[0].to(dtype), pq[1].to(dtype)


def _channels(k: int, b: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """S2 pair ``(h_dl [b, K, N], h_ul [b, N, K])`` in complex128 (cast by the callers)."""
    return RayUplinkChannel(k, N).pair(b, seed=seed, dtype=torch.complex128)


# -- 1. Table I -------------------------------------------------------------------------------------------


def bench_table_i(cfg: dict, device: torch.device, log=print) -> list[dict]:
    ks = cfg["table_ks"]
    steps = {(k, loss): [] for k in ks for loss in TIMED_LOSSES}
    for r in range(cfg["rounds"]):
        for k in ks:
            order = TIMED_LOSSES[r % 3 :] + TIMED_LOSSES[: r % 3]  # rotate, so no loss always runs first
            for loss in order:
                s = loss_step_seconds(
                    N, k, loss, batch_size=TRAIN_BATCH, steps=cfg["steps"], warmup=cfg["warmup"], device=device, seed=r
                )
                steps[(k, loss)].append(s)
                log(f"round {r} K={k:2d} {loss:8s}: {s * 1e3:8.2f} ms/step")
    rows = []
    for k in ks:
        model = UplinkMDL(N, k, arch="massive")
        row: dict = {
            "N": N,
            "K": k,
            "parameters": sum(p.numel() for p in model.parameters()),
            "csi_net_parameters": sum(p.numel() for p in model.csi.parameters()),
        }
        for loss in TIMED_LOSSES:
            s = statistics.median(steps[(k, loss)])
            row[loss] = {"seconds_per_step": s, "rounds": steps[(k, loss)], "seconds_per_epoch": s * STEPS_PER_EPOCH}
        t0 = row["original"]["seconds_per_step"]
        t0_paper, red_paper, zf_paper = PAPER_TABLE_I[k]
        row |= {
            "reduced_over_original_percent": 100 * row["reduced"]["seconds_per_step"] / t0,
            "zf_over_original_percent": 100 * row["zf"]["seconds_per_step"] / t0,
            "paper_T0_s": t0_paper,
            "paper_T0_per_epoch_s": t0_paper / PAPER_EPOCHS,
            "paper_reduced_percent": red_paper,
            "paper_zf_percent": zf_paper,
        }
        rows.append(row)
    return rows


# -- 2. inference -----------------------------------------------------------------------------------------


def _no_grad(fn):
    def wrapped(x):
        with torch.no_grad():
            return fn(x)

    return wrapped


def _methods(k: int, u: torch.Tensor, h: torch.Tensor, cfg: dict) -> list[tuple[str, object, object]]:
    """(name, fn, input) for K users; ``fn`` also takes the input sliced along the batch (:func:`_slice`)."""
    scale = float(u.abs().pow(2).mean().sqrt())
    model = UplinkMDL(N, k, arch="massive", input_scale=scale, output_scale=scale).to(u.device).eval()
    b = h.shape[0]
    p, q = _powers(b, k, seed=7, dtype=h.real.dtype)
    p, q = p.to(h.device), q.to(h.device)
    out = [
        ("proposed network (UplinkMDL massive, push)", _no_grad(lambda x: model(x, POWER, NOISE_VAR).precoder), u),
        ("  its heads alone (CSI-Net + Power-Net)", _no_grad(model.heads), u),
    ]
    for it in cfg["wmmse_iterations"]:
        out.append(
            (
                f"WMMSE perfect CSI ({it} it., best of MRT/RZF)",
                _no_grad(lambda x, it=it: wmmse(x, POWER, NOISE_VAR, iterations=it, init=("mrt", "rzf")).precoder),
                h,
            )
        )
    for form in FORMS:
        # the structure alone on the channel, with generic powers (sliced along with the channel)
        hpq = (h, p, q)
        out.append(
            (
                f"structure (7) alone, form={form}",
                _no_grad(lambda x, form=form: optimal_structure(x[0], x[1], x[2], NOISE_VAR, form=form)),
                hpq,
            )
        )
    return out


def _slice(x, n: int):
    return tuple(t[:n] for t in x) if isinstance(x, tuple) else x[:n]


def bench_inference(cfg: dict, device: torch.device, log=print) -> list[dict]:
    rows = []
    b = cfg["batch"]
    for k in cfg["inference_ks"]:
        h_dl, h_ul = _channels(k, b, seed=1000 + k)
        h = h_dl.to(device=device, dtype=torch.complex64)
        u = h_ul.to(device=device, dtype=torch.complex64)
        torch.manual_seed(0)
        ref = None
        for name, fn, x in _methods(k, u, h, cfg):
            row: dict = {"method": name.strip(), "N": N, "K": k, "batch": b}
            try:
                secs, calls = time_call(fn, x, device, cfg["repeats"], cfg["max_seconds"])
                lat, lat_calls = time_call(fn, _slice(x, 1), device, cfg["latency_repeats"], cfg["max_seconds"] / 2)
                row |= {
                    "seconds_per_batch": secs,
                    "calls": calls,
                    "channels_per_s": b / secs,
                    "latency_s": lat,
                    "latency_calls": lat_calls,
                }
                if ref is None:
                    ref = row
                row["time_over_network"] = secs / ref["seconds_per_batch"]
                row["latency_over_network"] = lat / ref["latency_s"]
                log(
                    f"K={k} {name:48s} {b:5d} ch in {secs:9.4f} s = {b / secs:11.1f} ch/s ({calls} calls); "
                    f"batch 1: {lat * 1e3:9.3f} ms ({lat_calls} calls)"
                )
            except Exception as e:  # noqa: BLE001 - one failing method must not lose the others' numbers
                row["error"] = f"{type(e).__name__}: {e}"
                log(f"K={k} {name:48s} ERROR {row['error']}")
            rows.append(row)
    return rows


# -- 3. structure (7): NumPy per-sample vs batched torch ---------------------------------------------------


def bench_structure(cfg: dict, device: torch.device, log=print) -> list[dict]:
    rows = []
    b = cfg["numpy_samples"]
    for k in cfg["inference_ks"]:
        h_dl, _ = _channels(k, b, seed=2000 + k)
        p, q = _powers(b, k, seed=11, dtype=torch.float64)
        hn, pn, qn = h_dl.numpy(), p.numpy(), q.numpy()
        idx = np.arange(b)

        def loop(i, hn=hn, pn=pn, qn=qn):
            return structure_numpy(hn[i], pn[i], qn[i], NOISE_VAR)

        secs_np, outs = time_numpy(loop, idx)
        w_np = np.stack(outs)
        base = {"N": N, "K": k, "channels": b}
        rows.append(
            base
            | {
                "implementation": "numpy per-sample (cpu)",
                "form": "N x N solve",
                "dtype": "complex128",
                "seconds": secs_np,
                "channels_per_s": b / secs_np,
                "speedup_vs_numpy": 1.0,
                "max_abs_diff_vs_numpy": 0.0,
                "max_abs_w": float(np.abs(w_np).max()),
            }
        )
        log(f"K={k} numpy per-sample        complex128 {b:5d} ch in {secs_np:8.4f} s = {b / secs_np:11.1f} ch/s")
        for dtype in (torch.complex128, torch.complex64):
            h = h_dl.to(device=device, dtype=dtype)
            pp, qq = p.to(device=device, dtype=h.real.dtype), q.to(device=device, dtype=h.real.dtype)
            for form in FORMS:

                def fn(x, pp=pp, qq=qq, form=form):
                    with torch.no_grad():
                        return optimal_structure(x, pp[: x.shape[0]], qq[: x.shape[0]], NOISE_VAR, form=form)

                secs, calls = time_call(fn, h, device, cfg["repeats"], cfg["max_seconds"])
                w = fn(h).to(torch.complex128).cpu().numpy()
                diff = float(np.abs(w - w_np).max())
                rel = diff / float(np.abs(w_np).max())
                dname = str(dtype).removeprefix("torch.")
                rows.append(
                    base
                    | {
                        "implementation": f"beamlearn batched ({device.type})",
                        "form": form,
                        "dtype": dname,
                        "seconds": secs,
                        "calls": calls,
                        "channels_per_s": b / secs,
                        "speedup_vs_numpy": secs_np / secs,
                        "max_abs_diff_vs_numpy": diff,
                        "max_abs_diff_over_max_abs_w": rel,
                    }
                )
                log(
                    f"K={k} torch {form:8s} {dname:11s} {b:5d} ch in {secs:8.4f} s = {b / secs:11.1f} ch/s "
                    f"x{secs_np / secs:7.1f}; max |dW| {diff:.1e}"
                )
    return rows


# -- report -----------------------------------------------------------------------------------------------


def _fmt(x, spec: str) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _diff(r: dict) -> str:
    if r["implementation"].startswith("numpy"):
        return f"(reference; max abs W = {r['max_abs_w']:.2f})"
    return f"{r['max_abs_diff_vs_numpy']:.1e} ({r['max_abs_diff_over_max_abs_w']:.1e})"


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"Table I trend: training step of the proposed network (N = {N}, batch {TRAIN_BATCH}, complex64 channels, "
        f"float32 network, {s['device']}; median of {s['steps']} steps after {s['warmup']} warm-up, median of "
        f"{s['rounds']} interleaved rounds); epoch = {STEPS_PER_EPOCH} steps ({TRAIN_SAMPLES:,} samples):",
        "",
        "| K | parameters (CSI-Net) | original ms/step | reduced ms/step | ZF ms/step | original s/epoch | "
        "reduced / original | paper | ZF / original | paper | paper T_0 (s); / 200 epochs |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in result["table_i"]:
        lines.append(
            f"| {r['K']} | {r['parameters']:,} ({r['csi_net_parameters']:,}) | "
            f"{r['original']['seconds_per_step'] * 1e3:.2f} | {r['reduced']['seconds_per_step'] * 1e3:.2f} | "
            f"{r['zf']['seconds_per_step'] * 1e3:.2f} | {r['original']['seconds_per_epoch']:.1f} | "
            f"{r['reduced_over_original_percent']:.1f} % | {r['paper_reduced_percent']:.2f} % | "
            f"{r['zf_over_original_percent']:.1f} % | {r['paper_zf_percent']:.2f} % | "
            f"{r['paper_T0_s']}; {r['paper_T0_per_epoch_s']:.2f} |"
        )
    lines += [
        "",
        f"Inference (complex64, no_grad, {s['device']}), batch {s['batch']} and batch 1 (the heads row is a part "
        "of the network row):",
        "",
        "| method | K | s / batch | channels/s | latency at batch 1 (ms) | time / network (batch; batch 1) |",
        "|:--|--:|--:|--:|--:|--:|",
    ]
    for r in result["inference"]:
        if "error" in r:
            lines.append(f"| {r['method']} | {r['K']} | error: {r['error']} | | | |")
            continue
        lines.append(
            f"| {r['method']} | {r['K']} | {r['seconds_per_batch']:.4g} | {r['channels_per_s']:,.0f} | "
            f"{r['latency_s'] * 1e3:.3f} | {r['time_over_network']:.3g}; {r['latency_over_network']:.3g} |"
        )
    lines += [
        "",
        f"Structure (7) alone: per-sample NumPy reference (N x N `numpy.linalg.solve`, complex128) against the "
        f"batched torch forms, {s['numpy_samples']} channels, generic powers p, q (sum P):",
        "",
        "| K | implementation | form | dtype | channels/s | speed-up vs NumPy | max abs diff of W vs NumPy "
        "(/ max abs W) |",
        "|--:|:--|:--|:--|--:|--:|--:|",
    ]
    for r in result["structure"]:
        lines.append(
            f"| {r['K']} | {r['implementation']} | {r['form']} | {r['dtype']} | {r['channels_per_s']:,.0f} | "
            f"{r['speedup_vs_numpy']:.1f}x | {_diff(r)} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a quick check: fewer K, steps and channels (~10 s)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device (default cpu)")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads and OMP/OPENBLAS/MKL_NUM_THREADS (set before import); default 1",
    )
    ap.add_argument("--skip-table", action="store_true", help="skip part 1 (Table I)")
    ap.add_argument("--skip-inference", action="store_true", help="skip part 2 (inference)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch.cuda.is_available() is False")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = dict(QUICK if args.quick else FULL)

    machine = machine_description()
    command = " ".join([os.path.basename(sys.executable), *sys.argv])
    print("command: " + command)
    for key, value in machine.items():
        print(f"{key}: {value}")
    settings = {"device": args.device, "quick": args.quick, "threads": args.threads} | {
        key: list(v) if isinstance(v, tuple) else v for key, v in cfg.items()
    }
    print("settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))

    load = {"start": _loadavg()}
    t0 = time.perf_counter()
    print("\n-- 1. Table I: training step per loss")
    table = [] if args.skip_table else bench_table_i(cfg, device)
    load["after_table_i"] = _loadavg()
    print(f"load average: {load['after_table_i']}")
    print("\n-- 2. inference")
    inference = [] if args.skip_inference else bench_inference(cfg, device)
    load["after_inference"] = _loadavg()
    print(f"load average: {load['after_inference']}")
    print("\n-- 3. structure (7): NumPy per-sample vs batched torch")
    structure = bench_structure(cfg, device)
    load["end"] = _loadavg()
    total = time.perf_counter() - t0

    result = {
        "command": command,
        "machine": machine,
        "loadavg": load,
        "total_seconds": total,
        "settings": settings,
        "table_i": table,
        "inference": inference,
        "structure": structure,
        "paper_table_i": {
            str(k): dict(zip(("T0_s", "reduced_percent", "zf_percent"), v, strict=True))
            for k, v in PAPER_TABLE_I.items()
        },
    }
    print(f"\ntotal benchmark time {total:.1f} s; load average: {load}\n")
    print(markdown(result))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
