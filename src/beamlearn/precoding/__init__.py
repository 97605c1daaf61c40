"""Fully digital precoding baselines and the common method interface."""

from .base import Beamformers, BeamformingMethod, user_channels
from .capacity import CapacityBound, capacity_waterfilling, waterfilling
from .linear import MRT, RZF, ZF, mrt_precoder, rzf_precoder, zf_precoder
from .wmmse import WMMSE, wmmse

__all__ = [
    "Beamformers",
    "BeamformingMethod",
    "CapacityBound",
    "MRT",
    "RZF",
    "WMMSE",
    "ZF",
    "capacity_waterfilling",
    "mrt_precoder",
    "rzf_precoder",
    "user_channels",
    "waterfilling",
    "wmmse",
    "zf_precoder",
]
