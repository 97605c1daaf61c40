"""Regularised LS and RLS channel estimation (JCEHB spec s4.1-4.2, acceptance A3) and the RLS-unfolded CEDUN
(spec s4.6, acceptance A4)."""

import inspect
import math

import pytest
import torch

from beamlearn.channels.base import complex_normal
from beamlearn.estimation import ls_estimate, ls_estimate_regularized, orthogonal_pilots, rls_estimate
from beamlearn.estimation.rls import _guard_denominator
from beamlearn.systems.jcehb.cedun import CEDUN

C64, C128 = torch.complex64, torch.complex128


def _receive(net, h, noise_var, generator=None):
    """Received pilots ``H_eq X + Z`` of CEDUN's pilots, Z i.i.d. CN(0, noise_var)."""
    y = h @ net.pilot_matrix().to(h.dtype)
    return y + complex_normal(y.shape, generator, y.device, y.dtype, noise_var) if noise_var else y


def _cn(shape, seed, dtype=C128):
    """i.i.d. CN(0, 1) entries."""
    g = torch.Generator().manual_seed(seed)
    rdtype = torch.float64 if dtype == C128 else torch.float32
    return torch.complex(
        torch.randn(shape, generator=g, dtype=rdtype), torch.randn(shape, generator=g, dtype=rdtype)
    ) / (math.sqrt(2))


def _rel(a, b):
    a, b = a.detach(), b.detach()
    return float(torch.linalg.norm((a - b).flatten()) / torch.linalg.norm(b.flatten()))


def _reg_ls_reference(y, x, delta):
    """``Y X^H (X X^H + delta I)^{-1}`` with a plain solve (the definition)."""
    m = x.shape[-2]
    a = x @ x.mH + delta * torch.eye(m, dtype=x.dtype)
    return torch.linalg.solve(a, (y @ x.mH).mH, left=True).mH  # A Hermitian: (A^{-1} X Y^H)^H


# --- regularised LS ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("xshape,yshape", [((16, 20), (4, 20)), ((3, 16, 16), (5, 3, 4, 16)), ((8, 12), (2, 3, 4, 12))])
def test_ls_regularized_delta0_equals_ls(xshape, yshape):
    x = _cn(xshape, 1)
    y = _cn(yshape, 2)
    assert _rel(ls_estimate_regularized(y, x, 0.0), ls_estimate(y, x)) < 1e-10


@pytest.mark.parametrize("length", [6, 16, 20])  # L < M works with delta > 0
def test_ls_regularized_matches_definition(length):
    x = _cn((3, 16, length), 3)  # per-user pilots [K, M, L]
    y = _cn((2, 3, 4, length), 4)  # [B, K, R, L]
    h = ls_estimate_regularized(y, x, 0.3)
    assert h.shape == (2, 3, 4, 16)
    assert _rel(h, _reg_ls_reference(y, x, 0.3)) < 1e-10


def test_ls_regularized_bad_inputs():
    x, y = _cn((16, 8), 0), _cn((4, 8), 1)
    with pytest.raises(ValueError, match="delta"):
        ls_estimate_regularized(y, x, -1.0)
    with pytest.raises(ValueError, match="pilots"):
        ls_estimate_regularized(y, x, 0.0)  # L < M without regularisation
    with pytest.raises(ValueError, match="pilot length"):
        ls_estimate_regularized(_cn((4, 9), 1), x, 0.1)


# --- RLS (Algorithm 1) ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [16, 20])
def test_rls_noiseless_recovers_channel(length):
    """A3: noiseless, beta = 1, delta = 1e-8, L >= M, DFT pilots."""
    m = 16
    h = _cn((4, 3, 4, m), 5)  # [B, K, R, M]
    x = orthogonal_pilots(m, length, dtype=C128)
    h_hat = rls_estimate(h @ x, x, forgetting=1.0, delta=1e-8)
    assert h_hat.shape == h.shape and h_hat.dtype == C128
    assert _rel(h_hat, h) < 1e-4


@pytest.mark.parametrize(
    "xshape,yshape,delta",
    [
        ((16, 16), (4, 16), 0.01),  # one user
        ((3, 16, 20), (5, 3, 4, 20), 0.01),  # per-user pilots, batch [B, K, R, L]
        ((2, 8, 12), (2, 2, 4, 12), 1.0),
        ((8, 5), (3, 4, 5), 0.1),  # L < M
    ],
)
@pytest.mark.parametrize("dft", [True, False])
def test_rls_beta1_equals_regularized_ls(xshape, yshape, delta, dft):
    """A3: with beta = 1 and P^0 = delta^{-1} I, RLS is exactly the delta-regularised LS estimate."""
    m, length = xshape[-2:]
    x = orthogonal_pilots(m, length, dtype=C128).expand(xshape) if dft else _cn(xshape, 6)
    h = _cn((*yshape[:-1], m), 7)
    y = h @ x + 0.3 * _cn(yshape, 8)
    h_rls = rls_estimate(y, x, forgetting=1.0, delta=delta)
    assert h_rls.shape == (*yshape[:-1], m)
    assert _rel(h_rls, ls_estimate_regularized(y, x, delta)) < 1e-4
    assert _rel(h_rls, _reg_ls_reference(y, x, delta)) < 1e-4


@pytest.mark.parametrize("beta", [0.9, 0.99])
def test_rls_forgetting_is_exponentially_weighted_ls(beta):
    """RLS with forgetting beta minimises sum_n beta^{L-n} |y^n - W^H x^n|^2 + delta beta^L ||W||^2: its
    estimate is ``Y D X^H (X D X^H + delta beta^L I)^{-1}``, ``D = diag(beta^{L-n})``; and ``P^L`` is the
    inverse of that Gram matrix."""
    m, length, delta = 8, 12, 0.05
    x = _cn((3, m, length), 9)
    y = _cn((2, 3, 4, length), 10)
    h_hat, w, p = rls_estimate(y, x, forgetting=beta, delta=delta, return_state=True)
    d = beta ** torch.arange(length - 1, -1, -1, dtype=torch.float64)
    gram = (x * d) @ x.mH + delta * beta**length * torch.eye(m, dtype=C128)
    ref = torch.linalg.solve(gram, (y * d) @ x.mH, left=False)
    assert _rel(h_hat, ref) < 1e-8
    assert torch.allclose(w, h_hat.mH)
    assert p.shape == (3, m, m)  # P depends on the pilots only
    assert _rel(p @ gram, torch.eye(m, dtype=C128).expand(3, m, m)) < 1e-8


def test_rls_complex64_and_pilot_dtype():
    x = orthogonal_pilots(16, 16)  # complex64 pilots
    h = _cn((8, 4, 16), 11, dtype=C64)
    h_hat = rls_estimate(h @ x, x, forgetting=1.0, delta=1e-6)
    assert h_hat.dtype == C64 and _rel(h_hat, h) < 1e-4
    h_hat = rls_estimate((h @ x).to(C128), x, forgetting=1.0, delta=1e-6)  # pilots cast to y's dtype
    assert h_hat.dtype == C128


def test_rls_bad_inputs():
    x, y = _cn((16, 16), 0), _cn((4, 16), 1)
    for bad in (0.0, -0.5, 1.01, float("nan")):
        with pytest.raises(ValueError, match="forgetting"):
            rls_estimate(y, x, forgetting=bad)
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="delta"):
            rls_estimate(y, x, delta=bad)
    with pytest.raises(ValueError, match="pilot length"):
        rls_estimate(_cn((4, 15), 1), x)
    with pytest.raises(ValueError, match="broadcast"):
        rls_estimate(_cn((3, 4, 16), 1), _cn((2, 16, 16), 2))
    with pytest.raises(TypeError, match="y"):
        rls_estimate(y.real, x)


def test_guard_denominator_is_nan_free():
    d = torch.tensor([0.0, 1e-9, -3e-9j, 1e-9 + 1e-9j, 2.0 - 1.0j, 1e-40], dtype=C128, requires_grad=True)
    out = _guard_denominator(d, 1e-6)
    small = out.detach().abs()[[0, 1, 2, 3, 5]]
    assert torch.allclose(small, torch.full((5,), 1e-6, dtype=torch.float64), rtol=1e-12, atol=0)
    assert out[4] == d[4]
    assert abs(out[2].item() - (-1e-6j)) < 1e-18 and abs(out[3].item() - 1e-6 * (1 + 1j) / math.sqrt(2)) < 1e-18
    (1 / out).abs().sum().backward()
    assert torch.isfinite(d.grad.abs()).all()
    r = _guard_denominator(torch.tensor([-1e-20, 0.0, 0.5]), 1e-12)
    assert r.tolist() == pytest.approx([-1e-12, 1e-12, 0.5])


# --- CEDUN ---------------------------------------------------------------------------------------------------


def _setup(k=3, r=4, m=16, length=16, batch=4, noise_var=0.1, seed=0, affine_mode="matrix", forgetting=0.99):
    net = CEDUN(k, m, r, pilot_length=length, forgetting=forgetting, affine_mode=affine_mode).double()
    h = _cn((batch, k, r, m), seed)
    y = _receive(net, h, noise_var, generator=torch.Generator().manual_seed(seed + 1))
    return net, h, y


@pytest.mark.parametrize("affine_mode", ["matrix", "diag", "scalar"])
@pytest.mark.parametrize("forgetting", [0.99, 0.8, 1.0])
def test_cedun_at_init_is_rls(affine_mode, forgetting):
    """A4: identity/zero init, gamma = beta, DFT pilots -> Algorithm 1 to 1e-5 relative (complex128)."""
    net, h, y = _setup(affine_mode=affine_mode, forgetting=forgetting)
    x = net.pilot_matrix()
    assert x.dtype == C128
    dft = orthogonal_pilots(16, 16, dtype=C128)
    assert torch.allclose(x, dft.expand(3, 16, 16), atol=1e-6)  # the DFT pilots of s4.2
    h_hat = net(y)
    assert h_hat.shape == h.shape and h_hat.dtype == C128
    assert _rel(h_hat, rls_estimate(y, x, forgetting=forgetting, delta=0.01)) < 1e-5


def test_cedun_noiseless_beta1_recovers_channel():
    net = CEDUN(2, 16, 4, pilot_length=20, forgetting=1.0, delta=1e-8).double()
    h = _cn((3, 2, 4, 16), 12)
    assert _rel(net(_receive(net, h, 0.0)), h) < 1e-4


@pytest.mark.parametrize("cols", [1, 5, 12])
def test_cedun_fewer_pilot_columns(cols):
    """Depth vs pilots (s4.6): y with L' < L columns uses the first L' layers and pilot columns."""
    net, h, y = _setup(length=16)
    x = net.pilot_matrix()
    y_short = y[..., :cols]
    ref = rls_estimate(y_short, x[..., :cols], forgetting=0.99, delta=0.01)
    assert _rel(net(y_short), ref) < 1e-5
    assert _rel(net(y, num_layers=cols), ref) < 1e-5  # explicit depth on the full y
    with pytest.raises(ValueError, match="pilot columns"):
        net(torch.zeros(4, 3, 4, 17, dtype=C128))


def test_cedun_explicit_pilots_and_dtypes():
    net = CEDUN(3, 8, 4, pilot_length=10)  # float32 parameters
    h = _cn((5, 3, 4, 8), 13)
    x = _cn((3, 8, 10), 14)  # other pilots, complex128
    y = h @ x + 0.1 * _cn((5, 3, 4, 10), 15)
    out = net(y, pilots=x)  # float32 parameters cast to y's precision
    assert out.dtype == C128
    assert _rel(out, rls_estimate(y, x, 0.99, 0.01)) < 1e-5
    out64 = net(y.to(C64), pilots=x)
    assert out64.dtype == C64
    assert _rel(out64.to(C128), out) < 1e-3


@pytest.mark.parametrize("affine_mode", ["matrix", "diag", "scalar"])
def test_cedun_gradients_reach_every_parameter(affine_mode):
    """At the RLS initialisation the MSE loss already has a finite, non-zero gradient in every parameter:
    pilots (through the received pilots and the layers), gamma, every T and q."""
    net, h, y = _setup(k=2, m=8, length=8, batch=8, seed=3, affine_mode=affine_mode)
    loss = (net(y) - h).abs().square().mean()
    loss.backward()
    names = {name for name, _ in net.named_parameters()}
    assert names == {"T_g", "T_v", "T_p", "T_w", "q_g", "q_v", "q_p", "q_w", "gamma", "pilots"}
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name


def test_cedun_adam_lowers_mse():
    torch.manual_seed(0)
    net = CEDUN(2, 8, 4, pilot_length=8, forgetting=0.95)
    h = _cn((16, 2, 4, 8), 20, dtype=C64)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loss_fn():
        y = _receive(net, h, 0.1, generator=torch.Generator().manual_seed(21))  # the same noise every step
        return (net(y) - h).abs().square().mean()

    first = loss_fn().item()
    for _ in range(6):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.95 * first  # ~20 % lower after 6 steps


def test_pilot_matrix_keeps_the_power_after_a_step():
    net = CEDUN(3, 8, 4, pilot_length=12, pilot_power=2.5)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    h = _cn((4, 3, 4, 8), 22, dtype=C64)
    raw = net.pilots.detach().clone()
    (net(_receive(net, h, 0.1)) - h).abs().square().sum().backward()
    opt.step()
    assert not torch.equal(raw, net.pilots.detach())  # the raw pilots moved
    x = net.pilot_matrix()
    assert x.shape == (3, 8, 12)
    assert torch.allclose(x.abs().square().sum(-2), torch.full((3, 12), 2.5), rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        net.pilots[0, :, 3] = 0.0  # a zero column stays finite
    assert torch.isfinite(torch.view_as_real(net.pilot_matrix())).all()


def test_cedun_no_nan_and_gamma_clamp():
    net = CEDUN(2, 8, 4, pilot_length=8)
    for y in (torch.zeros(3, 2, 4, 8, dtype=C64), 1e15 * _cn((3, 2, 4, 8), 23, dtype=C64)):
        out = net(y)
        assert torch.isfinite(torch.view_as_real(out)).all()
    y = _cn((3, 2, 4, 8), 24, dtype=C64)
    assert torch.allclose(net(torch.zeros_like(y)), torch.zeros(3, 2, 4, 8, dtype=C64))
    with torch.no_grad():
        net.gamma[:4] = 0.1
        net.gamma[4:] = 1.7
    out = net(y)
    ref = CEDUN(2, 8, 4, pilot_length=8)
    with torch.no_grad():
        ref.gamma[:4] = 0.5
        ref.gamma[4:] = 1.0
    assert torch.allclose(out, ref(y), atol=1e-6)
    net(y).abs().sum().backward()
    assert torch.isfinite(net.gamma.grad).all() and (net.gamma.grad == 0).all()  # clamped: no gradient


def test_pipeline_receive_noise_is_the_antenna_noise_through_the_combiner():
    """Received pilots of the JCEHB pipeline: Y = H_eq X + W_RF^H Z with Z i.i.d. CN(0, s2) per antenna, so the
    noise has covariance s2 W_RF^H W_RF per column."""
    from beamlearn.hybrid import analog_from_phases
    from beamlearn.systems.jcehb.model import JCEHBNet

    net = JCEHBNet(2, 8, 8, 4, 3, 2, pilot_length=6).double()
    g = torch.Generator().manual_seed(26)
    h = _cn((1, 2, 3, 4), 25).expand(4000, 2, 3, 4)
    w_rf = analog_from_phases(torch.rand(2, 8, 3, generator=g, dtype=torch.float64) * 6.3)
    n = net.receive(h, 0.5, w_rf, generator=g) - h @ net.pilot_matrix()
    assert n.shape == (4000, 2, 3, 6)
    cov = torch.einsum("bkrl,bksl->krs", n, n.conj()) / (4000 * 6)
    assert torch.allclose(cov, 0.5 * (w_rf.mH @ w_rf), atol=0.03)


def test_cedun_config_and_bad_inputs():
    net = CEDUN(2, 8, 4, pilot_length=6, forgetting=0.9, delta=0.1, affine_mode="diag", pilot_power=2.0)
    cfg = {name: getattr(net, name) for name in inspect.signature(CEDUN).parameters}
    assert cfg == dict(
        num_users=2, num_tx_rf=8, num_rx_rf=4, pilot_length=6, forgetting=0.9, delta=0.1, affine_mode="diag",
        pilot_power=2.0,
    )  # fmt: skip
    shapes = {name: tuple(p.shape) for name, p in net.named_parameters()}
    assert shapes["T_g"] == (6, 2, 8, 2) and shapes["q_w"] == (6, 2, 8, 4, 2) and shapes["gamma"] == (6, 2)
    assert shapes["pilots"] == (2, 8, 6, 2) and shapes["q_p"] == (6, 2, 8, 8, 2)
    assert tuple(CEDUN(2, 8, 4, 6).T_p.shape) == (6, 2, 8, 8, 2)
    assert tuple(CEDUN(2, 8, 4, 6, affine_mode="scalar").T_w.shape) == (6, 2, 2)
    for kwargs, name in [
        (dict(forgetting=0.0), "forgetting"),
        (dict(forgetting=1.2), "forgetting"),
        (dict(forgetting=0.3), "forgetting"),  # below the gamma clamp [0.5, 1]: init would not be RLS
        (dict(delta=0.0), "delta"),
        (dict(delta=-1.0), "delta"),
        (dict(pilot_length=0), "pilot_length"),
        (dict(affine_mode="full"), "affine_mode"),
        (dict(pilot_power=0.0), "pilot_power"),
    ]:
        with pytest.raises(ValueError, match=name):
            CEDUN(2, 8, 4, **kwargs)
    with pytest.raises(ValueError, match="num_users"):
        CEDUN(0, 8, 4)
    with pytest.raises(ValueError, match="y must have shape"):
        net(torch.zeros(3, 3, 4, 6, dtype=C64))  # wrong K
    with pytest.raises(ValueError, match="num_layers"):
        net(torch.zeros(3, 2, 4, 6, dtype=C64), num_layers=7)
    with pytest.raises(ValueError, match="pilots must have shape"):
        net(torch.zeros(3, 2, 4, 6, dtype=C64), pilots=torch.zeros(2, 8, 4, dtype=C64))
