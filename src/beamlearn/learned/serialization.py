"""The model file format: JSON header plus raw tensor bytes, checksummed, loaded without executing code.

Layout (one file, written atomically)::

    b"BLMODEL1"                     8 bytes, magic
    SHA-256 of everything below    32 bytes
    header length                   8 bytes, little-endian unsigned
    header                          UTF-8 JSON: format, version, model, config, metadata, tensors
    tensor data                     raw little-endian bytes, C order, at the offsets of the header

Any modified, missing or extra byte changes the checksum, so a damaged file is refused with a clear
error before anything in it is used. Nothing is unpickled: a pickle (or a ``torch.save`` file) lacks
the magic and is refused unread. The header's ``tensors`` maps each name to its dtype, shape, offset
and length.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np
import torch

from ..io import _atomic_target

__all__ = ["MAGIC", "FORMAT", "VERSION", "ModelFileError", "write_model_file", "read_model_file", "file_sha256"]

MAGIC = b"BLMODEL1"
FORMAT = "beamlearn-model"
VERSION = 1
_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.uint8,
        torch.bool,
    )
}


class ModelFileError(ValueError):
    """A model file is missing, damaged, of another format or of an unknown model."""


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a whole file (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_model_file(path: str | os.PathLike, header: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``header`` (plain JSON values) and ``tensors`` to ``path`` atomically."""
    index, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        key = str(t.dtype).removeprefix("torch.")
        if key not in _DTYPES:
            raise TypeError(f"tensor {name!r} has dtype {t.dtype}, which the model format does not store")
        arr = np.ascontiguousarray(t.detach().cpu().numpy())
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        index[name] = {"dtype": key, "shape": list(arr.shape), "offset": offset, "nbytes": len(data)}
        blobs.append(data)
        offset += len(data)
    full = {"format": FORMAT, "version": VERSION, **header, "tensors": index}
    try:
        hb = json.dumps(full, sort_keys=True).encode()  # NaN allowed (e.g. a diverged last epoch)
    except (TypeError, ValueError) as e:
        raise TypeError(f"model header must hold plain JSON values (numbers, strings, lists, dicts): {e}") from None
    body = struct.pack("<Q", len(hb)) + hb + b"".join(blobs)
    with _atomic_target(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(MAGIC)
            f.write(hashlib.sha256(body).digest())
            f.write(body)
            f.flush()
            os.fsync(f.fileno())


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read and verify a model file; returns ``(header, tensors)`` (tensors on the CPU)."""
    p = Path(path)
    if p.is_dir():
        raise ModelFileError(f"model file {path} is a directory; give the model file (e.g. {p / 'model.blm'})")
    if not p.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    raw = p.read_bytes()
    if raw[:8] != MAGIC:
        raise ModelFileError(
            f"{path} is not a beamlearn model file (no {MAGIC!r} magic); it was not read further "
            "(pickles and torch.save files are never loaded)"
        )
    if len(raw) < 48 or hashlib.sha256(raw[40:]).digest() != raw[8:40]:
        raise ModelFileError(f"{path} is damaged: its SHA-256 checksum does not match its contents")
    (hlen,) = struct.unpack("<Q", raw[40:48])
    try:
        header = json.loads(raw[48 : 48 + hlen])
    except ValueError as e:  # pragma: no cover - the checksum catches damage first
        raise ModelFileError(f"{path} has an unreadable header: {e}") from None
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a beamlearn model file (format {header.get('format')!r})")
    if int(header.get("version", 0)) > VERSION:
        raise ModelFileError(f"{path} has format version {header.get('version')}; this beamlearn reads up to {VERSION}")
    data = memoryview(raw)[48 + hlen :]
    tensors = {}
    for name, spec in header.pop("tensors").items():
        dtype = _DTYPES.get(spec["dtype"])
        if dtype is None:
            raise ModelFileError(f"{path}: tensor {name!r} has unknown dtype {spec['dtype']!r}")
        chunk = data[spec["offset"] : spec["offset"] + spec["nbytes"]]
        np_dtype = torch.empty((), dtype=dtype).numpy().dtype.newbyteorder("<")
        arr = np.frombuffer(chunk, dtype=np_dtype).reshape(spec["shape"])
        tensors[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))
    return header, tensors
