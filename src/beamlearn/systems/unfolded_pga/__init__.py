"""System 1: deep-unfolded projected gradient ascent for multiuser hybrid beamforming.

Nguyen, Nguyen, Shlezinger, Swindlehurst, Juntti; spec ``shared/papers/unfolded-pga-hbf.md``; docs
``docs/unfolded-pga.md``. The conventional PGA it unfolds, and its hybrid baselines (SCA-RMM,
MO-AltMin, OMP), are classical algorithms in :mod:`beamlearn.hybrid`; this folder holds the learned
network (:mod:`.model`), its training recipe (:mod:`.train`), the reproduction of Fig. 2
(:mod:`.reproduce`) and the shipped models (``weights/`` with ``manifest.json``).
"""

from __future__ import annotations

from pathlib import Path

from ...learned import PerSNRModels, WeightsManifest
from ...registry import MethodInfo, miso_hybrid_reason
from ..base import System
from .model import UnfoldedPGA
from .train import UnfoldedPGAConfig, UnfoldedPGATask

__all__ = ["SYSTEM", "UnfoldedPGA", "UnfoldedPGAConfig", "UnfoldedPGATask", "WEIGHTS"]

WEIGHTS = WeightsManifest(Path(__file__).parent / "weights", system="unfolded-pga")


def _unsupported(sc, snrs=None) -> str | None:
    return miso_hybrid_reason(sc) or WEIGHTS.unsupported(sc, snrs)


def _build(sc) -> PerSNRModels:
    return PerSNRModels("unfolded-pga", WEIGHTS, sc, hint="Train one with `beamlearn train unfolded-pga --snr-db X`.")


def _reproduce(out_dir, **kw):
    from .reproduce import reproduce

    return reproduce(out_dir, **kw)


SYSTEM = System(
    name="unfolded-pga",
    title="Deep-unfolded PGA for multiuser hybrid beamforming (Nguyen et al.)",
    docs="docs/unfolded-pga.md",
    methods=(
        MethodInfo(
            "unfolded-pga",
            "deep-unfolded PGA, 10 layers, shipped model trained at the evaluation SNR",
            _build,
            _unsupported,
            kind="learned",
            system="unfolded-pga",
        ),
    ),
    train_config=UnfoldedPGAConfig,
    task=UnfoldedPGATask,
    reproduce=_reproduce,
    weights=WEIGHTS,
)
