"""Paired uplink/downlink channel generators of the uplink model-driven beamforming paper.

Zhang, You, Zheng, Krikidis, Zhao, "Model-driven learning for generic MIMO downlink beamforming with
uplink channel information" (spec ``uplink-model-driven-bf.md``, sections 2.2-2.4 and 3.1-3.3). The base
station knows the uplink channel and must serve the downlink; the UL->DL map is deterministic but
unknown. Each model draws both channels of a sample at once:

* ``h_dl`` ``[*B, K, N]``: the library's downlink layout, row ``k`` = ``h_{D,k}^H`` (so the paper's
  ``H_D`` ``[N, K]`` is ``h_dl.mH``; ``y_k = h_dl[..., k, :] @ x``);
* ``h_ul`` ``[*B, N, K]``: the paper's own layout ``H_U``, column ``k`` = user ``k``'s uplink channel
  ``h_{U,k}``.

Models:

* :class:`SquaredMapChannel` (S0, spec 3.1): ``H_U`` i.i.d. CN(0, 1), ``H_D = H_U ** 2`` element-wise
  (the complex square).
* :class:`MismatchRayleighChannel` (S1, spec 3.2, eq. 38): ``H_U`` i.i.d. CN(0, 1),
  ``h_{D,k} = c Phi h_{U,k}`` (TDD with non-reciprocal RF front ends).
* :class:`RayUplinkChannel` (S2, spec 3.3, eq. 40): FDD ULA ray model at ``f_u = 2.5`` GHz (uplink) and
  ``f_d = 2.4`` GHz (downlink), with the same fixed ``c Phi`` mismatch.

The mismatch ``(c, Phi)`` is drawn once per model from ``system_seed`` (on the CPU, in float64,
independently of the per-sample generator) and held fixed for every draw: ``Phi`` a Haar-random
``N x N`` unitary, ``c ~ CN(0, 1)`` one common scalar (``c_mode="common_fixed"``, the spec's DEFAULT),
one scalar per user (``"per_user_fixed"``) or redrawn for every sample and user from the sample
generator (``"per_sample"``; the map is then no longer deterministic, see spec 3.2).

Every model is a :class:`~beamlearn.channels.base.ChannelModel` whose call returns the downlink alone;
:meth:`UplinkPairChannel.pair` returns both (``paired = True`` marks such models). The same seed gives
the same pair, and ``model(b, seed=s)`` equals ``model.pair(b, seed=s)[0]``.

Example:
    >>> model = MismatchRayleighChannel(num_users=4, num_bs_antennas=4)
    >>> h_dl, h_ul = model.pair(8, seed=1, dtype=torch.complex128)
    >>> h_dl.shape, h_ul.shape
    (torch.Size([8, 4, 4]), torch.Size([8, 4, 4]))
    >>> torch.allclose(h_dl.mH, model.c * model.phi @ h_ul)
    True
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._dtypes import real_dtype
from .._validation import check_int, check_nonnegative, check_one_of, check_positive, check_real
from .arrays import ULA
from .base import ChannelModel, complex_normal

__all__ = [
    "C_MODES",
    "MismatchRayleighChannel",
    "RayPaths",
    "RayUplinkChannel",
    "SquaredMapChannel",
    "UplinkPairChannel",
    "fixed_mismatch",
    "haar_unitary",
]

C_MODES = ("common_fixed", "per_user_fixed", "per_sample")
PATH_GAINS = ("rayleigh_amplitude", "complex_gaussian")
PHASE_MODES = ("common", "band_specific")
PATH_NORMALIZATIONS = ("none", "sqrt_paths")

# steering tensors of the ray model hold [chunk, K, Lp, N] entries: build the channels in chunks of the
# batch that keep each of them under this many entries (the result does not depend on the chunking)
_RAY_CHUNK_ENTRIES = 2**24


def haar_unitary(n: int, generator: torch.Generator | None = None, dtype=torch.complex128) -> torch.Tensor:
    """A Haar-distributed ``n x n`` unitary matrix.

    QR decomposition ``G = Q R`` of a complex Gaussian matrix with the phase fix ``Q diag(r_ii / |r_ii|)``
    (without it ``Q`` is not Haar distributed; Mezzadri, Notices AMS 2007). Drawn on the CPU in float64.

    Example:
        >>> u = haar_unitary(3, torch.Generator().manual_seed(0))
        >>> torch.allclose(u @ u.mH, torch.eye(3, dtype=u.dtype))
        True
    """
    n = check_int("n", n, 1)
    g = complex_normal((n, n), generator, "cpu", torch.complex128)
    q, r = torch.linalg.qr(g)
    d = torch.diagonal(r)
    return (q * (d / d.abs())).to(dtype)


def fixed_mismatch(
    num_bs_antennas: int, num_users: int, *, system_seed: int = 0, c_mode: str = "common_fixed"
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The fixed UL/DL mismatch ``(c, Phi)`` of a system (spec 3.2, eq. 38), complex128 on the CPU.

    Two CPU generators, whose seeds ``numpy.random.SeedSequence(system_seed)`` spawns, draw ``Phi`` (Haar
    unitary ``[N, N]``, see :func:`haar_unitary`) and ``c ~ CN(0, 1)``: a 0-d tensor for
    ``c_mode="common_fixed"``, ``[K]`` for ``"per_user_fixed"``, ``None`` for ``"per_sample"`` (then every
    sample draws its own ``c``). Separate streams keep ``c`` independent of ``N``: one system seed gives
    the same ``c`` (the same downlink gain ``|c|^2``) at every size, so a sweep over ``N = K`` compares
    like with like, and user ``k``'s ``c_k`` does not depend on ``K``.

    Example:
        >>> c, phi = fixed_mismatch(4, 2, system_seed=3)
        >>> c.shape, phi.shape
        (torch.Size([]), torch.Size([4, 4]))
    """
    n = check_int("num_bs_antennas", num_bs_antennas, 1)
    k = check_int("num_users", num_users, 1)
    seed = check_int("system_seed", system_seed, 0, 2**63 - 1)
    check_one_of("c_mode", c_mode, C_MODES)
    phi_seed, c_seed = (int(s.generate_state(1, np.uint64)[0]) >> 1 for s in np.random.SeedSequence(seed).spawn(2))
    phi = haar_unitary(n, torch.Generator(device="cpu").manual_seed(phi_seed))
    if c_mode == "per_sample":
        return None, phi
    # (re, im) pairs drawn user after user by NumPy's sequential normal sampler (torch.randn changes its
    # algorithm with the size), so c_k is the same for every K > k.
    pairs = np.random.default_rng(c_seed).standard_normal((k, 2)) * math.sqrt(0.5)
    c = torch.view_as_complex(torch.from_numpy(pairs))
    return (c if c_mode == "per_user_fixed" else c[0]), phi


class UplinkPairChannel(ChannelModel):
    """A channel source that draws each sample's downlink and uplink channels together.

    Subclasses implement :meth:`_sample_pair`; :meth:`pair` returns ``(h_dl [*B, K, N], h_ul [*B, N, K])``
    (see the module docstring for the two layouts), and calling the model returns the downlink alone
    (``[*B, K, N]``), so a paired model works wherever a :class:`ChannelModel` does. Single-antenna users.

    Subclasses with a UL/DL mismatch call :meth:`_init_mismatch` in their constructor; ``c`` and ``phi``
    then hold the fixed mismatch (complex128, CPU), moved to the device and dtype of each draw.
    """

    num_rx_antennas = 1
    paired = True

    def pair(
        self,
        batch_size: int | Sequence[int],
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.complex64,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``(h_dl [*B, K, N], h_ul [*B, N, K])``; the arguments are those of :class:`ChannelModel`'s call.

        ``batch_size`` is an int or a shape ``B``; ``seed`` (or a ``generator``, not both) makes the draw
        reproducible on a given device type; ``dtype`` is ``torch.complex64`` or ``torch.complex128``.
        """
        batch_shape, generator, device, dtype = self._draw_setup(batch_size, seed, generator, device, dtype)
        return self._sample_pair(batch_shape, generator, device, dtype)

    @abc.abstractmethod
    def _sample_pair(self, batch_shape: tuple[int, ...], generator, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(h_dl [*batch_shape, K, N], h_ul [*batch_shape, N, K])``."""

    def _sample(self, batch_shape, generator, device, dtype):
        return self._sample_pair(batch_shape, generator, device, dtype)[0].unsqueeze(-2)

    # -- the fixed mismatch c Phi -----------------------------------------------------------------
    def _init_mismatch(self, system_seed: int, c_mode: str) -> None:
        self.system_seed = check_int("system_seed", system_seed, 0, 2**63 - 1)
        self.c_mode = check_one_of("c_mode", c_mode, C_MODES)
        self._c, self._phi = fixed_mismatch(
            self.num_bs_antennas, self.num_users, system_seed=self.system_seed, c_mode=self.c_mode
        )

    @property
    def c(self) -> torch.Tensor | None:
        """The fixed user-side mismatch: 0-d (``"common_fixed"``), ``[K]`` (``"per_user_fixed"``) or ``None``
        (``"per_sample"``), complex128 on the CPU."""
        return self._c

    @property
    def phi(self) -> torch.Tensor:
        """The fixed BS-side mismatch ``Phi`` ``[N, N]`` (Haar unitary), complex128 on the CPU."""
        return self._phi

    def _draw_c(self, batch_shape, generator, device, dtype) -> torch.Tensor | None:
        """Per-sample ``c`` ``[*B, K]`` ~ CN(0, 1) (``c_mode="per_sample"``), else ``None`` (no draw)."""
        if self.c_mode != "per_sample":
            return None
        return complex_normal((*batch_shape, self.num_users), generator, device, dtype)

    def _mismatch(self, g: torch.Tensor, c_sample: torch.Tensor | None) -> torch.Tensor:
        """``H_D = c Phi G`` ``[*B, N, K]`` from ``G`` ``[*B, N, K]`` (column k multiplied by ``c_k``)."""
        phi = self._phi.to(device=g.device, dtype=g.dtype)
        c = c_sample if self.c_mode == "per_sample" else self._c.to(device=g.device, dtype=g.dtype)
        return (phi @ g) * c[..., None, :] if c.dim() else (phi @ g) * c


def _downlink_rows(hd: torch.Tensor) -> torch.Tensor:
    """The library's downlink ``h_dl = H_D^H`` ``[*B, K, N]`` from the paper's ``H_D`` ``[*B, N, K]``."""
    return hd.mH.contiguous()


class SquaredMapChannel(UplinkPairChannel):
    """Scenario S0 (spec 3.1, the toy nonlinear map of Fig. 2): ``H_U`` has i.i.d. CN(0, 1) entries and
    the downlink is their complex square, ``H_D[i, k] = H_U[i, k] ** 2``, so ``h_dl.mH == h_ul ** 2``.

    ``E|H_U[i, k]|^2 = 1`` and ``E|H_D[i, k]|^2 = 2``. The uplink is the transpose of
    :class:`~beamlearn.channels.rayleigh.RayleighChannel`'s draw with the same seed.

    Args:
        num_users: K >= 1.
        num_bs_antennas: N_t >= 1 (the paper uses N_t = K in {2, ..., 10}).

    Example:
        >>> h_dl, h_ul = SquaredMapChannel(3, 3).pair(5, seed=0)
        >>> torch.equal(h_dl.mH, h_ul**2)
        True
    """

    def __init__(self, num_users: int, num_bs_antennas: int):
        self.num_users = check_int("num_users", num_users, 1)
        self.num_bs_antennas = check_int("num_bs_antennas", num_bs_antennas, 1)

    def _sample_pair(self, batch_shape, generator, device, dtype):
        u = complex_normal((*batch_shape, self.num_users, self.num_bs_antennas), generator, device, dtype)
        h_ul = u.mT.contiguous()  # [*B, N, K]
        return _downlink_rows(h_ul**2), h_ul


class MismatchRayleighChannel(UplinkPairChannel):
    """Scenario S1 (spec 3.2, eq. 38): TDD with non-reciprocal front ends.

    ``H_U`` has i.i.d. CN(0, 1) entries and ``h_{D,k} = c Phi h_{U,k}`` (``H_D = c Phi H_U``), with the
    fixed mismatch ``(c, Phi)`` of :func:`fixed_mismatch` (``c`` per user for ``"per_user_fixed"``, per
    sample and user for ``"per_sample"``). So ``h_dl.mH == c * phi @ h_ul`` and ``H_D ~ CN(0, |c|^2)``
    entry-wise: the SNR seen by the downlink is scaled by ``|c|^2``.

    Args:
        num_users: K >= 1.
        num_bs_antennas: N_t >= 1 (the paper uses N_t = K in {2, ..., 8}).
        system_seed: seed of the fixed ``(c, Phi)``, an integer in [0, 2**63 - 1] (default 0).
        c_mode: ``"common_fixed"`` (default), ``"per_user_fixed"`` or ``"per_sample"``.

    Example:
        >>> model = MismatchRayleighChannel(2, 4, c_mode="per_user_fixed")
        >>> h_dl, h_ul = model.pair(3, seed=0, dtype=torch.complex128)
        >>> torch.allclose(h_dl.mH, model.phi @ h_ul * model.c)
        True
    """

    def __init__(self, num_users: int, num_bs_antennas: int, *, system_seed: int = 0, c_mode: str = "common_fixed"):
        self.num_users = check_int("num_users", num_users, 1)
        self.num_bs_antennas = check_int("num_bs_antennas", num_bs_antennas, 1)
        self._init_mismatch(system_seed, c_mode)

    def _sample_pair(self, batch_shape, generator, device, dtype):
        u = complex_normal((*batch_shape, self.num_users, self.num_bs_antennas), generator, device, dtype)
        h_ul = u.mT.contiguous()  # [*B, N, K]
        c = self._draw_c(batch_shape, generator, device, dtype)
        return _downlink_rows(self._mismatch(h_ul, c)), h_ul


@dataclass
class RayPaths:
    """Path parameters of a :class:`RayUplinkChannel` draw, each ``[*B, K, Lp]`` unless noted.

    Attributes:
        gains: ``alpha_{u,l}``: real Rayleigh amplitudes (``path_gain="rayleigh_amplitude"``) or complex
            CN(0, 1) gains (``"complex_gaussian"``); ``E|alpha|^2 = 1``.
        angles: angles of arrival / departure ``theta_l`` (radians).
        delays: ``tau_l`` (seconds).
        phases: the frequency-independent phases ``phi_l`` (radians).
        c: per-sample mismatch ``[*B, K]`` (``c_mode="per_sample"``), else ``None``.
    """

    gains: torch.Tensor
    angles: torch.Tensor
    delays: torch.Tensor
    phases: torch.Tensor
    c: torch.Tensor | None = None


class RayUplinkChannel(UplinkPairChannel):
    """Scenario S2 (spec 3.3, eq. 40): single-cell massive-MIMO FDD ULA ray model.

    For user k (independently across users and samples), with ``L_p`` paths,

        h_{U,k} = s sum_l alpha_l e^{j psi_{u,l}} a_u(theta_l),
        h_{D,k} = s c Phi sum_l alpha_l^2 e^{j psi_{d,l}} a_d(theta_l),

    with ``s = 1`` (``path_normalization="none"``, literal (40)) or ``1/sqrt(L_p)`` (``"sqrt_paths"``) and
    the unnormalised ULA responses of eq. (19), ``a(theta)[n] = exp(-j 2 pi (d / lambda) n sin theta)``,
    ``n = 0..N-1``, spacing ``d = antenna_spacing * lambda_d`` (default ``lambda_d / 2``), so the downlink
    phase step is ``2 pi antenna_spacing sin theta`` (``pi sin theta``) and the uplink one
    ``f_u / f_d`` times that.

    DEFAULTs of spec 3.3 (all configurable):

    * the mean angle of user k is ``U[-pi/2, pi/2]`` per user and sample; path angles are
      ``U[mean - spread/2, mean + spread/2]`` with total spread ``angle_spread = pi/6``;
    * ``tau_l ~ U[0, max_delay]``, ``max_delay = 1e-4`` s; ``phi_l ~ U[-pi, pi]``;
    * ``path_gain="rayleigh_amplitude"``: ``alpha_l = |g_l|``, ``g_l ~ CN(0, 1)`` (a real Rayleigh amplitude,
      ``E alpha^2 = 1``), so with ``phase_mode="common"`` the downlink path coefficient is ``|beta_l| beta_l``
      with ``beta_l = alpha_l e^{j psi_l}`` the uplink one: ``h_D`` is a deterministic function of the uplink
      paths. ``"complex_gaussian"``: ``alpha_l = g_l`` complex and the downlink gain its complex square
      (literal (40) with complex gains: not identifiable from the uplink);
    * ``phase_mode="common"``: ``psi_{u,l} = psi_{d,l} = -2 pi f_d tau_l + phi_l``; ``"band_specific"``:
      ``psi_{u,l} = -2 pi f_u tau_l + phi_l`` and ``psi_{d,l} = -2 pi f_d tau_l + phi_l`` (eq. 4; the
      downlink phase is then unpredictable from the uplink). The delay phase is reduced modulo 2 pi in
      float64 before the cast, so complex64 draws keep full phase accuracy;
    * ``c Phi`` fixed per system as in :class:`MismatchRayleighChannel`.

    ``E|H_U[i, k]|^2 = L_p`` (``"none"``) or 1 (``"sqrt_paths"``). :meth:`sample_paths` and
    :meth:`pair_from_paths` expose the path parameters (e.g. for other geometries).

    Args:
        num_users: K >= 1.
        num_bs_antennas: N_t >= 1 (the paper: 64; its Fig. 5 caption: 32).
        num_paths: L_p >= 1 (default 10).
        angle_spread: total angular spread of a user's paths in radians, in [0, 2 pi] (default pi/6).
        max_delay: largest path delay in seconds, >= 0 (default 1e-4).
        uplink_frequency, downlink_frequency: f_u and f_d in Hz, > 0 (defaults 2.5e9 and 2.4e9).
        antenna_spacing: element spacing in downlink wavelengths, > 0 (default 0.5).
        path_gain: ``"rayleigh_amplitude"`` (default) or ``"complex_gaussian"``.
        phase_mode: ``"common"`` (default) or ``"band_specific"``.
        path_normalization: ``"none"`` (default) or ``"sqrt_paths"``.
        system_seed: seed of the fixed ``(c, Phi)``, an integer in [0, 2**63 - 1] (default 0).
        c_mode: ``"common_fixed"`` (default), ``"per_user_fixed"`` or ``"per_sample"``.

    Example:
        >>> model = RayUplinkChannel(num_users=2, num_bs_antennas=8)
        >>> h_dl, h_ul = model.pair(4, seed=0)
        >>> h_dl.shape, h_ul.shape
        (torch.Size([4, 2, 8]), torch.Size([4, 8, 2]))
    """

    def __init__(
        self,
        num_users: int,
        num_bs_antennas: int,
        *,
        num_paths: int = 10,
        angle_spread: float = math.pi / 6,
        max_delay: float = 1e-4,
        uplink_frequency: float = 2.5e9,
        downlink_frequency: float = 2.4e9,
        antenna_spacing: float = 0.5,
        path_gain: str = "rayleigh_amplitude",
        phase_mode: str = "common",
        path_normalization: str = "none",
        system_seed: int = 0,
        c_mode: str = "common_fixed",
    ):
        self.num_users = check_int("num_users", num_users, 1)
        self.num_bs_antennas = check_int("num_bs_antennas", num_bs_antennas, 1)
        self.num_paths = check_int("num_paths", num_paths, 1)
        self.angle_spread = check_real("angle_spread", angle_spread, 0.0, 2 * math.pi)
        self.max_delay = check_nonnegative("max_delay", max_delay)
        self.uplink_frequency = check_positive("uplink_frequency", uplink_frequency)
        self.downlink_frequency = check_positive("downlink_frequency", downlink_frequency)
        self.antenna_spacing = check_positive("antenna_spacing", antenna_spacing)
        self.path_gain = check_one_of("path_gain", path_gain, PATH_GAINS)
        self.phase_mode = check_one_of("phase_mode", phase_mode, PHASE_MODES)
        self.path_normalization = check_one_of("path_normalization", path_normalization, PATH_NORMALIZATIONS)
        self._init_mismatch(system_seed, c_mode)

    def sample_paths(self, batch_shape: tuple[int, ...], generator, device, dtype) -> RayPaths:
        """Draw the path parameters ``[*batch_shape, K, Lp]`` (see :class:`RayPaths`) in the real dtype of
        ``dtype``: mean angles, angle offsets, gains, delays, phases, then ``c`` (``"per_sample"`` only)."""
        rdtype = real_dtype(dtype)
        shape = (*batch_shape, self.num_users, self.num_paths)
        u = lambda s: torch.rand(s, generator=generator, device=device, dtype=rdtype)  # noqa: E731
        mean = math.pi * (u((*batch_shape, self.num_users, 1)) - 0.5)
        angles = mean + self.angle_spread * (u(shape) - 0.5)
        g = complex_normal(shape, generator, device, dtype)
        gains = g.abs() if self.path_gain == "rayleigh_amplitude" else g
        delays = self.max_delay * u(shape)
        phases = math.pi * (2 * u(shape) - 1)
        c = self._draw_c(batch_shape, generator, device, dtype)
        return RayPaths(gains=gains, angles=angles, delays=delays, phases=phases, c=c)

    def _path_phase(self, paths: RayPaths, frequency: float, rdtype) -> torch.Tensor:
        """``psi = -2 pi f tau + phi``, with the delay term reduced modulo 2 pi in float64."""
        delay = torch.remainder(-2 * math.pi * frequency * paths.delays.to(torch.float64), 2 * math.pi)
        return delay.to(rdtype) + paths.phases.to(rdtype)

    def pair_from_paths(self, paths: RayPaths, dtype=torch.complex64) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h_dl [*B, K, N], h_ul [*B, N, K])`` from path parameters ``[*B, K, Lp]`` (any leading shape ``B``).

        Built in chunks of the flattened batch (the result does not depend on the chunking).
        """
        rdtype = real_dtype(dtype)
        batch_shape = paths.angles.shape[:-2]
        k, lp, n = self.num_users, self.num_paths, self.num_bs_antennas
        if paths.angles.shape[-2:] != (k, lp):
            raise ValueError(f"paths must be [..., K={k}, Lp={lp}], got angles of shape {tuple(paths.angles.shape)}")
        psi_d = self._path_phase(paths, self.downlink_frequency, rdtype)
        psi_u = psi_d if self.phase_mode == "common" else self._path_phase(paths, self.uplink_frequency, rdtype)
        alpha = paths.gains.to(dtype)
        b_u = alpha * torch.polar(torch.ones_like(psi_u), psi_u).to(dtype)  # [*B, K, Lp]
        b_d = alpha**2 * torch.polar(torch.ones_like(psi_d), psi_d).to(dtype)
        ul_array = ULA(n, self.antenna_spacing * self.uplink_frequency / self.downlink_frequency, normalize=False)
        dl_array = ULA(n, self.antenna_spacing, normalize=False)

        angles = paths.angles.to(rdtype).reshape(-1, k, lp)
        b_u, b_d = b_u.reshape(-1, k, lp), b_d.reshape(-1, k, lp)
        chunk = max(1, _RAY_CHUNK_ENTRIES // (k * lp * n))
        g_u, g_d = [], []
        for s in range(0, angles.shape[0], chunk):
            th = angles[s : s + chunk]
            # eq. (19): a(theta)[n] = exp(-j 2 pi (d / lambda) n sin theta), the conjugate of ULA.response
            a_u = ul_array.response(th, dtype=dtype).conj()  # [b, K, Lp, N]
            a_d = dl_array.response(th, dtype=dtype).conj()
            g_u.append((b_u[s : s + chunk, :, None, :] @ a_u).squeeze(-2))  # [b, K, N]
            g_d.append((b_d[s : s + chunk, :, None, :] @ a_d).squeeze(-2))
        g_u = torch.cat(g_u).reshape(*batch_shape, k, n)
        g_d = torch.cat(g_d).reshape(*batch_shape, k, n)
        if self.path_normalization == "sqrt_paths":
            g_u = g_u / math.sqrt(lp)
            g_d = g_d / math.sqrt(lp)
        h_ul = g_u.mT.contiguous()  # [*B, N, K]
        c = None if paths.c is None else paths.c.to(dtype)
        if self.c_mode == "per_sample" and c is None:
            raise ValueError("c_mode='per_sample' needs paths.c, the per-sample mismatch [..., K]")
        return _downlink_rows(self._mismatch(g_d.mT, c)), h_ul

    def _sample_pair(self, batch_shape, generator, device, dtype):
        return self.pair_from_paths(self.sample_paths(batch_shape, generator, device, dtype), dtype)
