"""System 3: JCEHB, mixed-timescale deep unfolding for joint channel estimation and hybrid beamforming
(Kang, Hu, Cai, Yu, Hoydis, Eldar, IEEE JSAC 2022), offline TDD scheme.

Spec ``shared/papers/jcehb-mixed-timescale-unfolding.md``; docs ``docs/jcehb.md``. The folder holds the
networks (:mod:`.model`: analog NN, HBDUN digital NN, the joint pipeline; :mod:`.cedun`: the RLS-unfolded
estimator; :mod:`.blackbox`: the black-box benchmark), the conventional pipelines RLS-SSCA and RLS-ZF
(:mod:`.baselines`), the training (:mod:`.train`), the overhead and complexity calculators
(:mod:`.overhead`), the reproduction (:mod:`.reproduce`) and the shipped models, one folder per method
under ``weights/``. The classical algorithms are in concept folders: LS and RLS in
:mod:`beamlearn.estimation`, the equivalent-channel quantities, SCA (Algorithm 2), ZF and SSCA in
:mod:`beamlearn.hybrid`.
"""

from __future__ import annotations

from pathlib import Path

from ...learned import PerSNRModels, WeightsManifest
from ...registry import MethodInfo
from ..base import System
from .baselines import ConventionalJCEHB
from .blackbox import BlackBoxJCEHB
from .model import JCEHBNet
from .train import JCEHBConfig, JCEHBTask

__all__ = ["SYSTEM", "JCEHBNet", "BlackBoxJCEHB", "ConventionalJCEHB", "JCEHBConfig", "JCEHBTask", "WEIGHTS"]

_W = Path(__file__).parent / "weights"

# method name -> (description, how to make one)
_METHODS = {
    "jcehb-joint": (
        "Joint design NN: analog NN + CEDUN (16 pilots) + HBDUN (5 layers), two-stage training",
        "beamlearn train jcehb --scheme joint --snr-db SNR",
    ),
    "jcehb-separate": (
        "Separate design NN: stage-1 analog and digital NN, CEDUN trained alone on the channel MSE",
        "beamlearn train jcehb --scheme separate --snr-db SNR",
    ),
    "jcehb-joint-approx": (
        "the Joint design NN with the paper's learned inverse C^+ B + D^- in HBDUN (the default uses C^-1)",
        "beamlearn train jcehb --scheme joint --inverse-mode approx --snr-db SNR",
    ),
    "jcehb-one-stage": (
        "the JCEHB network trained in one stage from scratch (Fig. 13 baseline)",
        "beamlearn train jcehb --scheme one-stage --snr-db SNR",
    ),
    "hbdun": (
        "HBDUN (analog NN + digital NN) with perfect equivalent CSI: the upper reference",
        "beamlearn train jcehb --scheme hbdun --snr-db SNR",
    ),
    "jcehb-blackbox": (
        "black-box NN benchmark: trainable analog phases, FC channel estimator and FC beamformer",
        "beamlearn train jcehb --scheme joint --network blackbox --snr-db SNR",
    ),
    "rls-ssca": (
        "conventional: SSCA analog (trained on channel samples), RLS with 90 DFT pilots, SCA with 70 iterations",
        "beamlearn.systems.jcehb.train.train_ssca(SNR), or beamlearn reproduce jcehb --train",
    ),
    "rls-ssca-16": (
        "RLS-SSCA with 16 pilots (the JCEHB network's pilot budget)",
        "beamlearn.systems.jcehb.train.train_ssca(SNR), or beamlearn reproduce jcehb --train",
    ),
    "rls-zf": (
        "conventional: SSCA analog, RLS with 90 DFT pilots, ZF over SVD combiners",
        "beamlearn.systems.jcehb.train.train_ssca(SNR), or beamlearn reproduce jcehb --train",
    ),
}
WEIGHTS = {name: WeightsManifest(_W / name, system="jcehb") for name in _METHODS}


def jcehb_reason(sc, snrs=None) -> str | None:
    """Why a JCEHB method does not apply to ``sc`` (``None`` when it does)."""
    if sc.num_rx_antennas < 2 or sc.num_rx_rf_chains is None or sc.num_rf_chains is None:
        return "needs a hybrid transmitter and multi-antenna users with hybrid receivers"
    if sc.observation.kind == "uplink":
        return "sounds downlink pilots through its analog stage: needs a 'pilots' (or perfect) observation"
    return None


_PILOTS = {"rls-ssca": 90, "rls-zf": 90}  # pilot symbols a method sounds (the others: 16)


def _pilot_reason(name, sc) -> str | None:
    need = _PILOTS.get(name, 16)
    if sc.observation.kind == "pilots" and sc.observation.pilot_length < need:
        return f"sounds {need} pilot symbols; the scenario's observation allows {sc.observation.pilot_length}"
    return None


def _reason(name):
    def reason(sc, snrs=None):
        return jcehb_reason(sc, snrs) or _pilot_reason(name, sc) or WEIGHTS[name].unsupported(sc, snrs)

    return reason


def _family(name):
    def build(sc):
        return PerSNRModels(name, WEIGHTS[name], sc, hint=f"Make one with `{_METHODS[name][1]}`.")

    return build


def _reproduce(out_dir, **kw):
    from .reproduce import reproduce

    return reproduce(out_dir, **kw)


SYSTEM = System(
    name="jcehb",
    title="JCEHB: mixed-timescale deep unfolding for joint channel estimation and hybrid beamforming (Kang et al.)",
    docs="docs/jcehb.md",
    methods=tuple(
        MethodInfo(name, text, _family(name), _reason(name), kind="learned", system="jcehb")
        for name, (text, _) in _METHODS.items()
    ),
    train_config=JCEHBConfig,
    task=JCEHBTask,
    reproduce=_reproduce,
    weights=WEIGHTS,
)
