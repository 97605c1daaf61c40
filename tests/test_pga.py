"""Conventional PGA hybrid beamforming (spec unfolded-pga-hbf.md s2-3, s7.2-7.7, s9)."""

import math

import numpy as np
import pytest
import torch

from beamlearn.constraints import precoder_power
from beamlearn.hybrid import PGA, hybrid_sum_rate, pga, pga_init, pga_layer, sum_rate_gradients
from beamlearn.metrics import sum_rate
from beamlearn.precoding import zf_precoder
from beamlearn.scenarios import get_scenario

C64, C128 = torch.complex64, torch.complex128


def spec_channels(b, n, k, p, seed):
    """The reference sampler of spec s2.3 (numpy RNG order fixed by the spec); rows h_k^H."""
    rng = np.random.default_rng(seed)
    al = (rng.standard_normal((b, k, p)) + 1j * rng.standard_normal((b, k, p))) / np.sqrt(2)
    ph = rng.uniform(0, 2 * np.pi, (b, k, p))
    a = np.exp(1j * np.pi * np.arange(n)[None, None, None, :] * np.sin(ph)[..., None]) / np.sqrt(n)
    return torch.tensor(np.einsum("bkp,bkpn->bkn", al, a).conj())


def preset_channels(b, seed, dtype=C128, device="cpu"):
    return get_scenario("unfolded-pga").channel_model()(b, seed=seed, dtype=dtype, device=device)


def random_point(b, n, m, k, power, seed, h=None):
    g = torch.Generator().manual_seed(seed)
    f = torch.polar(
        torch.ones(b, n, m, dtype=torch.float64), 2 * math.pi * torch.rand(b, n, m, generator=g, dtype=torch.float64)
    )
    w = torch.complex(
        torch.randn(b, m, k, generator=g, dtype=torch.float64), torch.randn(b, m, k, generator=g, dtype=torch.float64)
    )
    w = w * math.sqrt(power) / torch.linalg.matrix_norm(f @ w)[..., None, None]
    return f, w


def rel(a, b):
    return (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()


# --------------------------------------------------------------------------------------------------
# gradients (Theorem 1), s7.4 and s9.1
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,k,m", [(8, 3, 3), (32, 4, 4), (16, 3, 5)])
def test_gradients_equal_half_autograd(n, k, m):
    power, s2 = 10.0, 1.0
    h = spec_channels(4, n, k, 4 if n == 8 else 10, seed=n + m)
    f, w = random_point(4, n, m, k, power, seed=1)
    f.requires_grad_()
    w.requires_grad_()
    hybrid_sum_rate(h, f, w, s2).sum().backward()
    gf, gw = sum_rate_gradients(h, f.detach(), w.detach(), s2)
    assert rel(2 * gf, f.grad) <= 1e-10
    assert rel(2 * gw, w.grad) <= 1e-10
    # the rate used for autograd is the library's sum rate
    assert torch.allclose(hybrid_sum_rate(h, f.detach(), w.detach(), s2), sum_rate(h, (f @ w).detach(), s2), atol=1e-12)


def test_gradients_match_direct_transcription_and_finite_differences():
    n, k, m, power, s2 = 8, 3, 3, 10.0, 0.7
    h = spec_channels(1, n, k, 4, seed=3)[0]
    f, w = random_point(1, n, m, k, power, seed=2)
    f, w = f[0], w[0]
    # direct (10)-(11) with explicit H~_k = h_k h_k^H, V, V_kbar and traces (per-user loop: reference only)
    gf_ref = torch.zeros_like(f)
    gw_ref = torch.zeros_like(w)
    for kk in range(k):
        hk = h[kk].conj()[:, None]  # h_k (N x 1)
        ht = hk @ hk.mH
        wk = w.clone()
        wk[:, kk] = 0
        v, vk = w @ w.mH, wk @ wk.mH
        gf_ref += ht @ f @ v / (torch.trace(f @ v @ f.mH @ ht).real + s2)
        gf_ref -= ht @ f @ vk / (torch.trace(f @ vk @ f.mH @ ht).real + s2)
        hb = f.mH @ ht @ f
        gw_ref += hb @ w / (torch.trace(w @ w.mH @ hb).real + s2)
        gw_ref -= hb @ wk / (torch.trace(wk @ wk.mH @ hb).real + s2)
    gf, gw = sum_rate_gradients(h, f, w, s2)
    assert rel(gf, gf_ref / math.log(2)) < 1e-12
    assert rel(gw, gw_ref / math.log(2)) < 1e-12
    # central finite differences of R against 2 dR/dF* (real part: d/dRe, imaginary part: d/dIm)
    eps = 1e-6
    for r, c in [(0, 0), (3, 1), (7, 2)]:
        for unit in (1.0, 1j):
            d = torch.zeros_like(f)
            d[r, c] = eps * unit
            fd = (hybrid_sum_rate(h, f + d, w, s2) - hybrid_sum_rate(h, f - d, w, s2)) / (2 * eps)
            g = 2 * gf[r, c]
            expect = g.real if unit == 1.0 else g.imag
            assert abs(fd.item() - expect.item()) <= 1e-7


def test_include_ln2_false_is_ln2_times():
    h = preset_channels(5, seed=4)
    f, w = pga_init(h, 10.0)
    gf, gw = sum_rate_gradients(h, f, w, 1.0)
    gf0, gw0 = sum_rate_gradients(h, f, w, 1.0, include_ln2=False)
    assert torch.allclose(gf0, gf * math.log(2), rtol=1e-13, atol=0)
    assert torch.allclose(gw0, gw * math.log(2), rtol=1e-13, atol=0)


def test_hand_example_s9_2():
    n = 4

    def a(phi):
        return torch.exp(1j * math.pi * torch.arange(n, dtype=torch.float64) * math.sin(phi)) / math.sqrt(n)

    h1 = a(0.3) + (0.2 - 0.1j) * a(1.1)
    h2 = (0.5 + 0.5j) * a(-0.7)
    hc = torch.stack([h1.conj(), h2.conj()])
    f0, w0 = pga_init(hc, 10.0)
    ang = torch.tensor(
        [[-0.083141, 0.785398], [1.138185, -1.238471], [1.817439, 3.020844], [2.602343, 0.996975]], dtype=torch.float64
    )
    assert torch.allclose(f0.angle(), ang, atol=2e-6)
    w_ref = torch.tensor(
        [[0.877986 - 0.002707j, -0.078904 + 0.062367j], [-0.054680 + 0.001214j, 1.317108 - 0.003978j]], dtype=C128
    )
    assert torch.allclose(w0, w_ref, atol=2e-6)
    assert abs(precoder_power(f0 @ w0).item() - 10.0) < 1e-12
    assert abs(hybrid_sum_rate(hc, f0, w0, 1.0).item() - 4.2575740) < 2e-7
    gf, gw = sum_rate_gradients(hc, f0, w0, 1.0)
    assert torch.allclose(gf[0], torch.tensor([0.318848 - 0.047058j, 0.174935 + 0.202800j], dtype=C128), atol=2e-6)
    gw_ref = torch.tensor([[1.266157, 0.045163 + 0.007221j], [0.077624 + 0.060967j, 0.851225]], dtype=C128)
    assert torch.allclose(gw, gw_ref, atol=2e-6)


def test_seeded_example_s9_2():
    h = spec_channels(1, 8, 3, 4, seed=0)
    h1 = h[0, 0].conj()
    ref = torch.tensor([0.184737 - 1.130500j, -0.358473 - 0.243132j, 0.467897 - 0.094102j], dtype=C128)
    assert torch.allclose(h1[:3], ref, atol=2e-6)
    f0, w0 = pga_init(h, 10.0)
    assert abs(hybrid_sum_rate(h, f0, w0, 1.0).item() - 8.068184) < 2e-6
    gf, gw = sum_rate_gradients(h, f0, w0, 1.0)
    assert abs(torch.linalg.matrix_norm(gf).item() - 1.297546) < 2e-6
    assert abs(torch.linalg.matrix_norm(gw).item() - 3.652656) < 2e-6


# --------------------------------------------------------------------------------------------------
# initialisation (12)-(13), s3.3 and s7.6
# --------------------------------------------------------------------------------------------------
def test_init_phase_aligned_and_power():
    h = preset_channels(50, seed=5)
    p = 10.0
    f0, w0 = pga_init(h, p)
    assert f0.shape == (50, 32, 4) and w0.shape == (50, 4, 4)
    assert (f0.abs() - 1).abs().max() < 1e-14
    gains = torch.diagonal(h @ f0, dim1=-2, dim2=-1)  # h_m^H f_m = sum_n |h_mn|
    assert torch.allclose(gains, h.abs().sum(-1).to(C128), atol=1e-12)
    assert torch.allclose(precoder_power(f0 @ w0), torch.full((50,), p, dtype=torch.float64), rtol=1e-12)
    # W0 is the least-squares fit of F0 W to ZF (up to scale): F0^H (F0 W0 - c X_zf) = 0
    x = zf_precoder(h, p)
    c = torch.linalg.pinv(f0) @ x
    scale = (torch.linalg.matrix_norm(w0) / torch.linalg.matrix_norm(c))[..., None, None]
    assert torch.allclose(w0, c * scale, atol=1e-10)


def test_init_more_rf_chains_and_errors():
    h = preset_channels(6, seed=6)
    g = torch.Generator().manual_seed(0)
    f0, w0 = pga_init(h, 3.0, num_rf_chains=6, generator=g)
    assert f0.shape == (6, 32, 6) and w0.shape == (6, 6, 4)
    assert (f0.abs() - 1).abs().max() < 1e-14
    assert torch.allclose(precoder_power(f0 @ w0), torch.full((6,), 3.0, dtype=torch.float64), rtol=1e-12)
    f1, _ = pga_init(h, 3.0, num_rf_chains=6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(f0, f1)
    with pytest.raises(ValueError, match="num_rf_chains"):
        pga_init(h, 3.0, num_rf_chains=3)
    with pytest.raises(ValueError, match="num_rf_chains"):
        pga(h, 3.0, 1.0, num_rf_chains=33)
    with pytest.raises(ValueError, match="iterations"):
        pga(h, 3.0, 1.0, iterations=-1)
    with pytest.raises(ValueError, match="mu"):
        pga(h, 3.0, 1.0, iterations=3, inner_steps=2, mu=torch.ones(4, 2))
    with pytest.raises(ValueError, match="power"):
        pga(h, -1.0, 1.0)
    with pytest.raises(TypeError, match="h must be a complex"):
        pga_init(h.real, 1.0)


def test_init_rate_at_10db():
    # s7.6: 15.28 +- 0.2 at 10 dB (0 dB: 5.43 +- 0.1), >= 1000 channels
    h = preset_channels(2000, seed=12345)
    for snr, target, tol in [(10, 15.28, 0.2), (0, 5.43, 0.1)]:
        f0, w0 = pga_init(h, 10 ** (snr / 10))
        r = hybrid_sum_rate(h, f0, w0, 1.0).mean().item()
        assert abs(r - target) <= tol, (snr, r)


# --------------------------------------------------------------------------------------------------
# projections, feasibility, batching
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("inner_projection", [True, False])
def test_projections_after_every_iteration(inner_projection):
    h = preset_channels(64, seed=7)
    p = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64).repeat(22)[:64]  # per-channel power
    f, w = pga_init(h, p)
    mu = torch.full((10,), 0.01, dtype=torch.float64)
    for _ in range(8):
        f, w = pga_layer(h, f, w, p, 1.0, mu, 1e-4, True, inner_projection)
        assert (1 - f.abs()).abs().max() <= 1e-12
        assert ((precoder_power(f @ w) - p).abs() / p).max() <= 1e-10


def test_batching_dtype_device(device):
    h = preset_channels(6, seed=8, device=device)
    out = pga(h, 10.0, 1.0, iterations=3, inner_steps=2)
    assert out.precoder.device.type == device.type and out.precoder.dtype == C128
    assert torch.allclose(out.precoder, out.analog @ out.digital)
    # leading batch dimensions are independent channels
    out2 = pga(h.reshape(2, 3, 4, 32), 10.0, 1.0, iterations=3, inner_steps=2)
    assert torch.allclose(out2.precoder.reshape(6, 32, 4), out.precoder, atol=1e-12)
    # complex64 stays complex64 and agrees with complex128
    out32 = pga(h.to(C64), 10.0, 1.0, iterations=3, inner_steps=2)
    assert out32.precoder.dtype == C64
    r64 = sum_rate(h, out.precoder, 1.0)
    r32 = sum_rate(h.to(C64), out32.precoder, 1.0)
    assert torch.allclose(r32.double(), r64, atol=1e-3)


def test_zero_channel_is_finite():
    h = preset_channels(3, seed=9)
    h[1] = 0
    h[2, 1] = h[2, 0]  # rank-deficient: two identical users
    out, hist = pga(h, 10.0, 1.0, iterations=2, inner_steps=2, return_history=True)
    assert torch.isfinite(torch.view_as_real(out.precoder)).all()
    assert torch.isfinite(hist).all()
    assert (1 - out.analog.abs()).abs().max() < 1e-12


# --------------------------------------------------------------------------------------------------
# conventional PGA, s7.7
# --------------------------------------------------------------------------------------------------
def test_pga_history_and_method():
    h = preset_channels(20, seed=10)
    out, hist = pga(h, 10.0, 1.0, iterations=4, inner_steps=3, return_history=True)
    assert hist.shape == (20, 5)
    f0, w0 = pga_init(h, 10.0)
    assert torch.allclose(hist[:, 0], hybrid_sum_rate(h, f0, w0, 1.0))
    assert torch.allclose(hist[:, -1], sum_rate(h, out.precoder, 1.0), atol=1e-12)
    m = PGA(iterations=4, inner_steps=3)
    assert m.name == "pga" and m.hybrid and not m.learned
    assert m.config() == {
        "iterations": 4,
        "inner_steps": 3,
        "mu": 0.01,
        "lam": 1e-4,
        "include_ln2": True,
        "inner_projection": True,
        "num_rf_chains": None,
        "seed": None,
    }
    assert torch.equal(m(h, 10.0, 1.0).precoder, out.precoder)
    with pytest.raises(ValueError, match="iterations"):
        PGA(iterations=-2)


def test_pga_30_iterations_at_10db():
    # s5.1 / s7.7: 16.16 +- 0.15 after 30 iterations (J = 10); mean rate non-decreasing (1e-3)
    h = preset_channels(1000, seed=12345)
    _, hist = pga(h, 10.0, 1.0, iterations=30, inner_steps=10, return_history=True)
    mean = hist.mean(0)
    assert (mean.diff() >= -1e-3).all()
    assert abs(mean[0].item() - 15.28) <= 0.2
    assert abs(mean[-1].item() - 16.16) <= 0.15, mean[-1].item()


@pytest.mark.slow
def test_pga_reference_sampler_values():
    # the spec's own 1000-channel test set (its numpy sampler, seed 12345): s6.1 / s6.2 values
    h = spec_channels(1000, 32, 4, 10, seed=12345)
    for snr, init, final in [(0, 5.44, 5.75), (10, 15.31, 16.16), (20, 23.62, 29.01)]:
        _, hist = pga(h, 10 ** (snr / 10), 1.0, return_history=True)
        m = hist.mean(0)
        assert abs(m[0].item() - init) < 0.01 and abs(m[-1].item() - final) < 0.01, (snr, m[0], m[-1])
    _, hist = pga(h, 10.0, 1.0, iterations=300, return_history=True)
    assert hist.mean(0)[300] - hist.mean(0)[30] >= 0.2  # not converged by 30 iterations
