"""The hybrid transceiver of the MSER paper: its variables, constraints, masks and initialisation.

Spec ``shared/papers/mser-unfolding-hbf.md`` s2, s4.3, s4.5, s4.14. A channel ``H`` ``[..., K, Nr, Nt]``
(users by receive by BS antennas) is served by

* BS digital precoders ``P`` ``[..., K, R_t, D_k]`` (``V = [P_1, ..., P_K]`` ``[..., R_t, D]``,
  ``D = K D_k``), BS analog phases ``theta_F`` ``[..., N_t, R_t]`` (``F = exp(j theta_F)``);
* user analog phases ``theta_U`` ``[..., K, R_r, N_r]`` (``U_k = exp(j theta_U,k)``, applied as
  ``U_k y_k``) and user digital combiners ``W`` ``[..., K, R_r, D_k]``, so that stream ``i`` of user k
  is detected from ``w_ik^H U_k y_k``.

A fully digital transceiver (``hybrid=False``) has ``F = I``, ``U_k = I`` (``R_t = N_t``, ``R_r = N_r``)
and no phases.

Symbols are the paper's *unnormalised* square QAM points (QPSK ``+-1 +- j``, energy ``E_s = 2``;
16-QAM levels ``{-3, -1, 1, 3}``, ``E_s = 10``). The library's convention (unit-energy symbols,
``SNR = P / sigma^2``) maps to the paper's ``sigma_n^2 = E_s P_T / SNR`` (spec s3.2) through
``sigma_n^2 = E_s sigma^2`` with ``P_T = P``: both describe the same link.

Zero-padding (s4.14): users whose channel is all zero are *dummy* users (their precoders are forced to
zero and their streams excluded from every objective), BS antennas whose column is zero for every user
are inactive (their rows of F radiate nothing, and the power constraint counts active antennas only),
and receive antennas whose row is zero are inactive (their phase shifters add no noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..._ops import abs2, gram_cholesky, sq_norm

__all__ = [
    "MODULATION_ORDERS",
    "MSERState",
    "Link",
    "modulation_order",
    "system_sizes",
    "symbol_levels",
    "symbol_energy",
    "draw_symbols",
    "alignment_init",
    "random_init",
    "mmse_combiners",
]

MODULATION_ORDERS = {"qpsk": 4, "16qam": 16}


def system_sizes(scenario) -> dict:
    """The transceiver sizes of a hybrid multi-antenna-user scenario, as the keyword arguments the MSER
    networks take (``num_bs_antennas``, ``num_rf_chains``, ``num_users``, ``num_rx_antennas``,
    ``num_rx_rf_chains``, ``num_streams``)."""
    keys = ("num_bs_antennas", "num_rf_chains", "num_users", "num_rx_antennas", "num_rx_rf_chains", "num_streams")
    return {k: getattr(scenario, k) for k in keys}


def modulation_order(modulation: str | int) -> int:
    """``4`` for ``"qpsk"``, ``16`` for ``"16qam"``; a square order is returned as is."""
    if isinstance(modulation, str):
        key = modulation.lower().replace("-", "")
        if key not in MODULATION_ORDERS:
            raise ValueError(f"modulation must be one of {', '.join(MODULATION_ORDERS)}, got {modulation!r}")
        return MODULATION_ORDERS[key]
    m = int(modulation)
    if m < 4 or math.isqrt(m) ** 2 != m:
        raise ValueError(f"modulation order must be a square >= 4 (4, 16, 64, ...), got {modulation!r}")
    return m


def symbol_levels(m: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """Per-dimension levels ``F_n = 2n - sqrt(M) - 1``, ``n = 1..sqrt(M)`` (unnormalised)."""
    r = math.isqrt(m)
    return (2 * torch.arange(1, r + 1, dtype=dtype, device=device) - r - 1).to(dtype)


def symbol_energy(m: int) -> float:
    """``E_s = E|b|^2 = 2 (M - 1) / 3`` of the unnormalised square M-QAM alphabet (2 for QPSK)."""
    return 2 * (m - 1) / 3


def draw_symbols(
    batch: tuple[int, ...],
    num_streams: int,
    num_samples: int,
    m: int,
    *,
    generator=None,
    dtype=torch.complex64,
    device=None,
) -> torch.Tensor:
    """``J`` i.i.d. uniform symbol vectors per channel, ``[*batch, D, J]`` (unnormalised M-QAM)."""
    m = modulation_order(m)
    r = math.isqrt(m)
    rdtype = torch.float64 if dtype == torch.complex128 else torch.float32
    lv = symbol_levels(m, rdtype, device)
    idx = torch.randint(r, (2, *batch, num_streams, num_samples), generator=generator, device=device)
    return torch.complex(lv[idx[0]], lv[idx[1]]).to(dtype)


class MSERState(NamedTuple):
    """The transceiver variables (spec s2.1). ``theta_u`` and ``theta_f`` are ``None`` when fully digital."""

    p: torch.Tensor  # [..., K, Rt, Dk] complex
    w: torch.Tensor  # [..., K, Rr, Dk] complex
    theta_u: torch.Tensor | None  # [..., K, Rr, Nr] real
    theta_f: torch.Tensor | None  # [..., Nt, Rt] real


def _unit(theta: torch.Tensor, dtype) -> torch.Tensor:
    return torch.polar(torch.ones_like(theta), theta).to(dtype)


@dataclass
class Link:
    """One batch of channels with its operating point: what every objective and update needs.

    Attributes:
        h: channels ``[..., K, Nr, Nt]``.
        power: P_T (float or real tensor broadcastable to the batch ``[...]``).
        sigma_n: noise standard deviation per receive antenna in the paper's unnormalised-symbol units,
            ``sqrt(E_s sigma^2)`` (float or ``[...]`` tensor).
        m: modulation order (4 or 16).
        hybrid: hybrid (default) or fully digital transceiver.
        user_mask, tx_mask, rx_mask: real ``[..., K]``, ``[..., Nt]``, ``[..., K, Nr]`` with 1 for
            active users / antennas (from the zero pattern of ``h`` by :meth:`from_channel`).
    """

    h: torch.Tensor
    power: torch.Tensor | float
    sigma_n: torch.Tensor | float
    m: int
    hybrid: bool
    user_mask: torch.Tensor
    tx_mask: torch.Tensor
    rx_mask: torch.Tensor

    @classmethod
    def from_channel(cls, h, power, noise_var, m: int = 4, hybrid: bool = True) -> Link:
        """A link for library-convention ``power`` and ``noise_var`` (unit-energy symbols)."""
        m = modulation_order(m)
        rd = h.real.dtype

        def real(x):
            return x.to(dtype=rd, device=h.device) if isinstance(x, torch.Tensor) else float(x)

        power, noise_var = real(power), real(noise_var)
        sigma_n = (
            torch.sqrt(symbol_energy(m) * noise_var)
            if isinstance(noise_var, torch.Tensor)
            else math.sqrt(symbol_energy(m) * noise_var)
        )
        a = abs2(h)
        user = (a.sum((-1, -2)) > 0).to(rd)
        tx = (a.sum((-2, -3)) > 0).to(rd)
        rx = (a.sum(-1) > 0).to(rd)
        return cls(h, power, sigma_n, m, hybrid, user, tx, rx)

    # -- shapes --------------------------------------------------------------------------------------
    @property
    def num_users(self) -> int:
        return self.h.shape[-3]

    def bcast(self, x, extra: int = 0):
        """A per-channel scalar (float or ``[...]``) shaped to broadcast against ``[..., *extra dims]``."""
        if isinstance(x, torch.Tensor) and x.dim():
            return x.reshape(*x.shape, *([1] * extra))
        return x

    # -- analog parts --------------------------------------------------------------------------------
    def analog_tx(self, theta_f) -> torch.Tensor | None:
        """``F`` ``[..., Nt, Rt]`` with inactive antenna rows zeroed (``None`` when fully digital)."""
        if not self.hybrid:
            return None
        return _unit(theta_f, self.h.dtype) * self.tx_mask[..., :, None].to(self.h.dtype)

    def analog_rx(self, theta_u) -> torch.Tensor | None:
        """``U`` ``[..., K, Rr, Nr]`` with inactive receive-antenna columns zeroed."""
        if not self.hybrid:
            return None
        return _unit(theta_u, self.h.dtype) * self.rx_mask[..., None, :].to(self.h.dtype)

    def effective(self, theta_u, theta_f) -> torch.Tensor:
        """``A_k = U_k H_k F`` ``[..., K, Rr, Rt]`` (``H_k`` when fully digital)."""
        if not self.hybrid:
            return self.h
        f = self.analog_tx(theta_f)
        return self.analog_rx(theta_u) @ (self.h @ f.unsqueeze(-3))

    def combiner_norms(self, w, theta_u) -> torch.Tensor:
        """``||U_k^H w_ik||^2`` ``[..., K, Dk]`` (the output noise gain of each stream)."""
        if not self.hybrid:
            return abs2(w * self.rx_mask[..., :, None].to(w.dtype)).sum(-2)
        return abs2(self.analog_rx(theta_u).mH @ w).sum(-2)

    # -- constraints ---------------------------------------------------------------------------------
    def normalize_power(self, p, theta_f) -> torch.Tensor:
        """(26): ``V <- sqrt(P_T) V / ||F V||_F`` (dummy users' precoders set to zero first)."""
        p = p * self.user_mask[..., :, None, None].to(p.dtype)
        v = stack_precoder(p)
        fv = v if not self.hybrid else self.analog_tx(theta_f) @ v
        nrm = safe_sqrt(sq_norm(fv, 2))
        ok = nrm > torch.finfo(nrm.dtype).tiny
        root_p = torch.sqrt(torch.as_tensor(self.power, dtype=nrm.dtype, device=nrm.device))
        scale = torch.where(ok, root_p / torch.where(ok, nrm, torch.ones_like(nrm)), torch.zeros_like(nrm))
        return p * scale[..., None, None, None].to(p.dtype)

    def normalize_combiners(self, w, theta_u) -> torch.Tensor:
        """s4.3: ``w_ik <- w_ik / ||U_k^H w_ik||`` (a zero column stays zero)."""
        n = safe_sqrt(self.combiner_norms(w, theta_u))
        return w * torch.where(n > 0, 1 / torch.where(n > 0, n, torch.ones_like(n)), 0)[..., None, :].to(w.dtype)


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` of a non-negative tensor whose gradient is 0 (not NaN) where ``x = 0`` (dummy users'
    zero combiners and precoders)."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def stack_precoder(p: torch.Tensor) -> torch.Tensor:
    """``V = [P_1, ..., P_K]`` ``[..., Rt, K Dk]`` from ``P`` ``[..., K, Rt, Dk]``."""
    return p.transpose(-3, -2).flatten(-2)


def split_precoder(v: torch.Tensor, num_users: int) -> torch.Tensor:
    """Inverse of :func:`stack_precoder`."""
    return v.unflatten(-1, (num_users, -1)).transpose(-3, -2)


def mmse_combiners(link: Link, p, theta_u, theta_f) -> torch.Tensor:
    """The MMSE digital combiners given the rest (s4.5, s4.10), ``[..., K, Rr, Dk]``:
    ``W_k = (E_s A_k V V^H A_k^H + sigma_n^2 U_k U_k^H)^-1 E_s A_k V E_k^T`` (Cholesky solve)."""
    es = symbol_energy(link.m)
    a = link.effective(theta_u, theta_f)  # [..., K, Rr, Rt]
    av = a @ stack_precoder(p).unsqueeze(-3)  # [..., K, Rr, D]
    if link.hybrid:
        u = link.analog_rx(theta_u)
        noise = u @ u.mH
    else:
        noise = torch.diag_embed(link.rx_mask.to(a.dtype))
    s2 = link.bcast(link.sigma_n, 3)
    r = es * (av @ av.mH) + (s2 * s2) * noise
    k, dk = p.shape[-3], p.shape[-1]
    own = av.unflatten(-1, (k, dk)).diagonal(dim1=-4, dim2=-2).movedim(-1, -3)  # [..., K, Rr, Dk]
    return torch.cholesky_solve(es * own, gram_cholesky(r))


def _phase_fill(u: torch.Tensor, s: torch.Tensor, generator) -> torch.Tensor:
    """Phases of ``u`` ``[..., N, R]``; columns whose singular value is ~0 get random phases."""
    ph = torch.angle(u)
    weak = s < 1e-6 * s[..., :1].clamp_min(torch.finfo(s.dtype).tiny)  # [..., R]
    if bool(weak.any()):
        rnd = 2 * math.pi * torch.rand(ph.shape, generator=generator, dtype=torch.float64, device="cpu")
        ph = torch.where(weak[..., None, :], rnd.to(ph.dtype).to(ph.device), ph)
    return ph


def alignment_init(link: Link, num_rf: int, num_rx_rf: int, num_streams: int, *, generator=None) -> MSERState:
    """The channel-alignment start of s4.5 (the paper's "conventional channel alignment method [6]").

    ``theta_F`` = phases of the first R_t right singular vectors of ``[H_1; ...; H_K]``,
    ``theta_U,k`` = phases of the first R_r left singular vectors of ``H_k`` (transposed), ``P_k`` = the
    first D_k right singular vectors of ``A_k = U_k H_k F`` scaled by (26), and ``W_k`` the MMSE
    combiners, column-normalised (s4.3). Fully digital: ``F = I``, ``U = I`` and ``P_k`` from ``H_k``.
    """
    h = link.h
    if link.hybrid:
        hs = h.flatten(-3, -2)  # [..., K Nr, Nt]
        _, s, vh = torch.linalg.svd(hs, full_matrices=True)
        r = num_rf
        sv = torch.zeros(*s.shape[:-1], r, dtype=s.dtype, device=s.device)
        sv[..., : min(r, s.shape[-1])] = s[..., :r]
        theta_f = _phase_fill(vh.mH[..., :, :r], sv, generator)
        uu, su, _ = torch.linalg.svd(h, full_matrices=True)  # uu [..., K, Nr, Nr]
        svu = torch.zeros(*su.shape[:-1], num_rx_rf, dtype=su.dtype, device=su.device)
        svu[..., : min(num_rx_rf, su.shape[-1])] = su[..., :num_rx_rf]
        # U_k = (first R_r left singular vectors)^H: the phases of the conjugate transpose
        theta_u = -_phase_fill(uu[..., :, :num_rx_rf], svu, generator).transpose(-1, -2)
    else:
        theta_f = theta_u = None
    a = link.effective(theta_u, theta_f)  # [..., K, Rr, Rt]
    _, _, vh = torch.linalg.svd(a, full_matrices=True)
    p = vh.mH[..., :, :num_streams]  # [..., K, Rt, Dk]
    p = link.normalize_power(p, theta_f)
    w = mmse_combiners(link, p, theta_u, theta_f)
    w = link.normalize_combiners(w, theta_u)
    return MSERState(p, w, theta_u, theta_f)


def random_init(
    link: Link, num_rf: int, num_rx_rf: int, num_streams: int, *, batch: tuple[int, ...] = (), generator=None
) -> MSERState:
    """Random starts (s4.2 restarts) ``[*batch, ..., ...]``: phases ``U[0, 2 pi)``, ``P``, ``W`` ~ CN(0, 1),
    then (26) and s4.3. One draw per restart, shared by every channel of the batch, in float64 on the
    CPU (then cast and moved): a channel's start depends neither on the batch nor on the device."""
    h = link.h
    lead = tuple(batch)  # one draw per restart, shared by every channel: results do not depend on the batch
    chan = h.shape[:-3]
    k, nr, nt = h.shape[-3:]
    dt, dev = h.dtype, h.device

    def cn(*shape):
        x = torch.randn(*shape, 2, generator=generator, dtype=torch.float64) / math.sqrt(2)
        return torch.view_as_complex(x).to(dt).to(dev)

    def ph(*shape):
        return (2 * math.pi * torch.rand(*shape, generator=generator, dtype=torch.float64)).to(h.real.dtype).to(dev)

    rt = num_rf if link.hybrid else nt
    rr = num_rx_rf if link.hybrid else nr

    def over(x, n):  # insert the channel batch between the restart axes and the matrix axes
        return x.reshape(*lead, *([1] * len(chan)), *x.shape[len(lead) :]).expand(*lead, *chan, *x.shape[len(lead) :])

    theta_f = over(ph(*lead, nt, rt), 2) if link.hybrid else None
    theta_u = over(ph(*lead, k, rr, nr), 3) if link.hybrid else None
    p = link.normalize_power(over(cn(*lead, k, rt, num_streams), 3), theta_f)
    w = link.normalize_combiners(over(cn(*lead, k, rr, num_streams), 3), theta_u)
    return MSERState(p, w, theta_u, theta_f)
