"""Input checks shared by the whole library.

Every check raises :class:`ValueError` (or :class:`TypeError` for wrong kinds) whose message names the
offending parameter and the allowed range, so that bad input is never silently clipped.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

__all__ = [
    "check_bool",
    "check_int",
    "check_one_of",
    "check_real",
    "check_device",
    "check_snr_db",
    "SNR_DB_RANGE",
    "check_positive",
    "check_nonnegative",
    "check_probability",
    "check_channel",
    "check_complex",
    "check_power",
]


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as int, raising if it is not an integer in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    lo = "-inf" if minimum is None else str(minimum)
    hi = "inf" if maximum is None else str(maximum)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value}")
    return value


def _as_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _interval(minimum, maximum, open_lower: bool, open_upper: bool) -> str:
    lo = "-inf" if minimum is None else f"{minimum:g}"
    hi = "inf" if maximum is None else f"{maximum:g}"
    return f"{'(' if open_lower or minimum is None else '['}{lo}, {hi}{')' if open_upper or maximum is None else ']'}"


def check_real(
    name: str,
    value,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    open_lower: bool = False,
    open_upper: bool = False,
) -> float:
    """Return ``value`` as float, raising unless it is a finite real number (not a bool) in the range.

    The range is ``[minimum, maximum]`` (either bound may be ``None``); ``open_lower``/``open_upper``
    exclude the bound itself, e.g. ``check_real("delta", d, 0, 1, open_lower=True, open_upper=True)``
    for ``(0, 1)``. Wrong kinds raise :class:`TypeError`, non-finite or out-of-range values
    :class:`ValueError` naming the parameter and the allowed range.
    """
    v = _as_float(name, value)
    too_low = minimum is not None and (v <= minimum if open_lower else v < minimum)
    too_high = maximum is not None and (v >= maximum if open_upper else v > maximum)
    if not math.isfinite(v) or too_low or too_high:
        rng = _interval(minimum, maximum, open_lower, open_upper)
        raise ValueError(f"{name} must be a finite real number in {rng}, got {value!r}")
    return v


def check_bool(name: str, value) -> bool:
    """Return ``value``, raising :class:`TypeError` unless it is ``True`` or ``False`` (not 0/1, not None)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_one_of(name: str, value, allowed):
    """Return ``value``, raising :class:`ValueError` (listing the allowed values) unless it is one of ``allowed``."""
    allowed = tuple(allowed)
    try:
        ok = any(isinstance(value, bool) == isinstance(a, bool) and bool(value == a) for a in allowed)
    except (TypeError, RuntimeError):  # e.g. a tensor whose == is not a bool
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    """Return ``value`` as float, raising unless it is finite and > 0."""
    v = _as_float(name, value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_nonnegative(name: str, value) -> float:
    """Return ``value`` as float, raising unless it is finite and >= 0."""
    v = _as_float(name, value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def check_probability(name: str, value, *, open_upper: bool = False) -> float:
    """Return ``value`` as float, raising unless it lies in [0, 1] (or [0, 1))."""
    v = _as_float(name, value)
    ok = 0.0 <= v < 1.0 if open_upper else 0.0 <= v <= 1.0
    if not (math.isfinite(v) and ok):
        rng = "[0, 1)" if open_upper else "[0, 1]"
        raise ValueError(f"{name} must lie in {rng}, got {value!r}")
    return v


def check_power(name: str, value, like: torch.Tensor | None = None) -> torch.Tensor | float:
    """Validate a power or noise variance given as a float or a tensor broadcastable to the batch.

    Tensors are checked on the host only when they are small (a check of a large tensor would force a
    device synchronisation); they must be real, finite and > 0.
    """
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(f"{name} must be real, got a complex tensor")
        if value.numel() <= 4096 and not bool(torch.all(torch.isfinite(value) & (value > 0))):
            raise ValueError(f"{name} must be finite and > 0 everywhere")
        return value
    return check_positive(name, value)


def check_complex(name: str, x) -> torch.Tensor:
    """Raise unless ``x`` is a complex torch tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_complex():
        raise TypeError(f"{name} must be a complex tensor (complex64 or complex128), got {x.dtype}")
    return x


def check_channel(
    name: str,
    h,
    *,
    min_dim: int = 2,
    num_users: int | None = None,
    num_antennas: int | None = None,
    check_finite: bool = True,
) -> torch.Tensor:
    """Check a channel tensor ``[..., K, N]`` or ``[..., K, Nr, N]``.

    Raises if it is not complex, has too few dimensions, the wrong number of users or antennas, or
    holds NaN/inf values.
    """
    check_complex(name, h)
    if h.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimensions [..., K, N], got shape {tuple(h.shape)}")
    if num_antennas is not None and h.shape[-1] != num_antennas:
        raise ValueError(
            f"{name} must have N={num_antennas} BS antennas in its last dimension, got shape {tuple(h.shape)}"
        )
    if num_users is not None and h.shape[-min_dim] != num_users:
        raise ValueError(f"{name} must have K={num_users} users, got shape {tuple(h.shape)}")
    if check_finite and not bool(torch.isfinite(torch.view_as_real(h)).all()):
        raise ValueError(f"{name} holds non-finite values (NaN or inf); channels must be finite")
    return h


SNR_DB_RANGE = (-100.0, 100.0)


def check_snr_db(name: str, value) -> float:
    """Return an SNR in dB as float, raising unless it is finite and within :data:`SNR_DB_RANGE`
    (beyond +-100 dB the power or noise leaves the range complex64 represents safely)."""
    return check_real(name, value, *SNR_DB_RANGE)


def check_device(value, name: str = "device") -> torch.device:
    """A torch device that exists here: ``cpu``, ``cuda`` or ``cuda:N`` (with a CUDA device present),
    ``mps`` where available. Raises ``ValueError`` naming ``name`` otherwise."""
    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError):
        raise ValueError(f"{name} must be a torch device such as 'cpu', 'cuda' or 'cuda:0', got {value!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}={value!r} was requested but no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name}={value!r}: there are {torch.cuda.device_count()} CUDA devices")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"{name}={value!r} was requested but MPS is not available")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{name} must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {value!r}")
    return dev
