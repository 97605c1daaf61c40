"""Deep-unfolded PGA hybrid beamforming (Nguyen, Nguyen, Shlezinger, Swindlehurst, Juntti).

Spec: ``shared/papers/unfolded-pga-hbf.md`` section 4. The network is Algorithm 1 unrolled into I
layers (:func:`beamlearn.hybrid.pga_layer`), each with J projected gradient steps on the analog
precoder F and one step on the digital precoder W. The only trainable parameters are the step sizes:
``mu`` ``[I, J]`` (initialised to 0.01) and ``lam`` ``[I]`` (initialised to 1e-4), real and
unconstrained. With the initial values the network computes exactly the conventional PGA of
:func:`beamlearn.hybrid.pga` truncated to I iterations.

The step sizes are only meaningful under the conventions they were trained with: unit-modulus F,
``||F W||_F^2 = P``, sigma^2 = 1 and P = 10^(SNR/10) (the ``unfolded-pga`` scenario), and one model per
SNR (a model trained at one SNR is not expected to work at another; spec s4).

Parameters are stored in float64 (110 scalars by default); they multiply complex64 or complex128
iterates without changing their dtype.
"""

from __future__ import annotations

import torch

from ..._validation import check_bool, check_complex, check_int, check_power, check_real
from ...hybrid.pga import pga_init, run_pga
from ...interface import Beamformers
from ...learned import LearnedMethod

__all__ = ["UnfoldedPGA"]


class UnfoldedPGA(LearnedMethod):
    """Unfolded PGA network: ``model(h, power, noise_var) -> Beamformers`` (hybrid, learned).

    Args:
        layers: I, number of unfolded outer iterations (default 10).
        inner_steps: J, projected F steps per layer (default 10).
        mu_init, lam_init: initial step sizes (defaults 0.01 and 1e-4: the conventional PGA steps).
        include_ln2: gradient of the rate in bits (default) or Theorem 1 as printed.
        inner_projection: project F after every inner step (default) or once per layer.
        num_rf_chains: M in [K, N] (default K); extra RF chains start with random phases drawn from the
            global torch RNG.

    Attributes:
        mu: ``nn.Parameter`` ``[I, J]``; lam: ``nn.Parameter`` ``[I]``.
        metadata: free-form dict saved with the model (e.g. ``snr_db`` and a training summary).

    Example:
        >>> from beamlearn.scenarios import get_scenario
        >>> sc = get_scenario("unfolded-pga")
        >>> h = sc.channel_model()(8, seed=0)
        >>> bf = UnfoldedPGA(layers=3)(h, *sc.power_and_noise(10.0))
        >>> bf.analog.shape, bf.digital.shape
        (torch.Size([8, 32, 4]), torch.Size([8, 4, 4]))
    """

    name = "unfolded-pga"
    model_name = "unfolded-pga"
    hybrid = True

    def __init__(
        self,
        layers: int = 10,
        inner_steps: int = 10,
        mu_init: float = 0.01,
        lam_init: float = 1e-4,
        include_ln2: bool = True,
        inner_projection: bool = True,
        num_rf_chains: int | None = None,
    ):
        super().__init__()
        self.layers = check_int("layers", layers, 1)
        self.inner_steps = check_int("inner_steps", inner_steps, 1)
        self.mu_init = check_real("mu_init", mu_init)
        self.lam_init = check_real("lam_init", lam_init)
        self.include_ln2 = check_bool("include_ln2", include_ln2)
        self.inner_projection = check_bool("inner_projection", inner_projection)
        if num_rf_chains is not None:
            check_int("num_rf_chains", num_rf_chains, 1)
        self.num_rf_chains = num_rf_chains
        self.mu = torch.nn.Parameter(torch.full((self.layers, self.inner_steps), self.mu_init, dtype=torch.float64))
        self.lam = torch.nn.Parameter(torch.full((self.layers,), self.lam_init, dtype=torch.float64))

    # -- computation -----------------------------------------------------------------------------
    def _run(self, h, power, noise_var, record: bool):
        check_complex("h", h)
        check_power("power", power)
        check_power("noise_var", noise_var)
        f, w = pga_init(h, power, self.num_rf_chains)
        return run_pga(
            h,
            f,
            w,
            power,
            noise_var,
            self.mu,
            self.lam,
            include_ln2=self.include_ln2,
            inner_projection=self.inner_projection,
            record=record,
        )

    def forward(self, h: torch.Tensor, power, noise_var) -> Beamformers:
        """Hybrid beamformers for channels ``h`` ``[..., K, N]``: ``precoder = F @ W``, ``analog = F``,
        ``digital = W`` (differentiable with respect to ``mu`` and ``lam``)."""
        f, w, _ = self._run(h, power, noise_var, record=False)
        return Beamformers(precoder=f @ w, analog=f, digital=w)

    def forward_layers(self, h: torch.Tensor, power, noise_var, *, return_beamformers: bool = False):
        """Sum rate after every layer, ``[..., I + 1]`` (index 0: the init (12)-(13)).

        Used for the sum-over-layers loss and the per-layer convergence curve (Fig. 2(a)). With
        ``return_beamformers=True`` returns ``(rates, Beamformers)``.
        """
        f, w, rates = self._run(h, power, noise_var, record=True)
        if return_beamformers:
            return rates, Beamformers(precoder=f @ w, analog=f, digital=w)
        return rates
