"""Scenario configuration (validated dataclasses) and the named presets of the five systems.

Power and SNR convention (see ``docs/conventions.md``): ``SNR = P / sigma^2`` with P the total transmit
power (``||X||_F^2`` for unit-power symbols) and sigma^2 the noise variance per receive antenna. A
scenario keeps either the noise fixed (``power_reference="noise"``: sigma^2 = ``noise_var``,
P = sigma^2 10^(SNR/10)) or the power fixed (``"power"``: P = ``power``, sigma^2 = P 10^(-SNR/10)).
Rates of linear precoders scaled to P depend only on the SNR, but step sizes of iterative and learned
methods do not, so each preset follows its paper's convention. A scenario with ``snr_reference="stream"``
counts the SNR per stream instead, ``SNR = P / (K Ns sigma^2)`` (the JCEHB preset: P = K Ns = 16, so
sigma^2 = 10^(-SNR/10) and every stream has unit power, as in the paper).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._validation import check_int, check_one_of, check_positive, check_snr_db
from .channels import ULA, UPA, ChannelModel, ClusteredChannel, CorrelatedRayleighChannel, RayleighChannel
from .observation import PERFECT_CSI, ObservationSpec

__all__ = ["ChannelSpec", "Scenario", "PRESETS", "get_scenario", "list_scenarios"]

CHANNEL_KINDS = ("rayleigh", "correlated-rayleigh", "clustered", "uplink-pair", "source", "dataset")
# the paired UL/DL generators of the uplink paper (channels/uplink_pairs.py), by params["map"]
UPLINK_PAIR_MAPS = {"squared": "SquaredMapChannel", "mismatch": "MismatchRayleighChannel", "ray": "RayUplinkChannel"}


@dataclass(frozen=True)
class ChannelSpec:
    """Which channel model a scenario draws from, and its parameters.

    ``kind`` is one of ``rayleigh``, ``correlated-rayleigh``, ``clustered``; ``params`` are passed to
    :class:`RayleighChannel`, :class:`CorrelatedRayleighChannel` or :class:`ClusteredChannel` (for the
    clustered model, ``bs_array`` may be ``"ula"`` (default) or ``("upa", rows, cols)`` and
    ``bs_array_normalize``/``ue_array_normalize`` control the 1/sqrt(N) of the steering vectors).
    ``kind="uplink-pair"`` is a paired uplink/downlink source of the uplink paper
    (:mod:`beamlearn.channels.uplink_pairs`), ``params["map"]`` one of ``squared`` (S0), ``mismatch``
    (S1), ``ray`` (S2), the other params its options.

    Any other channel source of the library is named by ``kind="source"`` with ``params["name"]`` one
    of :data:`beamlearn.datasets.SOURCES` (``rayleigh``, ``clustered-ula``, ``3gpp-umi``, ``3gpp-uma``,
    ``3gpp-rma``) or ``rt:SCENE`` (further params are the source's options), and a dataset file by
    ``kind="dataset"`` with ``params["path"]``. :meth:`parse` reads the command-line spelling.
    """

    kind: str = "rayleigh"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        check_one_of("channel kind", self.kind, CHANNEL_KINDS)
        if self.kind == "source" and not isinstance(self.params.get("name"), str):
            raise ValueError("a channel of kind 'source' needs params['name'], e.g. '3gpp-umi' or 'rt:munich'")
        if self.kind == "dataset" and not self.params.get("path"):
            raise ValueError("a channel of kind 'dataset' needs params['path'] (a .blch file)")
        if self.kind == "uplink-pair":
            check_one_of("uplink-pair map", self.params.get("map"), tuple(UPLINK_PAIR_MAPS))

    @classmethod
    def parse(cls, text: str) -> ChannelSpec:
        """A channel named on the command line: a preset's name (its channel model), a source name
        (``rayleigh``, ``clustered-ula``, ``3gpp-umi|uma|rma``, ``rt:SCENE``) or a dataset file path."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"channel source must be a non-empty string, got {text!r}")
        text = text.strip()
        if text in PRESETS:
            return PRESETS[text].channel
        from .datasets import SOURCES

        if text in SOURCES or text.startswith("rt:"):
            return cls("source", {"name": text})
        if text.endswith(".blch") or Path(text).is_file():
            return cls("dataset", {"path": text})
        raise ValueError(
            f"channel source must be a preset ({', '.join(PRESETS)}), a source "
            f"({', '.join(SOURCES)}, rt:SCENE) or a dataset file, got {text!r}"
        )

    def describe(self) -> str:
        """The source in one word: the kind, the source name or ``dataset:PATH``."""
        if self.kind == "source":
            return self.params["name"]
        if self.kind == "dataset":
            return f"dataset:{self.params['path']}"
        return self.kind

    def build(self, num_users: int, num_bs_antennas: int, num_rx_antennas: int) -> ChannelModel:
        p = dict(self.params)
        if self.kind == "dataset":
            from .channels.dataset import DatasetChannel

            model = DatasetChannel(p["path"])
            got = (model.num_users, model.num_bs_antennas, model.num_rx_antennas)
            if got != (num_users, num_bs_antennas, num_rx_antennas):
                raise ValueError(
                    f"dataset {p['path']} has (K, N, Nr) = {got}, the scenario "
                    f"({num_users}, {num_bs_antennas}, {num_rx_antennas}); use Scenario.with_channel"
                )
            return model
        if self.kind == "source":
            if num_rx_antennas != 1:
                raise ValueError(
                    f"channel source {p['name']!r} has single-antenna users; the scenario has "
                    f"num_rx_antennas={num_rx_antennas}"
                )
            from .datasets import make_source

            return make_source(p.pop("name"), num_users, num_bs_antennas, **p)
        if self.kind == "uplink-pair":
            if num_rx_antennas != 1:
                raise ValueError(
                    f"uplink-pair channels have single-antenna users; got num_rx_antennas={num_rx_antennas}"
                )
            from .channels import uplink_pairs

            return getattr(uplink_pairs, UPLINK_PAIR_MAPS[p.pop("map")])(num_users, num_bs_antennas, **p)
        if self.kind == "rayleigh":
            return RayleighChannel(num_users, num_bs_antennas, num_rx_antennas, **p)
        if self.kind == "correlated-rayleigh":
            return CorrelatedRayleighChannel(num_users, num_bs_antennas, num_rx_antennas, **p)
        arr = p.pop("bs_array", "ula")
        bs_norm = p.pop("bs_array_normalize", True)
        ue_norm = p.pop("ue_array_normalize", True)
        if arr == "ula":
            bs = ULA(num_bs_antennas, normalize=bs_norm)
        else:
            _, rows, cols = arr
            if rows * cols != num_bs_antennas:
                raise ValueError(f"UPA of {rows}x{cols} elements does not match num_bs_antennas={num_bs_antennas}")
            bs = UPA(rows, cols, normalize=bs_norm)
        return ClusteredChannel(num_users, bs, ULA(num_rx_antennas, normalize=ue_norm), **p)


@dataclass(frozen=True)
class Scenario:
    """A downlink multiuser scenario.

    Attributes:
        name: preset name or a label.
        num_bs_antennas: N, BS antennas.
        num_users: K.
        num_rf_chains: N_RF, BS RF chains of a hybrid array, in [K*Ns, N]; ``None`` if the scenario has
            no hybrid constraint (fully digital methods ignore it).
        num_rx_antennas: Nr per user (1: single-antenna users, channels ``[..., K, N]``).
        num_streams: Ns per user, in [1, Nr].
        num_rx_rf_chains: user RF chains, in [Ns, Nr] (``None``: fully digital combining).
        snr_db: default SNR grid in dB (``SNR = P / sigma^2``).
        power_reference: ``"noise"`` (sigma^2 fixed) or ``"power"`` (P fixed), see the module docstring.
        noise_var: sigma^2 when ``power_reference="noise"``.
        power: P when ``power_reference="power"``.
        snr_reference: ``"total"`` (``SNR = P / sigma^2``, the default) or ``"stream"`` (``SNR = P / (K Ns
            sigma^2)``: the transmit SNR per stream, the JCEHB paper's ``P / sigma^2`` with each user's
            precoder normalised to ``Ns`` streams of power P), see the module docstring.
        phase_bits: phase-shifter resolution in bits (``None``: infinite resolution).
        channel: the channel source.
        observation: what the transmitter observes (:mod:`beamlearn.observation`; default perfect CSI).
        perfect_csi_methods: methods that are scored as reference bounds with perfect knowledge of the
            true channel whatever the observation (e.g. the uplink paper's WMMSE with perfect downlink
            CSI); :func:`beamlearn.registry.build_method` wraps them in :class:`~beamlearn.interface.PerfectCSI`.
        source: where the parameters come from (spec section), for listings.
    """

    name: str
    num_bs_antennas: int
    num_users: int
    num_rf_chains: int | None = None
    num_rx_antennas: int = 1
    num_streams: int = 1
    num_rx_rf_chains: int | None = None
    snr_db: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    power_reference: Literal["noise", "power"] = "noise"
    noise_var: float = 1.0
    power: float = 1.0
    snr_reference: Literal["total", "stream"] = "total"
    phase_bits: int | None = None
    channel: ChannelSpec = field(default_factory=ChannelSpec)
    observation: ObservationSpec = PERFECT_CSI
    perfect_csi_methods: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self):
        n = check_int("num_bs_antennas", self.num_bs_antennas, 1)
        k = check_int("num_users", self.num_users, 1)
        nr = check_int("num_rx_antennas", self.num_rx_antennas, 1)
        ns = check_int("num_streams", self.num_streams, 1, nr)
        if self.num_rf_chains is not None:
            if k * ns > n:
                raise ValueError(f"K*Ns={k * ns} streams exceed N={n} antennas; a hybrid array needs K*Ns <= N_RF <= N")
            check_int("num_rf_chains", self.num_rf_chains, k * ns, n)
        if self.num_rx_rf_chains is not None:
            check_int("num_rx_rf_chains", self.num_rx_rf_chains, ns, nr)
        check_one_of("power_reference", self.power_reference, ("noise", "power"))
        check_one_of("snr_reference", self.snr_reference, ("total", "stream"))
        check_positive("noise_var", self.noise_var)
        check_positive("power", self.power)
        if self.phase_bits is not None:
            check_int("phase_bits", self.phase_bits, 1, 24)
        snr = tuple(float(s) for s in self.snr_db)
        if not snr or not all(math.isfinite(s) for s in snr):
            raise ValueError(f"snr_db must be a non-empty sequence of finite values in dB, got {self.snr_db!r}")
        object.__setattr__(self, "snr_db", snr)
        if not isinstance(self.channel, ChannelSpec):
            raise TypeError("channel must be a ChannelSpec")
        if not isinstance(self.observation, ObservationSpec):
            raise TypeError("observation must be an ObservationSpec")
        if isinstance(self.perfect_csi_methods, str) or not all(isinstance(m, str) for m in self.perfect_csi_methods):
            raise ValueError(f"perfect_csi_methods must be a tuple of method names, got {self.perfect_csi_methods!r}")
        object.__setattr__(self, "perfect_csi_methods", tuple(self.perfect_csi_methods))
        o = self.observation
        if o.kind == "pilots" and o.estimator == "ls" and o.pilot_length < n:
            raise ValueError(
                f"observation: least-squares estimation needs pilot_length >= N={n} antennas, got "
                f"{o.pilot_length} (use estimator 'lmmse' for shorter pilots)"
            )
        if self.channel.kind in ("source", "dataset"):
            return  # built on use (Sionna scenes and dataset files are expensive to open)
        self.channel_model()  # validates the channel parameters now, not at first use

    def power_and_noise(self, snr_db: float) -> tuple[float, float]:
        """``(P, sigma^2)`` at ``snr_db`` under this scenario's power reference."""
        lin = 10 ** (check_snr_db("snr_db", snr_db) / 10)
        if self.snr_reference == "stream":
            lin *= self.num_users * self.num_streams
        if self.power_reference == "noise":
            return self.noise_var * lin, self.noise_var
        return self.power, self.power / lin

    def snr_db_of(self, power: float, noise_var: float) -> float:
        """The SNR in dB of ``(P, sigma^2)`` under this scenario's SNR reference (the inverse of
        :meth:`power_and_noise`)."""
        snr = 10 * math.log10(power / noise_var)
        if self.snr_reference == "stream":
            snr -= 10 * math.log10(self.num_users * self.num_streams)
        return snr

    def channel_model(self) -> ChannelModel:
        return self.channel.build(self.num_users, self.num_bs_antennas, self.num_rx_antennas)

    def replace(self, **changes) -> Scenario:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def summary(self) -> dict:
        d = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("channel", "observation")
        }
        if self.snr_reference == "total":
            del d["snr_reference"]  # the default is left out, so fingerprints of earlier models stay valid
        d["channel"] = {"kind": self.channel.kind, **self.channel.params}
        d["observation"] = self.observation.summary()
        return d

    def with_channel(self, source: str | ChannelSpec) -> Scenario:
        """This scenario drawing from another channel source (see :meth:`ChannelSpec.parse`).

        A dataset file sets N, K and Nr from the file; hybrid RF chains are kept while still valid
        (``K*Ns <= N_RF <= N``), otherwise dropped, and the streams are capped at the file's Nr.
        """
        spec = source if isinstance(source, ChannelSpec) else ChannelSpec.parse(source)
        if spec.kind != "dataset":
            return self.replace(name=f"{self.name}@{spec.describe()}", channel=spec)
        from .channels.dataset import DatasetChannel

        model = DatasetChannel(spec.params["path"])
        k, n, nr = model.num_users, model.num_bs_antennas, model.num_rx_antennas
        streams = min(self.num_streams, nr)
        rf = self.num_rf_chains
        if rf is not None and not (k * streams <= rf <= n):
            rf = None
        rx_rf = self.num_rx_rf_chains if (nr == self.num_rx_antennas and streams == self.num_streams) else None
        return self.replace(
            name=f"{self.name}@{Path(spec.params['path']).name}",
            num_bs_antennas=n,
            num_users=k,
            num_rx_antennas=nr,
            num_streams=streams,
            num_rf_chains=rf,
            num_rx_rf_chains=rx_rf,
            channel=spec,
        )


_PI3 = (-math.pi / 3, math.pi / 3)
# the clustered channel shared by the MSER and JCEHB papers: Nc=4 clusters of 2 rays, sigma_a^2=0.1,
# angles U(-pi/3, pi/3) at both ends, normalised by sqrt(Nt Nr / (Nc Nray))
_HYBRID_MIMO_CHANNEL = ChannelSpec(
    "clustered",
    dict(num_clusters=4, rays_per_cluster=2, gain_variance=0.1, aod_range=_PI3, aoa_range=_PI3, normalization="paths"),
)

# the uplink paper's transmitter sees the uplink channel of a paired UL/DL source (s2.2-2.3)
_PAIRED_UPLINK = ObservationSpec("uplink", mapping="paired")

PRESETS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            name="unfolded-pga",
            num_bs_antennas=32,
            num_users=4,
            num_rf_chains=4,
            snr_db=(0, 5, 10, 15, 20),
            channel=ChannelSpec(
                "clustered",
                dict(
                    num_clusters=10,
                    rays_per_cluster=1,
                    gain_variance=1.0,
                    aod_range=(0.0, 2 * math.pi),
                    normalization="none",
                ),
            ),
            source="unfolded-pga-hbf.md s2.3: ULA, 10 paths, CN(0,1) gains, AoD U(0,2pi), no extra normalisation; "
            "sigma^2=1",
        ),
        Scenario(
            name="mser",
            num_bs_antennas=64,
            num_users=2,
            num_rf_chains=8,
            num_rx_antennas=8,
            num_streams=3,
            num_rx_rf_chains=4,
            snr_db=(0, 5, 10, 15, 20, 25),
            power_reference="power",
            power=1.0,
            channel=_HYBRID_MIMO_CHANNEL,
            source="mser-unfolding-hbf.md s3: Nc=4, Nray=2, sigma_a^2=0.1, angles U(-pi/3,pi/3), "
            "sqrt(Nt Nr/(Nc Nray)); P_T=1",
        ),
        Scenario(
            name="jcehb",
            num_bs_antennas=64,
            num_users=4,
            num_rf_chains=16,
            num_rx_antennas=32,
            num_streams=4,
            num_rx_rf_chains=4,
            snr_db=(0, 5, 10, 15, 20),
            power_reference="power",
            power=16.0,
            snr_reference="stream",
            channel=_HYBRID_MIMO_CHANNEL,
            observation=ObservationSpec("pilots", pilot_length=90),
            source="jcehb-mixed-timescale-unfolding.md s3 (eq. 45): Nc=4, Nray=2, sigma_a^2=0.1, U(-pi/3,pi/3); "
            "P = K Ns = 16 in all, SNR per stream (sigma^2 = 10^(-SNR/10), the paper's P = 1 per stream); "
            "90 downlink pilot symbols (the RLS reference's L_r; JCEHB uses 16 of them)",
        ),
        Scenario(
            name="uplink-s0",
            num_bs_antennas=4,
            num_users=4,
            snr_db=(20,),
            channel=ChannelSpec("uplink-pair", {"map": "squared"}),
            observation=_PAIRED_UPLINK,
            perfect_csi_methods=("wmmse",),
            source="uplink-model-driven-bf.md s3.1 (S0, Fig. 2): H_U i.i.d. CN(0,1), h_d = h_u^2 element-wise; "
            "P/N0 = 20 dB; the BS sees the perfect uplink channel",
        ),
        Scenario(
            name="uplink-s1",
            num_bs_antennas=4,
            num_users=4,
            snr_db=(20,),
            channel=ChannelSpec("uplink-pair", {"map": "mismatch"}),
            observation=_PAIRED_UPLINK,
            perfect_csi_methods=("wmmse",),
            source="uplink-model-driven-bf.md s3.2 (S1, Fig. 4): H_U i.i.d. CN(0,1), h_D = c Phi h_U with c, Phi "
            "fixed (system seed 0); P/N0 = 20 dB; the BS sees the perfect uplink channel",
        ),
        *[
            Scenario(
                name=name,
                num_bs_antennas=64,
                num_users=k,
                snr_db=(10,),
                channel=ChannelSpec("uplink-pair", {"map": "ray"}),
                observation=obs,
                perfect_csi_methods=("wmmse",),
                source="uplink-model-driven-bf.md s3.3 (S2, Fig. 5, Table I): FDD 2.5/2.4 GHz ULA ray model (40), "
                "10 paths in +-pi/12 of a U(-pi/2,pi/2) mean, Rayleigh-amplitude gains squared on the downlink, "
                f"common phase, fixed c Phi; P/N0 = 10 dB; {what}",
            )
            for name, k, obs, what in (
                ("uplink-s2", 4, _PAIRED_UPLINK, "K=4, perfect uplink channel"),
                ("uplink-s2-k6", 6, _PAIRED_UPLINK, "K=6, perfect uplink channel"),
                (
                    "uplink-s2-pilots",
                    6,
                    ObservationSpec("uplink", mapping="paired", pilot_length=6),
                    "K=6, L=6 uplink DFT pilots (the BS sees Y X^H / (L P))",
                ),
            )
        ],
        Scenario(
            name="asnet",
            num_bs_antennas=128,
            num_users=1,
            num_rf_chains=2,
            num_rx_antennas=4,
            num_streams=2,
            snr_db=(-10, -5, 0, 5, 10),
            phase_bits=1,
            channel=ChannelSpec(
                "clustered",
                dict(
                    num_clusters=5,
                    rays_per_cluster=1,
                    gain_variance=1.0,
                    aod_range=(-1.0, 1.0),
                    aoa_range=(-1.0, 1.0),
                    uniform_in="sine",
                    normalization="frobenius",
                    bs_array_normalize=False,
                    ue_array_normalize=False,
                ),
            ),
            source="asnet-bfnet-antenna-selection.md s2.4-2.5 tier (c) sv_iid: L=5 paths, CN(0,1), sin(angle) "
            "U[-1,1] at both ends, ||H||_F^2 = NR*NT per sample; 1-bit phase shifters",
        ),
        Scenario(
            name="rayleigh",
            num_bs_antennas=16,
            num_users=4,
            snr_db=(-5, 0, 5, 10, 15, 20, 25),
            channel=ChannelSpec("rayleigh"),
            source="i.i.d. Rayleigh CN(0,1) entries, generic reference",
        ),
        Scenario(
            name="correlated-rayleigh",
            num_bs_antennas=64,
            num_users=8,
            snr_db=(-5, 0, 5, 10, 15, 20, 25),
            channel=ChannelSpec("correlated-rayleigh", dict(tx_correlation=0.7)),
            source="Kronecker model, exponential BS correlation rho=0.7, generic reference",
        ),
    ]
}


def list_scenarios() -> list[str]:
    return list(PRESETS)


def get_scenario(name: str, **overrides) -> Scenario:
    """The preset ``name``, optionally with some fields changed (e.g. ``num_bs_antennas=64``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(PRESETS)}")
    s = PRESETS[name]
    return s.replace(**overrides) if overrides else s
