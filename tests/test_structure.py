"""The optimal downlink structure (7), its forms, the duality power labels (§3.7) and the classical references
of the uplink model-driven beamforming spec (§9.2)."""

import math

import pytest
import torch

from beamlearn.metrics import sinr, sum_rate
from beamlearn.precoding import (
    duality_powers,
    optimal_structure,
    structure_directions,
    wmmse,
    wmmse_power_labels,
    zf_precoder,
)

C64, C128 = torch.complex64, torch.complex128
FORMS = ("push", "full", "reduced")

# REF-SIM (spec §9.2): N_t = K, i.i.d. CN(0, 1), P/N_0 = 20 dB, N_0 = 1, 200 draws
P20 = 100.0
REF_WMMSE = {2: 10.2, 4: 19.3, 6: 28.0}
REF_ZF = {2: 9.4, 4: 15.2, 6: 20.1}


def _rayleigh(shape, seed, dtype=C128):
    """i.i.d. CN(0, 1) entries (the library's ``[..., K, N]`` channel: the distribution is conjugation
    invariant, so rows are equally ``h_{D,k}^H``)."""
    g = torch.Generator().manual_seed(seed)
    rdtype = torch.float64 if dtype == C128 else torch.float32
    re = torch.randn(shape, generator=g, dtype=rdtype)
    im = torch.randn(shape, generator=g, dtype=rdtype)
    return torch.complex(re, im) / math.sqrt(2)


def _ula_channel(batch, n, k, seed, paths=10):
    """Massive-MIMO ULA ray channel in the spirit of spec eqs. (18)-(19) (half-wavelength spacing, L_p paths
    within +-pi/12 of a uniform mean angle, Rayleigh amplitudes, uniform phases, unnormalised), rows
    ``h_{D,k}^H`` ``[batch, K, N]``, complex128."""
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    mean = (torch.rand(batch, k, 1, generator=g, dtype=f64) - 0.5) * math.pi
    theta = mean + (torch.rand(batch, k, paths, generator=g, dtype=f64) - 0.5) * math.pi / 6
    amp = torch.sqrt(-torch.log(torch.rand(batch, k, paths, generator=g, dtype=f64)))
    phase = (2 * torch.rand(batch, k, paths, generator=g, dtype=f64) - 1) * math.pi
    steer = torch.polar(
        torch.ones(batch, k, paths, n, dtype=f64), -math.pi * torch.sin(theta)[..., None] * torch.arange(n)
    )
    hd = (torch.polar(amp, phase)[..., None] * steer).sum(-2)
    return hd.conj()


def _simplex(shape, power, seed, dtype=torch.float64):
    """Random points ``power * softmax(z)`` on the scaled simplex (what the Power-Net heads output)."""
    g = torch.Generator().manual_seed(seed)
    return power * torch.softmax(2 * torch.randn(shape, generator=g, dtype=dtype), -1)


@pytest.fixture(scope="module")
def iid_labels():
    """WMMSE labels (default iterations, MRT and RZF starts) on 200 REF-SIM draws for K = 2, 4, 6."""
    out = {}
    for k in REF_WMMSE:
        h = _rayleigh((200, k, k), seed=100 + k)
        out[k] = (h, wmmse_power_labels(h, P20, 1.0))
    return out


# --- structure (7) from the WMMSE labels (spec §3.7, §9.2) ------------------------------------------------


@pytest.mark.parametrize("k", sorted(REF_WMMSE))
def test_labels_rebuild_the_wmmse_rate(iid_labels, k):
    h, lab = iid_labels[k]
    assert torch.allclose(lab.p_frac.sum(-1), torch.ones(200, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(lab.q_frac.sum(-1), torch.ones(200, dtype=torch.float64), atol=1e-12)
    assert bool((lab.p_frac >= 0).all() and (lab.q_frac >= 0).all())
    # switched-off users get zero labels
    assert bool((lab.p_frac[~lab.active] == 0).all() and (lab.q_frac[~lab.active] == 0).all())
    assert float(lab.mismatch.max()) < 1e-3  # spec: |sum p - sum q| / P before rescaling
    assert float(lab.mismatch.max()) < 1e-9  # measured ~1e-12 with the default fixed-point iterations
    assert float(lab.residual.max()) < 1e-10
    w = optimal_structure(h, P20 * lab.p_frac, P20 * lab.q_frac, 1.0)
    diff = sum_rate(h, w, 1.0) - lab.sum_rate
    assert float((diff.abs() <= 0.01).double().mean()) >= 0.99
    # duality plus the rescaling to P can only raise the rate of the WMMSE point
    assert float(diff.min()) > -1e-8


def test_labels_massive_ula():
    """N_t = 64, K = 4, P = 10 dB, a ULA ray channel: the same sanity requirement."""
    h = _ula_channel(60, 64, 4, seed=7)
    lab = wmmse_power_labels(h, 10.0, 1.0)
    assert float(lab.mismatch.max()) < 1e-3
    w = optimal_structure(h, 10.0 * lab.p_frac, 10.0 * lab.q_frac, 1.0)
    diff = sum_rate(h, w, 1.0) - lab.sum_rate
    assert float((diff.abs() <= 0.01).double().mean()) >= 0.99
    assert float(diff.min()) > -1e-8


def test_duality_round_trip(iid_labels):
    """The labels are a fixed point: duality on the rebuilt structure returns the same (p, q)."""
    h, lab = iid_labels[4]
    w = optimal_structure(h, P20 * lab.p_frac, P20 * lab.q_frac, 1.0)
    again = duality_powers(h, w, 1.0)
    assert torch.allclose(again.p, P20 * lab.p_frac, atol=1e-6 * P20)
    assert torch.allclose(again.q, P20 * lab.q_frac, atol=1e-6 * P20)
    # and the rebuilt SINRs are those of the structure with these powers
    assert torch.allclose(again.sinr, sinr(h, w, 1.0))


def test_duality_meets_the_input_sinrs_batched():
    """(S3): with the recovered directions and (unrescaled) powers the SINRs of the input are met exactly; the
    result is batched (leading dims) and each sample equals its own computation."""
    h = _rayleigh((2, 3, 4, 4), seed=3)
    w = wmmse(h, P20, 1.0, iterations=60, init=("mrt", "rzf")).precoder
    dual = duality_powers(h, w, 1.0)
    assert dual.p.shape == dual.q.shape == (2, 3, 4) and dual.mismatch.shape == (2, 3)
    # directions from q, powers p (both scaled to P by the same factor up to the mismatch): SINRs of w are met
    wr = optimal_structure(h, dual.p, dual.q, 1.0)
    g_in, g_out = sinr(h, w, 1.0), sinr(h, wr, 1.0)
    on = dual.active
    assert bool((g_out[on] >= g_in[on] * (1 - 1e-8)).all())
    single = duality_powers(h[1, 2], w[1, 2], 1.0)
    assert torch.allclose(single.p, dual.p[1, 2], atol=1e-10) and torch.allclose(single.q, dual.q[1, 2], atol=1e-10)
    # the power of w sets P
    twice = duality_powers(h, 2 * w, 1.0)
    assert torch.allclose(twice.p.sum(-1), 4 * P20 * torch.ones(2, 3, dtype=torch.float64))


def test_duality_diagnostics_flag_an_unconverged_fixed_point():
    h = _rayleigh((50, 4, 4), seed=5)
    w = wmmse(h, P20, 1.0, iterations=60, init=("mrt", "rzf")).precoder
    one = duality_powers(h, w, 1.0, iterations=1)
    full = duality_powers(h, w, 1.0)
    assert float(one.residual.max()) > 1e-3 and float(one.mismatch.max()) > 1e-4
    assert float(full.residual.max()) < 1e-10 and float(full.mismatch.max()) < 1e-9


def test_duality_switches_off_silent_users():
    h = _rayleigh((6, 3, 3), seed=8)
    w = zf_precoder(h, P20)
    w[..., 1] = 0  # user 1 not served
    w = w * math.sqrt(P20) / torch.linalg.matrix_norm(w)[..., None, None]
    dual = duality_powers(h, w, 1.0)
    assert not bool(dual.active[..., 1].any())
    assert bool((dual.p[..., 1] == 0).all() and (dual.q[..., 1] == 0).all())
    assert torch.allclose(dual.p.sum(-1), torch.full((6,), P20, dtype=torch.float64))
    # ZF users do not interfere: the p of the served users is the ZF power, the directions stay ZF-like
    assert float(dual.mismatch.max()) < 1e-9


# --- forms (spec §4.6) -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,k", [(4, 4), (16, 4), (8, 6), (64, 4)])
def test_forms_agree_complex128(n, k):
    h = _rayleigh((3, 5, k, n), seed=n + k)
    p = _simplex((3, 5, k), 10.0, seed=1)
    q = _simplex((3, 5, k), 10.0, seed=2)
    full = optimal_structure(h, p, q, 1.0, form="full")
    assert full.shape == (3, 5, n, k)
    for form in ("push", "reduced"):
        assert float((optimal_structure(h, p, q, 1.0, form=form) - full).abs().max()) < 1e-8


@pytest.mark.parametrize("n,k", [(4, 4), (16, 4), (64, 4)])
def test_forms_agree_complex64(n, k):
    h = _rayleigh((40, k, n), seed=n, dtype=C64)
    p = _simplex((40, k), 10.0, seed=3, dtype=torch.float32)
    q = _simplex((40, k), 10.0, seed=4, dtype=torch.float32)
    full = optimal_structure(h, p, q, 1.0, form="full")
    assert full.dtype == C64
    scale = full.abs().amax((-2, -1))
    for form in ("push", "reduced"):
        err = (optimal_structure(h, p, q, 1.0, form=form) - full).abs().amax((-2, -1)) / scale
        assert float(err.max()) < 1e-3


def test_structure_limits_mrt_and_zf():
    """q = 0 gives MRT directions, q / N_0 -> inf the ZF directions."""
    h = _rayleigh((10, 3, 5), seed=9)
    u0 = structure_directions(h, torch.zeros(10, 3, dtype=torch.float64), 1.0)
    mrt = h.mH / torch.linalg.vector_norm(h, dim=-1)[..., None, :]
    assert torch.allclose(u0, mrt, atol=1e-12)
    u_inf = structure_directions(h, torch.ones(10, 3, dtype=torch.float64), 1e-9)
    zf = zf_precoder(h, 1.0)
    zf = zf / torch.linalg.vector_norm(zf, dim=-2, keepdim=True)
    # same directions up to a positive scale per column
    assert torch.allclose(u_inf, zf, atol=1e-6)


# --- ZF (24) and the power constraint ----------------------------------------------------------------------


@pytest.mark.parametrize("n,k", [(4, 4), (8, 4), (64, 6)])
def test_zf_nulls_interference_and_meets_power(n, k):
    h = _rayleigh((50, k, n), seed=11)
    w = zf_precoder(h, P20)
    a = (h @ w).abs()
    own = torch.diagonal(a, dim1=-2, dim2=-1)
    off = a * (1 - torch.eye(k, dtype=a.dtype))
    assert float((off / own[..., :, None]).max()) < 1e-6
    assert float((torch.linalg.matrix_norm(w) ** 2 / P20 - 1).abs().max()) < 1e-6


@pytest.mark.parametrize("dtype", [C64, C128])
@pytest.mark.parametrize("form", FORMS)
def test_structure_meets_the_power(dtype, form):
    rdtype = torch.float32 if dtype == C64 else torch.float64
    h = _rayleigh((30, 4, 8), seed=12, dtype=dtype)
    p = _simplex((30, 4), 10.0, seed=5, dtype=rdtype)
    q = _simplex((30, 4), 10.0, seed=6, dtype=rdtype)
    w = optimal_structure(h, p, q, 1.0, form=form)
    assert float((torch.linalg.matrix_norm(w) ** 2 / 10.0 - 1).abs().max()) < 1e-5
    assert torch.allclose(torch.linalg.vector_norm(w, dim=-2) ** 2, p, rtol=1e-5)
    # a per-sample power and noise (tensors [...]) broadcast over the batch
    pw = torch.linspace(1.0, 30.0, 30, dtype=rdtype)
    w2 = optimal_structure(h, p * pw[:, None] / 10, q, torch.full((30,), 2.0, dtype=rdtype), form=form)
    assert torch.allclose(torch.linalg.matrix_norm(w2) ** 2, pw, rtol=1e-5)


# --- WMMSE (spec §5.1) and the REF-SIM references ----------------------------------------------------------


@pytest.mark.parametrize("init", ["mrt", "rzf", ("mrt", "rzf")])
def test_wmmse_objective_is_monotone(init):
    h = _rayleigh((40, 4, 4), seed=13)
    _, hist = wmmse(h, P20, 1.0, iterations=60, init=init, return_history=True)
    # the history is sum_k log2(1 + SINR_k) = sum_k log2(omega_k) of the iterates (index 0: the start)
    assert float(hist.diff(dim=-1).min()) > -1e-9
    assert bool((hist[..., -1] >= hist[..., 0] - 1e-9).all())


@pytest.mark.parametrize("k", sorted(REF_WMMSE))
def test_wmmse_ref_sim_mean(iid_labels, k):
    """REF-SIM mean WMMSE sum rate within 3 % (default 100 iterations, best of the MRT and RZF starts)."""
    _, lab = iid_labels[k]
    mean = float(lab.sum_rate.mean())
    assert abs(mean / REF_WMMSE[k] - 1) < 0.03, mean


@pytest.mark.parametrize(
    "k",
    [
        2,
        4,
        pytest.param(
            6,
            marks=pytest.mark.xfail(
                strict=True,
                reason="REF-SIM's ZF 20.1 at K=6 is one 200-draw mean; the population mean is 19.18 (1e5 draws, "
                "standard error 0.02), 4.6 % below it; a 200-draw mean has a standard error of ~2.7 %",
            ),
        ),
    ],
)
def test_zf_ref_sim_mean(k):
    """Perfect-CSI ZF (24) against REF-SIM within 3 %, on 20000 draws (the per-draw ZF rate is heavy tailed for
    N_t = K: a 200-draw mean has a standard error of 2.2-2.7 %, as large as the tolerance)."""
    h = _rayleigh((20000, k, k), seed=200 + k)
    mean = float(sum_rate(h, zf_precoder(h, P20), 1.0).mean())
    assert abs(mean / REF_ZF[k] - 1) < 0.03, mean


# --- gradients and robustness ------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_gradcheck(form):
    g = torch.Generator().manual_seed(14)
    f64 = torch.float64
    hr, hi = (torch.randn(2, 3, generator=g, dtype=f64, requires_grad=True) for _ in range(2))
    p = (torch.rand(2, generator=g, dtype=f64) + 0.5).requires_grad_()
    q = (torch.rand(2, generator=g, dtype=f64) * 3 + 0.5).requires_grad_()

    def fn(hr, hi, p, q):
        return torch.view_as_real(optimal_structure(torch.complex(hr, hi), p, q, 0.7, form=form))

    assert torch.autograd.gradcheck(fn, (hr, hi, p, q))


def _cases():
    h = _rayleigh((8, 4, 6), seed=15)
    dup = h.clone()
    dup[:, 1] = dup[:, 0]  # two identical users: rank-deficient Gram matrix
    zero = h.clone()
    zero[:, 2] = 0  # a zero user channel
    p = _simplex((8, 4), 10.0, seed=7)
    p0 = p.clone()
    p0[:, 3] = 0
    return {"dup": (dup, p, 1.0), "zero": (zero, p, 1.0), "p0": (h, p0, 1.0), "hi": (h, p, 1e-8), "lo": (h, p, 1e8)}


@pytest.mark.parametrize("dtype", [C64, C128])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", ["dup", "zero", "p0", "hi", "lo"])
def test_no_nan(case, form, dtype):
    h, p, n0 = _cases()[case]
    rdtype = torch.float32 if dtype == C64 else torch.float64
    h = h.to(dtype).requires_grad_()
    p = p.to(rdtype).requires_grad_()
    q = _simplex(p.shape, 10.0, seed=8, dtype=rdtype).requires_grad_()
    w = optimal_structure(h, p, q, n0, form=form)
    assert bool(torch.isfinite(torch.view_as_real(w)).all())
    expect = p.detach().clone()
    if case == "zero":
        assert bool((w[..., 2] == 0).all())
        expect[:, 2] = 0
    assert torch.allclose(torch.linalg.vector_norm(w.detach(), dim=-2) ** 2, expect, rtol=1e-4, atol=1e-6)
    if form == "reduced" and case in ("dup", "zero"):
        return  # eigh's gradient is undefined for a rank-deficient Gram matrix (spec §4.6, #43)
    weights = torch.randn(*w.shape, 2, generator=torch.Generator().manual_seed(0), dtype=rdtype)
    (torch.view_as_real(w) * weights).sum().backward()
    for x in (h, p, q):
        assert bool(torch.isfinite(torch.view_as_real(x.grad) if x.is_complex() else x.grad).all())


@pytest.mark.parametrize("case", ["dup", "zero", "hi", "lo"])
def test_duality_no_nan(case):
    h, _, n0 = _cases()[case]
    w = wmmse(h, 10.0, n0, iterations=30, init=("mrt", "rzf")).precoder
    dual = duality_powers(h, w, n0)
    for x in (dual.p, dual.q, dual.mismatch, dual.residual):
        assert bool(torch.isfinite(x).all())
    # at -70 dB (case "lo") every SINR is below eps = 1e-6 on some draws: all users off, all powers 0
    served = dual.active.any(-1)
    assert bool(served.any())
    expect = torch.where(served, 10.0, 0.0).to(torch.float64)
    assert torch.allclose(dual.p.sum(-1), expect) and torch.allclose(dual.q.sum(-1), expect)


def test_input_checks():
    h = _rayleigh((2, 3, 4), seed=16)
    p = torch.ones(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="form"):
        optimal_structure(h, p, p, 1.0, form="inverse")
    with pytest.raises(ValueError, match="p must be finite and >= 0"):
        optimal_structure(h, -p, p, 1.0)
    with pytest.raises(ValueError, match=r"q must be \[\.\.\., K\] with K=3"):
        optimal_structure(h, p, p[..., :2], 1.0)
    with pytest.raises(ValueError, match="noise_var"):
        optimal_structure(h, p, p, 0.0)
    with pytest.raises(ValueError, match="w must be a precoder"):
        duality_powers(h, h, 1.0)
    with pytest.raises(ValueError, match="iterations"):
        duality_powers(h, h.mH, 1.0, iterations=0)
    with pytest.raises(TypeError, match="complex"):
        optimal_structure(h.real, p, p, 1.0)
