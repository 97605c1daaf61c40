"""The JCEHB paper's conventional pipelines RLS-SSCA and RLS-ZF (spec s4.5).

Both use the long-term analog beamformers of SSCA (:func:`beamlearn.hybrid.ssca.ssca_analog`, trained on
channel samples of the scenario, so they are shipped like learned weights: a :class:`ConventionalJCEHB`
file holds the phases), per slot ``L_r`` DFT pilots of unit power through the analog stage, RLS channel
estimation (Algorithm 1, :func:`beamlearn.estimation.rls_estimate`) of the equivalent channels, and a
digital design on the estimate: SCA (Algorithm 2, ``L_s`` iterations, :func:`beamlearn.hybrid.digital.
sca_digital`) or ZF over SVD combiners (:func:`beamlearn.hybrid.digital.zf_digital`). The rate is scored
on the true channel by the library's metrics. Defaults: the paper's reference ``L_r = 90``, ``L_s = 70``.
"""

from __future__ import annotations

import math

import torch

from ..._validation import check_int, check_one_of, check_real
from ...estimation import orthogonal_pilots, rls_estimate
from ...hybrid.digital import sca_digital, zf_digital
from .model import JCEHBPipeline

__all__ = ["ConventionalJCEHB", "DIGITAL_DESIGNS"]

DIGITAL_DESIGNS = ("sca", "zf")


class ConventionalJCEHB(JCEHBPipeline):
    """RLS-SSCA (``digital="sca"``) or RLS-ZF (``digital="zf"``) with fixed (SSCA) analog phases.

    Args:
        num_users, num_bs_antennas, num_rx_antennas, num_rf_chains, num_rx_rf_chains, num_streams: the sizes
            K, N, Nr, M, R, Ns.
        digital: ``"sca"`` or ``"zf"``.
        rls_pilots: L_r, pilot symbols = RLS iterations (default 90).
        sca_iterations: L_s (default 70).
        forgetting, delta: RLS beta and ``P^0 = delta^{-1} I`` (spec DEFAULT 0.99, 0.01).
        alpha: the SCA base (2).
        noise_cov: ``"exact"`` or ``"identity"``.
        csi: ``"pilots"`` or ``"perfect"`` (SCA on the true equivalent channels).
        phase_bits: quantisation of the analog phases (``None``: infinite resolution).
        seed: seed of the initial (random, U[0, 2 pi)) phases; :meth:`from_phases` sets SSCA's.

    The analog phases ``phase_f`` ``[N, M]`` and ``phase_w`` ``[K, Nr, R]`` are buffers (saved in the model
    file); :meth:`from_phases` builds the method from an :class:`~beamlearn.hybrid.ssca.SSCAResult`'s phases.

    Example:
        >>> import math
        >>> m = ConventionalJCEHB.from_phases(torch.rand(16, 4) * 2 * math.pi, torch.rand(2, 8, 2) * 2 * math.pi,
        ...                                   num_streams=2, rls_pilots=8, sca_iterations=5)
        >>> h = torch.randn(3, 2, 8, 16, dtype=torch.complex64)
        >>> m(h, 4.0, 0.1).precoder.shape  # a tensor: the perfect-CSI path
        torch.Size([3, 16, 4])
    """

    model_name = "jcehb-conventional"

    def __init__(
        self,
        num_users: int = 4,
        num_bs_antennas: int = 64,
        num_rx_antennas: int = 32,
        num_rf_chains: int = 16,
        num_rx_rf_chains: int = 4,
        num_streams: int = 4,
        *,
        digital: str = "sca",
        rls_pilots: int = 90,
        sca_iterations: int = 70,
        forgetting: float = 0.99,
        delta: float = 0.01,
        alpha: float = 2.0,
        noise_cov: str = "exact",
        csi: str = "pilots",
        phase_bits: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self._set_link(
            (num_users, num_bs_antennas, num_rx_antennas, num_rf_chains, num_rx_rf_chains, num_streams),
            noise_cov,
            csi,
            phase_bits,
        )
        self.digital = check_one_of("digital", digital, DIGITAL_DESIGNS)
        self.rls_pilots = check_int("rls_pilots", rls_pilots, 1)
        self.sca_iterations = check_int("sca_iterations", sca_iterations, 0)
        self.forgetting = check_real("forgetting", forgetting, 0.0, 1.0, open_lower=True)
        self.delta = check_real("delta", delta, 0.0, None, open_lower=True)
        self.alpha = check_real("alpha", alpha, 1.0, None, open_lower=True)
        self.seed = seed
        g = torch.Generator().manual_seed(int(seed))
        self.register_buffer("phase_f", torch.rand(num_bs_antennas, num_rf_chains, generator=g) * 2 * math.pi)
        self.register_buffer(
            "phase_w", torch.rand(num_users, num_rx_antennas, num_rx_rf_chains, generator=g) * 2 * math.pi
        )

    @classmethod
    def from_phases(cls, phase_f: torch.Tensor, phase_w: torch.Tensor, **kw) -> ConventionalJCEHB:
        """The method with the given analog phases ``[N, M]`` and ``[K, Nr, R]`` (e.g. SSCA's)."""
        if phase_f.dim() != 2 or phase_w.dim() != 3 or phase_f.is_complex() or phase_w.is_complex():
            raise ValueError(
                f"phase_f must be real [N, M] and phase_w real [K, Nr, R], got {tuple(phase_f.shape)} and "
                f"{tuple(phase_w.shape)}"
            )
        n, m = phase_f.shape
        k, nr, r = phase_w.shape
        kw.setdefault("num_streams", min(r, 4))
        method = cls(k, n, nr, m, r, **kw)
        method.phase_f.copy_(phase_f.detach())
        method.phase_w.copy_(phase_w.detach())
        return method

    def analog_phases(self):
        return self.phase_f, self.phase_w

    def pilot_matrix(self) -> torch.Tensor:
        x = orthogonal_pilots(self.num_rf_chains, self.rls_pilots, 1.0, device=self.phase_f.device)
        return x.expand(self.num_users, *x.shape)

    def estimate(self, y: torch.Tensor) -> torch.Tensor:
        x = self.pilot_matrix().to(y.dtype)[..., : y.shape[-1]]
        return rls_estimate(y, x, self.forgetting, self.delta)

    def design(self, h_eq_view, f_rf_gram, gram, nv):
        if self.digital == "zf":
            return zf_digital(h_eq_view, f_rf_gram, self.num_streams)
        out = sca_digital(h_eq_view, f_rf_gram, gram, nv, self.num_streams, self.sca_iterations, self.alpha)
        return out.f_bb, out.w_bb
