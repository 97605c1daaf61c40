"""Throughput of the fully digital baselines: batched beamlearn (torch) vs the per-sample NumPy reference.

Measures channels per second of zero forcing and WMMSE (100 iterations, RZF init, default Newton
multiplier search) on i.i.d. Rayleigh channels at SNR = 10 dB (P = 10, sigma^2 = 1), for several
array sizes (N antennas, K users):

* ``beamlearn``: :func:`beamlearn.precoding.zf_precoder` / :func:`beamlearn.precoding.wmmse` on a whole
  batch at once, complex64 and complex128, on the CPU and (where available) on CUDA;
* ``numpy``: :mod:`beamlearn.reference.numpy_baselines`, the same algorithm written per sample
  (complex128, a Python loop over channels, WMMSE in its original N x N form with an exact multiplier).

Both run on the same channels (the NumPy reference on the first few of the torch batch), and the
table also reports the largest relative sum-rate difference between the two on those channels, so a
speed-up is never reported for a computation that disagrees.

Usage::

    python benchmarks/bench_baselines.py                   # full run (a few minutes on 2 CPU cores)
    python benchmarks/bench_baselines.py --quick           # smaller sizes and batches
    python benchmarks/bench_baselines.py --out results.md  # also write the table (.csv: CSV)
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

from beamlearn.channels import RayleighChannel  # noqa: E402
from beamlearn.metrics import sum_rate  # noqa: E402
from beamlearn.precoding import wmmse, zf_precoder  # noqa: E402
from beamlearn.reference import sum_rate_numpy, wmmse_numpy, zf_numpy  # noqa: E402

SNR_DB = 10.0
NOISE_VAR = 1.0
POWER = NOISE_VAR * 10 ** (SNR_DB / 10)
WMMSE_ITERS = 100

# (N, K) -> batch sizes: torch ZF, torch WMMSE, NumPy ZF, NumPy WMMSE
FULL = {
    (32, 4): (8192, 512, 3000, 30),
    (64, 8): (4096, 256, 3000, 15),
    (128, 8): (4096, 256, 1500, 9),
    (256, 16): (1024, 64, 600, 6),
}
QUICK = {
    (32, 4): (1024, 128, 300, 6),
    (64, 8): (512, 64, 150, 3),
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
    rate_diff: float | None = None  # max relative sum-rate difference vs NumPy on the common channels
    speedup: float | None = None

    @property
    def throughput(self) -> float:
        return self.channels / self.seconds


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
    d = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        **{var: os.environ.get(var, "unset") for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available",
    }
    try:
        with open("/proc/loadavg") as f:
            d["loadavg_start"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    return d


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_torch(fn, h: torch.Tensor, repeats: int, min_seconds: float = 0.5) -> float:
    """Median wall time of ``fn(h)`` over at least ``repeats`` runs (more until ``min_seconds`` have
    been spent, for the fast ZF), after a warm-up call on the first few channels (library loading,
    kernel selection, CUDA context and handles)."""
    device = h.device
    fn(h[:WARMUP_CHANNELS])
    _sync(device)
    times = []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < 100):
        _sync(device)
        t0 = time.perf_counter()
        fn(h)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_numpy(fn, hn: np.ndarray, passes: int = 3) -> tuple[float, np.ndarray]:
    """Time of the per-sample loop over all of ``hn`` (after a warm-up on one channel), and its outputs.

    The channels are split into ``passes`` equal chunks timed separately, and the total is extrapolated
    from the median chunk's time per channel: the same median-of-passes estimate as for torch, which
    damps the effect of other processes on a shared machine.
    """
    fn(hn[0])
    outs, per_channel = [], []
    for chunk in np.array_split(np.arange(hn.shape[0]), passes):
        t0 = time.perf_counter()
        outs.extend(fn(hn[b]) for b in chunk)
        per_channel.append((time.perf_counter() - t0) / len(chunk))
    return statistics.median(per_channel) * hn.shape[0], np.stack(outs)


def rate_diff(hn: np.ndarray, x_ref: np.ndarray, x: np.ndarray) -> float:
    r_ref = np.array([sum_rate_numpy(hn[b], x_ref[b], NOISE_VAR) for b in range(hn.shape[0])])
    h = torch.from_numpy(hn)
    r = sum_rate(h, torch.from_numpy(x.astype(np.complex128)), NOISE_VAR).numpy()
    return float(np.max(np.abs(r - r_ref) / r_ref))


def _zf_numpy(h1: np.ndarray) -> np.ndarray:
    return zf_numpy(h1, POWER)


def _zf_torch(h: torch.Tensor) -> torch.Tensor:
    return zf_precoder(h, POWER)


def _wmmse_numpy(h1: np.ndarray) -> np.ndarray:
    return wmmse_numpy(h1, POWER, NOISE_VAR, WMMSE_ITERS, init="rzf")


def _wmmse_torch(h: torch.Tensor) -> torch.Tensor:
    return wmmse(h, POWER, NOISE_VAR, iterations=WMMSE_ITERS, init="rzf").precoder


def run(sizes: dict, devices: list[torch.device], repeats: int, log=print) -> list[Row]:
    rows: list[Row] = []
    for (n, k), (b_zf, b_wm, bn_zf, bn_wm) in sizes.items():
        b_max = max(b_zf, b_wm) * (CUDA_BATCH_SCALE if any(d.type == "cuda" for d in devices) else 1)
        h128 = RayleighChannel(num_users=k, num_bs_antennas=n)(b_max, seed=1234, dtype=torch.complex128)
        hn = h128.numpy()
        for method, b_t, b_n in (("ZF", b_zf, bn_zf), ("WMMSE", b_wm, bn_wm)):
            ref_fn, torch_fn = (_zf_numpy, _zf_torch) if method == "ZF" else (_wmmse_numpy, _wmmse_torch)
            secs, x_ref = time_numpy(ref_fn, hn[:b_n])
            ref_row = Row(method, n, k, "numpy per-sample (cpu)", "complex128", b_n, secs, 0.0, 1.0)
            rows.append(ref_row)
            log(_fmt(ref_row))
            for device in devices:
                for dtype in (torch.complex64, torch.complex128):
                    b_dev = b_t * (CUDA_BATCH_SCALE if device.type == "cuda" else 1)
                    h = h128[:b_dev].to(device=device, dtype=dtype)
                    secs = time_torch(torch_fn, h, repeats)
                    x = torch_fn(h[:b_n]).cpu().numpy()  # same channels as the reference
                    row = Row(method, n, k, f"beamlearn batched ({device.type})", str(dtype).replace("torch.", ""),
                              b_dev, secs, rate_diff(hn[:b_n], x_ref, x))
                    row.speedup = row.throughput / ref_row.throughput
                    rows.append(row)
                    log(_fmt(row))
    return rows


def _fmt(r: Row) -> str:
    return (f"{r.method:6s} N={r.n:4d} K={r.k:3d} {r.backend:28s} {r.dtype:11s} "
            f"{r.channels:6d} ch in {r.seconds:8.3f} s = {r.throughput:12.1f} ch/s  x{r.speedup:9.1f}  "
            f"rate diff {r.rate_diff:.1e}")


HEADER = ["method", "N", "K", "implementation", "dtype", "channels timed", "channels/s",
          "speed-up vs NumPy", "max rel. sum-rate diff vs NumPy"]


def _cells(r: Row) -> list[str]:
    return [r.method, str(r.n), str(r.k), r.backend, r.dtype, str(r.channels), f"{r.throughput:,.1f}",
            f"{r.speedup:,.1f}x", "(reference)" if r.backend.startswith("numpy") else f"{r.rate_diff:.1e}"]


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] * 3 + [":--"] * 2 + ["--:"] * 4) + "|"]
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
    print(f"SNR {SNR_DB} dB (P={POWER}, sigma^2={NOISE_VAR}), i.i.d. Rayleigh, WMMSE {WMMSE_ITERS} iterations, "
          f"init rzf; devices: {', '.join(d.type for d in devices)}")
    t0 = time.perf_counter()
    rows = run(QUICK if args.quick else FULL, devices, args.repeats)
    total = time.perf_counter() - t0
    with open("/proc/loadavg") if os.path.exists("/proc/loadavg") else open(os.devnull) as f:
        load_end = " ".join(f.read().split()[:3])
    print(f"\ntotal benchmark time {total:.1f} s; load average at end: {load_end}\n")
    table = markdown_table(rows)
    print(table)
    if args.out:
        with open(args.out, "w", newline="") as f:
            if args.out.endswith(".csv"):
                w = csv.writer(f)
                w.writerow(HEADER[:6] + ["seconds", "channels_per_s", "speedup_vs_numpy", "max_rel_rate_diff"])
                for r in rows:
                    w.writerow([r.method, r.n, r.k, r.backend, r.dtype, r.channels, f"{r.seconds:.6g}",
                                f"{r.throughput:.6g}", f"{r.speedup:.6g}", f"{r.rate_diff:.3g}"])
            else:
                f.write("\n".join(f"- {key}: {value}" for key, value in machine.items()))
                f.write(f"\n- load average at end: {load_end}\n- total time: {total:.1f} s\n\n{table}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
