"""Pretrained models shipped with beamlearn.

Unfolded PGA (``unfolded_pga_snr{S}.pt``): one model per SNR S in dB, trained with
:func:`beamlearn.training.train_unfolded_pga` on the ``unfolded-pga`` scenario (N=32, K=M=4, 10-path
ULA channels, sigma^2 = 1, P = 10^(S/10)), I = 10 layers, J = 10, the paper's recipe with the
sum-over-layers loss, seed 0, best epoch on the validation set. The training summary is in each
model's ``metadata["training"]``.
"""

from __future__ import annotations

import re
from importlib import resources

from ..unfolded.pga_net import UnfoldedPGA

__all__ = ["available_unfolded_pga_snrs", "load_pretrained_unfolded_pga"]

_PATTERN = re.compile(r"^unfolded_pga_snr(-?\d+(?:\.\d+)?)\.pt$")


def _files() -> dict[float, object]:
    out = {}
    for entry in resources.files(__name__).iterdir():
        m = _PATTERN.match(entry.name)
        if m and entry.is_file():
            out[float(m.group(1))] = entry
    return dict(sorted(out.items()))


def available_unfolded_pga_snrs() -> list[float]:
    """SNRs (dB) for which a pretrained unfolded-PGA model is shipped."""
    return list(_files())


def load_pretrained_unfolded_pga(snr_db: float, map_location=None) -> UnfoldedPGA:
    """The shipped unfolded-PGA model trained at exactly ``snr_db`` dB.

    Step sizes do not transfer across SNRs (spec s4), so there is no nearest-SNR fallback: an SNR
    without a model raises a ``ValueError`` listing the available ones.
    """
    try:
        snr = float(snr_db)
    except (TypeError, ValueError):
        raise TypeError(f"snr_db must be a number, got {snr_db!r}") from None
    files = _files()
    if snr not in files:
        avail = ", ".join(f"{s:g}" for s in files) or "none"
        raise ValueError(f"no pretrained unfolded-PGA model for snr_db={snr_db!r}; available SNRs (dB): {avail}")
    with resources.as_file(files[snr]) as path:
        return UnfoldedPGA.load(path, map_location=map_location)
