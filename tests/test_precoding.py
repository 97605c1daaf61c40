import itertools
import math

import pytest
import torch

from beamlearn.channels import RayleighChannel
from beamlearn.constraints import precoder_power
from beamlearn.metrics import sum_rate
from beamlearn.precoding import (
    MRT,
    RZF,
    WMMSE,
    ZF,
    CapacityBound,
    capacity_waterfilling,
    mrt_precoder,
    rzf_precoder,
    waterfilling,
    wmmse,
    zf_precoder,
)
from beamlearn.scenarios import get_scenario

C64, C128 = torch.complex64, torch.complex128


def _pga_channels(n, seed=0, dtype=C128, device="cpu"):
    return get_scenario("unfolded-pga").channel_model()(n, seed=seed, dtype=dtype, device=device)


@pytest.mark.parametrize("dtype", [C64, C128])
def test_zf_removes_interference(dtype, device):
    h = _pga_channels(500, 1, dtype, device)
    x = zf_precoder(h, 10.0)
    a = (h @ x).abs()
    diag = torch.diagonal(a, dim1=-2, dim2=-1)
    off = a - torch.diag_embed(diag)
    rel = off.amax((-2, -1)) / diag.amin(-1)
    assert rel.max() < 1e-5
    assert torch.allclose(
        precoder_power(x).double(), torch.full((500,), 10.0, dtype=torch.float64, device=device), rtol=1e-5
    )


def test_zf_rate_closed_form():
    h = _pga_channels(200, 2)
    for p in (1.0, 10.0, 100.0):
        x = zf_precoder(h, p)
        closed = 4 * torch.log2(1 + p / torch.linalg.pinv(h).abs().square().sum((-2, -1)))
        assert torch.allclose(sum_rate(h, x, 1.0), closed, atol=1e-9)


def test_zf_mean_rate_of_unfolded_pga_preset():
    # spec unfolded-pga-hbf.md s9.3: 17.27 bit/s/Hz at 10 dB over 20 000 channels (SEM ~0.009)
    h = _pga_channels(20000, seed=2024, dtype=C64)
    r = sum_rate(h, zf_precoder(h, 10.0), 1.0).double()
    assert abs(r.mean().item() - 17.27) < 0.1
    assert r.std().item() / math.sqrt(r.numel()) < 0.02


def test_rzf_limits():
    h = _pga_channels(50, 3)
    x_zf = zf_precoder(h, 10.0)
    assert torch.allclose(rzf_precoder(h, 10.0, 1e-12), x_zf, atol=1e-8)
    # large regularisation: direction of MRT
    x = rzf_precoder(h, 10.0, alpha=1e9)
    assert torch.allclose(x, mrt_precoder(h, 10.0), atol=1e-6)
    # RZF beats both ZF and MRT on average at 0 dB
    r = {
        n: sum_rate(h, f, 1.0).mean()
        for n, f in [("rzf", rzf_precoder(h, 1.0, 1.0)), ("zf", zf_precoder(h, 1.0)), ("mrt", mrt_precoder(h, 1.0))]
    }
    assert r["rzf"] > r["zf"] and r["rzf"] > r["mrt"]


def test_rank_deficient_and_extreme_snr_stay_finite():
    h = _pga_channels(8, 4)
    h[:, 1] = h[:, 0]  # two identical users: H H^H singular
    h[0] = 0  # an all-zero channel
    for p in (1e-3, 1.0, 1e6):
        for x in (
            zf_precoder(h, p),
            rzf_precoder(h, p, 1.0),
            mrt_precoder(h, p),
            wmmse(h, p, 1.0, iterations=5).precoder,
        ):
            assert torch.isfinite(torch.view_as_real(x)).all()
            assert torch.isfinite(sum_rate(h, x, 1.0)).all()
    assert torch.isfinite(capacity_waterfilling(h, 10.0, 1.0)).all()


@pytest.mark.parametrize("snr_db", [-10, 0, 10, 20, 30])
def test_wmmse_monotone_and_feasible(snr_db):
    h = _pga_channels(300, 5)
    p = 10 ** (snr_db / 10)
    out, hist = wmmse(h, p, 1.0, iterations=40, return_history=True)
    d = torch.diff(hist, dim=-1)
    assert d.min() > -1e-9 * hist.abs().max()
    assert (precoder_power(out.precoder) <= p * (1 + 1e-9)).all()
    # the history is the (log-det) sum rate of the iterates
    assert torch.allclose(hist[:, -1], sum_rate(h, out.precoder, 1.0), atol=1e-8)


def test_wmmse_beats_zf_at_low_snr_and_stays_close_to_capacity():
    h = _pga_channels(500, 6)
    for snr_db in (-5, 0, 5):
        p = 10 ** (snr_db / 10)
        r_w = sum_rate(h, wmmse(h, p, 1.0, iterations=50).precoder, 1.0)
        r_zf = sum_rate(h, zf_precoder(h, p), 1.0)
        r_cap = capacity_waterfilling(h, p, 1.0)
        assert r_w.mean() > r_zf.mean() + 0.3
        assert (r_w >= r_zf - 1e-6).float().mean() > 0.95
        assert (r_w <= r_cap + 1e-9).all()


def test_wmmse_mu_search_variants_agree():
    h = _pga_channels(100, 7)
    a = wmmse(h, 10.0, 1.0, iterations=20).precoder
    b = wmmse(h, 10.0, 1.0, iterations=20, mu_search="bisection", mu_steps=50).precoder
    assert (a - b).abs().max() < 1e-7


def test_wmmse_fixed_point_satisfies_kkt():
    # at convergence V solves the MISO KKT: for mu > 0 power equals P
    h = RayleighChannel(4, 6)(50, seed=8, dtype=C128)
    out = wmmse(h, 100.0, 1.0, iterations=300)
    assert torch.allclose(precoder_power(out.precoder), torch.full((50,), 100.0, dtype=torch.float64), rtol=1e-9)
    more = wmmse(h, 100.0, 1.0, iterations=1, init=out.precoder)
    assert (sum_rate(h, more.precoder, 1.0) - sum_rate(h, out.precoder, 1.0)).abs().max() < 1e-4


def test_wmmse_best_of_inits_is_at_least_each():
    h = _pga_channels(200, 9)
    r = {i: sum_rate(h, wmmse(h, 10.0, 1.0, iterations=15, init=i).precoder, 1.0) for i in ("rzf", "mrt")}
    best = sum_rate(h, wmmse(h, 10.0, 1.0, iterations=15, init=("rzf", "mrt")).precoder, 1.0)
    assert torch.allclose(best, torch.maximum(r["rzf"], r["mrt"]), atol=1e-9)


def test_wmmse_mimo_monotone_and_beats_block_zf():
    h = RayleighChannel(3, 12, 4)(100, seed=10, dtype=C128)  # K=3, Nr=4, Ns=2
    out, hist = wmmse(h, 10.0, 1.0, num_streams=2, iterations=40, return_history=True)
    assert out.precoder.shape == (100, 12, 6) and out.combiner.shape == (100, 3, 4, 2)
    assert torch.diff(hist, dim=-1).min() > -1e-9 * hist.abs().max()
    assert torch.allclose(hist[:, -1], sum_rate(h, out.precoder, 1.0, form="logdet"), atol=1e-8)
    # per-stream linear MMSE detection achieves at most the log-det rate
    assert (sum_rate(h, out.precoder, 1.0, combiner=out.combiner) <= hist[:, -1] + 1e-8).all()


def test_wmmse_weights_favour_a_user():
    h = _pga_channels(100, 11)
    w = torch.tensor([4.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    x_eq = wmmse(h, 10.0, 1.0, iterations=30).precoder
    x_w = wmmse(h, 10.0, 1.0, iterations=30, weights=w).precoder
    from beamlearn.metrics import user_rates

    assert user_rates(h, x_w, 1.0)[:, 0].mean() > user_rates(h, x_eq, 1.0)[:, 0].mean()


def test_wmmse_batched_power_and_noise():
    h = _pga_channels(4, 12)
    p = torch.tensor([1.0, 10.0, 100.0, 1000.0], dtype=torch.float64)
    both = wmmse(h, p, 1.0, iterations=10).precoder
    for i in range(4):
        one = wmmse(h[i : i + 1], float(p[i]), 1.0, iterations=10).precoder
        assert torch.allclose(both[i : i + 1], one, atol=1e-10)


def test_waterfilling_kkt_and_brute_force():
    g = torch.tensor([[4.0, 1.0, 0.25, 0.0], [1.0, 1.0, 1.0, 1.0], [10.0, 0.01, 0.01, 0.01]], dtype=torch.float64)
    p = waterfilling(g, 2.0)
    assert torch.allclose(p.sum(-1), torch.full((3,), 2.0, dtype=torch.float64))
    assert (p >= 0).all()
    # brute force over a grid of 3-mode allocations for the first row
    best = max(
        sum(math.log2(1 + gi * pi) for gi, pi in zip(g[0].tolist(), (a, b, 2.0 - a - b), strict=False))
        for a, b in itertools.product([i / 200 for i in range(401)], repeat=2)
        if a + b <= 2.0
    )
    assert math.log2(1 + 4.0 * p[0, 0]) + math.log2(1 + p[0, 1]) + math.log2(1 + 0.25 * p[0, 2]) >= best - 1e-9


def test_capacity_upper_bounds_every_precoder():
    h = _pga_channels(200, 13)
    cap = capacity_waterfilling(h, 10.0, 1.0)
    for x in (zf_precoder(h, 10.0), wmmse(h, 10.0, 1.0, iterations=30).precoder):
        assert (sum_rate(h, x, 1.0) <= cap + 1e-9).all()


def test_methods_share_one_call_signature():
    h = _pga_channels(10, 14, C64)
    for m in (MRT(), ZF(), RZF(), WMMSE(iterations=5), CapacityBound()):
        bf = m(h, 10.0, 1.0)
        if bf.precoder is not None:
            assert bf.precoder.shape == (10, 32, 4) and bf.precoder.dtype == C64
        else:
            assert bf.sum_rate.shape == (10,)
    hm = RayleighChannel(2, 16, 2)(5, seed=0)
    bf = ZF(num_streams=2)(hm, 10.0, 1.0)
    assert bf.precoder.shape == (5, 16, 4) and bf.combiner.shape == (5, 2, 2, 2)
    with pytest.raises(ValueError, match="num_streams"):
        ZF(num_streams=1)(hm, 10.0, 1.0)


def test_zf_needs_k_le_n():
    with pytest.raises(ValueError, match="K <= N"):
        zf_precoder(RayleighChannel(5, 4)(2, seed=0), 1.0)


def test_bad_wmmse_arguments():
    h = _pga_channels(2, 15)
    with pytest.raises(ValueError, match="iterations"):
        wmmse(h, 1.0, 1.0, iterations=-1)
    with pytest.raises(ValueError, match="init"):
        wmmse(h, 1.0, 1.0, init="svd")
    with pytest.raises(ValueError, match="noise_var"):
        wmmse(h, 1.0, 0.0)
    with pytest.raises(ValueError, match="mu_search"):
        wmmse(h, 1.0, 1.0, mu_search="golden")


def test_wmmse_scalar_fast_path_equals_general_path():
    h = _pga_channels(50, 16)
    for p in (1.0, 100.0):
        a, ha = wmmse(h, p, 1.0, iterations=15, return_history=True)
        b, hb = wmmse(h, p, 1.0, iterations=15, return_history=True, _force_general=True)
        assert (a.precoder - b.precoder).abs().max() < 1e-12
        assert (ha - hb).abs().max() < 1e-10
