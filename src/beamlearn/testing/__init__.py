"""Per-sample NumPy oracles used by the tests and benchmarks; not for production use.

Plain NumPy implementations of the fully digital baselines (ZF, RZF, MRT, WMMSE, sum rate:
:mod:`~beamlearn.testing.numpy_baselines`) and of PGA hybrid beamforming
(:mod:`~beamlearn.testing.numpy_pga`), written directly from the textbook equations, one channel at a
time, without any of beamlearn's torch code. The tests check the batched torch implementations against
these independent oracles (``tests/test_reference_agreement.py``, ``tests/test_reference_pga.py``) and
the benchmarks time the torch code against them (``benchmarks/bench_baselines.py``,
``benchmarks/bench_unfolded_pga.py``). They are slow by design: do not use them for experiments or in
library code.
"""

from . import numpy_baselines, numpy_pga
from .numpy_baselines import *  # noqa: F401,F403
from .numpy_pga import *  # noqa: F401,F403

__all__ = numpy_baselines.__all__ + numpy_pga.__all__
