"""Channel datasets on disk: build (resumable, atomic, seeded), save and load with integrity checks.

File format (``.blch``; one file, written atomically): the 8-byte magic ``BLCHAN01``, an 8-byte
little-endian header length, a UTF-8 JSON header, then the channel array's raw little-endian bytes in
C order. The header holds ``shape``, ``dtype``, the SHA-256 of the data and ``metadata`` (source,
its parameters such as scene, frequency and array, users, antennas, drops, seed, chunk size, library
versions). The header has no timestamp, so the same source, seed and sizes give a byte-identical file.

Channels are ``[D, K, N]`` (single-antenna users, rows h_k^H) or ``[D, K, Nr, N]``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ._dtypes import COMPLEX_DTYPES, dtype_name, numpy_dtype
from ._validation import check_int
from .channels.base import ChannelModel
from .io import _atomic_target

__all__ = ["save_channels", "load_channels", "read_metadata", "build_dataset", "make_source", "SOURCES", "DatasetError"]

MAGIC = b"BLCHAN01"
FORMAT = "beamlearn-channels"
VERSION = 1


class DatasetError(ValueError):
    """A dataset file is missing, truncated, corrupted or does not match what was asked for."""


def _versions() -> dict:
    from . import __version__

    v = {"beamlearn": __version__, "torch": torch.__version__.split("+")[0]}
    for mod in ("sionna", "sionna.rt"):
        try:
            m = __import__(mod, fromlist=["__version__"])
            v[mod] = getattr(m, "__version__", "unknown")
        except Exception:  # noqa: BLE001 - optional packages
            pass
    return v


def save_channels(path: str | Path, channels: torch.Tensor, metadata: dict | None = None) -> None:
    """Write ``channels`` (complex64/complex128) with ``metadata`` to ``path`` atomically."""
    if not isinstance(channels, torch.Tensor):
        raise TypeError(f"channels must be a complex64 or complex128 torch tensor, got {type(channels).__name__}")
    name = dtype_name(channels.dtype, "channels.dtype")
    arr = np.ascontiguousarray(channels.detach().cpu().numpy())
    if not np.isfinite(arr.view(arr.real.dtype)).all():
        raise ValueError("channels hold non-finite values (NaN or inf); refusing to write them")
    data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "shape": list(arr.shape),
        "dtype": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "metadata": metadata or {},
    }
    hb = json.dumps(header, sort_keys=True, default=str).encode()
    with _atomic_target(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(MAGIC)
            f.write(struct.pack("<Q", len(hb)))
            f.write(hb)
            f.write(data)


def _read_header(f, path) -> tuple[dict, int]:
    magic = f.read(8)
    if magic != MAGIC:
        raise DatasetError(f"{path} is not a beamlearn channel dataset (bad magic {magic[:8]!r})")
    raw = f.read(8)
    if len(raw) != 8:
        raise DatasetError(f"{path} is truncated: its header is incomplete")
    (n,) = struct.unpack("<Q", raw)
    hb = f.read(n)
    if len(hb) != n:
        raise DatasetError(f"{path} is truncated: its header is incomplete")
    try:
        header = json.loads(hb)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} has a corrupted header: {e}") from None
    if (
        header.get("format") != FORMAT
        or header.get("version", 0) > VERSION
        or header.get("dtype") not in COMPLEX_DTYPES
    ):
        raise DatasetError(
            f"{path}: unsupported dataset format {header.get('format')!r} version {header.get('version')!r}"
        )
    return header, 16 + n


def read_metadata(path: str | Path) -> dict:
    """The header of a dataset file (shape, dtype, sha256, metadata) without reading the data."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    with open(path, "rb") as f:
        return _read_header(f, path)[0]


def load_channels(
    path: str | Path, *, num_users: int | None = None, num_antennas: int | None = None, verify: bool = True
) -> tuple[torch.Tensor, dict]:
    """Read a dataset: returns ``(channels, header)``.

    Raises :class:`DatasetError` for a missing, truncated or corrupted file (SHA-256 mismatch) and when
    the file's users or antennas differ from ``num_users`` / ``num_antennas``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    with open(path, "rb") as f:
        header, offset = _read_header(f, path)
        np_dtype, t_dtype = numpy_dtype(header["dtype"]), COMPLEX_DTYPES[header["dtype"]]
        shape = tuple(int(s) for s in header["shape"])
        expected = int(np.prod(shape)) * np_dtype.itemsize
        data = f.read(expected + 1)
    if len(data) < expected:
        raise DatasetError(f"{path} is truncated: expected {expected} bytes of channel data, found {len(data)}")
    if len(data) > expected:
        raise DatasetError(f"{path} is corrupted: it has data beyond the {expected} bytes its header declares")
    if verify and hashlib.sha256(data).hexdigest() != header["sha256"]:
        raise DatasetError(f"{path} is corrupted: the SHA-256 of its channel data does not match its header")
    arr = np.frombuffer(data, dtype=np_dtype.newbyteorder("<")).reshape(shape)
    h = torch.from_numpy(arr.astype(np_dtype, copy=True))
    if len(shape) < 3:
        raise DatasetError(f"{path}: channels must be [D, K, N] or [D, K, Nr, N], found shape {shape}")
    k = shape[1]
    if num_users is not None and k != num_users:
        raise DatasetError(f"{path} has K={k} users, but {num_users} were asked for")
    if num_antennas is not None and shape[-1] != num_antennas:
        raise DatasetError(f"{path} has N={shape[-1]} BS antennas, but {num_antennas} were asked for")
    return h.to(t_dtype), header


# -- sources ------------------------------------------------------------------------------------------


def _synthetic(name: str) -> Callable[..., ChannelModel]:
    def make(num_users: int, num_antennas: int, **options) -> ChannelModel:
        from .scenarios import get_scenario

        sc = get_scenario(name)
        return sc.channel.build(num_users, num_antennas, options.pop("num_rx_antennas", sc.num_rx_antennas))

    return make


def _tr38901(name: str):
    def make(num_users: int, num_antennas: int, **options) -> ChannelModel:
        from .channels.tr38901 import make_3gpp_source

        return make_3gpp_source(name, num_users, num_antennas, **options)

    return make


SOURCES: dict[str, Callable[..., ChannelModel]] = {
    "rayleigh": _synthetic("rayleigh"),
    "clustered-ula": _synthetic("unfolded-pga"),
    "3gpp-umi": _tr38901("3gpp-umi"),
    "3gpp-uma": _tr38901("3gpp-uma"),
    "3gpp-rma": _tr38901("3gpp-rma"),
}


def make_source(name: str, num_users: int, num_antennas: int, **options) -> ChannelModel:
    """A channel source by name: ``rayleigh``, ``clustered-ula`` (the unfolded-PGA channel model with
    N and K as given), ``3gpp-umi``/``3gpp-uma``/``3gpp-rma`` (Sionna TR 38.901) or ``rt:SCENE``
    (Sionna RT built-in scene, e.g. ``rt:munich``)."""
    check_int("num_users", num_users, 1)
    check_int("num_antennas", num_antennas, 1)
    if name.startswith("rt:"):
        from .channels.raytraced import make_rt_source

        return make_rt_source(name, num_users, num_antennas, **options)
    if name not in SOURCES:
        raise ValueError(f"unknown channel source {name!r}; choose one of {', '.join(SOURCES)} or rt:SCENE")
    return SOURCES[name](num_users, num_antennas, **options)


def _chunk_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint32)[0])


def build_dataset(
    source: str | ChannelModel,
    num_users: int,
    num_antennas: int,
    drops: int,
    seed: int,
    out: str | Path,
    *,
    chunk_size: int = 100,
    dtype: str | torch.dtype = "complex64",
    device: str = "cpu",
    progress: bool = True,
    resume: bool = True,
    source_options: dict | None = None,
) -> dict:
    """Draw ``drops`` channel realisations from ``source`` and write them to ``out``.

    Drops are generated in chunks of ``chunk_size``, chunk ``i`` from a seed derived from ``(seed, i)``,
    so the result does not depend on how often the build was interrupted. Finished chunks are kept in
    ``out.parts/`` (each written atomically) and reused by a resumed build with the same settings; the
    final file is written atomically and the parts are then removed. Returns the header.
    """
    drops = check_int("drops", drops, 1)
    seed = check_int("seed", seed, 0)
    chunk_size = check_int("chunk_size", chunk_size, 1)
    dtype = dtype_name(dtype)  # a name or a torch dtype; the settings record the name
    out = Path(out)
    model = (
        source
        if isinstance(source, ChannelModel)
        else make_source(source, num_users, num_antennas, **(source_options or {}))
    )
    if model.num_users != num_users or model.num_bs_antennas != num_antennas:
        raise ValueError(
            f"source gives K={model.num_users}, N={model.num_bs_antennas}; asked for K={num_users}, N={num_antennas}"
        )
    name = source if isinstance(source, str) else type(source).__name__
    settings = {
        "source": name,
        "source_parameters": _jsonable(model.describe()),
        "num_users": num_users,
        "num_antennas": num_antennas,
        "num_rx_antennas": model.num_rx_antennas,
        "drops": drops,
        "seed": seed,
        "chunk_size": chunk_size,
        "dtype": dtype,
        "versions": _versions(),
    }
    parts = out.with_name(out.name + ".parts")
    stamp = parts / "settings.json"
    if parts.exists() and (not resume or not stamp.exists() or json.loads(stamp.read_text()) != settings):
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    if not stamp.exists():
        from .io import write_json

        write_json(stamp, settings)
    t_dtype = COMPLEX_DTYPES[dtype]
    n_chunks = -(-drops // chunk_size)
    chunks = []
    for i in tqdm(range(n_chunks), desc=f"dataset {name}", unit="chunk", disable=not progress):
        f = parts / f"chunk_{i:06d}.blch"
        size = min(chunk_size, drops - i * chunk_size)
        if f.exists():
            try:
                h, _ = load_channels(f)
                if h.shape[0] == size:
                    chunks.append(h)
                    continue
            except DatasetError:
                pass
        h = model(size, seed=_chunk_seed(seed, i), device=device, dtype=t_dtype).cpu()
        save_channels(f, h)
        chunks.append(h)
    h = torch.cat(chunks)
    save_channels(out, h, settings)
    shutil.rmtree(parts, ignore_errors=True)
    return read_metadata(out)


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))
