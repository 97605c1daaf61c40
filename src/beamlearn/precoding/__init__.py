"""Fully digital precoding: MRT, ZF, RZF, WMMSE, SCA, the capacity reference."""

from .capacity import CapacityBound, capacity_waterfilling, waterfilling
from .linear import MRT, RZF, ZF, mrt_precoder, rzf_precoder, zf_precoder
from .sca import SCA, sca_precoder, sca_subproblem
from .wmmse import WMMSE, wmmse

__all__ = [
    "CapacityBound",
    "MRT",
    "RZF",
    "SCA",
    "WMMSE",
    "ZF",
    "capacity_waterfilling",
    "mrt_precoder",
    "rzf_precoder",
    "sca_precoder",
    "sca_subproblem",
    "waterfilling",
    "wmmse",
    "zf_precoder",
]
