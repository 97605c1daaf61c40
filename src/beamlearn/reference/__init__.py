"""Plain, per-sample NumPy reference implementations of the fully digital baselines and of PGA.

These are written directly from the textbook equations, one channel at a time, without any of
beamlearn's torch code, so that the batched torch implementations can be checked against an
independent implementation (``tests/test_reference_agreement.py``) and timed against it
(``benchmarks/bench_baselines.py``). They are slow by design; do not use them for experiments.
"""

from . import numpy_baselines, numpy_pga
from .numpy_baselines import *  # noqa: F401,F403
from .numpy_pga import *  # noqa: F401,F403

__all__ = numpy_baselines.__all__ + numpy_pga.__all__
