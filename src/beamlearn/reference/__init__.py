"""Plain, per-sample NumPy reference implementations of the fully digital baselines.

These are written directly from the textbook equations, one channel at a time, without any of
beamlearn's torch code, so that the batched torch implementations can be checked against an
independent implementation (``tests/test_reference_agreement.py``) and timed against it
(``benchmarks/bench_baselines.py``). They are slow by design; do not use them for experiments.
"""

from .numpy_baselines import (
    mrt_numpy,
    rzf_numpy,
    sum_rate_numpy,
    wmmse_numpy,
    wmmse_numpy_batch,
    zf_numpy,
    zf_numpy_batch,
)

__all__ = [
    "mrt_numpy",
    "rzf_numpy",
    "sum_rate_numpy",
    "wmmse_numpy",
    "wmmse_numpy_batch",
    "zf_numpy",
    "zf_numpy_batch",
]

# PGA hybrid beamforming (Algorithm 1 of the unfolded-PGA paper), per sample
from .numpy_pga import (  # noqa: E402
    conventional_pga_steps,
    hybrid_sum_rate_numpy,
    pga_gradients_numpy,
    pga_init_numpy,
    pga_numpy,
    pga_numpy_batch,
)

__all__ += [
    "conventional_pga_steps",
    "hybrid_sum_rate_numpy",
    "pga_gradients_numpy",
    "pga_init_numpy",
    "pga_numpy",
    "pga_numpy_batch",
]
