"""Hybrid (analog + digital) beamforming designs and the fully digital SCA sum-rate precoder."""

from .baselines import MOAltMin, OMPHybrid, SCARMM
from .factorization import least_squares_digital, mo_altmin, omp_hybrid, ula_dictionary
from .pga import PGA, hybrid_sum_rate, pga, pga_init, pga_layer, run_pga, sum_rate_gradients
from .sca import SCA, sca_precoder, sca_subproblem

__all__ = [
    "MOAltMin",
    "OMPHybrid",
    "PGA",
    "SCA",
    "SCARMM",
    "hybrid_sum_rate",
    "least_squares_digital",
    "mo_altmin",
    "omp_hybrid",
    "pga",
    "pga_init",
    "pga_layer",
    "run_pga",
    "sca_precoder",
    "sca_subproblem",
    "sum_rate_gradients",
    "ula_dictionary",
]
