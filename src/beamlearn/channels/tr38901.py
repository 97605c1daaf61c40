"""3GPP TR 38.901 system-level channels (UMi, UMa, RMa) through Sionna 2.x (``sionna-no-rt``).

One *drop* is one single-sector topology: a base station at ``(0, 0, bs_height)`` whose array points to
the centre of a 120-degree sector, and ``K`` users dropped uniformly in that sector by Sionna's
:func:`sionna.phy.channel.gen_single_sector_topology` (indoor/outdoor state, LoS/NLoS state, large-
and small-scale parameters all drawn by Sionna's UMi/UMa/RMa models). Every batch entry is an
independent drop; the users of one drop share the geometry (their channels are not independent of
each other in the way i.i.d. Rayleigh users are).

Narrowband channel
    Sionna returns path coefficients ``a[b, k, 0, 0, n, p, t]`` and delays ``tau`` (downlink: the BS
    transmits, user ``k`` is receiver ``k``). We take the channel frequency response at baseband
    frequency 0 (the carrier), ``h_kn = sum_p a[b, k, 0, 0, n, p, 0]``, computed with
    :func:`sionna.phy.channel.cir_to_ofdm_channel` at ``frequencies = [0]``; i.e. the OFDM channel of
    the sub-carrier at the carrier frequency. The users do not move (zero velocity), so the single
    time sample is the whole story.

Conjugation
    Sionna's frequency-domain model is ``y = h x`` with ``h`` of shape ``[..., num_rx_ant,
    num_tx_ant]`` (:class:`sionna.phy.channel.ApplyOFDMChannel` computes ``sum_n h[..., n] x[n]``
    without conjugation). Our convention (``docs/conventions.md``) is ``y_k = H[k, :] @ x``, so the
    row of user ``k`` is Sionna's ``h[user k, rx antenna 0, BS antennas]`` taken as is, no conjugate.

Arrays
    BS: a single-polarised (vertical) horizontal ULA of ``N`` elements at half-wavelength spacing --
    a Sionna ``PanelArray`` with 1 row x ``N`` columns. The element pattern is the TR 38.901 sector
    pattern (``bs_antenna_pattern="38.901"``, default: 65-degree beamwidth, 8 dBi, as for the
    three-sector sites the scenarios are calibrated for; the topology generator points it at the
    sector centre with the scenario's downtilt) or isotropic (``"omni"``). Users: one vertically
    polarised omnidirectional antenna.

Normalisation
    ``normalize=True`` (default) scales every user's channel to ``||h_k||^2 = N`` exactly (per drop,
    in the returned dtype). This removes path loss and shadow fading -- and the near-far gain
    differences between users -- but keeps the spatial structure (angles, LoS/NLoS, Rician K,
    angular spreads). ``normalize=False`` keeps the absolute channel including path loss, shadow
    fading, penetration losses and the element gain: ``||h_k||^2 / N`` is the path gain, typically
    -60 .. -175 dB per user (means over users ~ -111 dB UMi, -129 dB UMa, -146 dB RMa at 3.5 GHz;
    amplitudes ~1e-3 .. 1e-9), representable in complex64 without underflow. With
    ``normalize=False`` a scenario's SNR is therefore a transmit SNR before path loss; choose
    ``power``/``noise_var`` accordingly.

Seeding
    Sionna draws all its random numbers from ``sionna.phy.config.torch_rng(device)``. For every call
    we draw one integer from the ``generator`` given to :meth:`TR38901Channel._sample` (the one made
    from ``seed=``), temporarily re-seed Sionna's generator for the target device with it and restore
    that generator's previous state afterwards (``get_state``/``set_state``; the global seed
    ``sionna.phy.config.seed`` and ``torch``'s default generators are left untouched). Hence the same
    seed (same device type, same options, same batch shape and ``drops_per_call``) gives the same
    channels, and successive calls with one generator give fresh drops. Sionna runs in
    ``precision="single"`` by default regardless of the requested ``dtype``, so complex64 and
    complex128 outputs of one seed are the same drops (the complex128 output is the cast
    complex64 channel, normalised in double precision). Not reproducible under ``torch.compile``
    (Sionna then uses the global RNG).

Cost
    Sionna is called once per chunk of ``drops_per_call`` drops (it batches over topologies); there
    is no Python loop over users or antennas. Memory and time grow with ``drops * K * N`` (times the
    ~20 clusters x 20 rays of the model).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math

import torch

from .._validation import check_bool, check_int, check_one_of, check_positive, check_probability
from .base import ChannelModel

__all__ = ["THREEGPP_SOURCES", "TR38901Channel", "make_3gpp_source"]

THREEGPP_SOURCES = ("3gpp-umi", "3gpp-uma", "3gpp-rma")
_SCENARIOS = ("umi", "uma", "rma")
_PATTERNS = ("38.901", "omni")
_SEED_HIGH = 1 << 62
# Default chunk: drops * K * N per Sionna call. Peak memory is ~10 kB per user-antenna pair of a
# drop (single precision), so 2**16 pairs (256 drops at K=4, N=64) stay below ~1 GB.
_USER_ANTENNAS_PER_CALL = 1 << 16


def _sionna():
    try:
        from sionna.phy import config
        from sionna.phy.channel import cir_to_ofdm_channel, gen_single_sector_topology
        from sionna.phy.channel.tr38901 import PanelArray, RMa, UMa, UMi
        from sionna.phy.channel.utils import set_3gpp_scenario_parameters
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("3GPP TR 38.901 channels need Sionna 2.x (pip install sionna-no-rt)") from e
    return {
        "config": config,
        "cir_to_ofdm_channel": cir_to_ofdm_channel,
        "gen_single_sector_topology": gen_single_sector_topology,
        "set_3gpp_scenario_parameters": set_3gpp_scenario_parameters,
        "PanelArray": PanelArray,
        "umi": UMi,
        "uma": UMa,
        "rma": RMa,
    }


def _sionna_version() -> str | None:
    for dist in ("sionna-no-rt", "sionna"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _sionna_device(device: torch.device) -> str:
    """Sionna's device string (``"cpu"``, ``"cuda:i"``)."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index}"
    if device.type != "cpu":
        raise ValueError(f"TR 38.901 channels run on cpu or cuda devices, got {device}")
    return "cpu"


@contextlib.contextmanager
def _seeded_sionna_rng(config, device: str, seed: int):
    """Re-seed Sionna's generator for ``device`` with ``seed``; restore its state on exit."""
    rng = config.torch_rng(device)
    state = rng.get_state()
    rng.manual_seed(seed)
    try:
        yield
    finally:
        rng.set_state(state)


class TR38901Channel(ChannelModel):
    """Narrowband 3GPP TR 38.901 UMi/UMa/RMa channels from Sionna, one single-sector drop per sample.

    See the module docstring for the model, the conjugation, the normalisation and the seeding.
    Output ``[*batch, K, N]`` (``[*batch, K, 1, N]`` with ``squeeze_rx=False``), row ``k`` = ``h_k^H``.

    Args:
        scenario: ``"umi"`` (urban micro, street canyon), ``"uma"`` (urban macro) or ``"rma"`` (rural macro).
        num_users: K, users per drop (one antenna each).
        num_bs_antennas: N, elements of the BS ULA.
        carrier_frequency: Hz (default 3.5 GHz; also sets the half-wavelength element spacing).
        normalize: scale each user's channel to ``||h_k||^2 = N`` (default) or keep path loss.
        indoor_probability: probability that a user is indoor (``None``: Sionna's default, 0.8 for
            UMi/UMa, 0.5 for RMa, where the outdoor users count as in-car per TR 38.901 Table 7.2-3).
        min_bs_ut_dist: minimum BS-user 3D distance in m (``None``: 10 UMi, 35 UMa/RMa).
        isd: inter-site distance in m; users lie within ``isd / 2`` of the BS along the sector axis
            (``None``: 200 UMi, 500 UMa, 5000 RMa).
        bs_height: BS height in m (``None``: 10 UMi, 25 UMa, 35 RMa). Users are at 1.5 m.
        o2i_model: ``"low"`` or ``"high"`` outdoor-to-indoor penetration loss (UMi/UMa; RMa has a
            single O2I model and ignores it).
        bs_antenna_pattern: ``"38.901"`` (default) or ``"omni"`` BS element pattern.
        enable_shadow_fading: Sionna's log-normal shadow fading (only visible with ``normalize=False``).
        spec_version: TR 38.901 parameter tables used by Sionna (``"19.2"`` default, or ``"16.1"``).
        precision: Sionna's internal precision, ``"single"`` (default) or ``"double"`` (different
            random streams, so different drops for the same seed).
        drops_per_call: drops per Sionna call (memory/speed trade-off; part of the sampling, so it
            must match for two calls with one seed to agree). ``None``: ``max(1, 65536 // (K N))``
            (256 drops at K=4, N=64; peak memory ~10 kB per drop, user and antenna).
    """

    def __init__(
        self,
        scenario: str,
        num_users: int,
        num_bs_antennas: int,
        *,
        carrier_frequency: float = 3.5e9,
        normalize: bool = True,
        indoor_probability: float | None = None,
        min_bs_ut_dist: float | None = None,
        isd: float | None = None,
        bs_height: float | None = None,
        o2i_model: str = "low",
        bs_antenna_pattern: str = "38.901",
        enable_shadow_fading: bool = True,
        spec_version: str = "19.2",
        precision: str = "single",
        drops_per_call: int | None = None,
    ):
        self.scenario = check_one_of(
            "scenario", scenario.lower() if isinstance(scenario, str) else scenario, _SCENARIOS
        )
        self.num_users = check_int("num_users", num_users, 1)
        self.num_bs_antennas = check_int("num_bs_antennas", num_bs_antennas, 1)
        self.num_rx_antennas = 1
        self.carrier_frequency = check_positive("carrier_frequency", carrier_frequency)
        self.normalize = check_bool("normalize", normalize)
        check_one_of("o2i_model", o2i_model, ("low", "high"))
        self.o2i_model = o2i_model if self.scenario != "rma" else None
        self.bs_antenna_pattern = check_one_of("bs_antenna_pattern", bs_antenna_pattern, _PATTERNS)
        self.enable_shadow_fading = check_bool("enable_shadow_fading", enable_shadow_fading)
        self.spec_version = check_one_of("spec_version", spec_version, ("19.2", "16.1"))
        self.precision = check_one_of("precision", precision, ("single", "double"))
        if drops_per_call is None:
            drops_per_call = max(1, _USER_ANTENNAS_PER_CALL // (self.num_users * self.num_bs_antennas))
        self.drops_per_call = check_int("drops_per_call", drops_per_call, 1)

        # Resolve Sionna's scenario defaults now, so describe() records the actual drop geometry.
        if indoor_probability is not None:
            check_probability("indoor_probability", indoor_probability)
        for name, value in (("min_bs_ut_dist", min_bs_ut_dist), ("isd", isd), ("bs_height", bs_height)):
            if value is not None:
                check_positive(name, value)
        sn = _sionna()
        params = sn["set_3gpp_scenario_parameters"](
            self.scenario,
            min_bs_ut_dist,
            isd,
            bs_height,
            None,
            None,
            indoor_probability,
            precision="double",
            device="cpu",
        )
        (d_min, isd_t, h_bs, h_ut_min, h_ut_max, p_in, _, _) = (float(p) for p in params)
        self.min_bs_ut_dist = d_min
        self.isd = isd_t
        self.bs_height = h_bs
        self.ut_height = h_ut_min if h_ut_min == h_ut_max else (h_ut_min, h_ut_max)
        self.indoor_probability = p_in
        if not self.isd / 2 > self.min_bs_ut_dist:
            raise ValueError(f"isd / 2 ({self.isd / 2}) must exceed min_bs_ut_dist ({self.min_bs_ut_dist})")

    @property
    def source(self) -> str:
        return f"3gpp-{self.scenario}"

    # -- Sionna objects ------------------------------------------------------------------------------
    def _sionna_model(self, sn, device: str):
        fc = self.carrier_frequency
        common = {
            "polarization": "single",
            "polarization_type": "V",
            "carrier_frequency": fc,
            "precision": self.precision,
            "device": device,
        }
        bs_array = sn["PanelArray"](
            num_rows_per_panel=1,
            num_cols_per_panel=self.num_bs_antennas,
            antenna_pattern=self.bs_antenna_pattern,
            element_horizontal_spacing=0.5,
            **common,
        )
        ut_array = sn["PanelArray"](num_rows_per_panel=1, num_cols_per_panel=1, antenna_pattern="omni", **common)
        kwargs = {
            "carrier_frequency": fc,
            "ut_array": ut_array,
            "bs_array": bs_array,
            "direction": "downlink",
            "enable_pathloss": True,
            "enable_shadow_fading": self.enable_shadow_fading,
            "precision": self.precision,
            "device": device,
            "spec_version": self.spec_version,
        }
        if self.scenario != "rma":
            kwargs["o2i_model"] = self.o2i_model
        return sn[self.scenario](**kwargs)

    def _drops(self, sn, num_drops: int, device: str) -> torch.Tensor:
        """``num_drops`` drops -> ``[num_drops, K, 1, N]`` in Sionna's complex dtype (uses Sionna's RNG)."""
        # A fresh model per chunk (construction is ~ms): no topology state carries over between chunks.
        model = self._sionna_model(sn, device)
        topology = sn["gen_single_sector_topology"](
            num_drops,
            self.num_users,
            self.scenario,
            min_bs_ut_dist=self.min_bs_ut_dist,
            isd=self.isd,
            bs_height=self.bs_height,
            indoor_probability=self.indoor_probability,
            precision=self.precision,
            device=device,
        )
        model.set_topology(*topology, los="random")
        a, tau = model(1, 1.0)  # [B, K, 1, 1, N, P, 1], [B, K, 1, P]; zero velocity -> t irrelevant
        zero = torch.zeros(1, dtype=tau.dtype, device=tau.device)
        h = sn["cir_to_ofdm_channel"](zero, a, tau)  # [B, K(rx), 1(rx ant), 1(tx), N(tx ant), 1, 1]
        return h[:, :, :, 0, :, 0, 0]  # [B, K, Nr=1, N]: y_k = h[k, 0, :] @ x, no conjugation

    def _sample(self, batch_shape, generator, device, dtype):
        sn = _sionna()
        device = torch.device(device)
        sdev = _sionna_device(device)
        num = math.prod(batch_shape)
        seed = int(torch.randint(0, _SEED_HIGH, (1,), generator=generator, device=device).item())
        chunks = []
        with torch.no_grad(), _seeded_sionna_rng(sn["config"], sdev, seed):
            for start in range(0, num, self.drops_per_call):
                chunks.append(self._drops(sn, min(self.drops_per_call, num - start), sdev))
        h = torch.cat(chunks).to(device=device, dtype=dtype)
        if self.normalize:
            energy = h.abs().square().sum(dim=(-2, -1), keepdim=True)  # ||h_k||^2, in dtype's precision
            scale = torch.where(energy > 0, (self.num_bs_antennas / energy).sqrt(), torch.zeros_like(energy))
            h = h * scale
        return h.reshape(*batch_shape, self.num_users, 1, self.num_bs_antennas)

    def describe(self) -> dict:
        return {
            "source": self.source,
            "scenario": self.scenario,
            "num_users": self.num_users,
            "num_bs_antennas": self.num_bs_antennas,
            "carrier_frequency": self.carrier_frequency,
            "bs_array": {
                "type": "ULA",
                "num_elements": self.num_bs_antennas,
                "element_spacing_wavelengths": 0.5,
                "orientation": "horizontal (Sionna PanelArray 1 x N), pointed at the sector centre",
                "polarization": "single, V",
                "element_pattern": self.bs_antenna_pattern,
            },
            "ut_array": "single omni antenna, V polarization",
            "normalize": self.normalize,
            "normalization": "per user ||h_k||^2 = N (path loss and shadowing removed)"
            if self.normalize
            else "none (path loss, shadow fading and penetration losses kept)",
            "narrowband": "sum of path coefficients at baseband f = 0 (cir_to_ofdm_channel at the carrier)",
            "topology": "gen_single_sector_topology, one drop per sample, zero UT velocity",
            "indoor_probability": self.indoor_probability,
            "min_bs_ut_dist": self.min_bs_ut_dist,
            "isd": self.isd,
            "bs_height": self.bs_height,
            "ut_height": self.ut_height,
            "o2i_model": self.o2i_model,
            "enable_shadow_fading": self.enable_shadow_fading,
            "spec_version": self.spec_version,
            "precision": self.precision,
            "drops_per_call": self.drops_per_call,
            "sionna_version": _sionna_version(),
        }


def make_3gpp_source(name: str, num_users: int, num_antennas: int, **options) -> TR38901Channel:
    """:class:`TR38901Channel` for ``name`` in ``"3gpp-umi"``, ``"3gpp-uma"``, ``"3gpp-rma"``.

    ``options`` are the keyword arguments of :class:`TR38901Channel`.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in THREEGPP_SOURCES:
        raise ValueError(f"unknown 3GPP channel source {name!r}; choose one of {THREEGPP_SOURCES}")
    return TR38901Channel(key.split("-", 1)[1], num_users, num_antennas, **options)
