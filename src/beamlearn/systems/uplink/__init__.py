"""System 4: downlink beamforming learned from uplink channel information (Zhang, You, Zheng,
Krikidis, Zhao, IEEE TWC 2022), single cell.

Spec ``shared/papers/uplink-model-driven-bf.md``; docs ``docs/uplink.md``. The folder holds the
networks (:mod:`.model`), their training (:mod:`.train`), the reproduction (:mod:`.reproduce`) and
the shipped models, one folder per method under ``weights/`` (each with ``manifest.json``). The
paired UL/DL channel generators are in :mod:`beamlearn.channels.uplink_pairs`, the optimal
beamforming structure and the WMMSE power labels in :mod:`beamlearn.precoding.structure`, the
uplink LMMSE estimator in :mod:`beamlearn.estimation`.
"""

from __future__ import annotations

from pathlib import Path

from ...learned import PerSNRModels, WeightsManifest
from ...registry import MethodInfo
from ..base import System
from .model import LearnedChannelBF, UplinkMDL
from .train import UplinkConfig, UplinkTask

__all__ = ["SYSTEM", "UplinkMDL", "LearnedChannelBF", "UplinkConfig", "UplinkTask", "WEIGHTS"]

_W = Path(__file__).parent / "weights"

# method name -> (manifest folder, description, train options)
_LEARNED = {
    "uplink-mdl": "proposed model-driven network (CSI-Net, Power-Net, structure (7)), original loss",
    "uplink-mdl-zf": "proposed network trained with the ZF loss (24); outputs the structure (7)",
    "uplink-mdl-reduced": "proposed network trained with the reduced-dimension loss (22)-(23)",
    "learned-channel-zf": "two-step baseline: CSI-Net trained on the channel MSE, then ZF",
    "learned-channel-bf": "two-step baseline: CSI-Net trained on the channel MSE, then a beamforming network",
}
_OPTIONS = {
    "uplink-mdl": "--method proposed",
    "uplink-mdl-zf": "--method proposed --loss zf",
    "uplink-mdl-reduced": "--method proposed --loss reduced",
    "learned-channel-zf": "--method learned-channel",
    "learned-channel-bf": "--method learned-channel-bf",
}
WEIGHTS = {name: WeightsManifest(_W / name, system="uplink") for name in _LEARNED}


def uplink_reason(sc, snrs=None) -> str | None:
    """Why a method of this system does not apply to ``sc`` (``None`` when it does)."""
    if sc.observation.kind != "uplink":
        return f"learns from the uplink: needs an 'uplink' observation, the scenario gives {sc.observation.kind!r}"
    if sc.num_rx_antennas != 1:
        return f"is for single-antenna users, scenario has Nr={sc.num_rx_antennas}"
    return None


def _reason(name):
    def reason(sc, snrs=None):
        return uplink_reason(sc, snrs) or WEIGHTS[name].unsupported(sc, snrs)

    return reason


def _family(name):
    def build(sc):
        return PerSNRModels(
            name,
            WEIGHTS[name],
            sc,
            hint=f"Train one with `beamlearn train uplink --scenario {sc.name.split('[')[0]} {_OPTIONS[name]}`.",
        )

    return build


def _reproduce(out_dir, **kw):
    from .reproduce import reproduce

    return reproduce(out_dir, **kw)


SYSTEM = System(
    name="uplink",
    title="Model-driven downlink beamforming learned from uplink channel information (Zhang et al.)",
    docs="docs/uplink.md",
    methods=tuple(
        MethodInfo(name, text, _family(name), _reason(name), kind="learned", system="uplink")
        for name, text in _LEARNED.items()
    ),
    train_config=UplinkConfig,
    task=UplinkTask,
    reproduce=_reproduce,
    weights=WEIGHTS,
)
