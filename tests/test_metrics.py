import math

import pytest
import torch

from beamlearn.channels import RayleighChannel
from beamlearn.constraints import normalize_power
from beamlearn.metrics import (
    detect_qam,
    mmse_combiner,
    mse,
    qam_constellation,
    ser_awgn,
    ser_monte_carlo,
    ser_qpsk_exact,
    sinr,
    stream_sinr,
    sum_rate,
)
from beamlearn.precoding import mrt_precoder, zf_precoder

C128 = torch.complex128


def _rand(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(
        torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)
    )


def test_miso_sum_rate_matches_trace_form():
    # unfolded-pga spec eq. (15): R = sum_k log2(tr(F V F^H H_k)+s2) - log2(tr(F V_kbar F^H H_k)+s2)
    h, x = _rand((5, 4, 8), 1), _rand((5, 8, 4), 2)
    s2 = 0.7
    ref = torch.zeros(5, dtype=torch.float64)
    for k in range(4):
        xk = x.clone()
        xk[..., k] = 0
        # tr(X X^H h_k h_k^H) = h_k^H X X^H h_k with h_k^H = row k
        t1 = (h[:, k, :][:, None, :] @ x @ x.mH @ h[:, k, :].conj()[:, :, None]).real.squeeze((-1, -2))
        t2 = (h[:, k, :][:, None, :] @ xk @ xk.mH @ h[:, k, :].conj()[:, :, None]).real.squeeze((-1, -2))
        ref += torch.log2(t1 + s2) - torch.log2(t2 + s2)
    assert torch.allclose(sum_rate(h, x, s2), ref, atol=1e-10)
    assert torch.allclose(sum_rate(h, x, s2, form="logdet"), ref, atol=1e-10)


def test_hand_example_of_unfolded_pga_spec():
    # unfolded-pga-hbf.md s9.2: N=4, K=M=2, s2=1, Pt=10 -> R(F0, W0) = 4.2575740 bits
    n = 4

    def a(phi):
        return torch.exp(1j * math.pi * torch.arange(n, dtype=torch.float64) * math.sin(phi)) / math.sqrt(n)

    h1 = a(0.3) + (0.2 - 0.1j) * a(1.1)
    h2 = (0.5 + 0.5j) * a(-0.7)
    hc = torch.stack([h1.conj(), h2.conj()])  # rows h_k^H
    f0 = torch.exp(1j * torch.angle(hc.conj().T))
    expect = torch.tensor(
        [[-0.083141, 0.785398], [1.138185, -1.238471], [1.817439, 3.020844], [2.602343, 0.996975]], dtype=torch.float64
    )
    assert torch.allclose(torch.angle(f0), expect, atol=1e-6)
    w0 = torch.linalg.pinv(f0) @ torch.linalg.pinv(hc)
    x = normalize_power(f0 @ w0, 10.0)
    assert abs(sum_rate(hc, x, 1.0).item() - 4.2575740) < 1e-6


def test_sinr_and_logdet_agree_single_stream_mimo():
    h, x = _rand((6, 3, 4, 16), 3), _rand((6, 16, 3), 4)  # K=3 users, Nr=4, Ns=1
    r_sinr = sum_rate(h, x, 0.5)  # MMSE combiners by default
    r_ld = sum_rate(h, x, 0.5, form="logdet")
    assert torch.allclose(r_sinr, r_ld, atol=1e-10)
    # with an explicit combiner both forms see the same scalar channel
    c = _rand((6, 3, 4, 1), 5)
    assert torch.allclose(sum_rate(h, x, 0.5, combiner=c), sum_rate(h, x, 0.5, combiner=c, form="logdet"), atol=1e-10)


def test_sinr_and_logdet_agree_for_svd_precoding_and_sinr_never_exceeds_logdet():
    # single user, Ns = 3 streams on the right singular vectors: the streams are orthogonal at the
    # receiver, so per-stream MMSE detection loses nothing
    h = _rand((4, 1, 5, 12), 6)
    _, s, vh = torch.linalg.svd(h[:, 0])
    p = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    x = vh.mH[..., :3] * p.sqrt().to(C128)
    closed = torch.log2(1 + s[..., :3] ** 2 * p / 0.8).sum(-1)
    assert torch.allclose(sum_rate(h, x, 0.8), closed, atol=1e-10)
    assert torch.allclose(sum_rate(h, x, 0.8, form="logdet"), closed, atol=1e-10)
    # a generic multi-stream precoder: per-stream linear detection <= joint detection
    hg, xg = _rand((20, 2, 4, 10), 7), _rand((20, 10, 4), 8)
    assert (sum_rate(hg, xg, 1.0) <= sum_rate(hg, xg, 1.0, form="logdet") + 1e-10).all()


def test_mmse_mse_is_one_over_one_plus_sinr():
    h, x = _rand((5, 2, 3, 8), 9), _rand((5, 8, 4), 10)  # Ns = 2
    e = mse(h, x, 0.3)
    g = stream_sinr(h, x, 0.3)
    assert torch.allclose(e, 1 / (1 + g), atol=1e-10)
    hm, xm = _rand((5, 3, 8), 11), _rand((5, 8, 3), 12)
    assert torch.allclose(mse(hm, xm, 0.3), 1 / (1 + sinr(hm, xm, 0.3)), atol=1e-10)
    # a non-MMSE receive gain has a larger MSE
    assert (mse(hm, xm, 0.3, combiner=torch.ones(5, 3, dtype=C128)) >= mse(hm, xm, 0.3) - 1e-12).all()


def test_mmse_combiner_maximises_stream_sinr():
    h, x = _rand((3, 2, 4, 8), 13), _rand((3, 8, 2), 14)
    best = stream_sinr(h, x, 1.0, mmse_combiner(h, x, 1.0))
    for seed in range(5):
        other = stream_sinr(h, x, 1.0, _rand((3, 2, 4, 1), 20 + seed))
        assert (other <= best + 1e-10).all()


def test_noise_var_may_be_a_batch_tensor():
    h, x = _rand((4, 3, 8), 15), _rand((4, 8, 3), 16)
    nv = torch.tensor([0.1, 1.0, 2.0, 5.0], dtype=torch.float64)
    r = sum_rate(h, x, nv)
    for i in range(4):
        assert torch.allclose(r[i], sum_rate(h[i], x[i], float(nv[i])))
    hm, xm = _rand((4, 2, 3, 8), 17), _rand((4, 8, 2), 18)
    r2 = sum_rate(hm, xm, nv, form="logdet")
    assert torch.allclose(r2[2], sum_rate(hm[2], xm[2], 2.0, form="logdet"))


def test_shape_errors_name_the_parameter():
    with pytest.raises(ValueError, match="antennas"):
        sum_rate(_rand((2, 3, 8)), _rand((2, 6, 3)), 1.0)
    with pytest.raises(ValueError, match="multiple of K"):
        sum_rate(_rand((2, 3, 2, 8)), _rand((2, 8, 4)), 1.0)


# -- symbol error rate ---------------------------------------------------------------------------


@pytest.mark.parametrize("mod, m, energy", [("qpsk", 4, 2.0), ("16qam", 16, 10.0)])
def test_constellation_and_detector(mod, m, energy):
    pts = qam_constellation(mod, dtype=C128)
    assert pts.numel() == m and abs(pts.abs().square().mean().item() - 1) < 1e-12
    raw = qam_constellation(mod, normalize=False, dtype=C128)
    assert abs(raw.abs().square().mean().item() - energy) < 1e-12
    assert torch.equal(detect_qam(pts, mod), pts)
    assert torch.allclose(detect_qam(pts * 1.2 + 0.01j, mod), pts)  # noise-free outer points stay


def _binomial_ci(p, n, z=4.0):
    return z * math.sqrt(max(p * (1 - p), 1e-12) / n)


@pytest.mark.parametrize("mod", ["qpsk", "16qam"])
def test_monte_carlo_ser_matches_awgn_closed_form(mod):
    # one user, one antenna, channel 1: an AWGN link with SNR = P / s2
    snr_db = torch.tensor([0.0, 4.0, 8.0, 12.0]) if mod == "qpsk" else torch.tensor([6.0, 10.0, 14.0, 18.0])
    snr = 10 ** (snr_db / 10)
    h = torch.ones(4, 1, 1, dtype=C128)
    x = torch.ones(4, 1, 1, dtype=C128)
    n = 200000
    mc = ser_monte_carlo(h, x, 1 / snr, mod, num_symbols=n, generator=torch.Generator().manual_seed(0))[..., 0, 0]
    exact = ser_awgn(snr.double(), mod)
    for p_mc, p in zip(mc.tolist(), exact.tolist(), strict=True):
        assert abs(p_mc - p) < _binomial_ci(p, n), (p_mc, p)


def test_qpsk_closed_form_special_case():
    g = torch.tensor([0.5, 1.0, 4.0], dtype=torch.float64)
    q = 0.5 * torch.special.erfc(torch.sqrt(g) / math.sqrt(2))
    assert torch.allclose(ser_awgn(g, "qpsk"), 2 * q - q * q)


def test_exact_qpsk_ser_with_interference_matches_monte_carlo():
    # MRT leaves inter-user interference; the exact expression enumerates interfering symbols
    h = RayleighChannel(3, 4)(4, seed=1, dtype=C128)
    x = mrt_precoder(h, 10.0)
    exact = ser_qpsk_exact(h, x, 1.0)
    n = 100000
    mc = ser_monte_carlo(h, x, 1.0, "qpsk", num_symbols=n, generator=torch.Generator().manual_seed(1))
    assert exact.shape == (4, 3, 1)
    assert (
        (mc - exact).abs() <= torch.tensor([_binomial_ci(p, n) for p in exact.flatten().tolist()]).view_as(exact)
    ).all()


def test_exact_qpsk_ser_without_interference_is_awgn():
    h = RayleighChannel(3, 8)(5, seed=2, dtype=C128)
    x = zf_precoder(h, 5.0)
    gain = (h @ x).diagonal(dim1=-2, dim2=-1).abs().square()
    assert torch.allclose(ser_qpsk_exact(h, x, 0.5)[..., 0], ser_awgn(gain / 0.5, "qpsk"), atol=1e-6)


def test_mimo_ser_with_combiner():
    h = RayleighChannel(2, 8, 2)(3, seed=3, dtype=C128)
    x = normalize_power(torch.linalg.pinv(h.flatten(-3, -2)), 20.0)  # block ZF: 2 streams per user
    comb = torch.eye(2, dtype=C128).expand(3, 2, 2, 2)
    exact = ser_qpsk_exact(h, x, 1.0, comb)
    n = 100000
    mc = ser_monte_carlo(h, x, 1.0, "qpsk", combiner=comb, num_symbols=n, generator=torch.Generator().manual_seed(4))
    assert ((mc - exact).abs() <= 4 * torch.sqrt(exact * (1 - exact) / n) + 1e-4).all()


def test_ser_bad_modulation():
    with pytest.raises(ValueError, match="modulation"):
        qam_constellation("8psk")
    with pytest.raises(ValueError, match="perfect square"):
        qam_constellation(8)
