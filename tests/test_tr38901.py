"""3GPP TR 38.901 UMi/UMa/RMa channels through Sionna (beamlearn.channels.tr38901)."""

import math

import pytest
import torch

pytest.importorskip("sionna.phy")

from sionna.phy import config as sionna_config

from beamlearn.channels.tr38901 import (
    THREEGPP_SOURCES,
    TR38901Channel,
    make_3gpp_source,
)
from beamlearn.precoding import zf_precoder

K, N = 4, 16
SCENARIOS = ["umi", "uma", "rma"]


@pytest.fixture(scope="module")
def drops():
    """16 drops per scenario (normalised and not, same seed), shared by the statistical tests."""
    out = {}
    for s in SCENARIOS:
        raw = TR38901Channel(s, K, N, normalize=False)(16, seed=7)
        norm = TR38901Channel(s, K, N)(16, seed=7)
        out[s] = (raw, norm)
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_shapes_finite_and_normalised(scenario):
    m = TR38901Channel(scenario, K, N)
    h = m(5, seed=0)
    assert h.shape == (5, K, N) and h.dtype == torch.complex64
    assert torch.isfinite(h).all()
    h2 = m((2, 3), seed=1, dtype=torch.complex128)
    assert h2.shape == (2, 3, K, N) and h2.dtype == torch.complex128
    assert m(2, seed=0, squeeze_rx=False).shape == (2, K, 1, N)
    # ||h_k||^2 = N exactly (to the dtype's precision)
    torch.testing.assert_close(h.abs().square().sum(-1), torch.full((5, K), float(N)), rtol=1e-5, atol=0)
    torch.testing.assert_close(
        h2.abs().square().sum(-1), torch.full((2, 3, K), float(N), dtype=torch.float64), rtol=1e-12, atol=0
    )


def test_batch_shape_is_a_view_of_the_drops_and_chunking():
    m = TR38901Channel("umi", K, N, drops_per_call=4)  # 6 drops -> chunks of 4 + 2
    flat = m(6, seed=3)
    assert torch.equal(m((2, 3), seed=3).reshape(6, K, N), flat)
    assert torch.isfinite(flat).all()
    assert not torch.equal(flat[4], flat[5])  # every drop is a fresh topology


def test_seeding_is_reproducible_and_local():
    m = TR38901Channel("uma", K, N)
    sionna_state = sionna_config.torch_rng("cpu").get_state().clone()
    torch_state = torch.get_rng_state().clone()
    a = m(4, seed=11)
    assert torch.equal(a, m(4, seed=11))
    assert not torch.allclose(a, m(4, seed=12))
    g = torch.Generator().manual_seed(11)
    g1, g2 = m(4, generator=g), m(4, generator=g)
    assert torch.equal(g1, a) and not torch.allclose(g1, g2)  # a generator advances: fresh drops
    # neither Sionna's generator nor torch's global one is disturbed
    assert torch.equal(sionna_config.torch_rng("cpu").get_state(), sionna_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    # complex128 output of a seed = the same drops as complex64
    torch.testing.assert_close(m(4, seed=11, dtype=torch.complex128).to(torch.complex64), a, rtol=0, atol=1e-5)


def test_unnormalised_keeps_path_loss(drops):
    for s in SCENARIOS:
        raw, norm = drops[s]
        assert raw.dtype == torch.complex64 and torch.isfinite(raw).all()
        energy = raw.abs().square().sum(-1)  # [B, K]
        assert (energy > 0).all()
        gain_db = 10 * torch.log10(energy / N)
        assert -160 < gain_db.mean() < -60, (s, gain_db.mean())
        # normalising the raw channel gives the normalised one (same seed, same drops)
        torch.testing.assert_close(raw * (N / energy).sqrt()[..., None], norm, rtol=1e-4, atol=1e-5)


def test_scenarios_differ_in_the_expected_direction(drops):
    gain = {s: (10 * torch.log10(drops[s][0].abs().square().sum(-1) / N)).mean() for s in SCENARIOS}
    # larger cells, lower path gain: UMi (ISD 200 m) > UMa (500 m) > RMa (5 km)
    assert gain["umi"] > gain["uma"] + 5 > gain["rma"] + 10, gain
    # RMa: mostly LoS with small angular spreads; UMi: 80% indoor, large spreads -> RMa channels
    # concentrate more energy in their best DFT beam
    f = torch.fft.fft(torch.eye(N, dtype=torch.complex64)) / math.sqrt(N)
    conc = {s: ((drops[s][1] @ f).abs().square().amax(-1) / N).mean() for s in SCENARIOS}
    assert conc["rma"] > conc["umi"] + 0.03, conc


@pytest.mark.parametrize("dtype,tol", [(torch.complex128, 1e-10), (torch.complex64, 1e-4)])
def test_zero_forcing_removes_interference(dtype, tol):
    h = make_3gpp_source("3gpp-umi", K, N)(8, seed=5, dtype=dtype)
    g = h @ zf_precoder(h, 1.0)  # [B, K, K]
    diag = torch.diagonal(g, dim1=-2, dim2=-1)
    off = g - torch.diag_embed(diag)
    assert (off.abs().amax(dim=(-2, -1)) <= tol * diag.abs().amin(-1)).all()


def test_factory_describe_and_validation():
    for name in THREEGPP_SOURCES:
        m = make_3gpp_source(name, K, N, carrier_frequency=2.6e9, bs_antenna_pattern="omni")
        d = m.describe()
        assert d["source"] == name and d["carrier_frequency"] == 2.6e9
        assert d["bs_array"]["num_elements"] == N and d["bs_array"]["element_pattern"] == "omni"
        assert d["normalize"] is True and d["sionna_version"]
    assert make_3gpp_source("3gpp-rma", K, N).describe()["o2i_model"] is None
    assert make_3gpp_source("3gpp-umi", K, N, indoor_probability=0.0).describe()["indoor_probability"] == 0.0
    with pytest.raises(ValueError, match="3gpp-umi"):
        make_3gpp_source("3gpp-inh", K, N)
    with pytest.raises(ValueError, match="scenario"):
        TR38901Channel("cdl", K, N)
    with pytest.raises(ValueError, match="o2i_model"):
        TR38901Channel("umi", K, N, o2i_model="medium")
    with pytest.raises(ValueError, match="bs_antenna_pattern"):
        TR38901Channel("umi", K, N, bs_antenna_pattern="dipole")
    with pytest.raises(ValueError, match="indoor_probability"):
        TR38901Channel("uma", K, N, indoor_probability=1.5)
