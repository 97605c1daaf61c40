"""Throughput of unfolded and conventional PGA: batched beamlearn (torch) vs the per-sample NumPy reference.

Measures channels per second of two hybrid beamforming algorithms (fully connected, K = M) on the
channels of the ``unfolded-pga`` preset (10-path ULA, no extra normalisation) with N antennas,
at SNR = 10 dB (P = 10, sigma^2 = 1):

* ``unfolded PGA``: I = 10 layers of J = 10 projected F steps and one W step. For N = 32, K = 4 the
  step sizes of the shipped 10 dB model (:func:`beamlearn.pretrained.load_pretrained_unfolded_pga`);
  for the other sizes, for which no model is trained, the untrained steps (mu = 0.01, lam = 1e-4):
  the cost does not depend on the values of the steps.
* ``conventional PGA``: I = 30 iterations of J = 10 F steps and one W step, mu = 0.01, lam = 1e-4.

Implementations, run side by side on the same channels:

* ``beamlearn``: :class:`beamlearn.unfolded.UnfoldedPGA` (called under ``torch.no_grad()``, i.e.
  inference) and :func:`beamlearn.hybrid.pga` on a whole batch at once, complex64 and complex128, on
  the CPU and (where available) on CUDA;
* ``numpy``: :mod:`beamlearn.reference.numpy_pga`, the same algorithm written per sample from the
  spec's equations (complex128, a Python loop over channels and, inside the gradient, over users).

The table also reports the largest relative difference of the final sum rate between beamlearn and
the reference on the channels both ran, so a speed-up is never reported for a computation that
disagrees.

Usage::

    python benchmarks/bench_unfolded_pga.py --threads 1              # full run (1 to 1.5 minutes on 2 CPU cores)
    python benchmarks/bench_unfolded_pga.py --quick                  # smaller sizes and batches
    python benchmarks/bench_unfolded_pga.py --out results.md         # also write the table (.csv: CSV)
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass


def _early_threads(argv: list[str]) -> str | None:
    """The value of ``--threads``, read before numpy/torch load their BLAS/OpenMP runtimes."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return None


if __name__ == "__main__" and (_threads := _early_threads(sys.argv[1:])):
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads

import numpy as np  # noqa: E402
import torch  # noqa: E402

from beamlearn.hybrid import hybrid_sum_rate, pga  # noqa: E402
from beamlearn.pretrained import load_pretrained_unfolded_pga  # noqa: E402
from beamlearn.reference import conventional_pga_steps, hybrid_sum_rate_numpy, pga_numpy  # noqa: E402
from beamlearn.scenarios import get_scenario  # noqa: E402
from beamlearn.unfolded import UnfoldedPGA  # noqa: E402

SNR_DB = 10.0
NOISE_VAR = 1.0
POWER = NOISE_VAR * 10 ** (SNR_DB / 10)
UNFOLDED_LAYERS, INNER_STEPS = 10, 10
CONV_ITERS = 30
TRAINED_SIZE = (32, 4)  # (N, K) of the shipped models

# (N, K) -> batch sizes: torch unfolded, torch conventional, NumPy unfolded, NumPy conventional
FULL = {
    (32, 4): (1024, 512, 90, 30),
    (64, 4): (1024, 512, 90, 30),
    (256, 4): (256, 128, 60, 21),
    (256, 8): (128, 64, 30, 12),
}
QUICK = {
    (32, 4): (256, 128, 15, 6),
    (64, 4): (128, 64, 9, 3),
}
WARMUP_CHANNELS = 16
CUDA_BATCH_SCALE = 8  # a GPU needs larger batches than a CPU to be busy


@dataclass
class Row:
    method: str
    n: int
    k: int
    backend: str
    dtype: str
    channels: int
    seconds: float
    rate_diff: float | None = None  # max relative final-sum-rate difference vs NumPy on the common channels
    speedup: float | None = None

    @property
    def throughput(self) -> float:
        return self.channels / self.seconds


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def machine_description() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        **{var: os.environ.get(var, "unset") for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available",
        "loadavg_start": _loadavg(),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_torch(fn, h: torch.Tensor, repeats: int) -> float:
    """Median wall time of ``fn(h)`` over ``repeats`` runs, after a warm-up call on the first few
    channels (library loading, kernel selection, CUDA context and handles)."""
    device = h.device
    fn(h[:WARMUP_CHANNELS])
    _sync(device)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn(h)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_numpy(fn, hn: np.ndarray, passes: int = 3) -> tuple[float, np.ndarray]:
    """Time of the per-sample loop over all of ``hn`` (after a warm-up on one channel), and the final
    sum rates.

    The channels are split into ``passes`` equal chunks timed separately, and the total is extrapolated
    from the median chunk's time per channel: the same median-of-passes estimate as for torch, which
    damps the effect of other processes on a shared machine.
    """
    fn(hn[0])
    rates, per_channel = [], []
    for chunk in np.array_split(np.arange(hn.shape[0]), passes):
        t0 = time.perf_counter()
        outs = [fn(hn[b]) for b in chunk]
        per_channel.append((time.perf_counter() - t0) / len(chunk))
        rates.extend(hybrid_sum_rate_numpy(hn[b], f, w, NOISE_VAR) for b, (f, w) in zip(chunk, outs))
    return statistics.median(per_channel) * hn.shape[0], np.asarray(rates)


def _channels(n: int, k: int, b: int) -> torch.Tensor:
    scenario = get_scenario("unfolded-pga").replace(num_bs_antennas=n, num_users=k, num_rf_chains=k)
    return scenario.channel_model()(b, seed=1234, dtype=torch.complex128)


def _unfolded_model(n: int, k: int) -> UnfoldedPGA:
    if (n, k) == TRAINED_SIZE:
        model = load_pretrained_unfolded_pga(SNR_DB)
        assert (model.layers, model.inner_steps) == (UNFOLDED_LAYERS, INNER_STEPS)
        return model
    return UnfoldedPGA(layers=UNFOLDED_LAYERS, inner_steps=INNER_STEPS)  # untrained: mu = 0.01, lam = 1e-4


def _methods(n: int, k: int):
    """``(name, torch_fn(model_device) -> fn(h) -> (F, W), numpy_fn(h1) -> (F, W))`` for both algorithms."""
    model = _unfolded_model(n, k)
    mu_u, lam_u = model.mu.detach().numpy().copy(), model.lam.detach().numpy().copy()
    mu_c, lam_c = conventional_pga_steps(CONV_ITERS, INNER_STEPS)
    trained = "shipped 10 dB steps" if (n, k) == TRAINED_SIZE else "untrained steps"

    def unfolded_torch(device):
        m = model.to(device)

        def fn(h):
            with torch.no_grad():
                bf = m(h, POWER, NOISE_VAR)
            return bf.analog, bf.digital
        return fn

    def conventional_torch(device):
        def fn(h):
            bf = pga(h, POWER, NOISE_VAR, iterations=CONV_ITERS, inner_steps=INNER_STEPS)
            return bf.analog, bf.digital
        return fn

    return [
        (f"unfolded PGA I={UNFOLDED_LAYERS} J={INNER_STEPS} ({trained})", unfolded_torch,
         lambda h1: pga_numpy(h1, POWER, NOISE_VAR, mu_u, lam_u)),
        (f"conventional PGA {CONV_ITERS} it. J={INNER_STEPS}", conventional_torch,
         lambda h1: pga_numpy(h1, POWER, NOISE_VAR, mu_c, lam_c)),
    ]


def run(sizes: dict, devices: list[torch.device], repeats: int, log=print) -> list[Row]:
    rows: list[Row] = []
    for (n, k), (b_unf, b_conv, bn_unf, bn_conv) in sizes.items():
        b_max = max(b_unf, b_conv) * (CUDA_BATCH_SCALE if any(d.type == "cuda" for d in devices) else 1)
        h128 = _channels(n, k, b_max)
        hn = h128.numpy()
        for (method, torch_factory, ref_fn), b_t, b_n in zip(_methods(n, k), (b_unf, b_conv), (bn_unf, bn_conv)):
            secs, r_ref = time_numpy(ref_fn, hn[:b_n])
            ref_row = Row(method, n, k, "numpy per-sample (cpu)", "complex128", b_n, secs, 0.0, 1.0)
            rows.append(ref_row)
            log(_fmt(ref_row))
            for device in devices:
                fn = torch_factory(device)
                for dtype in (torch.complex64, torch.complex128):
                    b_dev = b_t * (CUDA_BATCH_SCALE if device.type == "cuda" else 1)
                    h = h128[:b_dev].to(device=device, dtype=dtype)
                    secs = time_torch(fn, h, repeats)
                    f, w = fn(h[:b_n])  # same channels as the reference
                    r = hybrid_sum_rate(h128[:b_n], f.cpu().to(torch.complex128), w.cpu().to(torch.complex128),
                                        NOISE_VAR).numpy()
                    row = Row(method, n, k, f"beamlearn batched ({device.type})", str(dtype).replace("torch.", ""),
                              b_dev, secs, float(np.max(np.abs(r - r_ref) / r_ref)))
                    row.speedup = row.throughput / ref_row.throughput
                    rows.append(row)
                    log(_fmt(row))
    return rows


def _fmt(r: Row) -> str:
    return (f"{r.method:44s} N={r.n:4d} K={r.k:2d} {r.backend:28s} {r.dtype:11s} "
            f"{r.channels:6d} ch in {r.seconds:8.3f} s = {r.throughput:10.1f} ch/s  x{r.speedup:7.1f}  "
            f"rate diff {r.rate_diff:.1e}")


HEADER = ["method", "N", "K = M", "implementation", "dtype", "channels timed", "channels/s",
          "speed-up vs NumPy", "max rel. sum-rate diff vs NumPy"]


def _cells(r: Row) -> list[str]:
    return [r.method, str(r.n), str(r.k), r.backend, r.dtype, str(r.channels), f"{r.throughput:,.1f}",
            f"{r.speedup:,.1f}x", "(reference)" if r.backend.startswith("numpy") else f"{r.rate_diff:.1e}"]


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join([":--", "--:", "--:", ":--", ":--"] + ["--:"] * 4) + "|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="device for the batched torch path: auto = cpu, plus cuda where available (default)")
    ap.add_argument("--quick", action="store_true", help="two small sizes and small batches (seconds)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats of the torch path (median)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for torch (set_num_threads) and for NumPy's BLAS (OPENBLAS/MKL/OMP_NUM_THREADS, "
                         "set before import); default: the libraries' own choice")
    ap.add_argument("--out", default=None, help="write the table to FILE (.csv: CSV, otherwise markdown)")
    args = ap.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch.cuda.is_available() is False")
    devices = [torch.device("cpu")] if args.device in ("auto", "cpu") else []
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        devices.append(torch.device("cuda"))

    machine = machine_description()
    print("command: " + " ".join([os.path.basename(sys.executable), *sys.argv]))
    for key, value in machine.items():
        print(f"{key}: {value}")
    print(f"SNR {SNR_DB} dB (P={POWER}, sigma^2={NOISE_VAR}), unfolded-pga preset channels (10-path ULA), K = M; "
          f"devices: {', '.join(d.type for d in devices)}")
    t0 = time.perf_counter()
    rows = run(QUICK if args.quick else FULL, devices, args.repeats)
    total = time.perf_counter() - t0
    load_end = _loadavg()
    print(f"\ntotal benchmark time {total:.1f} s; load average at end: {load_end}\n")
    table = markdown_table(rows)
    print(table)
    if args.out:
        with open(args.out, "w", newline="") as f:
            if args.out.endswith(".csv"):
                w = csv.writer(f)
                w.writerow(["method", "N", "K", "implementation", "dtype", "channels", "seconds", "channels_per_s",
                            "speedup_vs_numpy", "max_rel_rate_diff"])
                for r in rows:
                    w.writerow([r.method, r.n, r.k, r.backend, r.dtype, r.channels, f"{r.seconds:.6g}",
                                f"{r.throughput:.6g}", f"{r.speedup:.6g}", f"{r.rate_diff:.3g}"])
            else:
                f.write("\n".join(f"- {key}: {value}" for key, value in machine.items()))
                f.write(f"\n- load average at end: {load_end}\n- total time: {total:.1f} s\n\n{table}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
