"""Throughput of unfolded and conventional PGA: batched beamlearn (torch) vs the per-sample NumPy reference.

Measures channels per second of two hybrid beamforming algorithms (fully connected, K = M) on the
channels of the ``unfolded-pga`` preset (10-path ULA, no extra normalisation) with N antennas,
at SNR = 10 dB (P = 10, sigma^2 = 1):

* ``unfolded PGA``: I = 10 layers of J = 10 projected F steps and one W step. For N = 32, K = 4 the
  step sizes of the shipped 10 dB model (``beamlearn.systems.unfolded_pga.WEIGHTS``);
  for the other sizes, for which no model is trained, the untrained steps (mu = 0.01, lam = 1e-4):
  the cost does not depend on the values of the steps.
* ``conventional PGA``: I = 30 iterations of J = 10 F steps and one W step, mu = 0.01, lam = 1e-4.

Implementations, run side by side on the same channels:

* ``beamlearn``: :class:`beamlearn.systems.unfolded_pga.UnfoldedPGA` (called under ``torch.no_grad()``, i.e.
  inference) and :func:`beamlearn.hybrid.pga` on a whole batch at once, complex64 and complex128, on
  the CPU and (where available) on CUDA;
* ``numpy``: :mod:`beamlearn.testing.numpy_pga`, the same algorithm written per sample from the
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

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _common.py, also when not run as a script
from _common import CUDA_BATCH_SCALE, Row, TableFormat, bench_main, set_thread_env, time_numpy, time_torch  # noqa: E402

if __name__ == "__main__":
    set_thread_env(sys.argv[1:])  # --threads, before numpy/torch load their BLAS/OpenMP runtimes

import numpy as np  # noqa: E402
import torch  # noqa: E402

from beamlearn.hybrid import hybrid_sum_rate, pga  # noqa: E402
from beamlearn.scenarios import get_scenario  # noqa: E402
from beamlearn.systems.unfolded_pga import WEIGHTS, UnfoldedPGA  # noqa: E402
from beamlearn.testing import conventional_pga_steps, hybrid_sum_rate_numpy, pga_numpy  # noqa: E402

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

# column names, markdown alignment and log-line widths of this script's table
TABLE = TableFormat(
    k_label="K = M",
    align=(":--", "--:", "--:", ":--", ":--") + ("--:",) * 4,
    csv_channels="channels",
    widths=(44, 2, 10, 7),
)


def _channels(n: int, k: int, b: int) -> torch.Tensor:
    scenario = get_scenario("unfolded-pga").replace(num_bs_antennas=n, num_users=k, num_rf_chains=k)
    return scenario.channel_model()(b, seed=1234, dtype=torch.complex128)


def _unfolded_model(n: int, k: int) -> UnfoldedPGA:
    if (n, k) == TRAINED_SIZE:
        model = WEIGHTS.load(WEIGHTS.find(get_scenario("unfolded-pga"), SNR_DB))
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
        (
            f"unfolded PGA I={UNFOLDED_LAYERS} J={INNER_STEPS} ({trained})",
            unfolded_torch,
            lambda h1: pga_numpy(h1, POWER, NOISE_VAR, mu_u, lam_u),
        ),
        (
            f"conventional PGA {CONV_ITERS} it. J={INNER_STEPS}",
            conventional_torch,
            lambda h1: pga_numpy(h1, POWER, NOISE_VAR, mu_c, lam_c),
        ),
    ]


def run(sizes: dict, devices: list[torch.device], repeats: int, log=print) -> list[Row]:
    rows: list[Row] = []
    for (n, k), (b_unf, b_conv, bn_unf, bn_conv) in sizes.items():
        b_max = max(b_unf, b_conv) * (CUDA_BATCH_SCALE if any(d.type == "cuda" for d in devices) else 1)
        h128 = _channels(n, k, b_max)
        hn = h128.numpy()
        for (method, torch_factory, ref_fn), b_t, b_n in zip(
            _methods(n, k), (b_unf, b_conv), (bn_unf, bn_conv), strict=True
        ):
            secs, outs = time_numpy(ref_fn, hn[:b_n])
            r_ref = np.asarray([hybrid_sum_rate_numpy(hn[b], f, w, NOISE_VAR) for b, (f, w) in enumerate(outs)])
            ref_row = Row(method, n, k, "numpy per-sample (cpu)", "complex128", b_n, secs, 0.0, 1.0)
            rows.append(ref_row)
            log(TABLE.line(ref_row))
            for device in devices:
                fn = torch_factory(device)
                for dtype in (torch.complex64, torch.complex128):
                    b_dev = b_t * (CUDA_BATCH_SCALE if device.type == "cuda" else 1)
                    h = h128[:b_dev].to(device=device, dtype=dtype)
                    secs = time_torch(fn, h, repeats)
                    f, w = fn(h[:b_n])  # same channels as the reference
                    r = hybrid_sum_rate(
                        h128[:b_n], f.cpu().to(torch.complex128), w.cpu().to(torch.complex128), NOISE_VAR
                    ).numpy()
                    row = Row(
                        method,
                        n,
                        k,
                        f"beamlearn batched ({device.type})",
                        str(dtype).replace("torch.", ""),
                        b_dev,
                        secs,
                        float(np.max(np.abs(r - r_ref) / r_ref)),
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
        settings=f"SNR {SNR_DB} dB (P={POWER}, sigma^2={NOISE_VAR}), unfolded-pga preset channels (10-path ULA), K = M",
    )


if __name__ == "__main__":
    raise SystemExit(main())
