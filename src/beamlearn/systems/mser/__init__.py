"""System 2: deep-unfolded MSER hybrid transceiver (Shi, Cai, Hu, Champagne, Hanzo).

Spec ``shared/papers/mser-unfolding-hbf.md``; docs ``docs/mser.md``. The folder holds the paper's
transceiver model (:mod:`.transceiver`), the SER surrogate and its gradients (:mod:`.objective`), the
MSER and MMSE gradient descents (:mod:`.gd`), the MMSE baselines (:mod:`.baselines`), the unfolded
network (:mod:`.model`) and its training (:mod:`.train`), the black-box CNN benchmark (:mod:`.cnn`),
the methods by name (:mod:`.methods`), the reproduction (:mod:`.reproduce`) and the shipped models
(``weights/qpsk`` and ``weights/16qam``, each with ``manifest.json``).
"""

from __future__ import annotations

from pathlib import Path

from ...learned import PerSNRModels, WeightsManifest
from ...registry import MethodInfo
from ..base import System
from .cnn import BenchmarkCNN
from .methods import MMSEFDGD, MMSEGD, MMSEMO, MMSEOMP, MSERFDGD, MSERGD, mser_reason
from .model import MSERUnfolded
from .train import MSERConfig, MSERTask

__all__ = ["SYSTEM", "BenchmarkCNN", "MSERUnfolded", "MSERConfig", "MSERTask", "WEIGHTS", "WEIGHTS_16QAM"]

_W = Path(__file__).parent / "weights"
WEIGHTS = WeightsManifest(_W / "qpsk", system="mser")
WEIGHTS_16QAM = WeightsManifest(_W / "16qam", system="mser")


def _hybrid(sc, snrs=None):
    return mser_reason(sc, snrs)


def _digital(sc, snrs=None):
    return mser_reason(sc, snrs, hybrid=False)


def _learned(manifest):
    def reason(sc, snrs=None):
        return mser_reason(sc, snrs) or manifest.unsupported(sc, snrs)

    return reason


def _family(name, manifest, modulation):
    def build(sc):
        return PerSNRModels(
            name, manifest, sc, hint=f"Train one with `beamlearn train mser --modulation {modulation} --snr-db X`."
        )

    return build


def _reproduce(out_dir, **kw):
    from .reproduce import reproduce

    return reproduce(out_dir, **kw)


def _m(name, text, build, unsupported, kind):
    return MethodInfo(name, text, build, unsupported, kind=kind, system="mser")


SYSTEM = System(
    name="mser",
    title="Deep-unfolded MSER hybrid transceiver, QPSK and 16-QAM (Shi et al.)",
    docs="docs/mser.md",
    methods=(
        _m(
            "mser-unfolded",
            "MSER deep-unfolded network, 15 layers, shipped QPSK model trained at the evaluation SNR",
            _family("mser-unfolded", WEIGHTS, "qpsk"),
            _learned(WEIGHTS),
            "learned",
        ),
        _m(
            "mser-unfolded-16qam",
            "MSER deep-unfolded network for 16-QAM (shipped model at 25 dB)",
            _family("mser-unfolded-16qam", WEIGHTS_16QAM, "16qam"),
            _learned(WEIGHTS_16QAM),
            "learned",
        ),
        _m(
            "mser-gd",
            "MSER hybrid gradient descent (Algorithm 1), 500 iterations, channel-alignment start",
            lambda sc: MSERGD(sc.num_rf_chains, sc.num_rx_rf_chains, sc.num_streams),
            _hybrid,
            "hybrid",
        ),
        _m(
            "mser-fd-gd",
            "MSER fully digital gradient descent, 500 iterations",
            lambda sc: MSERFDGD(sc.num_streams),
            _digital,
            "digital",
        ),
        _m(
            "mmse-gd",
            "MMSE hybrid gradient descent (closed-form MMSE combiners), 500 iterations",
            lambda sc: MMSEGD(sc.num_rf_chains, sc.num_rx_rf_chains, sc.num_streams),
            _hybrid,
            "hybrid",
        ),
        _m(
            "mmse-fd-gd",
            "MMSE fully digital transceiver (alternating closed forms)",
            lambda sc: MMSEFDGD(sc.num_streams),
            _digital,
            "digital",
        ),
        _m(
            "mmse-omp",
            "OMP hybrid factorisation of the MMSE design, MMSE-weighted receive OMP",
            lambda sc: MMSEOMP(sc.num_rf_chains, sc.num_rx_rf_chains, sc.num_streams),
            _hybrid,
            "hybrid",
        ),
        _m(
            "mmse-mo",
            "MO-AltMin hybrid factorisation of the MMSE design (transmitter and receivers)",
            lambda sc: MMSEMO(sc.num_rf_chains, sc.num_rx_rf_chains, sc.num_streams),
            _hybrid,
            "hybrid",
        ),
    ),
    train_config=MSERConfig,
    task=MSERTask,
    reproduce=_reproduce,
    weights={"qpsk": WEIGHTS, "16qam": WEIGHTS_16QAM},
)
