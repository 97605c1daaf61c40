"""The MSER objective: the kernel-density SER surrogate, its closed-form gradients, and the MSE.

Spec ``shared/papers/mser-unfolding-hbf.md`` s2.4-s2.5, s4.1, s4.9, s4.10. For ``J`` symbol vectors
``S`` ``[..., D, J]`` the noise-free outputs are ``Bbar_k = W_k^H A_k V S`` ``[..., K, Dk, J]``
(:func:`outputs`) and the QPSK surrogate (12)-(13) of one channel is

    f = (1/J) sum_{k,i,j} [ Q(Re s_kij Re bbar_kij / rho) + Q(Im s_kij Im bbar_kij / rho) ],

the sum over streams of the upper bound ``P_R + P_I`` of (11) under a Gaussian kernel of width rho.
With ``rho`` the true output noise standard deviation ``sigma_n ||U_k^H w_ik|| / sqrt(2)`` it is the
exact conditional SER bound of the J vectors. For square M-QAM (47)-(48) the outputs are first
phase-aligned, ``bbar' = bbar e^{-j angle(c)}`` with ``c_ik = w_ik^H A_k p_ik`` the own gain (46, as
reconstructed), and each dimension contributes ``(phi/J) Q((Re bbar' - |c| (Re s - 1)) / rho)`` with
``phi = (2 sqrt(M) - 2) / sqrt(M)``.

Gradients follow the convention ``G_X = dF/dRe X + j dF/dIm X = 2 dF/dX*`` (what PyTorch stores in
``X.grad``; spec s4.0) and phases ``df/dtheta = Im(conj(X) G_X)``. :func:`qpsk_gradient` gives the
closed forms (16)-(21) with a kernel per block (and per user for P, W, U, as the unfolded network
needs); :func:`autograd_gradient` gives the same quantities for any objective (16-QAM, the MSE) by
automatic differentiation, with ``create_graph`` for training through them.
"""

from __future__ import annotations

import math

import torch

from ..._ops import abs2
from .transceiver import Link, MSERState, stack_precoder, symbol_energy

__all__ = [
    "outputs",
    "ser_surrogate",
    "true_kernel",
    "qpsk_gradient",
    "autograd_gradient",
    "sum_mse",
    "BLOCKS",
]

BLOCKS = ("p", "w", "theta_u", "theta_f")
_SQRT2PI = math.sqrt(2 * math.pi)


def _phi(u: torch.Tensor) -> torch.Tensor:
    """Standard normal density."""
    return torch.exp(-0.5 * u * u) / _SQRT2PI


def _q(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.special.erfc(x / math.sqrt(2))


def outputs(link: Link, state: MSERState, s: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
    """Noise-free combiner outputs ``Bbar`` ``[..., K, Dk, J]`` (8) for symbol vectors ``s`` ``[..., D, J]``
    (``a``: the effective channels ``A_k`` when already computed)."""
    a = link.effective(state.theta_u, state.theta_f) if a is None else a  # [..., K, Rr, Rt]
    y = a @ (stack_precoder(state.p) @ s).unsqueeze(-3)  # [..., K, Rr, J]
    return state.w.mH @ y


def own_gains(link: Link, state: MSERState, a: torch.Tensor | None = None) -> torch.Tensor:
    """``c_ik = w_ik^H A_k p_ik`` ``[..., K, Dk]`` (the desired-symbol gain of each stream)."""
    a = link.effective(state.theta_u, state.theta_f) if a is None else a
    return (state.w.mH @ a @ state.p).diagonal(dim1=-2, dim2=-1)


def true_kernel(link: Link, state: MSERState) -> torch.Tensor:
    """The output noise standard deviation per dimension, ``sigma_n ||U_k^H w_ik|| / sqrt(2)``, ``[..., K, Dk]``."""
    from .transceiver import safe_sqrt

    n = safe_sqrt(link.combiner_norms(state.w, state.theta_u))
    return link.bcast(link.sigma_n, 2) * n / math.sqrt(2)


def _per_stream(link: Link, state: MSERState, s: torch.Tensor, rho) -> torch.Tensor:
    """Surrogate of every stream and sample, ``[..., K, Dk, J]`` (before the mean over J)."""
    k = state.p.shape[-3]
    a = link.effective(state.theta_u, state.theta_f)
    b = outputs(link, state, s, a)
    sk = s.unflatten(-2, (k, -1))
    if link.m == 4:
        return _q(sk.real * b.real / rho) + _q(sk.imag * b.imag / rho)
    c = own_gains(link, state, a)[..., None]  # [..., K, Dk, 1]
    mag = c.abs()
    rot = torch.where(mag > 0, c.conj() / mag.clamp_min(torch.finfo(mag.dtype).tiny), torch.ones_like(c))
    b = b * rot
    r = math.isqrt(link.m)
    phi = (2 * r - 2) / r
    return phi * (_q((b.real - mag * (sk.real - 1)) / rho) + _q((b.imag - mag * (sk.imag - 1)) / rho))


def ser_surrogate(link: Link, state: MSERState, s: torch.Tensor, rho=None, *, per_stream: bool = False):
    """The surrogate of (12)-(13) / (47)-(48) summed over active users and streams, ``[...]``.

    ``rho``: kernel width, a float or a tensor broadcastable to ``[..., K, Dk, 1]``; ``None``: the true
    noise kernel (:func:`true_kernel`), which makes it the exact conditional SER bound of the samples.
    ``per_stream=True`` returns ``[..., K, Dk]`` (mean over the samples) instead.
    """
    if rho is None:  # dummy users (zero channel, zero combiner) get a unit kernel: excluded, but finite
        rho = torch.where(link.user_mask[..., :, None] > 0, true_kernel(link, state), 1.0)[..., None]
    v = _per_stream(link, state, s, rho).mean(-1) * link.user_mask[..., :, None]
    return v if per_stream else v.sum((-1, -2))


def _gamma(sk: torch.Tensor, b: torch.Tensor, rho) -> torch.Tensor:
    """Error weights ``Gamma = Re(s) phi(Re s Re b / rho) + j Im(s) phi(Im s Im b / rho)`` divided by rho."""
    return torch.complex(sk.real * _phi(sk.real * b.real / rho), sk.imag * _phi(sk.imag * b.imag / rho)) / rho


def _kernel(rho, per_user: bool) -> torch.Tensor | float:
    """A block kernel given per channel and user (``[..., K]``) or per channel (``[...]``) as a tensor that
    broadcasts against ``[..., K, Dk, J]``; floats pass through."""
    if not isinstance(rho, torch.Tensor) or rho.dim() == 0:
        return rho
    return rho[..., None, None] if per_user else rho.reshape(*rho.shape, 1, 1, 1)


def qpsk_gradient(link: Link, state: MSERState, s: torch.Tensor, block: str, rho) -> torch.Tensor:
    """Closed-form gradient (16)-(21) of the QPSK surrogate with respect to one block.

    Args:
        block: ``"p"`` (G_P ``[..., K, Rt, Dk]``, (16)), ``"w"`` (G_W ``[..., K, Rr, Dk]``, (17)),
            ``"theta_u"`` (df/dtheta_U ``[..., K, Rr, Nr]``, (18), (20)) or ``"theta_f"``
            (df/dtheta_F ``[..., Nt, Rt]``, (19), (21)).
        rho: kernel width: a float, or a real tensor ``[..., K]`` (one width per channel and user) for
            ``p``, ``w``, ``theta_u``, or ``[...]`` (per channel) for ``theta_f``. With per-user widths,
            block k's gradient is that of the whole objective evaluated with user k's kernel, as in the
            unfolded layers (27)-(29).

    Every user's stream sum enters (the exact gradient of the total objective, spec s9 #9); dummy users
    (zero channels) contribute nothing.
    """
    if link.m != 4:
        raise ValueError("closed-form gradients exist for QPSK only; use autograd_gradient for M-QAM")
    k = state.p.shape[-3]
    j = s.shape[-1]
    a = link.effective(state.theta_u, state.theta_f)  # [..., K, Rr, Rt]
    vs = stack_precoder(state.p) @ s  # [..., Rt, J]
    sk = s.unflatten(-2, (k, -1))  # [..., K, Dk, J]
    per_user = isinstance(rho, torch.Tensor) and rho.dim() > 0 and block != "theta_f"
    um = link.user_mask[..., :, None, None].to(a.dtype)
    if block == "p":
        y = a @ vs.unsqueeze(-3)  # [..., K, Rr, J]
        b = state.w.mH @ y  # [..., K, Dk, J]
        if per_user:  # target user t on a new axis: Gamma [..., Kt, K', Dk, J]
            g = _gamma(sk.unsqueeze(-4), b.unsqueeze(-4), rho[..., :, None, None, None]) * um.unsqueeze(-4)
            m = ((a.mH @ state.w).unsqueeze(-4) @ g).sum(-3)  # [..., Kt, Rt, J]
        else:
            g = _gamma(sk, b, _kernel(rho, False)) * um
            m = ((a.mH @ state.w) @ g).sum(-3, keepdim=True)  # [..., 1, Rt, J]
        return -(m @ sk.mH) / j  # [..., K, Rt, Dk]
    if block == "w":
        y = a @ vs.unsqueeze(-3)
        b = state.w.mH @ y
        g = _gamma(sk, b, _kernel(rho, per_user)) * um
        return -(y @ g.mH) / j
    if block == "theta_u":
        if not link.hybrid:
            raise ValueError("a fully digital transceiver has no phases")
        f = link.analog_tx(state.theta_f)
        z = link.h @ (f @ vs).unsqueeze(-3)  # [..., K, Nr, J]
        u = link.analog_rx(state.theta_u)
        b = state.w.mH @ (u @ z)
        g = _gamma(sk, b, _kernel(rho, per_user)) * um
        gu = -(state.w @ g @ z.mH) / j  # [..., K, Rr, Nr]
        return (u.conj() * gu).imag
    if block == "theta_f":
        if not link.hybrid:
            raise ValueError("a fully digital transceiver has no phases")
        y = a @ vs.unsqueeze(-3)
        b = state.w.mH @ y
        g = _gamma(sk, b, _kernel(rho, False)) * um
        u = link.analog_rx(state.theta_u)
        back = (link.h.mH @ (u.mH @ (state.w @ g))).sum(-3)  # [..., Nt, J]
        gf = -(back @ vs.mH) / j  # [..., Nt, Rt]
        return (link.analog_tx(state.theta_f).conj() * gf).imag
    raise ValueError(f"block must be one of {', '.join(BLOCKS)}, got {block!r}")


def autograd_gradient(
    objective, link: Link, state: MSERState, s: torch.Tensor, block: str, rho=None, *, create_graph: bool = False
) -> torch.Tensor:
    """The gradient of ``objective(link, state, s, rho) -> [...]`` with respect to one block, by
    autograd, in the convention of :func:`qpsk_gradient` (``G_X`` for complex blocks, ``df/dtheta`` for
    phases). ``objective`` is :func:`ser_surrogate` or :func:`sum_mse` (or one of the same signature).

    ``rho`` as in :func:`qpsk_gradient` (float, ``[..., K]``, or ``[...]`` for ``theta_f``) or ``None``
    (the objective's own kernel); the objective receives it shaped to broadcast against
    ``[..., K, Dk, J]``. A per-user kernel for ``p`` is handled as in (27): block k's gradient is that of
    the objective evaluated with user k's kernel (one evaluation per k, batched on a new axis, with the
    other users' precoders held fixed). ``create_graph=True`` keeps the graph (training an unfolded
    network through its gradient steps).
    """
    x = getattr(state, block)
    k = state.p.shape[-3]
    with torch.enable_grad():
        graph = create_graph and x.requires_grad
        # a fresh leaf: only the block's own path is differentiated (not the other state tensors computed
        # from it); with a graph, the clone keeps the second-order path to x
        leaf = x.clone() if graph else x.detach().requires_grad_(True)
        tensor = isinstance(rho, torch.Tensor) and rho.dim() > 0
        if block == "p" and tensor:
            eye = torch.eye(k, dtype=torch.bool, device=x.device)[:, :, None, None]  # [Kt, K, 1, 1]
            others = x if graph else leaf.detach()  # held fixed at first order, second order kept
            p_t = torch.where(eye, leaf.unsqueeze(-4), others.unsqueeze(-4))  # [..., Kt, K, Rt, Dk]
            lifted = MSERState(
                p_t,
                state.w.unsqueeze(-4),
                None if state.theta_u is None else state.theta_u.unsqueeze(-4),
                None if state.theta_f is None else state.theta_f.unsqueeze(-3),
            )
            val = objective(_lift_link(link), lifted, s.unsqueeze(-3), rho[..., :, None, None, None]).sum()
        else:
            if tensor:
                rho = rho[..., None, None, None] if block == "theta_f" else rho[..., :, None, None]
            val = objective(link, state._replace(**{block: leaf}), s, rho).sum()
        (g,) = torch.autograd.grad(val, leaf, create_graph=create_graph)
    return g


def _lift_link(link: Link) -> Link:
    """The link with a singleton target-user axis in front of the user axis."""
    return Link(
        link.h.unsqueeze(-4),
        link.bcast(link.power, 1),
        link.bcast(link.sigma_n, 1),
        link.m,
        link.hybrid,
        link.user_mask.unsqueeze(-2),
        link.tx_mask.unsqueeze(-2),
        link.rx_mask.unsqueeze(-3),
    )


def sum_mse(link: Link, state: MSERState, s=None, rho=None) -> torch.Tensor:
    """Sum over active users of ``MSE_k = E_s ||W_k^H A_k V - E_k||_F^2 + sigma_n^2 ||U_k^H W_k||_F^2``
    (s4.10), ``[...]``. ``s`` and ``rho`` are ignored (signature shared with the surrogate)."""
    k, dk = state.p.shape[-3], state.p.shape[-1]
    a = link.effective(state.theta_u, state.theta_f)
    g = state.w.mH @ a @ stack_precoder(state.p).unsqueeze(-3)  # [..., K, Dk, D]
    eye = torch.eye(k * dk, dtype=g.dtype, device=g.device).unflatten(0, (k, dk))  # [K, Dk, D]
    es = symbol_energy(link.m)
    err = es * abs2(g - eye).sum((-1, -2))
    noise = link.combiner_norms(state.w, state.theta_u).sum(-1)
    s2 = link.bcast(link.sigma_n, 1)
    return ((err + s2 * s2 * noise) * link.user_mask).sum(-1)
