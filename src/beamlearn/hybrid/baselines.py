"""Two-stage hybrid beamforming baselines: a fully digital precoder, then a hybrid factorisation.

* :class:`SCARMM` (``"sca-rmm"``): the SCA sum-rate precoder (:func:`~beamlearn.precoding.sca.sca_precoder`,
  Tran et al. 2012) factorised by MO-AltMin (:func:`~beamlearn.hybrid.factorization.mo_altmin`, Yu et al.
  2016): the SCA-RMM baseline of the unfolded-PGA paper (spec ``unfolded-pga-hbf.md`` s5.2).
* :class:`MOAltMin` (``"mo-altmin"``): the WMMSE precoder (100 iterations) factorised by MO-AltMin.
* :class:`OMPHybrid` (``"omp"``): the WMMSE precoder factorised by simultaneous OMP over unit-modulus ULA
  responses on a grid (El Ayach et al. 2014).

All take single-antenna users ``h`` ``[..., K, N]`` (rows ``h_k^H``), need ``K <= num_rf_chains <= N``,
and return ``Beamformers(precoder=F @ W, analog=F, digital=W)`` with ``|F_nm| = 1`` and
``||F W||_F^2 = P`` (W rescaled with :func:`beamlearn.constraints.normalize_hybrid_power`). MO-AltMin
starts from one ``[N, N_RF]`` matrix of random phases, shared by every channel and drawn from a generator
seeded with ``seed`` on the channel's device, so a method gives the same result for a channel on every
call, whatever the batch it is in (``seed=None``: the global RNG, a new start on every call).
"""

from __future__ import annotations

import torch

from .._validation import check_channel, check_int, check_power
from ..channels.base import make_generator
from ..constraints import normalize_hybrid_power
from ..interface import Beamformers, BeamformingMethod
from ..precoding.sca import sca_precoder
from ..precoding.wmmse import wmmse
from .factorization import mo_altmin, omp_hybrid, ula_dictionary

__all__ = ["SCARMM", "MOAltMin", "OMPHybrid"]


class _TwoStage(BeamformingMethod):
    hybrid = True

    def __init__(self, num_rf_chains: int):
        super().__init__()
        self.num_rf_chains = check_int("num_rf_chains", num_rf_chains, 1)

    def _check(self, h, power, noise_var):
        check_channel("h", h, check_finite=False)
        k, n = h.shape[-2:]
        if not k <= self.num_rf_chains <= n:
            raise ValueError(
                f"{self.name} needs K <= num_rf_chains <= N: num_rf_chains must be in "
                f"[K={k}, N={n}], got {self.num_rf_chains}"
            )
        check_power("power", power)
        check_power("noise_var", noise_var)

    def _digital(self, h, power, noise_var) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _factorise(self, x, h) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, h, power, noise_var) -> Beamformers:
        self._check(h, power, noise_var)
        x = self._digital(h, power, noise_var)
        f, w = self._factorise(x, h)
        w = normalize_hybrid_power(f, w, power)
        return Beamformers(precoder=f @ w, analog=f, digital=w)


class _MOFactorised(_TwoStage):
    def __init__(
        self, num_rf_chains: int, outer_iterations: int = 100, inner_iterations: int = 10, seed: int | None = 0
    ):
        super().__init__(num_rf_chains)
        self.outer_iterations = check_int("outer_iterations", outer_iterations, 0)
        self.inner_iterations = check_int("inner_iterations", inner_iterations, 1)
        self.seed = None if seed is None else check_int("seed", seed, 0)

    def _factorise(self, x, h):
        return mo_altmin(
            x,
            self.num_rf_chains,
            outer_iterations=self.outer_iterations,
            inner_iterations=self.inner_iterations,
            generator=make_generator(self.seed, h.device),
        )


class SCARMM(_MOFactorised):
    """SCA-RMM: SCA fully digital precoder (Tran et al. 2012), factorised by MO-AltMin (Yu et al. 2016).

    Args:
        num_rf_chains: N_RF, ``K <= N_RF <= N``.
        sca_iterations: fixed SCA iterations (see :func:`~beamlearn.precoding.sca.sca_precoder`).
        outer_iterations, inner_iterations: MO-AltMin iteration counts.
        seed: seed of MO-AltMin's random-phase start (``None``: global RNG).
    """

    name = "sca-rmm"

    def __init__(
        self,
        num_rf_chains: int,
        sca_iterations: int = 20,
        outer_iterations: int = 100,
        inner_iterations: int = 10,
        seed: int | None = 0,
    ):
        super().__init__(num_rf_chains, outer_iterations, inner_iterations, seed)
        self.sca_iterations = check_int("sca_iterations", sca_iterations, 0)

    def _digital(self, h, power, noise_var):
        return sca_precoder(h, power, noise_var, iterations=self.sca_iterations)


class MOAltMin(_MOFactorised):
    """MO-AltMin (Yu et al. 2016) factorisation of the fully digital WMMSE precoder (100 iterations).

    Args:
        num_rf_chains: N_RF, ``K <= N_RF <= N``.
        wmmse_iterations: WMMSE iterations (from RZF).
        outer_iterations, inner_iterations: MO-AltMin iteration counts.
        seed: seed of the random-phase start (``None``: global RNG).
    """

    name = "mo-altmin"

    def __init__(
        self,
        num_rf_chains: int,
        wmmse_iterations: int = 100,
        outer_iterations: int = 100,
        inner_iterations: int = 10,
        seed: int | None = 0,
    ):
        super().__init__(num_rf_chains, outer_iterations, inner_iterations, seed)
        self.wmmse_iterations = check_int("wmmse_iterations", wmmse_iterations, 0)

    def _digital(self, h, power, noise_var):
        return wmmse(h, power, noise_var, iterations=self.wmmse_iterations).precoder


class OMPHybrid(_TwoStage):
    """Spatially sparse precoding (El Ayach et al. 2014) of the WMMSE precoder by simultaneous OMP.

    The dictionary holds unit-modulus ULA responses (half-wavelength spacing) on a grid uniform in
    ``sin(angle)`` over ``[-1, 1)`` (:func:`~beamlearn.hybrid.factorization.ula_dictionary`).

    Args:
        num_rf_chains: N_RF, ``K <= N_RF <= N``.
        num_angles: dictionary size L (default ``4N``).
        wmmse_iterations: WMMSE iterations (from RZF).
    """

    name = "omp"

    def __init__(self, num_rf_chains: int, num_angles: int | None = None, wmmse_iterations: int = 100):
        super().__init__(num_rf_chains)
        self.num_angles = None if num_angles is None else check_int("num_angles", num_angles, 1)
        self.wmmse_iterations = check_int("wmmse_iterations", wmmse_iterations, 0)

    def _digital(self, h, power, noise_var):
        return wmmse(h, power, noise_var, iterations=self.wmmse_iterations).precoder

    def _factorise(self, x, h):
        n = h.shape[-1]
        if self.num_angles is not None and self.num_angles < self.num_rf_chains:
            raise ValueError(f"num_angles must be >= num_rf_chains={self.num_rf_chains}, got {self.num_angles}")
        d = ula_dictionary(n, self.num_angles, dtype=x.dtype, device=x.device)
        return omp_hybrid(x, self.num_rf_chains, d)
