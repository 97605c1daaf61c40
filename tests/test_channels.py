import math

import numpy as np
import pytest
import torch

from beamlearn.channels import (
    ULA,
    UPA,
    ClusteredChannel,
    CorrelatedRayleighChannel,
    RayleighChannel,
    exponential_correlation,
)
from beamlearn.scenarios import PRESETS, get_scenario


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_shapes_finite_and_seeded(name, device):
    sc = get_scenario(name)
    model = sc.channel_model()
    h = model((3, 2), seed=7, device=device)
    expect = (3, 2, sc.num_users) + ((sc.num_rx_antennas,) if sc.num_rx_antennas > 1 else ()) + (sc.num_bs_antennas,)
    assert h.shape == expect and h.dtype == torch.complex64 and h.device.type == device.type
    assert torch.isfinite(torch.view_as_real(h)).all()
    assert torch.equal(h, model((3, 2), seed=7, device=device))
    assert not torch.equal(h, model((3, 2), seed=8, device=device))


def test_unfolded_pga_channel_statistics():
    # spec unfolded-pga-hbf.md s7.1: mean ||h_k||^2 in [9.7, 10.3], mean |h_kn|^2 in [0.30, 0.325]
    h = get_scenario("unfolded-pga").channel_model()(20000, seed=3, dtype=torch.complex128)
    assert 9.7 <= h.abs().square().sum(-1).mean() <= 10.3
    assert 0.30 <= h.abs().square().mean() <= 0.325


def test_steering_vectors_unit_norm_and_formula():
    phi = torch.linspace(-3, 3, 11, dtype=torch.float64)
    a = ULA(8).response(phi, dtype=torch.complex128)
    assert torch.allclose(torch.linalg.vector_norm(a, dim=-1), torch.ones(11, dtype=torch.float64), atol=1e-14)
    n = torch.arange(8, dtype=torch.float64)
    ref = torch.exp(1j * math.pi * n * torch.sin(phi)[:, None]) / math.sqrt(8)
    assert torch.allclose(a, ref, atol=1e-14)
    upa = UPA(4, 2)
    b = upa.response(phi, torch.full_like(phi, 1.0), dtype=torch.complex128)
    assert b.shape == (11, 8)
    assert torch.allclose(torch.linalg.vector_norm(b, dim=-1), torch.ones(11, dtype=torch.float64), atol=1e-14)
    # a UPA with one row at zenith pi/2 is a ULA along y
    c = UPA(1, 8).response(phi, dtype=torch.complex128)
    assert torch.allclose(c, a, atol=1e-14)


def test_clustered_paths_normalisation_and_power():
    # "paths" normalisation: E||H_k||_F^2 = N Nr gain_variance (JCEHB spec: 204.8 for 64x32, 0.1)
    model = ClusteredChannel(
        2,
        64,
        32,
        num_clusters=4,
        rays_per_cluster=2,
        gain_variance=0.1,
        aod_range=(-1, 1),
        aoa_range=(-1, 1),
        normalization="paths",
    )
    h = model(2000, seed=0, dtype=torch.complex128)
    assert h.shape == (2000, 2, 32, 64)
    assert abs(h.abs().square().sum((-2, -1)).mean().item() / 204.8 - 1) < 0.05


def test_frobenius_normalisation_exact():
    model = ClusteredChannel(
        3,
        ULA(16, normalize=False),
        ULA(4, normalize=False),
        num_clusters=5,
        rays_per_cluster=1,
        normalization="frobenius",
    )
    h = model(50, seed=1, dtype=torch.complex128)
    assert torch.allclose(h.abs().square().sum((-2, -1)), torch.full((50, 3), 64.0, dtype=torch.float64))
    # rank <= number of paths
    assert (torch.linalg.matrix_rank(h) <= 4).all()


def test_clustered_channel_is_sum_of_rank_one_paths():
    model = ClusteredChannel(2, 8, 3, num_clusters=2, rays_per_cluster=3, aod_spread=0.1)
    g = torch.Generator().manual_seed(5)
    paths = model.sample_paths((4,), g, torch.device("cpu"), torch.complex128)
    h = model.channel_from_paths(paths, torch.complex128)
    ref = torch.zeros(4, 2, 3, 8, dtype=torch.complex128)
    for p in range(6):
        at = ULA(8).response(paths.aod[..., p], dtype=torch.complex128)
        ar = ULA(3).response(paths.aoa[..., p], dtype=torch.complex128)
        ref += paths.gains[..., p, None, None] * ar[..., :, None] * at[..., None, :].conj()
    assert torch.allclose(h, ref, atol=1e-13)


def test_laplacian_spread_has_requested_std():
    model = ClusteredChannel(1, 4, num_clusters=1, rays_per_cluster=200, aod_range=(0.0, 0.0), aod_spread=0.05)
    paths = model.sample_paths((200,), torch.Generator().manual_seed(0), torch.device("cpu"), torch.complex128)
    assert abs(paths.aod.std().item() / 0.05 - 1) < 0.03


def test_uniform_in_sine():
    model = ClusteredChannel(1, 4, num_clusters=1, rays_per_cluster=1000, aod_range=(-1, 1), uniform_in="sine")
    paths = model.sample_paths((50,), torch.Generator().manual_seed(0), torch.device("cpu"), torch.complex128)
    s = torch.sin(paths.aod).flatten().numpy()
    hist, _ = np.histogram(s, bins=10, range=(-1, 1))
    assert hist.min() > 0.9 * hist.mean() and hist.max() < 1.1 * hist.mean()


def test_frequency_selective_shape_and_delay_phase():
    f = [0.0, 1e6, 2e6]
    model = ClusteredChannel(2, 8, num_clusters=1, rays_per_cluster=1, max_delay=1e-6, frequencies=f)
    g = torch.Generator().manual_seed(2)
    paths = model.sample_paths((5,), g, torch.device("cpu"), torch.complex128)
    h = model.channel_from_paths(paths, torch.complex128)  # [5, F, K, 1, N]
    assert h.shape == (5, 3, 2, 1, 8)
    # single path: H(f) = H(0) exp(-j 2 pi f tau)
    rot = torch.exp(-2j * math.pi * 1e6 * paths.delays[..., 0])
    assert torch.allclose(h[:, 1], h[:, 0] * rot[..., None, None], atol=1e-12)
    assert model(4, seed=0).shape == (4, 3, 2, 8)


def test_rayleigh_statistics():
    h = RayleighChannel(4, 8, variance=2.0)(20000, seed=0, dtype=torch.complex128)
    assert abs(h.abs().square().mean().item() / 2.0 - 1) < 0.02
    assert abs(h.real.var().item() - 1.0) < 0.03


def test_correlated_rayleigh_covariance():
    r = exponential_correlation(6, 0.8 * np.exp(0.3j))
    assert torch.allclose(r, r.mH) and torch.allclose(torch.diagonal(r).real, torch.ones(6, dtype=torch.float64))
    model = CorrelatedRayleighChannel(1, 6, tx_correlation=r)
    h = model(200000, seed=0, dtype=torch.complex128)[:, 0, :]  # rows h^H
    cov = (h.mH @ h) / h.shape[0]  # E[h h^H] with h = row^H
    assert (cov - r).abs().max() < 0.02
    # receive correlation for multi-antenna users: E[H H^H] = tr(R_tx) R_rx
    rr = exponential_correlation(3, 0.5)
    m2 = CorrelatedRayleighChannel(1, 4, 3, tx_correlation=0.0, rx_correlation=rr)
    h2 = m2(100000, seed=1, dtype=torch.complex128)[:, 0]
    c2 = (h2 @ h2.mH).mean(0)
    assert (c2 - 4 * rr).abs().max() < 0.1


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(num_clusters=0), "num_clusters"),
        (dict(gain_variance=-1.0), "gain_variance"),
        (dict(aod_range=(1.0, 0.0)), "aod_range"),
        (dict(normalization="unit"), "normalization"),
        (dict(aod_spread=-0.1), "aod_spread"),
        (dict(uniform_in="sine", aod_range=(0.0, 2.0)), "aod_range"),
    ],
)
def test_clustered_bad_parameters(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ClusteredChannel(2, 8, **bad)


def test_correlation_must_be_hermitian_pd():
    with pytest.raises(ValueError, match="tx_correlation"):
        CorrelatedRayleighChannel(1, 3, tx_correlation=torch.ones(3, 3) * 2 - torch.eye(3))  # not PD
    with pytest.raises(ValueError, match=r"\|rho\|"):
        exponential_correlation(4, 1.0)


def test_bad_batch_and_dtype():
    m = RayleighChannel(2, 4)
    with pytest.raises(ValueError, match="batch_size"):
        m(0)
    with pytest.raises(TypeError, match="dtype"):
        m(2, dtype=torch.float32)
