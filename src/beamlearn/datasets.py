"""Channel datasets on disk: build (resumable, atomic, seeded), save and load with integrity checks.

File format (``.blch``; one file, written atomically): the 8-byte magic ``BLCHAN01``, an 8-byte
little-endian header length, a UTF-8 JSON header, then the channel array's raw little-endian bytes in
C order. The header holds ``shape``, ``dtype``, the SHA-256 of the data (``sha256``), ``metadata``
(source, its parameters such as scene, frequency and array, users, antennas, drops, seed, chunk size,
library versions) and ``header_sha256``, the SHA-256 of the canonical header without that field
(``json.dumps(header, sort_keys=True)``), so a changed byte anywhere in the file is detected. Files
written before ``header_sha256`` was added have no such field and still load (their data is still
checked). The header has no timestamp, so the same source, seed and sizes give a byte-identical file.

Channels are ``[D, K, N]`` (single-antenna users, rows h_k^H) or ``[D, K, Nr, N]``, with ``D >= 1``
drops; the data must be finite.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
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
MAX_HEADER_BYTES = 16 * 2**20  # a header is a few KiB; a larger declared length is a corrupted file
_REQUIRED_KEYS = ("format", "version", "shape", "dtype", "sha256", "metadata")
_KNOWN_KEYS = frozenset((*_REQUIRED_KEYS, "header_sha256"))


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


def _fmt_bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # unreachable


def _header_digest(header: dict) -> str:
    """SHA-256 of the canonical header (sorted keys) without its ``header_sha256`` field."""
    core = {k: v for k, v in header.items() if k != "header_sha256"}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()


def _header_bytes(shape, dtype: str, sha256: str, metadata: dict | None) -> bytes:
    """The JSON header of a file; ``sha256`` and ``header_sha256`` are 64 hex digits, so the length of
    the header does not depend on the data (the builder writes it before it knows the data's hash)."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "shape": [int(s) for s in shape],
        "dtype": dtype,
        "sha256": sha256,
        "metadata": metadata or {},
    }
    header = json.loads(json.dumps(header, default=str))  # exactly what a reader will parse
    header["header_sha256"] = _header_digest(header)
    return json.dumps(header, sort_keys=True).encode()


def _check_shape(shape, what: str) -> None:
    if len(shape) < 3:
        raise ValueError(f"{what}: channels must be [D, K, N] or [D, K, Nr, N], found shape {tuple(shape)}")
    if shape[0] < 1:
        raise ValueError(f"{what} holds no drops (shape {tuple(shape)}); a dataset needs at least one drop")
    if min(shape) < 1:
        raise ValueError(f"{what}: every size in the shape must be at least 1, found shape {tuple(shape)}")


def _little_endian(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))


def _non_finite(arr: np.ndarray) -> tuple[int, int] | None:
    """``(count, first drop)`` of the non-finite entries of complex ``arr`` (``[D, ...]``), or None."""
    ok = np.isfinite(arr.view(arr.real.dtype)).reshape(arr.shape[0], -1)
    if ok.all():
        return None
    bad = ~ok
    return int(bad.sum()), int(np.flatnonzero(bad.any(1))[0])


def save_channels(path: str | Path, channels: torch.Tensor, metadata: dict | None = None) -> None:
    """Write ``channels`` (complex64/complex128, ``[D, K, N]`` or ``[D, K, Nr, N]``, finite, ``D >= 1``)
    with ``metadata`` to ``path`` atomically."""
    if not isinstance(channels, torch.Tensor):
        raise TypeError(f"channels must be a complex64 or complex128 torch tensor, got {type(channels).__name__}")
    name = dtype_name(channels.dtype, "channels.dtype")
    _check_shape(tuple(channels.shape), "channels")
    arr = _little_endian(channels.detach().cpu().resolve_conj().numpy())
    if _non_finite(arr) is not None:
        raise ValueError("channels hold non-finite values (NaN or inf); refusing to write them")
    data = arr.view(np.uint8).reshape(-1)
    hb = _header_bytes(arr.shape, name, hashlib.sha256(data).hexdigest(), metadata)
    with _atomic_target(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(MAGIC)
            f.write(struct.pack("<Q", len(hb)))
            f.write(hb)
            f.write(data)


def _read_header(f, path, size: int) -> tuple[dict, int]:
    """Parse and check the header of an open dataset file of ``size`` bytes: ``(header, data offset)``."""
    magic = f.read(8)
    if magic != MAGIC:
        raise DatasetError(f"{path} is not a beamlearn channel dataset (bad magic {magic[:8]!r})")
    raw = f.read(8)
    if len(raw) != 8:
        raise DatasetError(f"{path} is truncated: its header is incomplete")
    (n,) = struct.unpack("<Q", raw)
    if n > MAX_HEADER_BYTES:
        raise DatasetError(
            f"{path} is corrupted: it declares a header of {n} bytes, more than the {MAX_HEADER_BYTES} allowed"
        )
    if n > size - 16:
        raise DatasetError(
            f"{path} is truncated: its header is incomplete ({n} bytes declared, {max(size - 16, 0)} present)"
        )
    hb = f.read(n)
    if len(hb) != n:
        raise DatasetError(f"{path} is truncated: its header is incomplete")
    try:
        header = json.loads(hb)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise DatasetError(f"{path} has a corrupted header: {' '.join(str(e).split())}") from None
    if not isinstance(header, dict):
        raise DatasetError(f"{path} has a corrupted header: a JSON object was expected, found {type(header).__name__}")
    if "header_sha256" in header and header["header_sha256"] != _header_digest(header):
        raise DatasetError(f"{path} is corrupted: the SHA-256 of its header does not match its header_sha256")
    version = header.get("version")
    if (
        header.get("format") != FORMAT
        or isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= VERSION
    ):
        raise DatasetError(
            f"{path}: unsupported dataset format {header.get('format')!r} version {version!r} "
            f"(this library reads {FORMAT!r} version {VERSION})"
        )
    missing = [k for k in _REQUIRED_KEYS if k not in header]
    if missing:
        raise DatasetError(f"{path} has a corrupted header: it lacks {', '.join(missing)}")
    unknown = sorted(set(header) - _KNOWN_KEYS)
    if unknown:
        raise DatasetError(f"{path} has a corrupted header: unknown field(s) {', '.join(map(repr, unknown))}")
    if not isinstance(header["dtype"], str) or header["dtype"] not in COMPLEX_DTYPES:
        raise DatasetError(
            f"{path}: unsupported dtype {header['dtype']!r} in its header; expected one of {', '.join(COMPLEX_DTYPES)}"
        )
    shape = header["shape"]
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise DatasetError(f"{path} has a corrupted header: shape must be a list of integers, found {shape!r:.200}")
    try:
        _check_shape(shape, str(path))
    except ValueError as e:
        raise DatasetError(str(e)) from None
    sha = header["sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise DatasetError(f"{path} has a corrupted header: sha256 must be 64 hex digits, found {sha!r:.100}")
    if not isinstance(header["metadata"], dict):
        raise DatasetError(f"{path} has a corrupted header: metadata must be a JSON object")
    return header, 16 + n


def _open(path: Path):
    if path.is_dir():
        raise DatasetError(f"dataset path {path} is a directory, not a dataset file")
    if not path.exists():
        raise DatasetError(f"dataset file {path} does not exist")
    try:
        return open(path, "rb")
    except OSError as e:
        raise DatasetError(f"cannot read dataset file {path}: {e.strerror or e}") from None


def read_metadata(path: str | Path) -> dict:
    """The header of a dataset file (shape, dtype, sha256, metadata) without reading the data."""
    path = Path(path)
    with _open(path) as f:
        return _read_header(f, path, os.fstat(f.fileno()).st_size)[0]


def load_channels(
    path: str | Path, *, num_users: int | None = None, num_antennas: int | None = None, verify: bool = True
) -> tuple[torch.Tensor, dict]:
    """Read a dataset: returns ``(channels, header)``.

    Raises :class:`DatasetError` (one line naming the file) for a missing, unreadable, truncated or
    corrupted file (bad header, SHA-256 mismatch of the header or, with ``verify``, of the data), for
    non-finite channel values, and when the file's users or antennas differ from ``num_users`` /
    ``num_antennas``.
    """
    path = Path(path)
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
        header, offset = _read_header(f, path, size)
        shape = tuple(header["shape"])
        np_dtype, t_dtype = numpy_dtype(header["dtype"]), COMPLEX_DTYPES[header["dtype"]]
        expected = math.prod(shape) * np_dtype.itemsize
        if size - offset < expected:
            raise DatasetError(
                f"{path} is truncated: expected {expected} bytes of channel data (shape {shape}), found {size - offset}"
            )
        if size - offset > expected:
            raise DatasetError(f"{path} is corrupted: it has data beyond the {expected} bytes its header declares")
        try:
            arr = np.empty(shape, dtype=np_dtype.newbyteorder("<"))
        except (MemoryError, ValueError):
            raise DatasetError(
                f"{path} holds {_fmt_bytes(expected)} of channel data (shape {shape}), more than fits in memory"
            ) from None
        buf = memoryview(arr.view(np.uint8).reshape(-1))
        got = 0
        while got < expected:
            k = f.readinto(buf[got:])
            if not k:
                raise DatasetError(f"{path} is truncated: expected {expected} bytes of channel data, found {got}")
            got += k
    if verify and hashlib.sha256(buf).hexdigest() != header["sha256"]:
        raise DatasetError(f"{path} is corrupted: the SHA-256 of its channel data does not match its header")
    bad = _non_finite(arr)
    if bad is not None:
        raise DatasetError(
            f"{path} holds {bad[0]} non-finite channel value(s) (NaN or inf), the first in drop {bad[1]}; "
            "refusing to use it"
        )
    if not arr.dtype.isnative:
        arr = arr.astype(np_dtype)
    h = torch.from_numpy(arr)
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


def _read_stamp(stamp: Path):
    try:
        return json.loads(stamp.read_text())
    except (OSError, ValueError, RecursionError):
        return None


def _best_effort(write: Callable[[], None]) -> None:
    """Run a write into the chunk folder, tolerating another build of the same file removing that
    folder meanwhile (it is recreated; after three tries the write, a resume aid only, is skipped)."""
    for _ in range(3):
        try:
            write()
            return
        except FileNotFoundError:
            continue


def _existing_folder(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_disk(out: Path, parts: Path, reusable: bool, drops: int, dims: dict, itemsize: int) -> None:
    """Refuse a build whose file and chunks cannot fit in the free space of the output folder."""
    data = drops * math.prod(dims.values()) * itemsize
    chunks = data
    if reusable:
        try:
            chunks -= sum(e.stat().st_size for e in os.scandir(parts) if e.name.startswith("chunk_"))
        except OSError:
            pass
    need = data + max(chunks, 0)
    folder = _existing_folder(out.parent)
    free = shutil.disk_usage(folder).free
    if need > free:
        sizes = " x ".join(f"{k}={v}" for k, v in dims.items())
        raise ValueError(
            f"drops={drops} needs about {_fmt_bytes(need)} of disk ({drops} drops x {sizes} x {itemsize} bytes "
            f"= {_fmt_bytes(data)} for the file, plus as much again for its resumable chunks), but {folder} has "
            f"only {_fmt_bytes(free)} free; lower drops or free some space"
        )


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
    ``out.parts/`` (each written atomically, tagged with a digest of the build settings and its index)
    and reused by a resumed build with the same settings; each chunk is streamed into the final file as
    it is drawn (only one chunk is held in memory), the final file is renamed into place atomically and
    the parts are then removed. Builds of the same file running at the same time all end with the same
    valid file. The size of the file and its chunks is checked against the free disk space up front.
    Returns the header.
    """
    drops = check_int("drops", drops, 1)
    seed = check_int("seed", seed, 0)
    chunk_size = check_int("chunk_size", chunk_size, 1)
    dtype = dtype_name(dtype)  # a name or a torch dtype; the settings record the name
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"out {out} is a directory; give the path of the dataset file to write")
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
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    parts = out.with_name(out.name + ".parts")
    stamp = parts / "settings.json"
    stamped = _read_stamp(stamp)
    nr = model.num_rx_antennas
    dims = {"K": num_users, "N": num_antennas} if nr == 1 else {"K": num_users, "Nr": nr, "N": num_antennas}
    _check_disk(out, parts, resume and stamped == settings, drops, dims, numpy_dtype(dtype).itemsize)
    if not resume or (stamped is not None and stamped != settings):
        # stale parts of other settings (a chunk is reused only if its tag matches, so this is to free space)
        shutil.rmtree(parts, ignore_errors=True)
        stamped = None
    if stamped != settings:
        from .io import write_json

        _best_effort(lambda: write_json(stamp, settings))
    t_dtype = COMPLEX_DTYPES[dtype]
    n_chunks = -(-drops // chunk_size)
    hasher, shape, placeholder = hashlib.sha256(), None, b""
    try:
        with _atomic_target(out) as tmp, open(tmp, "wb") as dst:
            for i in tqdm(range(n_chunks), desc=f"dataset {name}", unit="chunk", disable=not progress):
                f = parts / f"chunk_{i:06d}.blch"
                size = min(chunk_size, drops - i * chunk_size)
                tag = {"build": key, "chunk": i}
                h = None
                if resume and f.exists():
                    try:
                        h, header = load_channels(f)
                        if header["metadata"] != tag or h.shape[0] != size or h.dtype != t_dtype:
                            h = None
                    except DatasetError:  # damaged, or removed meanwhile by a concurrent build
                        h = None
                fresh = h is None
                if fresh:
                    h = model(size, seed=_chunk_seed(seed, i), device=device, dtype=t_dtype).cpu()
                    if h.dtype != t_dtype or h.dim() < 3 or h.shape[0] != size:
                        raise ValueError(f"source gave channels {h.dtype} {tuple(h.shape)} for {size} {dtype} drops")
                arr = _little_endian(h.resolve_conj().numpy())
                if _non_finite(arr) is not None:
                    raise ValueError(f"source {name} gave non-finite channels (NaN or inf) in chunk {i}")
                if fresh:
                    _best_effort(lambda f=f, h=h, tag=tag: save_channels(f, h, tag))
                if shape is None:
                    shape = (drops, *arr.shape[1:])
                    placeholder = _header_bytes(shape, dtype, "0" * 64, settings)
                    dst.write(MAGIC + struct.pack("<Q", len(placeholder)) + placeholder)
                elif arr.shape[1:] != shape[1:]:
                    raise ValueError(f"source {name} gave chunk {i} of shape {arr.shape}, chunk 0 {shape}")
                data = arr.view(np.uint8).reshape(-1)
                hasher.update(data)
                dst.write(data)
                del h, arr, data
            hb = _header_bytes(shape, dtype, hasher.hexdigest(), settings)
            if len(hb) != len(placeholder):  # both hashes are 64 hex digits: cannot happen
                raise AssertionError("dataset header changed length")
            dst.seek(16)
            dst.write(hb)
    except OSError as e:  # e.g. the disk filled up after all (other writers): one line, chunks kept for a resume
        raise ValueError(
            f"could not write dataset {out}: {e.strerror or e}; its finished chunks are kept in {parts} for a resume"
        ) from e
    shutil.rmtree(parts, ignore_errors=True)
    return read_metadata(out)


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))
