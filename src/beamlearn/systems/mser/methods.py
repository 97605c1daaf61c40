"""The MSER paper's designs as library methods: ``method(h, power, noise_var) -> Beamformers``.

Every method takes the channel ``h`` ``[..., K, Nr, Nt]`` (what the transmitter observes: the true
channel, or an estimate under imperfect CSI), the total power P and the noise variance sigma^2 per
receive antenna (library convention: unit-energy symbols, SNR = P / sigma^2), and returns the
hybrid (or fully digital) transceiver as :class:`~beamlearn.interface.Beamformers` with
``detection="sign"`` for QPSK (the paper's eq. (6): every method of the paper detects QPSK by the sign
of the combiner output) and ``"equalized"`` for 16-QAM (phase-aligned gain-scaled thresholds (45)).

=================  ================================================================================
``mser-gd``        MSER hybrid GD (Algorithm 1), 500 iterations, best of ``restarts`` starts (s4.2)
``mser-fd-gd``     MSER fully digital GD (F = I, U = I)
``mmse-gd``        MMSE hybrid GD: sum-MSE objective, closed-form W, GD on V, theta_U, theta_F (s4.10)
``mmse-fd-gd``     MMSE fully digital: alternating closed forms (MMSE W, Joham's transmit Wiener filter)
``mmse-omp``       OMP hybrid factorisation of the MMSE fully digital design, MMSE-weighted receive OMP
``mmse-mo``        MO-AltMin hybrid factorisation of the MMSE fully digital design
=================  ================================================================================
"""

from __future__ import annotations

import torch

from ..._validation import check_complex, check_int, check_one_of, check_power, check_real
from ...interface import BeamformingMethod
from .gd import GDSteps, gd_kernel, initial_states, run_gd, select_best
from .model import MODULATIONS, to_beamformers
from .objective import ser_surrogate
from .transceiver import Link, draw_symbols, modulation_order

__all__ = ["MSERGD", "MSERFDGD", "MMSEGD", "MMSEFDGD", "MMSEOMP", "MMSEMO", "MSERDesign"]


class MSERDesign(BeamformingMethod):
    """Base of the paper's classical designs: checks, the :class:`Link`, and the conversion to
    :class:`Beamformers`. Subclasses implement ``design(link) -> MSERState``."""

    fully_digital = False

    def __init__(self, num_rf_chains: int | None, num_rx_rf_chains: int | None, num_streams: int, modulation: str):
        super().__init__()
        self.num_rf_chains = None if num_rf_chains is None else check_int("num_rf_chains", num_rf_chains, 1)
        self.num_rx_rf_chains = None if num_rx_rf_chains is None else check_int("num_rx_rf_chains", num_rx_rf_chains, 1)
        self.num_streams = check_int("num_streams", num_streams, 1)
        self.modulation = check_one_of("modulation", modulation, MODULATIONS)
        if not self.fully_digital and (num_rf_chains is None or num_rx_rf_chains is None):
            raise ValueError(f"{self.name}: a hybrid design needs num_rf_chains and num_rx_rf_chains")

    @property
    def hybrid(self) -> bool:  # type: ignore[override]
        return not self.fully_digital

    def _check(self, h):
        check_complex("h", h)
        if h.dim() < 3:
            raise ValueError(f"h must be [..., K, Nr, Nt] (multi-antenna users), got shape {tuple(h.shape)}")
        k, nr, nt = h.shape[-3:]
        d = self.num_streams
        if not self.fully_digital:
            if not d <= self.num_rx_rf_chains <= nr:
                raise ValueError(
                    f"num_streams D_k={d} must be <= num_rx_rf_chains R_r={self.num_rx_rf_chains} <= Nr={nr}"
                )
            if not k * d <= self.num_rf_chains <= nt:
                raise ValueError(
                    f"num_rf_chains R_t={self.num_rf_chains} must lie in [K D_k={k * d}, Nt={nt}] (every stream "
                    "needs an RF chain)"
                )
        elif d > nr:
            raise ValueError(f"num_streams D_k={d} must be <= Nr={nr}")

    def forward(self, h, power, noise_var):
        self._check(h)
        check_power("power", power)
        check_power("noise_var", noise_var)
        m = modulation_order(self.modulation)
        link = Link.from_channel(h, power, noise_var, m, hybrid=not self.fully_digital)
        st = self.design(link)
        return to_beamformers(link, st, "sign" if m == 4 else "equalized")

    def design(self, link: Link):  # pragma: no cover - abstract
        raise NotImplementedError

    def _sizes(self, link: Link) -> tuple[int, int]:
        nr, nt = link.h.shape[-2:]
        return (nt, nr) if self.fully_digital else (self.num_rf_chains, self.num_rx_rf_chains)


class MSERGD(MSERDesign):
    """MSER hybrid gradient descent (Algorithm 1, spec s4.2-s4.5).

    Args:
        num_rf_chains, num_rx_rf_chains, num_streams: R_t, R_r, D_k.
        iterations: T (default 500).
        restarts: number of starts, the best by the training objective kept (restart 0: channel
            alignment; the others random); the paper uses 50, the default here is 1 (CPU budget).
        num_samples: J symbol vectors (known pilots) of the objective (default 256).
        kappa: kernel width over the output noise standard deviation.
        step_mode: ``"normalized"`` (s4.4) or ``"raw"`` (then ``raw_step`` for every block).
        objective: ``"ser"`` (MSER) or ``"mse"`` (the MMSE GD baseline).
        seed: seed of the symbols and the random restarts (one pilot block and one set of random starts
            shared by every channel: a channel's result does not depend on the batch).

    Example:
        >>> from beamlearn.scenarios import get_scenario
        >>> sc = get_scenario("mser")
        >>> bf = MSERGD(8, 4, 3, iterations=5)(sc.channel_model()(2, seed=0), *sc.power_and_noise(10.0))
        >>> bf.precoder.shape
        torch.Size([2, 64, 6])
    """

    name = "mser-gd"

    def __init__(
        self,
        num_rf_chains: int | None,
        num_rx_rf_chains: int | None,
        num_streams: int,
        modulation: str = "qpsk",
        iterations: int = 500,
        restarts: int = 1,
        num_samples: int = 256,
        kappa: float = 1.0,
        step_mode: str = "normalized",
        raw_step: float = 1e-2,
        objective: str = "ser",
        seed: int = 0,
    ):
        super().__init__(num_rf_chains, num_rx_rf_chains, num_streams, modulation)
        self.iterations = check_int("iterations", iterations, 0)
        self.restarts = check_int("restarts", restarts, 1, 1000)
        self.num_samples = check_int("num_samples", num_samples, 1)
        self.kappa = check_real("kappa", kappa, 0, open_lower=True)
        self.step_mode = check_one_of("step_mode", step_mode, ("normalized", "raw"))
        self.raw_step = check_real("raw_step", raw_step, 0, open_lower=True)
        self.objective = check_one_of("objective", objective, ("ser", "mse"))
        self.seed = check_int("seed", seed, 0)

    def design(self, link: Link):
        rt, rr = self._sizes(link)
        gen = torch.Generator().manual_seed(self.seed)
        batch = link.h.shape[:-3]
        # one pilot block shared by every channel: a channel's result does not depend on the batch
        s = draw_symbols((), link.num_users * self.num_streams, self.num_samples, link.m, generator=gen)
        s = s.to(dtype=link.h.dtype, device=link.h.device).expand(*batch, *s.shape)
        starts = initial_states(link, rt, rr, self.num_streams, self.restarts, generator=gen)
        raw = {b: self.raw_step for b in ("p", "w", "theta_u", "theta_f")}
        st = run_gd(
            link,
            starts,
            s,
            self.iterations,
            steps=GDSteps(),
            kappa=self.kappa,
            step_mode=self.step_mode,
            raw_steps=raw,
            objective=self.objective,
        )
        if self.restarts == 1:
            return type(st)(*(None if t is None else t.squeeze(0) for t in st))
        if self.objective == "ser":
            rho = gd_kernel(link, self.kappa)
            rho = rho[..., None, None, None] if isinstance(rho, torch.Tensor) and rho.dim() else rho
            val = ser_surrogate(link, st, s, rho)
        else:
            from .objective import sum_mse

            val = sum_mse(link, st)
        return select_best(st, val)


class MSERFDGD(MSERGD):
    """MSER fully digital GD: Algorithm 1 with F = I and U = I (``V`` ``[Nt, D]``, ``W_k`` ``[Nr, D_k]``)."""

    name = "mser-fd-gd"
    fully_digital = True

    def __init__(
        self,
        num_streams: int,
        modulation: str = "qpsk",
        iterations: int = 500,
        restarts: int = 1,
        num_samples: int = 256,
        kappa: float = 1.0,
        step_mode: str = "normalized",
        raw_step: float = 1e-2,
        objective: str = "ser",
        seed: int = 0,
    ):
        super().__init__(
            None,
            None,
            num_streams,
            modulation,
            iterations,
            restarts,
            num_samples,
            kappa,
            step_mode,
            raw_step,
            objective,
            seed,
        )


class MMSEGD(MSERGD):
    """MMSE hybrid GD (s4.10 item 2): Algorithm 1 on the sum MSE with the closed-form MMSE W."""

    name = "mmse-gd"

    def __init__(
        self,
        num_rf_chains: int,
        num_rx_rf_chains: int,
        num_streams: int,
        modulation: str = "qpsk",
        iterations: int = 500,
        seed: int = 0,
    ):
        super().__init__(
            num_rf_chains, num_rx_rf_chains, num_streams, modulation, iterations, objective="mse", seed=seed
        )


class MMSEFDGD(MSERDesign):
    """MMSE fully digital design (s4.10 item 1) by alternating closed forms: the MMSE combiners given V
    and Joham's transmit Wiener filter given W (the spec's allowed alternative to GD: same fixed point)."""

    name = "mmse-fd-gd"
    fully_digital = True

    def __init__(self, num_streams: int, modulation: str = "qpsk", iterations: int = 100):
        super().__init__(None, None, num_streams, modulation)
        self.iterations = check_int("iterations", iterations, 0)

    def design(self, link):
        from .baselines import mmse_fd_design

        return mmse_fd_design(link, self.num_streams, iterations=self.iterations)


class MMSEOMP(MSERDesign):
    """OMP hybrid factorisation of the MMSE fully digital design with the MMSE-weighted receive OMP
    (spec s4.10 item 3, El Ayach et al. [6])."""

    name = "mmse-omp"

    def __init__(
        self,
        num_rf_chains: int,
        num_rx_rf_chains: int,
        num_streams: int,
        modulation: str = "qpsk",
        fd_iterations: int = 100,
    ):
        super().__init__(num_rf_chains, num_rx_rf_chains, num_streams, modulation)
        self.fd_iterations = check_int("fd_iterations", fd_iterations, 0)

    def design(self, link):
        from .baselines import mmse_omp_design

        return mmse_omp_design(
            link, self.num_rf_chains, self.num_rx_rf_chains, self.num_streams, fd_iterations=self.fd_iterations
        )


class MMSEMO(MSERDesign):
    """MO-AltMin hybrid factorisation of the MMSE fully digital design, transmitter and receivers
    (spec s4.10 item 4, Yu et al. [11])."""

    name = "mmse-mo"

    def __init__(
        self,
        num_rf_chains: int,
        num_rx_rf_chains: int,
        num_streams: int,
        modulation: str = "qpsk",
        fd_iterations: int = 100,
        outer_iterations: int = 50,
        seed: int = 0,
    ):
        super().__init__(num_rf_chains, num_rx_rf_chains, num_streams, modulation)
        self.fd_iterations = check_int("fd_iterations", fd_iterations, 0)
        self.outer_iterations = check_int("outer_iterations", outer_iterations, 0)
        self.seed = check_int("seed", seed, 0)

    def design(self, link):
        from .baselines import mmse_mo_design

        return mmse_mo_design(
            link,
            self.num_rf_chains,
            self.num_rx_rf_chains,
            self.num_streams,
            fd_iterations=self.fd_iterations,
            outer_iterations=self.outer_iterations,
            generator=torch.Generator().manual_seed(self.seed),
        )


def mser_reason(sc, snrs=None, *, hybrid: bool = True) -> str | None:
    """Why the MSER designs do not apply to scenario ``sc`` (``None`` if they do)."""
    if sc.num_rx_antennas == 1:
        return "is for multi-antenna users (the MSER transceiver): the scenario has Nr=1"
    if hybrid:
        if sc.num_rf_chains is None or sc.num_rx_rf_chains is None:
            return "needs hybrid transmitter and receivers: the scenario has no num_rf_chains/num_rx_rf_chains"
        if sc.num_rf_chains < sc.num_users * sc.num_streams:
            return (
                f"needs num_rf_chains R_t >= K D_k = {sc.num_users * sc.num_streams}, the scenario has "
                f"R_t={sc.num_rf_chains}"
            )
    return None
