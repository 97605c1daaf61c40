"""Channel models, batched over any leading shape, seeded, on any device."""

from .arrays import ULA, UPA
from .base import ChannelModel, complex_normal, make_generator
from .clustered import ChannelPaths, ClusteredChannel
from .rayleigh import CorrelatedRayleighChannel, RayleighChannel, exponential_correlation

__all__ = [
    "ULA",
    "UPA",
    "ChannelModel",
    "ChannelPaths",
    "ClusteredChannel",
    "CorrelatedRayleighChannel",
    "RayleighChannel",
    "complex_normal",
    "exponential_correlation",
    "make_generator",
]
