"""The ``detection`` mode of the SER functions and metrics: coherent ("equalized") versus the MSER
paper's sign detection of the raw combiner output ("sign", spec s2.3 eq. 6 and s4.9).

Oracles: Monte Carlo sign detection against the analytic conditional SER (binomial standard errors);
the identity of the two detectors when every own gain is real and positive; the invariance of
coherent detection to rotating a combiner column (only the sign detector sees the phase); and, for
16-QAM, the paper's phase-aligned gain-scaled slicer being coherent detection.
"""

import math

import numpy as np
import pytest
import torch

from beamlearn.interface import Beamformers
from beamlearn.metrics import detect_qam, get_metric, ser_conditional, ser_monte_carlo
from beamlearn.precoding import zf_precoder

C128 = torch.complex128


def crandn(*shape, gen):
    re_ = torch.randn(shape, generator=gen, dtype=torch.float64)
    im_ = torch.randn(shape, generator=gen, dtype=torch.float64)
    return torch.complex(re_, im_) / math.sqrt(2)


def case(seed, b=8, k=2, nr=2, n=4, ns=1, power=1.0, leak=0.2):
    """Random MIMO channels [B, K, Nr, N], random combiners [B, K, Nr, Ns] and a precoder [B, N, K*Ns]
    of power ``power``: zero-forcing on the effective channels c_kl^H H_k plus ``leak`` times a random
    matrix, so that there is some interference and the own gains are complex (near the real axis)."""
    gen = torch.Generator().manual_seed(seed)
    h = crandn(b, k, nr, n, gen=gen)
    c = crandn(b, k, nr, ns, gen=gen)
    a = (c.mH @ h).reshape(b, k * ns, n)  # effective rows, stream (k, l) at k*Ns + l
    x = torch.linalg.pinv(a)
    x = x / torch.linalg.norm(x, dim=(-2, -1), keepdim=True) + leak * crandn(b, n, k * ns, gen=gen) / math.sqrt(n)
    x = x * math.sqrt(power) / torch.linalg.norm(x, dim=(-2, -1), keepdim=True)
    return h, x, c


def own_gains(h, x, c):
    """g_kl = c_kl^H H_k x_kl, [B, K, Ns]."""
    k, ns = c.shape[-3], c.shape[-1]
    g = c.mH @ h @ x.reshape(*x.shape[:-1], k, ns).movedim(-2, -3)  # [B, K, Ns, Ns]
    return torch.diagonal(g, dim1=-2, dim2=-1)


def rotated(h, x, c, phase):
    """The combiners with every column rotated so that its own gain becomes |g| e^{j phase}."""
    g = own_gains(h, x, c)
    return c * torch.exp(1j * (torch.angle(g) - phase)).unsqueeze(-2)


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def test_sign_conditional_matches_monte_carlo_qpsk():
    """Random channels, precoders and combiners (the gains have arbitrary phases): the analytic
    conditional SER of sign detection agrees with Monte Carlo sign detection over 2.4e5 noisy symbol
    vectors. Every per-stream estimate stays within 5 standard errors, and the mean over channels
    and streams within 3 standard errors or 10 %."""
    b, t, v, s2 = 8, 30000, 30000, 0.2
    h, x, c = case(14, b=b, power=4.0)
    c = rotated(h, x, c, torch.empty(b, 2, 1, dtype=torch.float64).uniform_(-0.5, 0.5, generator=seeded(2)))
    cond = ser_conditional(h, x, s2, "qpsk", combiner=c, num_vectors=v, generator=seeded(3), detection="sign")
    mc = ser_monte_carlo(h, x, s2, "qpsk", combiner=c, num_symbols=t, generator=seeded(4), detection="sign")
    assert b * t >= 2e5
    p = cond.numpy().clip(1e-9, 1 - 1e-9)
    sd = np.sqrt(p * (1 - p) * (1 / t + 1 / v))  # conservative: the conditional SER varies less than p(1-p)
    diff = (cond - mc).numpy()
    assert p.mean() >= 1e-3
    assert np.all(np.abs(diff) <= 5 * sd)
    # mean over streams: streams of one channel share the symbol vectors, so bound by the mean sd
    se = math.sqrt((sd.reshape(b, -1).mean(-1) ** 2).sum()) / b
    assert abs(diff.mean()) <= max(3 * se, 0.1 * p.mean())
    # the detector matters here: coherent detection of the same links errs far less often
    eq = ser_conditional(h, x, s2, "qpsk", combiner=c, num_vectors=v, generator=seeded(3))
    assert eq.mean() < 0.8 * cond.mean()


def test_sign_equals_equalized_when_gains_are_real_positive(device):
    """Rotating each combiner column by the phase of its own gain makes g = |g|: then the sign of the
    raw output is the sign of the equalised output, so the conditional SERs (same symbol draws) and
    the Monte Carlo decisions (same symbols and noise) coincide."""
    h, x, c = case(5, b=6, k=2, nr=3, n=6, ns=2, power=3.0)
    c = rotated(h, x, c, 0.0)
    g = own_gains(h, x, c)
    assert torch.allclose(g.imag, torch.zeros_like(g.imag), atol=1e-12) and (g.real > 0).all()
    h, x, c = h.to(device), x.to(device), c.to(device)
    kw = {"combiner": c}
    sign = ser_conditional(h, x, 0.1, "qpsk", num_vectors=300, generator=seeded(6), detection="sign", **kw)
    eq = ser_conditional(h, x, 0.1, "qpsk", num_vectors=300, generator=seeded(6), detection="equalized", **kw)
    assert sign.shape == (6, 2, 2) and sign.dtype == torch.float64 and sign.device == h.device
    np.testing.assert_allclose(sign.cpu().numpy(), eq.cpu().numpy(), rtol=1e-9, atol=1e-300)
    assert (eq > 1e-4).any()  # not a trivially error-free case
    mc_sign = ser_monte_carlo(h, x, 0.1, "qpsk", num_symbols=500, generator=seeded(7), detection="sign", **kw)
    mc_eq = ser_monte_carlo(h, x, 0.1, "qpsk", num_symbols=500, generator=seeded(7), **kw)
    assert torch.equal(mc_sign, mc_eq)


def test_rotated_gain_hurts_sign_detection_only():
    """With g = |g| e^{j (pi/4 + small)} the QPSK points sit near the sign decision boundaries: sign
    detection errs more often than coherent detection, which does not see the phase at all."""
    b = 6
    h, x, c = case(8, b=b, k=2, nr=3, n=6, ns=1, power=4.0)
    phase = math.pi / 4 + torch.empty(b, 2, 1, dtype=torch.float64).uniform_(-0.1, 0.1, generator=seeded(9))
    c_rot = rotated(h, x, c, phase)
    s2 = 0.2
    sign = ser_conditional(h, x, s2, "qpsk", combiner=c_rot, num_vectors=400, generator=seeded(10), detection="sign")
    eq = ser_conditional(h, x, s2, "qpsk", combiner=c_rot, num_vectors=400, generator=seeded(10))
    eq_plain = ser_conditional(h, x, s2, "qpsk", combiner=c, num_vectors=400, generator=seeded(10))
    np.testing.assert_allclose(eq.numpy(), eq_plain.numpy(), rtol=1e-9, atol=1e-300)  # phase-blind
    assert (sign > eq).all()
    assert sign.mean() > 2 * eq.mean()


def test_16qam_sign_is_equalized():
    """For M > 4 the paper phase-aligns and slices with thresholds c (F_m +- 1), c = |g|: coherent
    detection, so "sign" gives the same numbers as "equalized" even for complex gains."""
    h, x, c = case(11, b=4, k=2, nr=2, n=4, ns=1, power=10.0)
    for fn, n_kw in ((ser_conditional, {"num_vectors": 200}), (ser_monte_carlo, {"num_symbols": 500})):
        a = fn(h, x, 0.05, "16qam", combiner=c, generator=seeded(12), detection="sign", **n_kw)
        b = fn(h, x, 0.05, "16qam", combiner=c, generator=seeded(12), detection="equalized", **n_kw)
        assert torch.equal(a, b)
    # the claim itself: the paper's rule (45) on z e^{-j angle g}, thresholds |g| (F_m +- 1) with the
    # unit-energy levels F_m in {-3, -1, 1, 3} / sqrt(10), picks the nearest point to z / g
    gen = seeded(13)
    z, g = crandn(5000, gen=gen) * 3, crandn(5000, gen=gen) * 2
    rot, cg = z * torch.exp(-1j * torch.angle(g)), g.abs()
    lv = torch.tensor([-3.0, -1.0, 1.0, 3.0], dtype=torch.float64) / math.sqrt(10)
    edges = torch.tensor([-2.0, 0.0, 2.0], dtype=torch.float64) / math.sqrt(10)

    def rule45(v):  # F_1 if v <= c (F_1 + 1), F_m if c (F_m - 1) < v <= c (F_m + 1), F_sqrtM above
        return lv[(v[:, None] > cg[:, None] * edges).sum(-1)]

    paper = torch.complex(rule45(rot.real), rule45(rot.imag))
    assert torch.equal(paper, detect_qam(z / g, "16qam").to(paper.dtype))


@pytest.mark.parametrize("bad", ["coherent", "Sign", "", None, 1])
def test_bad_detection_raises(bad):
    h, x, c = case(13, b=2)
    for fn in (ser_conditional, ser_monte_carlo):
        with pytest.raises(ValueError, match="detection") as err:
            fn(h, x, 0.1, "qpsk", combiner=c, detection=bad)
        assert "equalized" in str(err.value) and "sign" in str(err.value)


def test_ser_metrics_honour_beamformers_detection():
    """The ``ser`` metrics score with ``Beamformers.detection`` (``None`` meaning "equalized")."""
    h, x, c = case(14, b=5, k=2, nr=2, n=4, ns=1, power=4.0)
    s2 = 0.2
    met = get_metric("ser")
    bf_sign = Beamformers(precoder=x, combiner=c, detection="sign")
    assert bf_sign.detection == "sign" and "detection" in bf_sign.present()
    assert Beamformers(precoder=x).detection is None and "detection" not in Beamformers(precoder=x).present()
    got = met(h, bf_sign, 4.0, s2, seeded(15))
    ref = ser_conditional(h, x, s2, "qpsk", combiner=c, num_vectors=256, generator=seeded(15), detection="sign")
    np.testing.assert_allclose(got.numpy(), ref.flatten(-2).mean(-1).numpy(), rtol=1e-12, atol=0)
    default = met(h, Beamformers(precoder=x, combiner=c), 4.0, s2, seeded(15))
    explicit = met(h, Beamformers(precoder=x, combiner=c, detection="equalized"), 4.0, s2, seeded(15))
    assert torch.equal(default, explicit)
    assert (got > default).any() and not torch.allclose(got, default)
    mc = get_metric("ser_mc")(h, bf_sign, 4.0, s2, seeded(16))
    ref_mc = ser_monte_carlo(h, x, s2, "qpsk", combiner=c, num_symbols=2000, generator=seeded(16), detection="sign")
    np.testing.assert_allclose(mc.numpy(), ref_mc.flatten(-2).mean(-1).numpy(), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="detection"):
        met(h, Beamformers(precoder=x, combiner=c, detection="coherent"), 4.0, s2)
    # single-antenna users, no combiner: ZF makes every gain real positive, so both detectors agree
    hm = h[:, :, 0, :]
    xz = zf_precoder(hm, 4.0)
    a = met(hm, Beamformers(precoder=xz, detection="sign"), 4.0, 0.5, seeded(17))
    e = met(hm, Beamformers(precoder=xz), 4.0, 0.5, seeded(17))
    np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-9)
