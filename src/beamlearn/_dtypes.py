"""The complex dtypes of the library, in one table: channels and precoders are complex64 or complex128.

A dtype may be given by name (``"complex64"``, as in files and on the command line) or as the torch
dtype; :func:`resolve_dtype` accepts both. The NumPy pairing is used by the on-disk dataset format.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["COMPLEX_DTYPES", "NUMPY_COMPLEX_DTYPES", "dtype_name", "numpy_dtype", "real_dtype", "resolve_dtype"]

COMPLEX_DTYPES: dict[str, torch.dtype] = {"complex64": torch.complex64, "complex128": torch.complex128}
NUMPY_COMPLEX_DTYPES: dict[str, type[np.complexfloating]] = {"complex64": np.complex64, "complex128": np.complex128}
_NAMES = {v: k for k, v in COMPLEX_DTYPES.items()}


def resolve_dtype(value, name: str = "dtype") -> torch.dtype:
    """``torch.complex64`` or ``torch.complex128`` from the dtype itself or its name.

    An unknown name raises :class:`ValueError`; anything else that is not one of the two complex
    dtypes (a real dtype such as ``torch.float32``, a NumPy dtype, ...) raises :class:`TypeError`.
    Both messages name the parameter and the allowed values.
    """
    allowed = ", ".join(f"torch.{k} (or {k!r})" for k in COMPLEX_DTYPES)
    if isinstance(value, str):
        if value not in COMPLEX_DTYPES:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        return COMPLEX_DTYPES[value]
    if isinstance(value, torch.dtype) and value in _NAMES:
        return value
    raise TypeError(f"{name} must be one of {allowed}, got {value!r}")


def dtype_name(value, name: str = "dtype") -> str:
    """The name (``"complex64"`` or ``"complex128"``) of a complex dtype given as a name or torch dtype."""
    return _NAMES[resolve_dtype(value, name)]


def numpy_dtype(value, name: str = "dtype") -> np.dtype:
    """The NumPy dtype paired with a complex dtype given as a name or torch dtype."""
    return np.dtype(NUMPY_COMPLEX_DTYPES[dtype_name(value, name)])


def real_dtype(value, name: str = "dtype") -> torch.dtype:
    """The real dtype of the real and imaginary parts: float32 for complex64, float64 for complex128."""
    return torch.float64 if resolve_dtype(value, name) == torch.complex128 else torch.float32
