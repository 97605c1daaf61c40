"""Ray-traced channels from Sionna RT scenes (optional dependency ``sionna-rt``).

:class:`RayTracedChannel` places one base station (BS) with a half-wavelength ULA in a Sionna RT scene
(``munich``, ``etoile``, ``florence``, ``san_francisco``, ``simple_street_canyon`` or a Mitsuba XML
file) and, for every drop, draws ``K`` single-antenna user positions with adequate coverage and traces
the propagation paths BS -> users.

Model
-----
* **Arrays.** BS: Sionna ``PlanarArray`` with 1 row and ``N`` columns, i.e. ``N`` elements spaced half a
  wavelength along the array's local y-axis (the local x-axis is the boresight, rotated by
  ``bs_orientation``), element pattern ``"iso"`` (default) or ``"tr38901"``, single vertical ("V")
  polarisation. Users: one isotropic "V" antenna at ``user_height`` metres above the scene origin
  (z = ``user_height``). Arrays are synthetic (one ray trace from the array centre, per-element
  phases by the plane-wave model, as in Sionna's ``synthetic_array=True``).
* **Narrowband channel at the carrier.** With ``a_p`` and ``tau_p`` Sionna's passband path coefficients
  (``Paths.a``) and delays (``Paths.tau``) the channel of user ``k`` is the baseband frequency response at
  ``f = 0`` without delay normalisation,

      ``H[k, n] = sum_p a_p[k, n] exp(-j 2 pi f_c tau_p[k])``

  (``Paths.cfr(frequencies=[0], normalize_delays=False)``, summed here in float64). It is the complex
  gain from BS element ``n`` to user ``k`` at the carrier frequency ``f_c``.
* **Conjugation.** Sionna's ``a`` has shape ``[num_rx, num_rx_ant, num_tx, num_tx_ant, num_paths]`` with
  ``y = H x``, so the received signal of user ``k`` is ``y_k = sum_n H[k, 0, 0, n] x_n``: our row ``k``
  (``h_k^H`` in :doc:`conventions`) is ``H[k, 0, 0, :]`` as is, without conjugation. (Checked against the
  free-space response ``lambda / (4 pi d_n) exp(-j 2 pi d_n / lambda)`` of each element, see
  ``tests/test_raytraced.py``.) In the steering-vector convention of :mod:`beamlearn.channels.arrays`
  a single path leaving towards the unit vector ``u`` contributes ``c a_t(u)^T`` (not ``a_t(u)^H``) to the row.
* **User drops.** On first use the scene is loaded and a radio map (path gain of one BS element with the
  same pattern and orientation, ``radio_map_samples`` rays, ``radio_map_cell_size`` cells on the plane
  z = ``user_height``, same interaction types and ``max_depth`` as the paths) is computed once and cached.
  Users are drawn uniformly over the cells whose path gain lies in ``[min_gain_db, max_gain_db]`` and
  whose centre lies ``[min_distance, max_distance]`` metres (3D) from the BS, then uniformly within the
  cell -- the same rule as ``RadioMap.sample_positions`` -- but with random numbers from the torch
  generator passed to the model, so the same seed gives the same drops. With ``outdoor_only=True``
  (default) cells and positions with any geometry straight above them (inside buildings, under terrain)
  are excluded. A user whose traced channel is zero is redrawn, so every returned channel is non-zero:
  the radio map (rays crossing the user plane, averaged over a cell) reaches cells where the path solver
  finds no path with at most ``max_depth`` interactions -- about 20 % of the first draws in ``munich`` with
  the defaults -- so users are uniform over the covered cells *conditioned on having a traced path*.
* **Normalisation.** ``normalize=True`` (default) scales each user's channel to ``||h_k||^2 = N``
  (large-scale gain removed, per-user small-scale structure kept); ``normalize=False`` returns the raw
  channel (amplitudes ~ 1e-4 ... 1e-7, path gain in dB is ``10 log10(||h_k||^2 / N)`` for the iso pattern).

All paths of many drops are traced by one ``PathSolver`` call: the ``D*K`` users of a batch of ``D``
drops are receivers of the same scene, processed in chunks of ``rx_per_call`` receivers (memory of
Sionna's deterministic candidate generator grows like ``samples_per_src * rx_per_call``). The solver runs
with ``deterministic=True`` and a seed drawn from the generator, so equal seeds give bit-identical
channels (on the same Mitsuba variant).

Requirements (CPU): ``pip install sionna-rt`` (tested with 2.2.0 / mitsuba 3.9.1 / drjit 1.5.0) and the
LLVM shared library for Dr.Jit's LLVM backend (Debian/Ubuntu: ``apt-get install libllvm19``). If
``DRJIT_LIBLLVM_PATH`` is not set, it is pointed at a libLLVM (19 preferred, else >= 15) found in the
usual system locations before ``sionna.rt`` is imported.
"""

from __future__ import annotations

import glob
import math
import os
import re
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

from .._validation import check_bool, check_int, check_nonnegative, check_one_of, check_positive, check_real
from .base import ChannelModel

__all__ = ["SCENE_DEFAULTS", "RayTracedChannel", "find_libllvm", "import_sionna_rt", "make_rt_source"]

SPEED_OF_LIGHT = 299792458.0

#: Built-in scenes and their default BS positions [m], each a few metres above a flat roof near the
#: scene centre (found by casting rays down onto the scene geometry).
SCENE_DEFAULTS: dict[str, dict] = {
    "munich": {
        "bs_position": (8.5, 21.0, 32.0),
        "note": "6 m above a 26 m roof near the scene centre (the location of Sionna's tutorials); "
        "scene about 1475 m x 1205 m",
    },
    "etoile": {
        "bs_position": (57.0, -102.0, 26.0),
        "note": "6 m above a 20 m roof south-east of the Place de l'Etoile; scene about 854 m x 676 m",
    },
    "florence": {
        "bs_position": (-77.7, -3.0, 27.0),
        "note": "6 m above a 20.7 m roof near the scene centre; scene about 1000 m x 1100 m",
    },
    "san_francisco": {
        "bs_position": (99.7, 16.8, 34.5),
        "note": "6 m above a 28.5 m roof near the scene centre; hilly terrain (ground 9 to 15 m around "
        "the BS), so the user plane z = user_height lies under the terrain in places, and those "
        "cells are excluded by outdoor_only",
    },
    "simple_street_canyon": {
        "bs_position": (-33.0, 11.0, 35.0),
        "note": "6 m above the 29 m building at x = -33 m (the tallest building is 51 m); scene about 187 m x 121 m",
    },
}

_LLVM_HELP = (
    "Sionna RT on a CPU needs the LLVM backend of Dr.Jit, i.e. the LLVM shared library (version >= 15; "
    "19 is tested). Install it, e.g. on Debian/Ubuntu `apt-get install libllvm19`, or point the "
    "environment variable DRJIT_LIBLLVM_PATH at libLLVM (e.g. /usr/lib/x86_64-linux-gnu/libLLVM-19.so) "
    "before beamlearn imports sionna.rt."
)


# ---------------------------------------------------------------------------------------------------
# Importing sionna.rt
# ---------------------------------------------------------------------------------------------------


def _llvm_version(path: str) -> int | None:
    name = os.path.basename(path)
    parent = os.path.basename(os.path.dirname(os.path.dirname(path)))  # llvm-19 in /usr/lib/llvm-19/lib
    for s in (name, parent):
        m = re.search(r"(?:LLVM-|LLVM\.so\.|llvm-|LLVM\.)(\d+)", s)
        if m:
            return int(m.group(1))
    return None


def find_libllvm() -> str | None:
    """A libLLVM shared library usable by Dr.Jit: version 19 if present, else the newest >= 15.

    Searches ``/usr/lib/llvm-*/lib``, ``/usr/lib/<multiarch>``, ``/usr/lib64``, ``/usr/local/lib``,
    ``$CONDA_PREFIX/lib`` and Homebrew's LLVM. Returns ``None`` when nothing is found.
    """
    patterns = [
        "/usr/lib/llvm-*/lib/libLLVM*.so*",
        "/usr/lib/*-linux-gnu/libLLVM*.so*",
        "/usr/lib64/libLLVM*.so*",
        "/usr/lib64/llvm*/lib*/libLLVM*.so*",
        "/usr/lib/libLLVM*.so*",
        "/usr/local/lib/libLLVM*.so*",
        "/opt/homebrew/opt/llvm*/lib/libLLVM*.dylib",
        "/usr/local/opt/llvm*/lib/libLLVM*.dylib",
    ]
    prefix = os.environ.get("CONDA_PREFIX")
    if prefix:
        patterns.append(os.path.join(prefix, "lib", "libLLVM*.so*"))
    found: dict[str, int] = {}
    for pat in patterns:
        for p in glob.glob(pat):
            if not os.path.isfile(p):
                continue
            v = _llvm_version(p)
            if v is not None and v >= 15:
                found.setdefault(os.path.realpath(p), v)
    if not found:
        return None
    # prefer 19 (tested), then the newest
    best = max(found.items(), key=lambda item: (item[1] == 19, item[1]))
    return best[0]


_RT = None


def import_sionna_rt():
    """Import and return ``sionna.rt``, setting ``DRJIT_LIBLLVM_PATH`` first when it is missing.

    Raises :class:`ImportError` with installation instructions when ``sionna-rt`` is not installed or no
    Mitsuba variant can run (no LLVM library and no CUDA).
    """
    global _RT
    if _RT is not None:
        return _RT
    if "drjit" not in sys.modules and not os.environ.get("DRJIT_LIBLLVM_PATH"):
        path = find_libllvm()
        if path is not None:
            os.environ["DRJIT_LIBLLVM_PATH"] = path
    try:
        import drjit  # noqa: F401
        import mitsuba  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "ray-traced channels need Sionna RT: `pip install sionna-rt==2.2.0` "
            f"(it brings mitsuba and drjit). {_LLVM_HELP}"
        ) from e
    try:
        from sionna import rt
    except ImportError as e:
        raise ImportError(f"could not import sionna.rt ({e}). {_LLVM_HELP}") from e
    import drjit as dr
    import mitsuba as mi

    variant = mi.variant() or ""
    if variant.startswith("llvm") and not dr.has_backend(dr.JitBackend.LLVM):
        raise ImportError(
            f"Mitsuba variant {variant!r} selected but the Dr.Jit LLVM backend is unavailable. {_LLVM_HELP}"
        )
    if "mono_polarized" not in variant:
        raise ImportError(f"Sionna RT needs a *_mono_polarized Mitsuba variant, but {variant!r} is set")
    _RT = rt
    return rt


def _sionna_rt_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("sionna-rt")
    except Exception:  # noqa: BLE001 - metadata only
        return None


# ---------------------------------------------------------------------------------------------------
# The channel model
# ---------------------------------------------------------------------------------------------------


def _point(name: str, value, n: int = 3) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in value)
    except TypeError as e:
        raise TypeError(f"{name} must be a sequence of {n} numbers, got {value!r}") from e
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{name} must be {n} finite numbers, got {value!r}")
    return vals


class RayTracedChannel(ChannelModel):
    """Ray-traced MISO channels ``[*batch, K, N]`` of a BS ULA and ``K`` users in a Sionna RT scene.

    See the module docstring for the model, the conjugation convention and the user sampling.

    Args:
        scene: a Sionna built-in scene name (see :data:`SCENE_DEFAULTS`) or the path of a Mitsuba XML
            scene file (then ``bs_position`` is required).
        num_users: K.
        num_bs_antennas: N, elements of the half-wavelength BS ULA.
        carrier_frequency: f_c in Hz (sets the wavelength, the element spacing and the material
            properties).
        bs_position: (x, y, z) in metres; default per scene in :data:`SCENE_DEFAULTS` (above a roof).
        bs_orientation: (yaw, pitch, roll) in radians, Sionna's convention (``(0, 0, 0)``: boresight
            along +x, array axis along +y); default ``(0, 0, 0)``. A positive pitch tilts the boresight
            downwards.
        pattern: BS element pattern, ``"iso"`` or ``"tr38901"``.
        min_gain_db, max_gain_db: users are drawn from radio-map cells whose path gain (one BS element)
            lies in ``[min_gain_db, max_gain_db]`` dB (``None``: no bound).
        min_distance, max_distance: bounds on the 3D BS-cell-centre distance in metres.
        user_height: z of the users (and of the radio-map plane) in metres.
        outdoor_only: exclude positions with geometry straight above them.
        max_depth: maximum number of interactions per path (reflections / refractions).
        samples_per_src: rays shot from the BS per path-solver call (more rays find more paths).
        refraction, diffraction, diffuse_reflection: interaction types (Sionna defaults: refraction on,
            diffraction and diffuse reflection off); LoS and specular reflection are always on.
        normalize: scale each user's channel to ``||h_k||^2 = N``.
        radio_map_cell_size: radio-map cell edge in metres.
        radio_map_samples: rays of the radio-map computation.
        rx_per_call: receivers per path-solver call (default: ``max(1, 1e7 // samples_per_src)``, i.e.
            100 with the default rays; 1000 munich drops with N = 64, K = 4 then peak at about 3.6 GB
            resident memory, 200 per call at about 5.4 GB).
        max_num_paths_per_src: Sionna's cap on stored path candidates per call.
        max_redraws: how many times users with a zero channel (or indoor positions) are redrawn before
            :class:`RuntimeError` is raised.
    """

    def __init__(
        self,
        scene: str,
        num_users: int,
        num_bs_antennas: int,
        *,
        carrier_frequency: float = 3.5e9,
        bs_position: Sequence[float] | None = None,
        bs_orientation: Sequence[float] | None = None,
        pattern: str = "iso",
        min_gain_db: float | None = -130.0,
        max_gain_db: float | None = None,
        min_distance: float | None = 10.0,
        max_distance: float | None = None,
        user_height: float = 1.5,
        outdoor_only: bool = True,
        max_depth: int = 3,
        samples_per_src: int = 100_000,
        refraction: bool = True,
        diffraction: bool = False,
        diffuse_reflection: bool = False,
        normalize: bool = True,
        radio_map_cell_size: float = 2.0,
        radio_map_samples: int = 10_000_000,
        rx_per_call: int | None = None,
        max_num_paths_per_src: int = 10_000_000,
        max_redraws: int = 50,
    ):
        if not isinstance(scene, str) or not scene:
            raise TypeError(f"scene must be a scene name or an XML file path, got {scene!r}")
        scene = scene.removeprefix("rt:")
        self._scene_file = None
        if scene not in SCENE_DEFAULTS:
            if scene.endswith(".xml") and os.path.isfile(scene):
                self._scene_file = os.path.abspath(scene)
                if bs_position is None:
                    raise ValueError("bs_position is required for a scene given as an XML file")
            else:
                raise ValueError(
                    f"scene must be one of {sorted(SCENE_DEFAULTS)} or an existing Mitsuba XML file, got {scene!r}"
                )
        self.scene = scene
        self.num_users = check_int("num_users", num_users, 1)
        self.num_bs_antennas = check_int("num_bs_antennas", num_bs_antennas, 1)
        self.num_rx_antennas = 1
        self.carrier_frequency = check_positive("carrier_frequency", carrier_frequency)
        if bs_position is None:
            bs_position = SCENE_DEFAULTS[scene]["bs_position"]
        self.bs_position = _point("bs_position", bs_position)
        self.bs_orientation = _point("bs_orientation", (0.0, 0.0, 0.0) if bs_orientation is None else bs_orientation)
        self.pattern = check_one_of("pattern", pattern, ("iso", "tr38901"))
        self.min_gain_db = None if min_gain_db is None else check_real("min_gain_db", min_gain_db)
        self.max_gain_db = None if max_gain_db is None else check_real("max_gain_db", max_gain_db)
        if self.min_gain_db is not None and self.max_gain_db is not None and self.min_gain_db > self.max_gain_db:
            raise ValueError(f"min_gain_db ({self.min_gain_db}) must be <= max_gain_db ({self.max_gain_db})")
        self.min_distance = None if min_distance is None else check_nonnegative("min_distance", min_distance)
        self.max_distance = None if max_distance is None else check_positive("max_distance", max_distance)
        if self.min_distance is not None and self.max_distance is not None and self.min_distance >= self.max_distance:
            raise ValueError(f"min_distance ({self.min_distance}) must be < max_distance ({self.max_distance})")
        self.user_height = check_real("user_height", user_height)
        self.outdoor_only = check_bool("outdoor_only", outdoor_only)
        self.max_depth = check_int("max_depth", max_depth, 0)
        self.samples_per_src = check_int("samples_per_src", samples_per_src, 1)
        self.refraction = check_bool("refraction", refraction)
        self.diffraction = check_bool("diffraction", diffraction)
        self.diffuse_reflection = check_bool("diffuse_reflection", diffuse_reflection)
        self.normalize = check_bool("normalize", normalize)
        self.radio_map_cell_size = check_positive("radio_map_cell_size", radio_map_cell_size)
        self.radio_map_samples = check_int("radio_map_samples", radio_map_samples, 1)
        if rx_per_call is None:
            rx_per_call = max(1, 10_000_000 // self.samples_per_src)
        self.rx_per_call = check_int("rx_per_call", rx_per_call, 1)
        self.max_num_paths_per_src = check_int("max_num_paths_per_src", max_num_paths_per_src, 1)
        self.max_redraws = check_int("max_redraws", max_redraws, 0)
        # lazily built state
        self._scene = None
        self._receivers: list = []
        self._cells = None  # (centres [M, 3] float64, candidate cell indices)
        self._solver = None
        self.timings: dict[str, float] = {}
        self.last_positions: torch.Tensor | None = None  # [*batch, K, 3] of the last call, metres

    # ---------------------------------------------------------------- describe
    def describe(self) -> dict:
        d = {
            "source": f"rt:{self.scene}",
            "scene": self.scene if self._scene_file is None else self._scene_file,
            "num_users": self.num_users,
            "num_bs_antennas": self.num_bs_antennas,
            "carrier_frequency": self.carrier_frequency,
            "bs_position": list(self.bs_position),
            "bs_orientation": list(self.bs_orientation),
            "bs_array": {
                "type": "ULA",
                "num_elements": self.num_bs_antennas,
                "spacing_wavelengths": 0.5,
                "axis": "local y",
                "pattern": self.pattern,
                "polarization": "V",
                "synthetic": True,
            },
            "ue_array": {"num_elements": 1, "pattern": "iso", "polarization": "V"},
            "user_height": self.user_height,
            "min_gain_db": self.min_gain_db,
            "max_gain_db": self.max_gain_db,
            "min_distance": self.min_distance,
            "max_distance": self.max_distance,
            "outdoor_only": self.outdoor_only,
            "max_depth": self.max_depth,
            "samples_per_src": self.samples_per_src,
            "interactions": {
                "los": True,
                "specular_reflection": True,
                "refraction": self.refraction,
                "diffraction": self.diffraction,
                "diffuse_reflection": self.diffuse_reflection,
            },
            "narrowband": "sum_p a_p exp(-j 2 pi f_c tau_p) (baseband response at f = 0, delays not normalised)",
            "normalize": "per-user ||h_k||^2 = N" if self.normalize else "none (raw path gains)",
            "radio_map": {"cell_size": self.radio_map_cell_size, "samples": self.radio_map_samples},
            "sionna_rt_version": _sionna_rt_version(),
        }
        if _RT is not None:
            import mitsuba as mi

            d["mitsuba_variant"] = mi.variant()
        return d

    # ---------------------------------------------------------------- scene set-up
    def _setup(self):
        if self._scene is not None:
            return
        rt = import_sionna_rt()
        import mitsuba as mi

        t0 = time.perf_counter()
        path = self._scene_file or getattr(rt.scene, self.scene)
        scene = rt.load_scene(path)
        scene.frequency = self.carrier_frequency
        iso = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
        scene.rx_array = iso
        scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern=self.pattern, polarization="V")
        bs = rt.Transmitter(
            name="bs", position=mi.Point3f(*self.bs_position), orientation=mi.Point3f(*self.bs_orientation)
        )
        scene.add(bs)
        t1 = time.perf_counter()

        # Radio map of a single element (an N-element array would weight the map with a fixed beam).
        bbox = scene.mi_scene.bbox()
        lo, hi = np.array(bbox.min, dtype=np.float64).ravel(), np.array(bbox.max, dtype=np.float64).ravel()
        center = mi.Point3f(float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2), self.user_height)
        size = mi.Point2f(
            float(max(hi[0] - lo[0], self.radio_map_cell_size)), float(max(hi[1] - lo[1], self.radio_map_cell_size))
        )
        rm = rt.RadioMapSolver()(
            scene,
            center=center,
            orientation=mi.Point3f(0, 0, 0),
            size=size,
            cell_size=mi.Point2f(self.radio_map_cell_size, self.radio_map_cell_size),
            samples_per_tx=self.radio_map_samples,
            max_depth=self.max_depth,
            refraction=self.refraction,
            diffraction=self.diffraction,
            diffuse_reflection=self.diffuse_reflection,
            seed=0,
        )
        gain = np.asarray(rm.path_gain.numpy(), dtype=np.float64)[0].ravel()
        centres = np.asarray(rm.cell_centers.numpy(), dtype=np.float64).reshape(-1, 3)
        t2 = time.perf_counter()

        with np.errstate(divide="ignore"):
            gain_db = 10 * np.log10(gain)
        ok = gain > 0
        if self.min_gain_db is not None:
            ok &= gain_db >= self.min_gain_db
        if self.max_gain_db is not None:
            ok &= gain_db <= self.max_gain_db
        dist = np.linalg.norm(centres - np.asarray(self.bs_position), axis=-1)
        if self.min_distance is not None:
            ok &= dist >= self.min_distance
        if self.max_distance is not None:
            ok &= dist <= self.max_distance
        idx = np.flatnonzero(ok)
        self._scene = scene
        if self.outdoor_only and idx.size:
            idx = idx[self._outdoor(centres[idx])]
        if idx.size == 0:
            self._scene = None
            raise RuntimeError(
                f"no radio-map cell of scene {self.scene!r} satisfies the user constraints (path gain in "
                f"[{self.min_gain_db}, {self.max_gain_db}] dB, distance in [{self.min_distance}, "
                f"{self.max_distance}] m{', outdoors' if self.outdoor_only else ''}); relax them or move "
                "the BS"
            )
        self._cells = (centres, idx)
        self._solver = rt.PathSolver(deterministic=True)
        # The BS array used for the paths.
        scene.tx_array = rt.PlanarArray(
            num_rows=1,
            num_cols=self.num_bs_antennas,
            vertical_spacing=0.5,
            horizontal_spacing=0.5,
            pattern=self.pattern,
            polarization="V",
        )
        self.timings.update(load_scene_s=t1 - t0, radio_map_s=t2 - t1, num_candidate_cells=int(idx.size))

    def _outdoor(self, pos: np.ndarray) -> np.ndarray:
        """True where nothing of the scene lies straight above ``pos`` ``[M, 3]``."""
        import mitsuba as mi

        p = np.ascontiguousarray(pos, dtype=np.float32)
        o = mi.Point3f(mi.Float(p[:, 0]), mi.Float(p[:, 1]), mi.Float(p[:, 2]))
        ray = mi.Ray3f(o, mi.Vector3f(0.0, 0.0, 1.0))
        hit = self._scene.mi_scene.ray_test(ray)
        return ~np.asarray(hit, dtype=bool).reshape(-1)

    def _draw_positions(self, m: int, generator, gen_device) -> np.ndarray:
        centres, idx = self._cells
        cell = torch.randint(0, idx.size, (m,), generator=generator, device=gen_device).cpu().numpy()
        off = torch.rand((m, 2), generator=generator, device=gen_device, dtype=torch.float64).cpu().numpy()
        pos = centres[idx[cell]].copy()
        pos[:, :2] += (off - 0.5) * self.radio_map_cell_size
        pos[:, 2] = self.user_height
        return pos

    def _set_receivers(self, n: int):
        rt = _RT
        scene = self._scene
        while len(self._receivers) < n:
            rx = rt.Receiver(name=f"ue{len(self._receivers)}", position=[0.0, 0.0, self.user_height])
            scene.add(rx)
            self._receivers.append(rx)
        while len(self._receivers) > n:
            rx = self._receivers.pop()
            scene.remove(rx.name)

    def _trace(self, pos: np.ndarray, seed: int) -> np.ndarray:
        """Narrowband channels ``[M, N]`` (complex128) of single-antenna users at ``pos`` ``[M, 3]``."""
        import mitsuba as mi

        out = np.empty((pos.shape[0], self.num_bs_antennas), dtype=np.complex128)
        fc = self.carrier_frequency
        for start in range(0, pos.shape[0], self.rx_per_call):
            chunk = pos[start : start + self.rx_per_call]
            self._set_receivers(chunk.shape[0])
            for rx, p in zip(self._receivers, chunk, strict=True):
                rx.position = mi.Point3f(float(p[0]), float(p[1]), float(p[2]))
            paths = self._solver(
                self._scene,
                max_depth=self.max_depth,
                max_num_paths_per_src=self.max_num_paths_per_src,
                samples_per_src=self.samples_per_src,
                synthetic_array=True,
                los=True,
                specular_reflection=True,
                diffuse_reflection=self.diffuse_reflection,
                refraction=self.refraction,
                diffraction=self.diffraction,
                seed=seed,
            )
            a_re, a_im = paths.a
            a = np.asarray(a_re.numpy(), dtype=np.float64) + 1j * np.asarray(a_im.numpy(), dtype=np.float64)
            tau = np.asarray(paths.tau.numpy(), dtype=np.float64)  # [M, 1 (tx), P], -1 for no path
            m = chunk.shape[0]
            if a.shape[-1] == 0:
                out[start : start + m] = 0
                continue
            a = a.reshape(m, self.num_bs_antennas, -1)  # [rx, rx_ant=1, tx=1, N, P] -> [M, N, P]
            tau = tau.reshape(m, 1, -1)
            valid = tau >= 0
            phase = np.exp(-2j * np.pi * fc * np.where(valid, tau, 0.0))
            out[start : start + m] = np.sum(np.where(valid, a * phase, 0.0), axis=-1)
        return out

    # ---------------------------------------------------------------- sampling
    def _sample(self, batch_shape, generator, device, dtype):
        self._setup()
        k, n = self.num_users, self.num_bs_antennas
        num_drops = math.prod(batch_shape)
        m = num_drops * k
        gen_device = generator.device if generator is not None else torch.device("cpu")
        t0 = time.perf_counter()

        pos = self._draw_positions(m, generator, gen_device)
        h = np.zeros((m, n), dtype=np.complex128)
        todo = np.arange(m)
        rounds = 0
        num_redrawn = 0
        while True:
            if self.outdoor_only:  # the offset within a cell may land under a roof edge
                for _ in range(self.max_redraws + 1):
                    bad = todo[~self._outdoor(pos[todo])]
                    if bad.size == 0:
                        break
                    pos[bad] = self._draw_positions(bad.size, generator, gen_device)
                else:
                    raise RuntimeError(
                        "could not draw outdoor user positions; check the scene and the coverage constraints"
                    )
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=gen_device))
            h[todo] = self._trace(pos[todo], seed)
            energy = np.sum(np.abs(h[todo]) ** 2, axis=-1)
            todo = todo[~(np.isfinite(energy) & (energy > 0))]
            if todo.size == 0:
                break
            rounds += 1
            num_redrawn += todo.size
            if rounds > self.max_redraws:
                raise RuntimeError(
                    f"{todo.size} users still had no propagation path after {self.max_redraws} redraws; "
                    "raise min_gain_db, samples_per_src or max_depth"
                )
            pos[todo] = self._draw_positions(todo.size, generator, gen_device)

        if self.normalize:
            h = h * np.sqrt(n / np.sum(np.abs(h) ** 2, axis=-1, keepdims=True))
        self.timings.update(
            last_sample_s=time.perf_counter() - t0, last_num_drops=num_drops, last_num_redrawn=num_redrawn
        )
        self.last_positions = torch.from_numpy(pos.reshape(*batch_shape, k, 3))
        out = torch.from_numpy(h.reshape(*batch_shape, k, 1, n))
        return out.to(device=device, dtype=dtype)


def make_rt_source(name: str, num_users: int, num_antennas: int, **options) -> RayTracedChannel:
    """Ray-traced source from a name ``"rt:SCENE"`` (e.g. ``"rt:munich"``); options go to
    :class:`RayTracedChannel`."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string like 'rt:munich', got {name!r}")
    if not name.startswith("rt:"):
        raise ValueError(
            f"ray-traced source names look like 'rt:SCENE' with SCENE one of {sorted(SCENE_DEFAULTS)}, got {name!r}"
        )
    return RayTracedChannel(name[3:], num_users, num_antennas, **options)
