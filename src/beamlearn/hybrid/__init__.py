"""Hybrid (analog + digital) beamforming designs."""

from .pga import PGA, hybrid_sum_rate, pga, pga_init, pga_layer, run_pga, sum_rate_gradients

__all__ = ["PGA", "hybrid_sum_rate", "pga", "pga_init", "pga_layer", "run_pga", "sum_rate_gradients"]
