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


@dataclass(frozen=True)
class MethodInfo:
    name: str
    description: str
    build: Callable[[Scenario], BeamformingMethod]
    unsupported: Callable[[Scenario], str | None] = lambda sc: None  # reason, or None if supported
    kind: str = "digital"  # digital | hybrid | learned | bound


METHODS: dict[str, MethodInfo] = {
    m.name: m
    for m in [
        MethodInfo("mrt", "maximum-ratio transmission, total-power scaling",
                   lambda sc: MRT(num_streams=_streams(sc)), lambda sc: _one_stream_per_antenna(sc)),
        MethodInfo("zf", "zero forcing, total-power scaling",
                   lambda sc: ZF(num_streams=_streams(sc)), lambda sc: _one_stream_per_antenna(sc)),
        MethodInfo("rzf", "regularised zero forcing, alpha = K sigma^2 / P",
                   lambda sc: RZF(num_streams=_streams(sc)), lambda sc: _one_stream_per_antenna(sc)),
        MethodInfo("wmmse", "WMMSE sum-rate precoding (Shi et al. 2011), 100 iterations from RZF",
                   lambda sc: WMMSE(num_streams=_streams(sc), iterations=100)),
        MethodInfo("capacity", "upper reference: cooperative-receiver SVD / water-filling capacity",
                   lambda sc: CapacityBound(num_streams=_streams(sc)), kind="bound"),
    ]
}


def build_method(name: str, scenario: Scenario) -> BeamformingMethod:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    info = METHODS[name]
    reason = info.unsupported(scenario)
    if reason:
        raise ValueError(f"method {name!r} does not apply to scenario {scenario.name!r}: {reason}")
    return info.build(scenario)


def available_methods(scenario: Scenario) -> list[str]:
    return [n for n, m in METHODS.items() if m.unsupported(scenario) is None]


def resolve_methods(spec: str | list[str], scenario: Scenario) -> list[str]:
    """Parse ``"zf,wmmse"`` or ``"all"`` (every method that applies to the scenario)."""
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise ValueError("methods must name at least one method, or 'all'")
    if names == ["all"]:
        return available_methods(scenario)
    for n in names:
        if n not in METHODS:
            raise ValueError(f"unknown method {n!r}; choose from {', '.join(METHODS)} or 'all'")
        reason = METHODS[n].unsupported(scenario)
        if reason:
            raise ValueError(f"method {n!r} does not apply to scenario {scenario.name!r}: {reason}")
    return names
