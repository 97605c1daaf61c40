"""Performance metrics: rates, SINR, MSE and symbol error rate, and the table of named metrics."""

from .rates import mmse_combiner, mse, sinr, stream_sinr, sum_rate, user_rates
from .ser import (
    MODULATIONS,
    detect_qam,
    q_function,
    qam_constellation,
    ser_awgn,
    ser_conditional,
    ser_monte_carlo,
    ser_qpsk_exact,
)
from .table import METRICS, Metric, get_metric, register_metric

__all__ = [
    "METRICS",
    "Metric",
    "get_metric",
    "register_metric",
    "MODULATIONS",
    "detect_qam",
    "mmse_combiner",
    "mse",
    "q_function",
    "qam_constellation",
    "ser_awgn",
    "ser_conditional",
    "ser_monte_carlo",
    "ser_qpsk_exact",
    "sinr",
    "stream_sinr",
    "sum_rate",
    "user_rates",
]
