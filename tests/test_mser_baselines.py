"""MMSE baselines of the MSER paper (spec mser-unfolding-hbf.md s4.10): fully digital, OMP, MO."""

import dataclasses

import pytest
import torch

from beamlearn.scenarios import get_scenario
from beamlearn.systems.mser.baselines import (
    mmse_fd_design,
    mmse_mo_design,
    mmse_omp_design,
    transmit_wiener,
)
from beamlearn.systems.mser.objective import sum_mse
from beamlearn.systems.mser.transceiver import Link, mmse_combiners, stack_precoder

NT, RT, K, NR, RR, DK = 64, 8, 2, 8, 4, 3
C128 = torch.complex128


def _channel(b=4, seed=0, dtype=C128, device="cpu"):
    return get_scenario("mser").channel_model()(b, seed=seed, dtype=dtype).to(device)


def _links(h, snr_db=10.0):
    power, noise_var = get_scenario("mser").power_and_noise(snr_db)
    lh = Link.from_channel(h, power, noise_var, 4, hybrid=True)
    return lh, dataclasses.replace(lh, hybrid=False)


def _mo(link, **kw):
    kw.setdefault("outer_iterations", 8)
    return mmse_mo_design(link, RT, RR, DK, generator=torch.Generator().manual_seed(0), **kw)


def _rel(a, b):
    return ((a - b).abs() / b.abs()).max().item()


def _fv(link, st):
    v = stack_precoder(st.p)
    return v if st.theta_f is None else link.analog_tx(st.theta_f) @ v


def _finite(st):
    return all(bool(torch.isfinite(t).all()) for t in st if t is not None)


def test_fd_mse_monotone_and_power():
    lh, lf = _links(_channel(8), 10.0)
    st, hist = mmse_fd_design(lf, DK, 60, record=True)
    assert hist.shape == (8, 61)
    # sum MSE at (V_t, W_MMSE(V_t)) is non-increasing (rounding allowance only)
    assert bool((hist[:, 1:] <= hist[:, :-1] * (1 + 1e-12)).all())
    assert bool((hist[:, -1] < 0.99 * hist[:, 0]).all())
    torch.testing.assert_close(hist[:, -1], sum_mse(lf, st), rtol=1e-12, atol=0)
    assert st.p.shape == (8, K, NT, DK) and st.w.shape == (8, K, NR, DK)
    assert st.theta_u is None and st.theta_f is None
    pw = (stack_precoder(st.p).abs() ** 2).sum((-1, -2))
    assert _rel(pw, torch.ones_like(pw)) < 1e-6
    with pytest.raises(ValueError):
        mmse_fd_design(lh, DK)


def test_fd_is_mmse_fixed_point():
    _, lf = _links(_channel(4), 10.0)
    st = mmse_fd_design(lf, DK, 300)
    # W is the MMSE combiner of V, and one more transmit Wiener step leaves V unchanged
    w = mmse_combiners(lf, st.p, None, None)
    assert ((w - st.w).norm() / st.w.norm()).item() < 1e-12
    p = transmit_wiener(lf, w)
    v0, v1 = stack_precoder(st.p), stack_precoder(p)
    assert ((v1 - v0).norm(dim=(-1, -2)) / v0.norm(dim=(-1, -2))).max().item() < 1e-6
    nxt = mmse_fd_design(lf, DK, 301)
    assert _rel(sum_mse(lf, nxt), sum_mse(lf, st)) < 1e-9


def test_hybrid_constraints_and_shapes():
    lh, _ = _links(_channel(4), 10.0)
    for st in (mmse_omp_design(lh, RT, RR, DK), _mo(lh)):
        assert st.p.shape == (4, K, RT, DK) and st.w.shape == (4, K, RR, DK)
        assert st.theta_u.shape == (4, K, RR, NR) and st.theta_f.shape == (4, NT, RT)
        f, u = lh.analog_tx(st.theta_f), lh.analog_rx(st.theta_u)
        assert (f.abs() - 1).abs().max().item() < 1e-6
        assert (u.abs() - 1).abs().max().item() < 1e-6
        pw = (_fv(lh, st).abs() ** 2).sum((-1, -2))
        assert _rel(pw, torch.ones_like(pw)) < 1e-6


def test_hybrid_mse_not_below_fully_digital():
    lh, lf = _links(_channel(6, seed=3), 5.0)
    fd = sum_mse(lf, mmse_fd_design(lf, DK))
    omp = sum_mse(lh, mmse_omp_design(lh, RT, RR, DK))
    mo = sum_mse(lh, _mo(lh))
    mo_ls = sum_mse(lh, _mo(lh, mmse_receiver=False))
    assert bool((omp >= fd * (1 - 1e-9)).all()) and bool((mo >= fd * (1 - 1e-9)).all())
    assert bool((mo_ls >= mo * (1 - 1e-9)).all())  # the MMSE receiver is optimal given U, F, P


def test_omp_receiver_is_hybrid_mmse_combiner():
    lh, _ = _links(_channel(4), 15.0)
    st = mmse_omp_design(lh, RT, RR, DK)
    w = mmse_combiners(lh, st.p, st.theta_u, st.theta_f)
    assert ((w - st.w).norm() / w.norm()).item() < 1e-8


def test_omp_full_rf_reproduces_fully_digital():
    # with Rt = Nt and Rr = Nr the OMP factorisations are exact: F V = V_opt and the MSE is the FD MSE
    lh, lf = _links(_channel(2), 10.0)
    fd = mmse_fd_design(lf, DK)
    st = mmse_omp_design(lh, NT, NR, DK)
    v_opt = stack_precoder(fd.p)
    err = (_fv(lh, st) - v_opt).norm(dim=(-1, -2)) / v_opt.norm(dim=(-1, -2))
    assert err.max().item() < 1e-6
    assert _rel(sum_mse(lh, st), sum_mse(lf, fd)) < 1e-6


def test_dummy_user_gets_zero_precoder():
    h = _channel(3)
    h[:, 1] = 0
    lh, lf = _links(h, 10.0)
    assert lh.user_mask[:, 1].eq(0).all()
    for link, st in ((lf, mmse_fd_design(lf, DK)), (lh, mmse_omp_design(lh, RT, RR, DK)), (lh, _mo(lh))):
        assert _finite(st)
        assert bool((st.p[:, 1] == 0).all())
        assert bool((st.p[:, 0] != 0).any())
        pw = (_fv(link, st).abs() ** 2).sum((-1, -2))
        assert _rel(pw, torch.ones_like(pw)) < 1e-6


@pytest.mark.parametrize("kind", ["identical_users", "rank_one"])
def test_rank_deficient_channel_is_finite(kind):
    h = _channel(3)
    if kind == "identical_users":
        h[:, 1] = h[:, 0]
    else:  # every user's channel has rank 1 < D_k
        h = h[..., :1, :1] @ h[..., :1, :] * torch.ones(NR, 1, dtype=C128)
    lh, lf = _links(h, 20.0)
    fd = mmse_fd_design(lf, DK)
    for link, st in ((lf, fd), (lh, mmse_omp_design(lh, RT, RR, DK)), (lh, _mo(lh))):
        assert _finite(st)
        assert bool(torch.isfinite(sum_mse(link, st)).all())
        pw = (_fv(link, st).abs() ** 2).sum((-1, -2))
        assert _rel(pw, torch.ones_like(pw)) < 1e-6


def test_dtype_and_device(device):
    h = _channel(2, dtype=torch.complex64, device=device)
    lh, lf = _links(h, 10.0)
    for st in (mmse_fd_design(lf, DK, 20), mmse_omp_design(lh, RT, RR, DK, 20), _mo(lh, fd_iterations=20)):
        for t in st:
            if t is not None:
                assert t.device.type == device.type
                assert t.dtype in (torch.complex64, torch.float32)
        assert _finite(st)
    # single precision agrees with double precision on the FD design
    h64 = h.to(C128)
    _, lf64 = _links(h64, 10.0)
    a = sum_mse(lf, mmse_fd_design(lf, DK, 20)).double()
    b = sum_mse(lf64, mmse_fd_design(lf64, DK, 20))
    assert _rel(a, b) < 1e-3


def test_link_kind_checked():
    lh, lf = _links(_channel(1), 10.0)
    with pytest.raises(ValueError):
        mmse_omp_design(lf, RT, RR, DK)
    with pytest.raises(ValueError):
        mmse_mo_design(lf, RT, RR, DK)
