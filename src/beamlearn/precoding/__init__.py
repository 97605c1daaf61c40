"""Fully digital precoding: MRT, ZF, RZF, WMMSE, SCA, the capacity reference, the optimal (duality)
structure and its WMMSE power labels."""

from .capacity import CapacityBound, capacity_waterfilling, waterfilling
from .linear import MRT, RZF, ZF, mrt_precoder, rzf_precoder, zf_precoder
from .sca import SCA, sca_precoder, sca_subproblem
from .structure import (
    DualityPowers,
    PowerLabels,
    duality_powers,
    optimal_structure,
    structure_directions,
    wmmse_power_labels,
)
from .wmmse import WMMSE, wmmse

__all__ = [
    "CapacityBound",
    "DualityPowers",
    "MRT",
    "PowerLabels",
    "RZF",
    "SCA",
    "WMMSE",
    "ZF",
    "capacity_waterfilling",
    "duality_powers",
    "mrt_precoder",
    "optimal_structure",
    "rzf_precoder",
    "sca_precoder",
    "sca_subproblem",
    "structure_directions",
    "waterfilling",
    "wmmse",
    "wmmse_power_labels",
    "zf_precoder",
]
