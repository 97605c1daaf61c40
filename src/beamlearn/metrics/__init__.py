"""Performance metrics: rates, SINR, MSE and symbol error rate."""

from .rates import mmse_combiner, mse, sinr, stream_sinr, sum_rate, user_rates
from .ser import (MODULATIONS, detect_qam, q_function, qam_constellation, ser_awgn, ser_monte_carlo,
                  ser_qpsk_exact)

__all__ = [
    "MODULATIONS",
    "detect_qam",
    "mmse_combiner",
    "mse",
    "q_function",
    "qam_constellation",
    "ser_awgn",
    "ser_monte_carlo",
    "ser_qpsk_exact",
    "sinr",
    "stream_sinr",
    "sum_rate",
    "user_rates",
]
