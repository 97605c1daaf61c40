"""beamlearn: learned and classical beamforming for massive MIMO."""

__version__ = "0.1.0"
