"""MSER gradient descent (Algorithm 1) and the MMSE gradient-descent baselines, batched over channels.

Spec ``shared/papers/mser-unfolding-hbf.md`` s4.2-s4.4, s4.10. One iteration updates the blocks in the
paper's Gauss-Seidel order, each with the gradient at the latest values of the others:

1. (22) ``P_k <- P_k - mu_P Delta_P,k`` (all users at once);
2. (23) ``W_k <- W_k - mu_W Delta_W,k``, then the column normalisation ``||U_k^H w_ik|| = 1`` (s4.3);
3. (24) ``theta_U <- theta_U - mu_U Delta_U`` (then W normalised again);
4. (25) ``theta_F <- theta_F - mu_F Delta_F``;
5. (26) ``V <- sqrt(P_T) V / ||F V||_F``.

``Delta`` is the raw gradient (``step_mode="raw"``, the paper's literal rule) or, by default, the
normalised one of s4.4: ``||X_k||_F G_k / ||G_k||_F`` per user block for P and W and
``sqrt(numel) g / ||g||_F`` per user (theta_U) or per channel (theta_F) for phases, with step sizes
``mu_t = mu_0 decay^t`` (``mu_P = mu_W = 0.05``, ``mu_U = mu_F = 0.02``, decay 0.99, or 0.98 when
``T <= 100``). A zero gradient means no update. The same iteration, with trainable element-wise steps,
offsets and kernels, is one layer of the unfolded network (:mod:`.model`).

The kernel of the GD objective is ``rho_0 = kappa sigma_n / sqrt(2)`` (s4.3, kappa = 1): after the W
normalisation it is the true output noise standard deviation. The iteration count is fixed (no
tolerance test: no host synchronisation inside the loop); restarts run batched on a leading axis and
the best one per channel is kept by the training objective (s4.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..._ops import sq_norm
from ..._validation import check_int, check_real
from .objective import autograd_gradient, qpsk_gradient, ser_surrogate, sum_mse
from .transceiver import Link, MSERState, alignment_init, mmse_combiners, random_init, safe_sqrt

__all__ = ["GDSteps", "mser_iteration", "run_gd", "gd_kernel", "normalized_delta", "select_best"]

STEP_MODES = ("normalized", "raw")
OBJECTIVES = ("ser", "mse")


@dataclass(frozen=True)
class GDSteps:
    """Initial step sizes and decay of the gradient descent (s4.4). ``decay=None``: 0.99, or 0.98 when
    the iteration count is at most 100."""

    mu_p: float = 0.05
    mu_w: float = 0.05
    mu_u: float = 0.02
    mu_f: float = 0.02
    decay: float | None = None

    def __post_init__(self):
        for name in ("mu_p", "mu_w", "mu_u", "mu_f"):
            check_real(name, getattr(self, name), 0)
        if self.decay is not None:
            check_real("decay", self.decay, 0, 1, open_lower=True)

    def decay_for(self, iterations: int) -> float:
        if self.decay is not None:
            return self.decay
        return 0.98 if iterations <= 100 else 0.99

    def at(self, t: int, iterations: int) -> dict[str, float]:
        """The steps of iteration ``t`` of a run of ``iterations``."""
        d = self.decay_for(iterations) ** t
        return {"p": self.mu_p * d, "w": self.mu_w * d, "theta_u": self.mu_u * d, "theta_f": self.mu_f * d}


def gd_kernel(link: Link, kappa: float = 1.0):
    """``rho_0 = kappa sigma_n / sqrt(2)`` (float or ``[...]``)."""
    return kappa * link.sigma_n / math.sqrt(2)


def _unit_direction(g: torch.Tensor, dims: int) -> torch.Tensor:
    """``g / ||g||_F`` over the last ``dims`` dimensions (0 where g = 0), robust to tiny magnitudes."""
    m = g.abs().flatten(-dims).amax(-1)
    m = m.reshape(*m.shape, *([1] * dims))
    ok = m > torch.finfo(m.dtype).tiny  # subnormal gradients count as zero (no update)
    safe = torch.where(ok, m, torch.ones_like(m))
    gs = g / safe
    n = safe_sqrt(sq_norm(gs, dims)).reshape(m.shape)
    ok = ok & (n > 0)
    return torch.where(ok, gs / torch.where(ok, n, torch.ones_like(n)), torch.zeros_like(gs))


def normalized_delta(block: str, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The normalised update direction of s4.4 for one block (see the module docstring)."""
    if block in ("p", "w"):
        return safe_sqrt(sq_norm(x, 2))[..., None, None].to(x.dtype) * _unit_direction(g, 2)
    if block == "theta_u":
        return math.sqrt(g.shape[-1] * g.shape[-2]) * _unit_direction(g, 2)
    return math.sqrt(g.shape[-1] * g.shape[-2]) * _unit_direction(g, 2)


def _gradient(link, state, s, block, rho, objective, create_graph):
    if objective == "ser" and link.m == 4:
        return qpsk_gradient(link, state, s, block, rho)
    fn = ser_surrogate if objective == "ser" else sum_mse
    return autograd_gradient(fn, link, state, s, block, rho, create_graph=create_graph)


def mser_iteration(
    link: Link,
    state: MSERState,
    s: torch.Tensor,
    steps: dict,
    kernels: dict,
    *,
    offsets: dict | None = None,
    step_mode: str = "normalized",
    normalize_w: bool = True,
    objective: str = "ser",
    create_graph: bool = False,
) -> MSERState:
    """One iteration (22)-(26), or one unfolded layer (27)-(30).

    Args:
        steps: per block (``p``, ``w``, ``theta_u``, ``theta_f``) the step: a float (GD) or a tensor
            broadcastable to the block (the trainable element-wise ``alpha`` of (27)-(30); complex for
            ``p``, ``w``, real for the phases).
        kernels: per block the kernel width (float, ``[..., K]`` for p/w/theta_u, ``[...]`` for theta_f).
        offsets: per block the trainable offsets ``O`` (added after the step), or ``None``.
        objective: ``"ser"`` (the surrogate) or ``"mse"`` (sum MSE: W by its closed form, s4.10).
        create_graph: keep the graph of the gradients (training through QAM/MSE autograd gradients;
            the QPSK closed forms are differentiable as they are).
    """
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be one of {', '.join(STEP_MODES)}, got {step_mode!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    k = link.num_users
    for block, rho in kernels.items():
        if isinstance(rho, torch.Tensor) and rho.dim() and block != "theta_f" and rho.shape[-1] != k:
            raise ValueError(
                f"kernels[{block!r}] must be a float or a per-user tensor [..., K={k}], got {tuple(rho.shape)}"
            )
    offsets = offsets or {}

    def step(block, st):
        x = getattr(st, block)
        g = _gradient(link, st, s, block, kernels.get(block), objective, create_graph)
        d = normalized_delta(block, g, x) if step_mode == "normalized" else g
        new = x - steps[block] * d
        if block in offsets:
            new = new + offsets[block]
        return st._replace(**{block: new * link.user_mask[..., :, None, None].to(new.dtype) if block == "p" else new})

    state = step("p", state)
    if objective == "mse":
        state = state._replace(w=mmse_combiners(link, state.p, state.theta_u, state.theta_f))
    else:
        state = step("w", state)
        if normalize_w:
            state = state._replace(w=link.normalize_combiners(state.w, state.theta_u))
    if link.hybrid:
        state = step("theta_u", state)
        if normalize_w and objective == "ser":
            state = state._replace(w=link.normalize_combiners(state.w, state.theta_u))
        state = step("theta_f", state)
    return state._replace(p=link.normalize_power(state.p, state.theta_f))


def run_gd(
    link: Link,
    state: MSERState,
    s: torch.Tensor,
    iterations: int,
    *,
    steps: GDSteps = GDSteps(),
    kappa: float = 1.0,
    step_mode: str = "normalized",
    raw_steps: dict | None = None,
    normalize_w: bool = True,
    objective: str = "ser",
    record: bool = False,
):
    """``iterations`` iterations of :func:`mser_iteration` from ``state`` with the GD schedule.

    ``raw_steps`` (block -> mu) replaces the schedule in ``step_mode="raw"``. With ``record=True`` also
    returns the objective after every iteration ``[..., iterations + 1]`` (index 0: the start), the
    surrogate at the GD kernel for ``objective="ser"``, the sum MSE otherwise.
    """
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be one of {', '.join(STEP_MODES)}, got {step_mode!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    iterations = check_int("iterations", iterations, 0)
    rho = gd_kernel(link, kappa)
    k = link.num_users
    rho_u = rho[..., None].expand(*rho.shape, k) if isinstance(rho, torch.Tensor) and rho.dim() else rho
    kernels = {"p": rho_u, "w": rho_u, "theta_u": rho_u, "theta_f": rho}

    def value(st):
        if objective == "ser":
            return ser_surrogate(link, st, s, _bk(rho))
        return sum_mse(link, st)

    hist = [value(state)] if record else None
    for t in range(iterations):
        mu = steps.at(t, iterations) if step_mode == "normalized" else dict(raw_steps or {})
        if step_mode == "raw" and set(mu) != {"p", "w", "theta_u", "theta_f"}:
            raise ValueError("step_mode='raw' needs raw_steps with keys p, w, theta_u, theta_f")
        state = mser_iteration(
            link, state, s, mu, kernels, step_mode=step_mode, normalize_w=normalize_w, objective=objective
        )
        if record:
            hist.append(value(state))
    if objective == "mse":
        state = state._replace(w=mmse_combiners(link, state.p, state.theta_u, state.theta_f))
    if record:
        return state, torch.stack(hist, -1)
    return state


def _bk(rho):
    """A per-channel kernel shaped to broadcast against ``[..., K, Dk, J]``."""
    if isinstance(rho, torch.Tensor) and rho.dim():
        return rho[..., None, None, None]
    return rho


def select_best(states: MSERState, values: torch.Tensor) -> MSERState:
    """The state of the restart (leading axis) with the smallest ``values`` ``[R, ...]`` per channel."""
    best = values.argmin(0)  # [...]

    def pick(t):
        if t is None:
            return None
        idx = best.reshape(1, *best.shape, *([1] * (t.dim() - 1 - best.dim())))
        idx = idx.expand(1, *t.shape[1:])
        return torch.gather(t, 0, idx).squeeze(0)

    return MSERState(*(pick(t) for t in states))


def initial_states(
    link: Link, num_rf: int, num_rx_rf: int, num_streams: int, restarts: int, *, generator=None
) -> MSERState:
    """``[R, ...]`` starts: restart 0 the channel-alignment init, 1..R-1 random (s4.2)."""
    first = alignment_init(link, num_rf, num_rx_rf, num_streams, generator=generator)
    if restarts == 1:
        return MSERState(*(None if t is None else t.unsqueeze(0) for t in first))
    rest = random_init(link, num_rf, num_rx_rf, num_streams, batch=(restarts - 1,), generator=generator)
    pairs = zip(first, rest, strict=True)
    return MSERState(*(None if a is None else torch.cat([a.unsqueeze(0), b], 0) for a, b in pairs))
