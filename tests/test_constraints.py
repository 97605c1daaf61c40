import math

import pytest
import torch

from beamlearn.constraints import (
    hybrid_precoder,
    normalize_hybrid_power,
    normalize_power,
    precoder_power,
    project_unit_modulus,
    quantize_phase,
)


def _rand(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(
        torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)
    )


def test_unit_modulus_projection_is_closest_and_handles_zeros():
    f = _rand((3, 16, 4))
    f[0, 0, 0] = 0
    p = project_unit_modulus(f)
    assert torch.allclose(p.abs(), torch.ones_like(p.real), atol=1e-15)
    assert p[0, 0, 0] == 1
    # phases preserved
    nz = f.abs() > 0
    assert torch.allclose(torch.angle(p[nz]), torch.angle(f[nz]))
    # closest point on the circle: any other unit-modulus candidate is no closer
    other = torch.exp(1j * (torch.angle(f) + 0.3))
    assert ((f - p).abs() <= (f - other).abs() + 1e-15).all()
    q = project_unit_modulus(f, modulus=1 / math.sqrt(16))
    assert torch.allclose(q.abs(), torch.full_like(q.real, 0.25))


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_phase_quantisation_levels_and_nearest(bits):
    f = _rand((2000,), bits)
    q = quantize_phase(f, bits)
    assert torch.allclose(q.abs(), torch.ones_like(q.real))
    levels = torch.exp(2j * math.pi * torch.arange(2**bits, dtype=torch.float64) / 2**bits)
    d = (q[:, None] - levels[None, :]).abs().min(-1).values
    assert d.max() < 1e-12  # every output is a level
    # nearest level in angle: the quantisation error is at most half a step
    err = torch.angle(q * f.conj())
    assert err.abs().max() <= math.pi / 2**bits + 1e-12


def test_one_bit_alphabet_is_plus_minus_one():
    q = quantize_phase(_rand((500,), 9), 1, modulus=0.5)
    assert torch.allclose(q.imag, torch.zeros_like(q.imag), atol=1e-15)
    assert set(torch.round(q.real, decimals=12).tolist()) <= {0.5, -0.5}


def test_power_normalisations():
    x = _rand((4, 8, 3))
    p = torch.tensor([1.0, 2.0, 3.0, 10.0], dtype=torch.float64)
    y = normalize_power(x, p)
    assert torch.allclose(precoder_power(y), p, rtol=1e-14)
    z = normalize_power(x, 6.0, per_stream=True)
    assert torch.allclose(z.abs().square().sum(-2), torch.full((4, 3), 2.0, dtype=torch.float64))
    assert torch.equal(
        normalize_power(torch.zeros(8, 3, dtype=torch.complex128), 1.0), torch.zeros(8, 3, dtype=torch.complex128)
    )


def test_hybrid_normalisation():
    f = project_unit_modulus(_rand((5, 32, 4), 1))
    w = _rand((5, 4, 4), 2)
    w2 = normalize_hybrid_power(f, w, 10.0)
    assert torch.allclose(precoder_power(hybrid_precoder(f, w2)), torch.full((5,), 10.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="N_RF"):
        hybrid_precoder(f, _rand((5, 3, 4)))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_power_is_refused(bad):
    with pytest.raises(ValueError, match="power"):
        normalize_power(_rand((8, 2)), bad)


def test_bad_bits():
    with pytest.raises(ValueError, match="bits"):
        quantize_phase(_rand((3,)), 0)
