"""Ray-traced channels (Sionna RT). Skipped when sionna-rt or its LLVM backend is unavailable."""

import math

import numpy as np
import pytest
import torch

from beamlearn.channels.raytraced import (
    RayTracedChannel,
    import_sionna_rt,
    make_rt_source,
)
from beamlearn.precoding import zf_precoder

try:
    import_sionna_rt()
except ImportError as e:  # no sionna-rt, or no LLVM library for Dr.Jit
    pytest.skip(f"Sionna RT unavailable: {e}", allow_module_level=True)

K, N = 4, 16


@pytest.fixture(scope="module")
def canyon():
    # small scene, few rays: the point is the plumbing, not the accuracy of the ray tracer
    return RayTracedChannel("simple_street_canyon", K, N, samples_per_src=20_000, radio_map_samples=1_000_000)


def test_shapes_finite_nonzero_normalized(canyon):
    h = canyon(3, seed=1)
    assert h.shape == (3, K, N) and h.dtype == torch.complex64
    assert torch.isfinite(torch.view_as_real(h)).all()
    energy = (h.abs() ** 2).sum(-1)
    torch.testing.assert_close(energy, torch.full_like(energy, float(N)), rtol=1e-5, atol=0)
    assert canyon.last_positions.shape == (3, K, 3)
    h4 = canyon((2, 1), seed=1, squeeze_rx=False)
    assert h4.shape == (2, 1, K, 1, N)


def test_same_seed_same_channels(canyon):
    a = canyon(3, seed=7, dtype=torch.complex128)
    b = canyon(3, seed=7, dtype=torch.complex128)
    c = canyon(3, seed=8, dtype=torch.complex128)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    g = torch.Generator().manual_seed(7)
    assert torch.equal(canyon(3, generator=g, dtype=torch.complex128), a)


def test_zf_removes_interference(canyon):
    h = canyon(3, seed=3, dtype=torch.complex128)
    x = zf_precoder(h, 1.0)
    g = h @ x  # [3, K, K], effective gains
    diag = torch.diagonal(g, dim1=-2, dim2=-1).abs()
    off = (g - torch.diag_embed(torch.diagonal(g, dim1=-2, dim2=-1))).abs().amax(dim=(-2, -1))
    assert (diag > 0).all()
    assert (off <= 1e-6 * diag.amin(-1)).all()


def test_describe_and_factory():
    src = make_rt_source("rt:munich", 2, 8)
    d = src.describe()
    assert d["source"] == "rt:munich" and d["scene"] == "munich"
    assert d["bs_position"] == [8.5, 21.0, 32.0] and d["carrier_frequency"] == 3.5e9
    assert d["bs_array"]["num_elements"] == 8 and d["max_depth"] == 3
    assert d["sionna_rt_version"]
    with pytest.raises(ValueError):
        make_rt_source("munich", 2, 8)
    with pytest.raises(ValueError):
        RayTracedChannel("atlantis", 2, 8)
    with pytest.raises(ValueError):
        RayTracedChannel("munich", 2, 8, min_distance=50, max_distance=20)


_GROUND = """<scene version="2.1.0">
    <bsdf type="itu-radio-material" id="concrete">
        <string name="type" value="concrete"/>
        <float name="thickness" value="0.1"/>
    </bsdf>
    <shape type="rectangle" id="mesh-ground">
        <transform name="to_world"><scale x="100" y="100" z="1"/></transform>
        <ref id="concrete" name="bsdf"/>
    </shape>
</scene>
"""


def test_line_of_sight_convention(tmp_path):
    """Row k is the complex gain from each BS element to user k (y_k = H[k, :] @ x), not its conjugate:
    in free space (LoS only) element n contributes lambda / (4 pi d_n) exp(-j 2 pi d_n / lambda)."""
    scene = tmp_path / "ground.xml"
    scene.write_text(_GROUND)
    fc, n = 3.5e9, 8
    ch = RayTracedChannel(
        str(scene),
        3,
        n,
        carrier_frequency=fc,
        bs_position=(0.0, 0.0, 10.0),
        max_depth=0,
        normalize=False,
        samples_per_src=1000,
        radio_map_samples=100_000,
    )
    h = ch(2, seed=0, dtype=torch.complex128).numpy()
    pos = ch.last_positions.numpy()
    lam = 299792458.0 / fc
    elements = np.stack([np.zeros(n), (np.arange(n) - (n - 1) / 2) * lam / 2, np.full(n, 10.0)], -1)
    d = np.linalg.norm(pos[..., None, :] - elements, axis=-1)  # [2, 3, n]
    ref = lam / (4 * math.pi * d) * np.exp(-2j * math.pi * d / lam)
    ratio = h / ref
    np.testing.assert_allclose(np.abs(ratio), 1.0, rtol=2e-2)  # plane-wave (synthetic array) approximation
    np.testing.assert_allclose(np.angle(ratio), 0.0, atol=5e-2)
    # the conjugated row would be far off
    assert np.abs(np.angle(h / np.conj(ref))).max() > 1.0
