"""Hybrid (analog + digital) beamforming designs: PGA, the two-stage baselines and their factorisations, the
equivalent channel of a fixed analog stage with its digital designs (SCA, ZF) and the SSCA analog design."""

from .baselines import SCARMM, MOAltMin, OMPHybrid
from .digital import SCAResult, matched_filter_init, sca_digital, zf_digital
from .equivalent import (
    analog_from_phases,
    equivalent_channel,
    mmse_combiner_eq,
    noise_gram,
    normalized_noise,
    stream_mse,
    stream_sinr_eq,
    sum_rate_eq,
    user_power_projection,
)
from .factorization import least_squares_digital, mo_altmin, omp_hybrid, ula_dictionary
from .pga import PGA, hybrid_sum_rate, pga, pga_init, pga_layer, sum_rate_gradients
from .ssca import SSCAResult, ssca_analog

__all__ = [
    "MOAltMin",
    "OMPHybrid",
    "PGA",
    "SCARMM",
    "SCAResult",
    "SSCAResult",
    "analog_from_phases",
    "equivalent_channel",
    "matched_filter_init",
    "mmse_combiner_eq",
    "noise_gram",
    "normalized_noise",
    "sca_digital",
    "ssca_analog",
    "stream_mse",
    "stream_sinr_eq",
    "sum_rate_eq",
    "user_power_projection",
    "zf_digital",
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
