"""CEDUN: the RLS-induced deep-unfolding channel estimator of JCEHB (spec s4.6, paper Section IV-B, eqs. 16-17).

Two parts, per user ``k``:

1. **Pilot training NN**: trainable pilots ``X_eq,k`` ``[M, L]`` (``M = N_RF^t``, ``L`` pilot columns), used
   column-normalised to ``||x^n|| = sqrt(P)`` (:meth:`CEDUN.pilot_matrix`); :meth:`CEDUN.receive` forms the
   received pilots ``Y_eq,k = H_eq,k X_eq,k + noise`` (spec s2.4, ``pilot_interference="none"``).
2. **RLS-unfolded NN**: ``L`` layers, layer ``n`` consuming pilot column ``n``; every update of the RLS
   recursion (:func:`beamlearn.estimation.rls_estimate`) gets a trainable multiplier ``T`` and offset ``q``
   (eq. 16, ``out = T in + q``) and the forgetting factor becomes a trainable ``gamma^n_k``.

Layouts: equivalent channels ``H_eq`` ``[..., K, R, M]`` (``R = N_RF^r``), received pilots ``[..., K, R, L]``,
pilots ``[K, M, L]``. At its initialisation (identity multipliers, zero offsets, ``gamma = forgetting``, DFT
pilots) CEDUN computes exactly the conventional RLS estimate (acceptance A4).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..._ops import sq_norm
from ..._validation import check_complex, check_int, check_one_of, check_positive, check_real
from ...estimation import orthogonal_pilots
from ...estimation.rls import _guard_denominator

__all__ = ["AFFINE_MODES", "CEDUN"]

AFFINE_MODES = ("matrix", "diag", "scalar")
GAMMA_RANGE = (0.5, 1.0)  # the clamp of the learned forgetting factors (spec s4.6 safeguards)
_DEN_EPS = 1e-6  # |gamma + g^H x| >= 1e-6 (spec s4.6 safeguards)
_NORM_EPS = 1e-12  # floor of the pilot column norms in pilot_matrix()


def _complex_zeros(*shape: int) -> torch.Tensor:
    """A real ``[*shape, 2]`` tensor of zeros: a complex parameter stored as (Re, Im) pairs."""
    return torch.zeros(*shape, 2)


def _real_pairs(z: torch.Tensor) -> torch.Tensor:
    """Complex tensor -> real ``[..., 2]`` float32 (the storage of complex parameters)."""
    return torch.view_as_real(z.to(torch.complex64)).clone(memory_format=torch.contiguous_format)


class CEDUN(nn.Module):
    """The RLS-unfolded channel estimator with trainable pilots (JCEHB spec s4.6, eq. 17).

    Layer ``n`` (user ``k``; all users batched), from ``W^0 = 0`` ``[M, R]`` and ``P^0 = delta^{-1} I`` ``[M, M]``::

        g^n = T^n_g (P^{n-1} x^n) + q^n_g                                   (17a)
        v^n = T^n_v (g^n / (gamma^n + (g^n)^H x^n)) + q^n_v                  (17b)
        P^n = T^n_p ((gamma^n)^{-1} (P^{n-1} - v^n (g^n)^H)) + q^n_p         (17c)
        e^n = y^n - (W^{n-1})^H x^n                                          (R4)
        W^n = T^n_w (W^{n-1} + v^n (e^n)^H) + q^n_w                          (17d)

    and ``H_hat = (W^{L'})^H``. Safeguards: ``gamma`` is clamped to ``[0.5, 1]`` and ``|gamma + g^H x|`` to
    ``>= 1e-6`` (keeping its phase).

    Args:
        num_users: ``K``; every user has its own pilots and layer parameters.
        num_tx_rf: ``M = N_RF^t``, the pilot dimension (columns of ``H_eq``).
        num_rx_rf: ``R = N_RF^r``, the receive dimension (rows of ``H_eq``).
        pilot_length: ``L``, pilot columns = layers.
        forgetting: initial forgetting factor ``gamma^n_k = beta``, in ``[0.5, 1]`` (the clamp range of gamma).
        delta: ``P^0 = delta^{-1} I``, ``delta > 0``.
        affine_mode: shape of the multipliers ``T``: ``"matrix"`` (``[M, M]``, left-multiplying, init ``I``),
            ``"diag"`` (``[M]``, a diagonal left multiplier, init ones) or ``"scalar"`` (init 1).
        pilot_power: ``P``, the squared norm of every pilot column.

    Parameters (complex ones stored as real ``[..., 2]`` pairs, read with ``torch.view_as_complex``):
    ``T_g, T_v, T_p, T_w`` ``[L, K, M, M]`` / ``[L, K, M]`` / ``[L, K]`` (by ``affine_mode``); ``q_g, q_v``
    ``[L, K, M]``; ``q_p`` ``[L, K, M, M]``; ``q_w`` ``[L, K, M, R]``; ``gamma`` ``[L, K]`` (real); ``pilots``
    ``[K, M, L]`` (raw, see :meth:`pilot_matrix`). In :meth:`forward` the parameters are cast to the real dtype
    of the received pilots, so a float32 module estimates complex128 input in double precision (and
    ``module.double()`` keeps the parameters themselves in double precision).

    Example:
        >>> from beamlearn.estimation import rls_estimate
        >>> net = CEDUN(num_users=2, num_tx_rf=4, num_rx_rf=2, pilot_length=6)
        >>> h = torch.randn(3, 2, 2, 4, dtype=torch.complex64)  # H_eq [B, K, R, M]
        >>> y = net.receive(h, 0.1, generator=torch.Generator().manual_seed(0))
        >>> h_hat = net(y)
        >>> h_hat.shape
        torch.Size([3, 2, 2, 4])
        >>> torch.allclose(h_hat, rls_estimate(y, net.pilot_matrix(), 0.99, 0.01), atol=1e-5)  # at init: RLS
        True
    """

    def __init__(
        self,
        num_users: int,
        num_tx_rf: int,
        num_rx_rf: int,
        pilot_length: int = 16,
        forgetting: float = 0.99,
        delta: float = 0.01,
        affine_mode: str = "matrix",
        pilot_power: float = 1.0,
    ):
        super().__init__()
        k = self.num_users = check_int("num_users", num_users, 1)
        m = self.num_tx_rf = check_int("num_tx_rf", num_tx_rf, 1)
        r = self.num_rx_rf = check_int("num_rx_rf", num_rx_rf, 1)
        n = self.pilot_length = check_int("pilot_length", pilot_length, 1)
        self.forgetting = check_real("forgetting", forgetting, *GAMMA_RANGE)
        self.delta = check_real("delta", delta, 0.0, None, open_lower=True)
        self.affine_mode = check_one_of("affine_mode", affine_mode, AFFINE_MODES)
        self.pilot_power = check_positive("pilot_power", pilot_power)

        if affine_mode == "matrix":
            t_init = _real_pairs(torch.eye(m, dtype=torch.complex64).expand(n, k, m, m))
        elif affine_mode == "diag":
            t_init = _real_pairs(torch.ones(n, k, m, dtype=torch.complex64))
        else:
            t_init = _real_pairs(torch.ones(n, k, dtype=torch.complex64))
        self.T_g = nn.Parameter(t_init.clone())
        self.T_v = nn.Parameter(t_init.clone())
        self.T_p = nn.Parameter(t_init.clone())
        self.T_w = nn.Parameter(t_init.clone())
        self.q_g = nn.Parameter(_complex_zeros(n, k, m))
        self.q_v = nn.Parameter(_complex_zeros(n, k, m))
        self.q_p = nn.Parameter(_complex_zeros(n, k, m, m))
        self.q_w = nn.Parameter(_complex_zeros(n, k, m, r))
        self.gamma = nn.Parameter(torch.full((n, k), self.forgetting))
        dft = orthogonal_pilots(m, n, self.pilot_power, dtype=torch.complex64)  # [M, L], spec s4.2
        self.pilots = nn.Parameter(_real_pairs(dft.expand(k, m, n)))

    def extra_repr(self) -> str:
        return (
            f"num_users={self.num_users}, num_tx_rf={self.num_tx_rf}, num_rx_rf={self.num_rx_rf}, "
            f"pilot_length={self.pilot_length}, forgetting={self.forgetting}, delta={self.delta}, "
            f"affine_mode={self.affine_mode!r}, pilot_power={self.pilot_power}"
        )

    def pilot_matrix(self) -> torch.Tensor:
        """The pilots ``X`` ``[K, M, L]`` (complex, the parameters' precision), every column normalised to
        ``||x^n||^2 = pilot_power`` (spec s2.4 / s4.6: full power, constraint 7e); differentiable.

        A column whose raw norm is below ``1e-12`` is scaled by ``sqrt(P) / 1e-12`` instead (no NaN).

        Example:
            >>> x = CEDUN(2, 4, 2, pilot_length=6, pilot_power=2.0).pilot_matrix()
            >>> x.shape, torch.allclose(x.abs().square().sum(-2), torch.full((2, 6), 2.0))
            (torch.Size([2, 4, 6]), True)
        """
        x = torch.view_as_complex(self.pilots)
        norm = torch.sqrt(sq_norm(x.transpose(-1, -2), dims=1)).clamp_min(_NORM_EPS)  # [K, L]
        return x * (math.sqrt(self.pilot_power) / norm)[..., None, :]

    def _affine(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``T z`` for one layer's multiplier ``t`` (``[K, M, M]``, ``[K, M]`` or ``[K]``), ``z`` ``[..., K, M, c]``."""
        if self.affine_mode == "matrix":
            return t @ z
        if self.affine_mode == "diag":
            return t[..., None] * z
        return t[..., None, None] * z

    def forward(
        self, y: torch.Tensor, pilots: torch.Tensor | None = None, num_layers: int | None = None
    ) -> torch.Tensor:
        """Estimate ``H_eq`` ``[..., K, R, M]`` from the received pilots ``y`` ``[..., K, R, L']`` (eq. 17).

        Args:
            y: received pilots (complex64 or complex128), ``L' <= pilot_length`` columns.
            pilots: the pilots that produced ``y``, ``[..., K, M, >= layers]`` (broadcast with ``y``); default
                :meth:`pilot_matrix`.
            num_layers: layers to run (``1 <= num_layers <= L'``); default ``L'``: a shorter pilot sequence
                uses the first ``L'`` layers and pilot columns (spec s4.6 "Depth vs pilots").

        Example:
            >>> net = CEDUN(num_users=3, num_tx_rf=4, num_rx_rf=2, pilot_length=8)
            >>> y = torch.randn(5, 3, 2, 6, dtype=torch.complex64)  # only 6 of the 8 pilot columns
            >>> net(y).shape
            torch.Size([5, 3, 2, 4])
        """
        k, m, r = self.num_users, self.num_tx_rf, self.num_rx_rf
        check_complex("y", y)
        if y.dim() < 3 or y.shape[-3] != k or y.shape[-2] != r:
            raise ValueError(f"y must have shape [..., K={k}, R={r}, L'], got {tuple(y.shape)}")
        cols = y.shape[-1]
        if not 1 <= cols <= self.pilot_length:
            raise ValueError(f"y must have 1 to pilot_length={self.pilot_length} pilot columns, got {cols}")
        layers = cols if num_layers is None else check_int("num_layers", num_layers, 1, cols)
        if pilots is None:
            x = self.pilot_matrix()
        else:
            check_complex("pilots", pilots)
            if pilots.dim() < 3 or pilots.shape[-3:-1] != (k, m) or pilots.shape[-1] < layers:
                raise ValueError(
                    f"pilots must have shape [..., K={k}, M={m}, >= {layers}] for {layers} layers, "
                    f"got {tuple(pilots.shape)}"
                )
            x = pilots
        x = x.to(y.dtype)
        rd = y.real.dtype

        def c(p: torch.Tensor) -> torch.Tensor:
            return torch.view_as_complex(p.to(rd))

        t_g, t_v, t_p, t_w = c(self.T_g), c(self.T_v), c(self.T_p), c(self.T_w)
        q_g, q_v, q_p, q_w = c(self.q_g), c(self.q_v), c(self.q_p), c(self.q_w)
        gamma = self.gamma.to(rd).clamp(*GAMMA_RANGE)  # [L, K]

        p = torch.eye(m, dtype=y.dtype, device=y.device) / self.delta  # P^0, broadcast over [..., K]
        w = torch.zeros(*y.shape[:-2], m, r, dtype=y.dtype, device=y.device)  # W^0 [..., K, M, R]
        for n in range(layers):
            xn = x[..., n : n + 1]  # [..., K, M, 1]
            gm = gamma[n][:, None, None]  # [K, 1, 1]
            g = self._affine(t_g[n], p @ xn) + q_g[n][..., None]  # (17a)
            den = _guard_denominator(gm + g.mH @ xn, _DEN_EPS)  # [..., K, 1, 1]
            v = self._affine(t_v[n], g / den) + q_v[n][..., None]  # (17b)
            p = self._affine(t_p[n], (p - v @ g.mH) / gm) + q_p[n]  # (17c)
            e = y[..., n : n + 1] - w.mH @ xn  # (R4) [..., K, R, 1]
            w = self._affine(t_w[n], w + v @ e.mH) + q_w[n]  # (17d)
        return w.mH.resolve_conj()
