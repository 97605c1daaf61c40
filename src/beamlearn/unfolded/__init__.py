"""Deep-unfolded beamforming networks."""

from .pga_net import UnfoldedPGA, atomic_torch_save

__all__ = ["UnfoldedPGA", "atomic_torch_save"]
