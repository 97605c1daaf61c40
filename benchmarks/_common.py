"""Helpers shared by the throughput benchmarks (``bench_baselines.py``, ``bench_unfolded_pga.py``).

The scripts import this module as ``_common`` (run as ``python benchmarks/bench_X.py``, the script's
folder is on ``sys.path``). It imports neither numpy nor torch at import time, so that a script can
import it and then set the BLAS/OpenMP thread variables before numpy/torch load their runtimes::

    from _common import set_thread_env

    if __name__ == "__main__":
        set_thread_env(sys.argv[1:])

    import numpy as np  # noqa: E402
    import torch  # noqa: E402

The functions below that need numpy or torch import them when called.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
WARMUP_CHANNELS = 16
CUDA_BATCH_SCALE = 8  # a GPU needs larger batches than a CPU to be busy


def _early_threads(argv: list[str]) -> str | None:
    """The value of ``--threads``, read before numpy/torch load their BLAS/OpenMP runtimes."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return None


def set_thread_env(argv: list[str]) -> None:
    """Set OMP/OPENBLAS/MKL_NUM_THREADS from ``--threads`` in ``argv`` (if given).

    Only has an effect if called before numpy and torch are imported.
    """
    if threads := _early_threads(argv):
        for var in THREAD_VARS:
            os.environ[var] = threads


@dataclass
class Row:
    method: str
    n: int
    k: int
    backend: str
    dtype: str
    channels: int
    seconds: float
    rate_diff: float | None = None  # max relative (final) sum-rate difference vs NumPy on the common channels
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


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo``, else :func:`platform.processor`, else ``"unknown"``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_description() -> dict:
    import numpy as np
    import torch

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        **{var: os.environ.get(var, "unset") for var in THREAD_VARS},
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available",
        "loadavg_start": _loadavg(),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def time_torch(fn, h: torch.Tensor, repeats: int, min_seconds: float = 0.0, warmup: int = WARMUP_CHANNELS) -> float:
    """Median wall time of ``fn(h)`` over at least ``repeats`` runs (more, up to 100, until ``min_seconds``
    have been spent: for fast functions), after a warm-up call on the first ``warmup`` channels (library
    loading, kernel selection, CUDA context and handles)."""
    device = h.device
    fn(h[:warmup])
    _sync(device)
    times = []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < 100):
        _sync(device)
        t0 = time.perf_counter()
        fn(h)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_numpy(fn, hn: np.ndarray, passes: int = 3) -> tuple[float, list]:
    """Time of the per-sample loop over all of ``hn`` (after a warm-up on one channel), and its outputs
    (one per channel, in order).

    The channels are split into ``passes`` equal chunks timed separately, and the total is extrapolated
    from the median chunk's time per channel: the same median-of-passes estimate as for torch, which
    damps the effect of other processes on a shared machine.
    """
    import numpy as np

    fn(hn[0])
    outs, per_channel = [], []
    for chunk in np.array_split(np.arange(hn.shape[0]), passes):
        t0 = time.perf_counter()
        outs.extend(fn(hn[b]) for b in chunk)
        per_channel.append((time.perf_counter() - t0) / len(chunk))
    return statistics.median(per_channel) * hn.shape[0], outs


@dataclass(frozen=True)
class TableFormat:
    """How a script logs its rows while running, and prints/writes the final table."""

    k_label: str  # name of the K column in the markdown table
    align: tuple[str, ...]  # markdown alignment cells of the nine columns
    csv_channels: str  # name of the channel-count column in the CSV
    widths: tuple[int, int, int, int]  # log line: method, K, channels/s, speed-up

    @property
    def header(self) -> list[str]:
        return [
            "method",
            "N",
            self.k_label,
            "implementation",
            "dtype",
            "channels timed",
            "channels/s",
            "speed-up vs NumPy",
            "max rel. sum-rate diff vs NumPy",
        ]

    @property
    def csv_header(self) -> list[str]:
        return [
            "method",
            "N",
            "K",
            "implementation",
            "dtype",
            self.csv_channels,
            "seconds",
            "channels_per_s",
            "speedup_vs_numpy",
            "max_rel_rate_diff",
        ]

    def line(self, r: Row) -> str:
        wm, wk, wt, ws = self.widths
        return (
            f"{r.method:{wm}s} N={r.n:4d} K={r.k:{wk}d} {r.backend:28s} {r.dtype:11s} "
            f"{r.channels:6d} ch in {r.seconds:8.3f} s = {r.throughput:{wt}.1f} ch/s  x{r.speedup:{ws}.1f}  "
            f"rate diff {r.rate_diff:.1e}"
        )

    @staticmethod
    def cells(r: Row) -> list[str]:
        return [
            r.method,
            str(r.n),
            str(r.k),
            r.backend,
            r.dtype,
            str(r.channels),
            f"{r.throughput:,.1f}",
            f"{r.speedup:,.1f}x",
            "(reference)" if r.backend.startswith("numpy") else f"{r.rate_diff:.1e}",
        ]

    def markdown(self, rows: list[Row]) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "|".join(self.align) + "|"]
        lines += ["| " + " | ".join(self.cells(r)) + " |" for r in rows]
        return "\n".join(lines)

    def write_csv(self, f, rows: list[Row]) -> None:
        w = csv.writer(f)
        w.writerow(self.csv_header)
        for r in rows:
            w.writerow(
                [
                    r.method,
                    r.n,
                    r.k,
                    r.backend,
                    r.dtype,
                    r.channels,
                    f"{r.seconds:.6g}",
                    f"{r.throughput:.6g}",
                    f"{r.speedup:.6g}",
                    f"{r.rate_diff:.3g}",
                ]
            )


def bench_main(
    argv: list[str] | None,
    *,
    description: str,
    full: dict,
    quick: dict,
    run: Callable[[dict, list, int], list[Row]],
    table: TableFormat,
    settings: str,
) -> int:
    """The command line shared by the throughput benchmarks: parse the options, choose the devices, print
    the machine and ``settings``, call ``run(sizes, devices, repeats)``, then print (and with ``--out``
    write) the table."""
    import torch

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="device for the batched torch path: auto = cpu, plus cuda where available (default)",
    )
    ap.add_argument("--quick", action="store_true", help="two small sizes and small batches (seconds)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats of the torch path (median)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for torch (set_num_threads) and for NumPy's BLAS (OPENBLAS/MKL/OMP_NUM_THREADS, "
        "set before import); default: the libraries' own choice",
    )
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
    print(f"{settings}; devices: {', '.join(d.type for d in devices)}")
    t0 = time.perf_counter()
    rows = run(quick if args.quick else full, devices, args.repeats)
    total = time.perf_counter() - t0
    load_end = _loadavg()
    print(f"\ntotal benchmark time {total:.1f} s; load average at end: {load_end}\n")
    md = table.markdown(rows)
    print(md)
    if args.out:
        with open(args.out, "w", newline="") as f:
            if args.out.endswith(".csv"):
                table.write_csv(f, rows)
            else:
                f.write("\n".join(f"- {key}: {value}" for key, value in machine.items()))
                f.write(f"\n- load average at end: {load_end}\n- total time: {total:.1f} s\n\n{md}\n")
    return 0
