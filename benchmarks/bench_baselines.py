"""Throughput of the fully digital baselines: batched beamlearn (torch) vs the per-sample NumPy reference.

Measures channels per second of zero forcing and WMMSE (100 iterations, RZF init, default Newton
multiplier search) on i.i.d. Rayleigh channels at SNR = 10 dB (P = 10, sigma^2 = 1), for several
array sizes (N antennas, K users):

* ``beamlearn``: :func:`beamlearn.precoding.zf_precoder` / :func:`beamlearn.precoding.wmmse` on a whole
  batch at once, complex64 and complex128, on the CPU and (where available) on CUDA;
* ``numpy``: :mod:`beamlearn.testing.numpy_baselines`, the same algorithm written per sample
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

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _common.py, also when not run as a script
from _common import CUDA_BATCH_SCALE, Row, TableFormat, bench_main, set_thread_env, time_numpy, time_torch  # noqa: E402

if __name__ == "__main__":
    set_thread_env(sys.argv[1:])  # --threads, before numpy/torch load their BLAS/OpenMP runtimes

import numpy as np  # noqa: E402
import torch  # noqa: E402

from beamlearn.channels import RayleighChannel  # noqa: E402
from beamlearn.metrics import sum_rate  # noqa: E402
from beamlearn.precoding import wmmse, zf_precoder  # noqa: E402
from beamlearn.testing import sum_rate_numpy, wmmse_numpy, zf_numpy  # noqa: E402

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

# column names, markdown alignment and log-line widths of this script's table
TABLE = TableFormat(
    k_label="K", align=("---",) * 3 + (":--",) * 2 + ("--:",) * 4, csv_channels="channels timed", widths=(6, 3, 12, 9)
)


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
            secs, outs = time_numpy(ref_fn, hn[:b_n])
            x_ref = np.stack(outs)
            ref_row = Row(method, n, k, "numpy per-sample (cpu)", "complex128", b_n, secs, 0.0, 1.0)
            rows.append(ref_row)
            log(TABLE.line(ref_row))
            for device in devices:
                for dtype in (torch.complex64, torch.complex128):
                    b_dev = b_t * (CUDA_BATCH_SCALE if device.type == "cuda" else 1)
                    h = h128[:b_dev].to(device=device, dtype=dtype)
                    secs = time_torch(torch_fn, h, repeats, min_seconds=0.5)  # more runs for the fast ZF
                    x = torch_fn(h[:b_n]).cpu().numpy()  # same channels as the reference
                    row = Row(
                        method,
                        n,
                        k,
                        f"beamlearn batched ({device.type})",
                        str(dtype).replace("torch.", ""),
                        b_dev,
                        secs,
                        rate_diff(hn[:b_n], x_ref, x),
                    )
                    row.speedup = row.throughput / ref_row.throughput
                    rows.append(row)
                    log(TABLE.line(row))
    return rows


def main(argv=None) -> int:
    return bench_main(
        argv,
        description=__doc__.split("\n\n")[0],
        full=FULL,
        quick=QUICK,
        run=run,
        table=TABLE,
        settings=f"SNR {SNR_DB} dB (P={POWER}, sigma^2={NOISE_VAR}), i.i.d. Rayleigh, "
        f"WMMSE {WMMSE_ITERS} iterations, init rzf",
    )


if __name__ == "__main__":
    raise SystemExit(main())
