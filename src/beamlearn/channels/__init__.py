"""Channel models, batched over any leading shape, seeded, on any device."""

from .arrays import ULA, UPA
from .base import ChannelModel
from .clustered import ChannelPaths, ClusteredChannel
from .rayleigh import CorrelatedRayleighChannel, RayleighChannel, exponential_correlation
from .raytraced import RayTracedChannel, make_rt_source  # sionna.rt is imported on first use
from .tr38901 import THREEGPP_SOURCES, TR38901Channel, make_3gpp_source  # Sionna is imported on first use
from .uplink_pairs import (
    MismatchRayleighChannel,
    RayPaths,
    RayUplinkChannel,
    SquaredMapChannel,
    UplinkPairChannel,
    fixed_mismatch,
    haar_unitary,
)

__all__ = [
    "ULA",
    "UPA",
    "ChannelModel",
    "ChannelPaths",
    "ClusteredChannel",
    "CorrelatedRayleighChannel",
    "MismatchRayleighChannel",
    "RayPaths",
    "RayTracedChannel",
    "RayUplinkChannel",
    "RayleighChannel",
    "SquaredMapChannel",
    "THREEGPP_SOURCES",
    "TR38901Channel",
    "UplinkPairChannel",
    "exponential_correlation",
    "fixed_mismatch",
    "haar_unitary",
    "make_3gpp_source",
    "make_rt_source",
]
