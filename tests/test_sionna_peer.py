"""Agreement with an independent peer: Sionna 2.x's precoding matrices (sionna-no-rt)."""

import math

import pytest
import torch

sionna_precoding = pytest.importorskip("sionna.phy.mimo.precoding")

from beamlearn.precoding import mrt_precoder, rzf_precoder, zf_precoder  # noqa: E402
from beamlearn.scenarios import get_scenario  # noqa: E402


def _h(n=64, seed=0):
    return get_scenario("unfolded-pga").channel_model()(n, seed=seed, dtype=torch.complex128)


def test_zf_matches_sionna():
    h = _h()
    p = 10.0
    ours = zf_precoder(h, p, normalization="per_stream")
    ref = sionna_precoding.rzf_precoding_matrix(h, alpha=0.0, precision="double") * math.sqrt(p / 4)
    assert torch.allclose(ours, ref, atol=1e-9 * ref.abs().max())


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_rzf_matches_sionna(snr_db):
    h = _h(seed=1)
    p = 10 ** (snr_db / 10)
    alpha = 4 * 1.0 / p  # K sigma^2 / P
    ours = rzf_precoder(h, p, 1.0, normalization="per_stream")
    ref = sionna_precoding.rzf_precoding_matrix(h, alpha=alpha, precision="double") * math.sqrt(p / 4)
    assert torch.allclose(ours, ref, atol=1e-9 * ref.abs().max())


def test_mrt_matches_sionna_cbf():
    h = _h(seed=2)
    ours = mrt_precoder(h, 4.0, normalization="per_stream")
    ref = sionna_precoding.cbf_precoding_matrix(h, precision="double")
    assert torch.allclose(ours, ref, atol=1e-12)


def test_total_power_normalisation_is_a_rescaling_of_sionna():
    h = _h(seed=3)
    ours = zf_precoder(h, 10.0)  # total power scaling
    ref = sionna_precoding.rzf_precoding_matrix(h, alpha=0.0, precision="double")
    # same column directions; columns of ZF differ only by positive scalars
    cos = (ours.conj() * ref).sum(-2).abs() / (
        torch.linalg.vector_norm(ours, dim=-2) * torch.linalg.vector_norm(ref, dim=-2)
    )
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-10)
