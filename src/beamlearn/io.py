"""Atomic file output: results are written to a temporary file and renamed into place."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["atomic_write_text", "atomic_torch_save", "write_csv", "read_csv", "write_json", "atomic_savefig"]


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def _atomic_target(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success give it the usual permissions (0666 minus the
    umask, not mkstemp's 0600) and rename it over ``path``; on failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with _atomic_target(path) as tmp:
        with open(tmp, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the target folder, then rename it into place."""
    import torch

    with _atomic_target(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())


def write_csv(path, rows: Iterable[Mapping], columns: list[str]) -> None:
    import io as _io

    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: r[c] for c in columns})
    atomic_write_text(path, buf.getvalue())


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_savefig(fig, path, **kw) -> None:
    with _atomic_target(path) as tmp:
        fig.savefig(tmp, **kw)
