"""Batched torch baselines against the independent per-sample NumPy reference (complex128).

The reference (:mod:`beamlearn.testing.numpy_baselines`) is written from the textbook equations in
antenna space (N x N), finds the WMMSE multiplier by bisection on the eigendecomposition to a relative
1e-14, and shares no code with the torch implementation (which works in user space, K x K, with a
fixed number of Newton or bisection steps). Both are started from the same initial precoder.

Tolerances, and why (measured on these channels, 20 samples each, 30 sweeps, at 0/10/20 dB):

* ZF: relative error <= 100 eps cond(H H^H) per sample. The two differ only by rounding in two
  different solves of the K x K Gram system (explicit inverse vs Cholesky with 10 eps tr loading),
  whose error scales with its condition number. Observed 1.2e-14 at cond ~ 7, i.e. <= 0.1 x tolerance.
* WMMSE, Newton search (default, 12 steps): Newton on the secular function reaches the multiplier to
  machine precision, so what remains is rounding, amplified by 30 sweeps (observed <= 7e-14), plus one
  deliberate offset: where mu = 0 is feasible, torch evaluates the update at mu_lo = 1e-12 mu_hi rather
  than at 0, a relative perturbation of about 1e-12 mu_hi max_k(e_k) / lambda_min(G G^H) per sweep
  (observed up to 3e-11 on square 8 x 8 Rayleigh channels at 20 dB, ~1e-12 here). Tolerance 1e-9 on
  precoders, 1e-12 on sum rates (observed <= 6e-16).
* WMMSE, bisection search (32 geometric steps over a bracket spanning a factor 1e12): torch knows the
  multiplier only to a relative delta = ln(1e12) / 2^32 = 6.4e-9 per sweep; the precoder direction
  moves by at most about delta per sweep, and errors along per-user phase rotations (a neutral
  direction of the WMMSE map, which neither grows nor damps them) accumulate at most linearly, so the
  tolerance is iterations * delta = 1.9e-7 (observed <= 1.7e-9, about delta / 4). Rates are invariant to
  those phase rotations and agree far better than the precoders: tolerance 1e-8 (observed <= 4e-11).

``test_tolerance_detects_an_inexact_multiplier`` checks that these tolerances do reject a WMMSE whose
multiplier search is too coarse: with 12 bisection steps the error is 1e-3, and even 24 steps
(2.7e-7) exceed the bisection tolerance.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from beamlearn.channels import RayleighChannel
from beamlearn.metrics import sum_rate
from beamlearn.precoding import rzf_precoder, wmmse, zf_precoder
from beamlearn.scenarios import get_scenario
from beamlearn.testing import rzf_numpy, sum_rate_numpy, wmmse_numpy, wmmse_numpy_batch, zf_numpy, zf_numpy_batch

C128 = torch.complex128
BATCH = 20
ITERS = 30
SNRS_DB = (0.0, 10.0, 20.0)
CHANNELS = ("unfolded-pga", "rayleigh-16x4")

EPS = np.finfo(np.float64).eps
NEWTON_PREC_TOL = 1e-9
NEWTON_RATE_TOL = 1e-12
BISECTION_DELTA = math.log(1e12) / 2**32  # relative resolution of torch's 32-step geometric bisection
BISECTION_PREC_TOL = ITERS * BISECTION_DELTA  # 1.9e-7
BISECTION_RATE_TOL = 1e-8


@functools.cache
def _channels(name: str, seed: int = 7) -> torch.Tensor:
    if name == "unfolded-pga":
        return get_scenario("unfolded-pga").channel_model()(BATCH, seed=seed, dtype=C128)  # N=32, K=4
    if name == "rayleigh-16x4":
        return RayleighChannel(num_users=4, num_bs_antennas=16)(BATCH, seed=seed, dtype=C128)
    raise ValueError(name)


def _power(snr_db: float) -> float:
    return 10 ** (snr_db / 10)  # noise_var = 1


def _rel_err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample relative Frobenius error ``||a - b|| / ||b||`` over the last two axes."""
    return np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))


@functools.cache
def _reference(name: str, snr_db: float):
    """Initial precoders (NumPy RZF), the NumPy WMMSE result and its per-sample info."""
    hn = _channels(name).numpy()
    p = _power(snr_db)
    x0 = np.stack([rzf_numpy(hn[b], p, 1.0) for b in range(BATCH)])
    x, info = wmmse_numpy_batch(hn, p, 1.0, ITERS, init=x0, return_info=True)
    return x0, x, info


def _rates_numpy(hn: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.array([sum_rate_numpy(hn[b], x[b], 1.0) for b in range(hn.shape[0])])


# ------------------------------------------------------------------------------------------------
# the reference on its own (so that agreement with it means something)
# ------------------------------------------------------------------------------------------------


def test_reference_zf_is_zero_forcing_with_closed_form_rate():
    hn = _channels("unfolded-pga").numpy()
    p = 10.0
    for b in range(4):
        x = zf_numpy(hn[b], p)
        g = hn[b] @ x
        off = g - np.diag(np.diag(g))
        assert np.abs(off).max() <= 1e-12 * np.abs(np.diag(g)).min()
        assert np.sum(np.abs(x) ** 2) == pytest.approx(p, rel=1e-13)
        k = hn.shape[1]
        closed = k * math.log2(1 + p / np.sum(np.abs(np.linalg.pinv(hn[b])) ** 2))
        assert sum_rate_numpy(hn[b], x, 1.0) == pytest.approx(closed, rel=1e-12)


def test_reference_sum_rate_matches_torch_sum_rate_on_arbitrary_precoders():
    h = _channels("rayleigh-16x4")
    g = torch.Generator().manual_seed(3)
    x = torch.complex(
        torch.randn(BATCH, 16, 4, generator=g, dtype=torch.float64),
        torch.randn(BATCH, 16, 4, generator=g, dtype=torch.float64),
    )
    ref = np.array([sum_rate_numpy(h.numpy()[b], x.numpy()[b], 0.5) for b in range(BATCH)])
    np.testing.assert_allclose(sum_rate(h, x, 0.5).numpy(), ref, rtol=1e-13)


@pytest.mark.parametrize("snr_db", SNRS_DB)
def test_reference_wmmse_is_monotone_and_uses_full_power(snr_db):
    hn = _channels("unfolded-pga").numpy()
    p = _power(snr_db)
    _, x, info = _reference("unfolded-pga", snr_db)
    for b in range(BATCH):
        r = info[b]["rate"]
        assert np.all(np.diff(r) >= -1e-12 * r[-1])  # WMMSE never decreases the sum rate
        assert r[-1] > sum_rate_numpy(hn[b], zf_numpy(hn[b], p), 1.0) - 1e-9  # at least as good as ZF here
        if info[b]["mu"][-1] > 0:
            assert np.sum(np.abs(x[b]) ** 2) == pytest.approx(p, rel=1e-12)
        else:
            assert np.sum(np.abs(x[b]) ** 2) <= p * (1 + 1e-12)


# ------------------------------------------------------------------------------------------------
# ZF
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHANNELS)
@pytest.mark.parametrize("snr_db", SNRS_DB)
def test_zf_matches_reference(name, snr_db):
    h = _channels(name)
    hn = h.numpy()
    p = _power(snr_db)
    ref = zf_numpy_batch(hn, p)
    out = zf_precoder(h, p).numpy()
    cond = np.linalg.cond(hn @ hn.conj().transpose(0, 2, 1))
    err = _rel_err(out, ref)
    assert np.all(err <= 100 * EPS * cond), (err.max(), cond.max())
    np.testing.assert_allclose(sum_rate(h, torch.from_numpy(out), 1.0).numpy(), _rates_numpy(hn, ref), rtol=1e-12)


def test_rzf_init_matches_reference():
    h = _channels("unfolded-pga")
    hn = h.numpy()
    for snr_db in SNRS_DB:
        p = _power(snr_db)
        ref = np.stack([rzf_numpy(hn[b], p, 1.0) for b in range(BATCH)])
        assert _rel_err(rzf_precoder(h, p, 1.0).numpy(), ref).max() <= 1e-12


# ------------------------------------------------------------------------------------------------
# WMMSE
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHANNELS)
@pytest.mark.parametrize("snr_db", SNRS_DB)
@pytest.mark.parametrize("mu_search", ["newton", "bisection"])
def test_wmmse_matches_reference(name, snr_db, mu_search):
    h = _channels(name)
    hn = h.numpy()
    p = _power(snr_db)
    x0, ref, _ = _reference(name, snr_db)
    out = wmmse(h, p, 1.0, iterations=ITERS, init=torch.from_numpy(x0), mu_search=mu_search).precoder
    assert out.dtype == C128
    prec_tol, rate_tol = (
        (NEWTON_PREC_TOL, NEWTON_RATE_TOL) if mu_search == "newton" else (BISECTION_PREC_TOL, BISECTION_RATE_TOL)
    )
    err = _rel_err(out.numpy(), ref)
    assert err.max() <= prec_tol, f"max relative precoder error {err.max():.3e} (sample {err.argmax()})"
    rates_ref = _rates_numpy(hn, ref)
    rates = sum_rate(h, out, 1.0).numpy()
    np.testing.assert_allclose(rates, rates_ref, rtol=rate_tol)


@pytest.mark.parametrize("name", CHANNELS)
def test_wmmse_named_rzf_init_matches_reference(name):
    h = _channels(name)
    hn = h.numpy()
    p = _power(10.0)
    ref = wmmse_numpy_batch(hn, p, 1.0, ITERS, init="rzf")
    out = wmmse(h, p, 1.0, iterations=ITERS, init="rzf").precoder.numpy()
    assert _rel_err(out, ref).max() <= NEWTON_PREC_TOL


@pytest.mark.parametrize("mu_search", ["newton", "bisection"])
def test_wmmse_matches_reference_through_the_mu_zero_branch(mu_search):
    # A low-power ZF start (each user received at unit SNR) makes mu = 0 feasible in the first sweeps;
    # at 10 dB the power budget becomes active later, so both branches are exercised in one run.
    h = _channels("rayleigh-16x4")
    hn = h.numpy()
    p = _power(10.0)
    x0 = np.stack([zf_numpy(hn[b], 1.0) * math.sqrt(np.sum(np.abs(np.linalg.pinv(hn[b])) ** 2)) for b in range(BATCH)])
    ref, info = wmmse_numpy_batch(hn, p, 1.0, ITERS, init=x0, return_info=True)
    mus = np.stack([i["mu"] for i in info])
    assert (mus == 0).any() and (mus > 0).any()
    out = wmmse(h, p, 1.0, iterations=ITERS, init=torch.from_numpy(x0), mu_search=mu_search).precoder.numpy()
    tol = NEWTON_PREC_TOL if mu_search == "newton" else BISECTION_PREC_TOL
    assert _rel_err(out, ref).max() <= tol


def test_tolerance_detects_an_inexact_multiplier():
    # 12 geometric bisection steps leave mu uncertain to ln(1e12)/2^12 = 0.7%: the tests above must see it.
    name, snr_db = "unfolded-pga", 10.0
    h = _channels(name)
    x0, ref, _ = _reference(name, snr_db)
    out = wmmse(
        h, _power(snr_db), 1.0, iterations=ITERS, init=torch.from_numpy(x0), mu_search="bisection", mu_steps=12
    ).precoder.numpy()
    assert _rel_err(out, ref).max() > BISECTION_PREC_TOL


def test_wmmse_reference_single_sample_api():
    hn = _channels("unfolded-pga").numpy()[0]
    x = wmmse_numpy(hn, 10.0, 1.0, iterations=5)
    assert x.shape == (32, 4) and x.dtype == np.complex128
    with pytest.raises(ValueError):
        wmmse_numpy(hn, 10.0, 1.0, iterations=5, init=np.zeros((4, 32)))
    with pytest.raises(ValueError):
        wmmse_numpy(hn, 10.0, 1.0, iterations=5, init="random")
