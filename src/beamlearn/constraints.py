"""Hardware constraints: unit-modulus projection, b-bit phase quantisation, power normalisation.

Power convention: a precoder ``x`` ``[..., N, K*Ns]`` (or hybrid ``F @ W``) radiates ``||x||_F^2`` with
unit-power symbols; "total power P" means ``||x||_F^2 = P``.
"""

from __future__ import annotations

import math

import torch

from ._ops import abs2, sq_norm
from ._validation import check_int, check_power

__all__ = [
    "project_unit_modulus",
    "quantize_phase",
    "normalize_power",
    "normalize_hybrid_power",
    "hybrid_precoder",
    "precoder_power",
]


def project_unit_modulus(f: torch.Tensor, modulus: float = 1.0) -> torch.Tensor:
    """Closest matrix with entries of modulus ``modulus``: ``modulus * f / |f|`` element-wise.

    Zero entries (whose phase is undefined) map to ``modulus`` (phase 0) instead of NaN; NaN entries stay
    NaN (a diverged iterate, e.g. from a NaN step size, must not turn into a plausible unit-modulus
    matrix). Computed as ``f * rsqrt(re^2 + im^2)``, without a complex ``abs`` or division (this
    projection runs after every analog step of PGA-type algorithms).
    """
    m2 = abs2(f)
    zero = m2 == 0  # False for NaN
    inv = torch.rsqrt(torch.where(zero, torch.ones_like(m2), m2))
    if modulus != 1.0:
        inv = inv * modulus
    return torch.where(zero, torch.full_like(f, modulus), f * inv)


def quantize_phase(f: torch.Tensor, bits: int, modulus: float = 1.0, offset: float = 0.0) -> torch.Tensor:
    """Quantise the phases of ``f`` to the nearest of ``2^bits`` levels ``offset + 2 pi b / 2^bits``.

    Returns entries of modulus ``modulus``. With ``bits=1`` and ``offset=0`` the alphabet is ``{+1, -1}``
    (times ``modulus``): the 1-bit phase shifters of the ASNet/BFNet paper.
    """
    bits = check_int("bits", bits, 1, 24)
    levels = 2**bits
    step = 2 * math.pi / levels
    ang = torch.angle(f) - offset
    q = torch.round(ang / step) * step + offset
    return torch.polar(torch.full_like(ang, float(modulus)), q)


def precoder_power(x: torch.Tensor) -> torch.Tensor:
    """Transmit power ``||x||_F^2`` over the last two dimensions, ``[...]``."""
    return sq_norm(x, 2)


def _scale(power, p_now: torch.Tensor) -> torch.Tensor:
    """``sqrt(P / p_now)`` as ``[..., 1, 1]``; 0 where ``p_now == 0`` (an all-zero precoder stays zero)."""
    p = torch.as_tensor(power, dtype=p_now.dtype, device=p_now.device)
    root = torch.sqrt(p_now)
    s = torch.sqrt(p) / torch.where(root > 0, root, torch.ones_like(root))
    return torch.where(root > 0, s, torch.zeros_like(s))[..., None, None]


def normalize_power(x: torch.Tensor, power, *, per_stream: bool = False) -> torch.Tensor:
    """Scale a precoder to total power ``power`` (``||x||_F^2 = P``).

    ``per_stream=True`` instead gives every column the same norm, ``||x_k||^2 = P / (number of
    columns)`` (Sionna's column normalisation times sqrt(P/K)). An all-zero precoder stays zero.
    """
    check_power("power", power)
    if per_stream:
        cols = x.shape[-1]
        root = torch.linalg.vector_norm(x, dim=-2, keepdim=True)
        p = torch.as_tensor(power, dtype=root.dtype, device=root.device)
        if p.dim():
            p = p[..., None, None]
        s = torch.sqrt(p / cols) / torch.where(root > 0, root, torch.ones_like(root))
        return x * torch.where(root > 0, s, torch.zeros_like(s))
    return x * _scale(power, precoder_power(x))


def hybrid_precoder(analog: torch.Tensor, digital: torch.Tensor) -> torch.Tensor:
    """Effective precoder ``F @ W``: analog ``[..., N, N_RF]`` times digital ``[..., N_RF, K*Ns]``."""
    if analog.shape[-1] != digital.shape[-2]:
        raise ValueError(
            f"analog precoder has N_RF={analog.shape[-1]} columns but digital precoder has {digital.shape[-2]} rows"
        )
    return analog @ digital


def normalize_hybrid_power(analog: torch.Tensor, digital: torch.Tensor, power) -> torch.Tensor:
    """Rescale the digital precoder so that ``||F W||_F^2 = P``; returns the new ``W``."""
    check_power("power", power)
    return digital * _scale(power, precoder_power(hybrid_precoder(analog, digital)))
