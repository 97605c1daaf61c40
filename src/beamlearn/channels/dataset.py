"""Channels read from a dataset file (:mod:`beamlearn.datasets`) as a channel source."""

from __future__ import annotations

import math

import torch

from .base import ChannelModel

__all__ = ["DatasetChannel"]


class DatasetChannel(ChannelModel):
    """The drops of a ``.blch`` dataset file, served from the start of the file.

    A call for ``B`` channels returns the first ``B`` drops (``[B, K, N]`` or ``[B, K, Nr, N]``); the
    seed is ignored, since the file *is* the draw (a dataset is built from a seed, see
    ``beamlearn dataset build``). Asking for more drops than the file holds raises.
    """

    def __init__(self, path: str):
        from ..datasets import load_channels

        self.path = str(path)
        h, header = load_channels(self.path)
        self._h = h
        self.num_users = h.shape[1]
        self.num_bs_antennas = h.shape[-1]
        self.num_rx_antennas = h.shape[2] if h.dim() == 4 else 1
        self.drops = h.shape[0]
        self.sha256 = header["sha256"]

    def _sample(self, batch_shape, generator, device, dtype) -> torch.Tensor:
        need = math.prod(batch_shape)
        if need > self.drops:
            raise ValueError(f"dataset {self.path} holds {self.drops} drops; {need} channels were asked for")
        h = self._h[:need]
        if h.dim() == 3:
            h = h.unsqueeze(-2)
        return h.reshape(*batch_shape, *h.shape[1:]).to(device=device, dtype=dtype)
