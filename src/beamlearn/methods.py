"""The registry of beamforming methods usable by name in experiments (``evaluate --methods``).

Every entry builds a :class:`~beamlearn.precoding.BeamformingMethod` for a scenario, so any method can
be swapped into any experiment. Learned methods register here as they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .precoding import MRT, RZF, WMMSE, ZF, BeamformingMethod, CapacityBound
from .scenarios import Scenario

__all__ = ["MethodInfo", "METHODS", "build_method", "available_methods", "resolve_methods"]


def _streams(sc: Scenario) -> int | None:
    return None if sc.num_rx_antennas == 1 else sc.num_streams


def _one_stream_per_antenna(sc: Scenario) -> str | None:
    if sc.num_rx_antennas > 1 and sc.num_streams != sc.num_rx_antennas:
        return f"needs one stream per receive antenna (Ns == Nr), scenario has Ns={sc.num_streams}, Nr={sc.num_rx_antennas}"
    if sc.num_users * sc.num_rx_antennas > sc.num_bs_antennas:
        return f"needs K*Nr <= N, scenario has K*Nr={sc.num_users * sc.num_rx_antennas} > N={sc.num_bs_antennas}"
    return None


def _hybrid_miso(sc: Scenario) -> str | None:
    if sc.num_rf_chains is None:
        return "needs a hybrid array: the scenario has no num_rf_chains"
    if sc.num_rx_antennas != 1:
        return f"is for single-antenna users, scenario has Nr={sc.num_rx_antennas}"
    return None


def _unfolded_pga_support(sc: Scenario, snrs=None) -> str | None:
    reason = _hybrid_miso(sc)
    if reason:
        return reason
    if (sc.num_bs_antennas, sc.num_users, sc.num_rf_chains) != (32, 4, 4) or sc.channel != _pga_channel():
        return "the shipped models were trained on the unfolded-pga scenario only (train one with `beamlearn train unfolded-pga`)"
    from .pretrained import available_unfolded_pga_snrs

    missing = [s for s in (snrs or []) if float(s) not in available_unfolded_pga_snrs()]
    if missing:
        have = ", ".join(f"{s:g}" for s in available_unfolded_pga_snrs())
        return f"no shipped model for SNR {', '.join(f'{s:g}' for s in missing)} dB (shipped: {have})"
    return None


def _pga_channel():
    from .scenarios import PRESETS

    return PRESETS["unfolded-pga"].channel


def _build_unfolded_pga(sc: Scenario) -> BeamformingMethod:
    from .per_snr import PerSNRModels
    from .pretrained import available_unfolded_pga_snrs, load_pretrained_unfolded_pga

    return PerSNRModels("unfolded-pga", available_unfolded_pga_snrs(), load_pretrained_unfolded_pga,
                        hint="Train one with `beamlearn train unfolded-pga --snr-db X`.")


def _build_hybrid(cls_name: str):
    def build(sc: Scenario) -> BeamformingMethod:
        from . import hybrid

        return getattr(hybrid, cls_name)(num_rf_chains=sc.num_rf_chains)

    return build


def _miso(sc: Scenario, snrs=None) -> str | None:
    if sc.num_rx_antennas != 1:
        return f"is for single-antenna users, scenario has Nr={sc.num_rx_antennas}"
    if sc.num_users > sc.num_bs_antennas:
        return f"needs K <= N, scenario has K={sc.num_users} > N={sc.num_bs_antennas}"
    return None


def _build_sca(sc: Scenario) -> BeamformingMethod:
    from .hybrid import SCA

    return SCA()


def _build_pga(sc: Scenario) -> BeamformingMethod:
    from .hybrid import PGA

    return PGA(iterations=30, inner_steps=10, num_rf_chains=sc.num_rf_chains, seed=0)


@dataclass(frozen=True)
class MethodInfo:
    name: str
    description: str
    build: Callable[[Scenario], BeamformingMethod]
    unsupported: Callable[..., str | None] = lambda sc, snrs=None: None  # reason, or None if supported
    kind: str = "digital"  # digital | hybrid | learned | bound


METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in [
        MethodInfo("mrt", "maximum-ratio transmission, total-power scaling",
                   lambda sc: MRT(num_streams=_streams(sc)), lambda sc, snrs=None: _one_stream_per_antenna(sc)),
        MethodInfo("zf", "zero forcing, total-power scaling",
                   lambda sc: ZF(num_streams=_streams(sc)), lambda sc, snrs=None: _one_stream_per_antenna(sc)),
        MethodInfo("rzf", "regularised zero forcing, alpha = K sigma^2 / P",
                   lambda sc: RZF(num_streams=_streams(sc)), lambda sc, snrs=None: _one_stream_per_antenna(sc)),
        MethodInfo("wmmse", "WMMSE sum-rate precoding (Shi et al. 2011), 100 iterations from RZF",
                   lambda sc: WMMSE(num_streams=_streams(sc), iterations=100)),
        MethodInfo("capacity", "upper reference: cooperative-receiver SVD / water-filling capacity",
                   lambda sc: CapacityBound(num_streams=_streams(sc)), kind="bound"),
        MethodInfo("sca", "fully digital sum-rate SCA precoder (Tran et al. 2012), 20 iterations, batched barrier solver",
                   _build_sca, _miso),
        MethodInfo("sca-rmm", "SCA digital precoder factorised by MO-AltMin (two-stage hybrid baseline)",
                   _build_hybrid("SCARMM"), lambda sc, snrs=None: _hybrid_miso(sc), kind="hybrid"),
        MethodInfo("mo-altmin", "MO-AltMin (Yu et al. 2016) factorisation of the WMMSE precoder",
                   _build_hybrid("MOAltMin"), lambda sc, snrs=None: _hybrid_miso(sc), kind="hybrid"),
        MethodInfo("omp", "spatially sparse precoding by OMP (El Ayach et al. 2014) on a 4N-angle ULA codebook, of the WMMSE precoder",
                   _build_hybrid("OMPHybrid"), lambda sc, snrs=None: _hybrid_miso(sc), kind="hybrid"),
        MethodInfo("pga", "conventional PGA hybrid beamforming (Algorithm 1), 30 iterations, J=10, mu=0.01, lambda=1e-4",
                   _build_pga, lambda sc, snrs=None: _hybrid_miso(sc), kind="hybrid"),
        MethodInfo("unfolded-pga", "deep-unfolded PGA, 10 layers, shipped model trained at the evaluation SNR",
                   _build_unfolded_pga, _unfolded_pga_support, kind="learned"),
    ]
}


def build_method(name: str, scenario: Scenario, snrs=None) -> BeamformingMethod:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    info = METHODS[name]
    reason = info.unsupported(scenario, snrs)
    if reason:
        raise ValueError(f"method {name!r} does not apply to scenario {scenario.name!r}: {reason}")
    return info.build(scenario)


def available_methods(scenario: Scenario, snrs=None) -> list[str]:
    return [n for n, m in METHODS.items() if m.unsupported(scenario, snrs) is None]


def resolve_methods(spec: str | list[str], scenario: Scenario, snrs=None) -> list[str]:
    """Parse ``"zf,wmmse"`` or ``"all"`` (every method that applies to the scenario at ``snrs``)."""
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise ValueError("methods must name at least one method, or 'all'")
    if names == ["all"]:
        return available_methods(scenario, snrs)
    for n in names:
        if n not in METHODS:
            raise ValueError(f"unknown method {n!r}; choose from {', '.join(METHODS)} or 'all'")
        reason = METHODS[n].unsupported(scenario, snrs)
        if reason:
            raise ValueError(f"method {n!r} does not apply to scenario {scenario.name!r}: {reason}")
    return names
