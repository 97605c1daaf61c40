"""The method catalogue: every method usable by name in experiments (``evaluate --methods``).

Each :class:`MethodInfo` builds a :class:`~beamlearn.interface.BeamformingMethod` for a scenario and
says when it does not apply, so any method can be swapped into any experiment. The classical methods
are listed here; each system contributes its own (learned models, paper-only baselines) through its
:class:`~beamlearn.systems.System` entry, and :func:`register_method` adds a caller's method. Nothing
here changes when a system is added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .interface import BeamformingMethod

__all__ = [
    "MethodInfo",
    "CLASSICAL_METHODS",
    "register_method",
    "method_table",
    "build_method",
    "available_methods",
    "resolve_methods",
    "miso_hybrid_reason",
]

KINDS = ("digital", "hybrid", "learned", "bound")


@dataclass(frozen=True)
class MethodInfo:
    """A named method.

    Attributes:
        name: the name on the command line.
        description: one line for ``beamlearn methods``.
        build: ``build(scenario) -> BeamformingMethod``.
        unsupported: ``unsupported(scenario, snrs) -> reason or None`` (``None``: it applies).
        kind: ``digital``, ``hybrid``, ``learned`` or ``bound`` (bounds are skipped by metrics that need
            a precoder, such as the SER).
        system: the system that provides it (empty for classical methods).
    """

    name: str
    description: str
    build: Callable[..., BeamformingMethod]
    unsupported: Callable[..., str | None] = lambda sc, snrs=None: None
    kind: str = "digital"
    system: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


def _streams(sc) -> int | None:
    return None if sc.num_rx_antennas == 1 else sc.num_streams


def _one_stream_per_antenna(sc, snrs=None) -> str | None:
    if sc.num_rx_antennas > 1 and sc.num_streams != sc.num_rx_antennas:
        return (
            f"needs one stream per receive antenna (Ns == Nr), scenario has Ns={sc.num_streams}, "
            f"Nr={sc.num_rx_antennas}"
        )
    if sc.num_users * sc.num_rx_antennas > sc.num_bs_antennas:
        return f"needs K*Nr <= N, scenario has K*Nr={sc.num_users * sc.num_rx_antennas} > N={sc.num_bs_antennas}"
    return None


def miso_hybrid_reason(sc, snrs=None) -> str | None:
    """Why a hybrid design for single-antenna users does not apply to ``sc`` (``None`` if it does)."""
    if sc.num_rf_chains is None:
        return "needs a hybrid array: the scenario has no num_rf_chains"
    if sc.num_rx_antennas != 1:
        return f"is for single-antenna users, scenario has Nr={sc.num_rx_antennas}"
    return None


def _miso(sc, snrs=None) -> str | None:
    if sc.num_rx_antennas != 1:
        return f"is for single-antenna users, scenario has Nr={sc.num_rx_antennas}"
    if sc.num_users > sc.num_bs_antennas:
        return f"needs K <= N, scenario has K={sc.num_users} > N={sc.num_bs_antennas}"
    return None


def _digital(cls_name: str, **kw):
    def build(sc):
        from . import precoding

        return getattr(precoding, cls_name)(num_streams=_streams(sc), **kw)

    return build


def _hybrid(cls_name: str, **kw):
    def build(sc):
        from . import hybrid

        return getattr(hybrid, cls_name)(num_rf_chains=sc.num_rf_chains, **kw)

    return build


def _sca(sc):
    from .precoding import SCA

    return SCA()


CLASSICAL_METHODS: tuple[MethodInfo, ...] = (
    MethodInfo("mrt", "maximum-ratio transmission, total-power scaling", _digital("MRT"), _one_stream_per_antenna),
    MethodInfo("zf", "zero forcing, total-power scaling", _digital("ZF"), _one_stream_per_antenna),
    MethodInfo("rzf", "regularised zero forcing, alpha = K sigma^2 / P", _digital("RZF"), _one_stream_per_antenna),
    MethodInfo(
        "wmmse",
        "WMMSE sum-rate precoding (Shi et al. 2011), 100 iterations from RZF",
        _digital("WMMSE", iterations=100),
    ),
    MethodInfo(
        "capacity",
        "upper reference: cooperative-receiver SVD / water-filling capacity",
        _digital("CapacityBound"),
        kind="bound",
    ),
    MethodInfo(
        "sca",
        "fully digital sum-rate SCA precoder (Tran et al. 2012), 20 iterations, batched barrier solver",
        _sca,
        _miso,
    ),
    MethodInfo(
        "sca-rmm",
        "SCA digital precoder factorised by MO-AltMin (two-stage hybrid baseline)",
        _hybrid("SCARMM"),
        miso_hybrid_reason,
        kind="hybrid",
    ),
    MethodInfo(
        "mo-altmin",
        "MO-AltMin (Yu et al. 2016) factorisation of the WMMSE precoder",
        _hybrid("MOAltMin"),
        miso_hybrid_reason,
        kind="hybrid",
    ),
    MethodInfo(
        "omp",
        "spatially sparse precoding by OMP (El Ayach et al. 2014) on a 4N-angle ULA codebook, of the WMMSE precoder",
        _hybrid("OMPHybrid"),
        miso_hybrid_reason,
        kind="hybrid",
    ),
    MethodInfo(
        "pga",
        "conventional PGA hybrid beamforming (Algorithm 1), 30 iterations, J=10, mu=0.01, lambda=1e-4",
        _hybrid("PGA", iterations=30, inner_steps=10, seed=0),
        miso_hybrid_reason,
        kind="hybrid",
    ),
)

_EXTRA: dict[str, MethodInfo] = {}


def register_method(info: MethodInfo, *, replace: bool = False) -> MethodInfo:
    """Add a method of the caller's to the catalogue (a name clash raises unless ``replace``)."""
    if not isinstance(info, MethodInfo):
        raise TypeError(f"info must be a MethodInfo, got {type(info).__name__}")
    if info.name in method_table() and not replace:
        raise ValueError(f"a method named {info.name!r} exists; pass replace=True to override it")
    _EXTRA[info.name] = info
    return info


def method_table() -> dict[str, MethodInfo]:
    """Every method by name: the classical ones, then each system's, then the caller's."""
    from .systems import all_systems

    table = {m.name: m for m in CLASSICAL_METHODS}
    for system in all_systems():
        for m in system.methods:
            if m.name in table:
                owner = table[m.name].system or "the classical catalogue"
                raise ValueError(f"system {system.name!r} adds method {m.name!r}, which {owner} already has; rename it")
            table[m.name] = m
    table.update(_EXTRA)
    return table


def build_method(name: str, scenario, snrs=None) -> BeamformingMethod:
    """Build the method ``name`` for ``scenario`` (a ``ValueError`` says why it does not apply)."""
    table = method_table()
    if name not in table:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(table)}")
    info = table[name]
    reason = info.unsupported(scenario, snrs)
    if reason:
        raise ValueError(f"method {name!r} does not apply to scenario {scenario.name!r}: {reason}")
    method = info.build(scenario)
    if name in getattr(scenario, "perfect_csi_methods", ()):
        from .interface import PerfectCSI

        method = PerfectCSI(method)  # the scenario's reference bound: scored with the true channel
    return method


def available_methods(scenario, snrs=None, *, needs_precoder: bool = False) -> list[str]:
    """Names of the methods that apply to ``scenario`` at ``snrs`` (without bounds when the metric
    needs a precoder)."""
    return [
        n
        for n, m in method_table().items()
        if m.unsupported(scenario, snrs) is None and not (needs_precoder and m.kind == "bound")
    ]


def resolve_methods(spec: str | list[str], scenario, snrs=None, *, needs_precoder: bool = False) -> list[str]:
    """Parse ``"zf,wmmse"`` or ``"all"`` (every method that applies to the scenario at ``snrs``)."""
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if not names:
        raise ValueError("methods must name at least one method, or 'all'")
    if names == ["all"]:
        return available_methods(scenario, snrs, needs_precoder=needs_precoder)
    table = method_table()
    for n in names:
        if n not in table:
            raise ValueError(f"unknown method {n!r}; choose from {', '.join(table)} or 'all'")
        reason = table[n].unsupported(scenario, snrs)
        if reason:
            raise ValueError(f"method {n!r} does not apply to scenario {scenario.name!r}: {reason}")
    return names
