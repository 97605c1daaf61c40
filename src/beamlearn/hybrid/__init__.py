"""Hybrid (analog + digital) beamforming designs: PGA, the two-stage baselines and their factorisations."""

from .baselines import SCARMM, MOAltMin, OMPHybrid
from .factorization import least_squares_digital, mo_altmin, omp_hybrid, ula_dictionary
from .pga import PGA, hybrid_sum_rate, pga, pga_init, pga_layer, sum_rate_gradients

__all__ = [
    "MOAltMin",
    "OMPHybrid",
    "PGA",
    "SCARMM",
    "hybrid_sum_rate",
    "least_squares_digital",
    "mo_altmin",
    "omp_hybrid",
    "pga",
    "pga_init",
    "pga_layer",
    "sum_rate_gradients",
    "ula_dictionary",
]
