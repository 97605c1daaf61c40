"""Batched torch PGA (conventional and unfolded) against the independent per-sample NumPy reference.

The reference (:mod:`beamlearn.testing.numpy_pga`) is written from the spec's equations (Theorem 1
in its per-user trace form, a loop over users, explicit inverses for the init (13)) and shares no code
with :mod:`beamlearn.hybrid.pga` (batched C-matrix form of spec s3.1, Cholesky solves). Both run in
complex128 on 10 channels of the ``unfolded-pga`` preset (N=32, K=M=4) at 0, 10 and 20 dB.

Every algorithm is compared twice (per channel: relative Frobenius errors of the final F, W and F W,
relative errors of sum rates):

1. **From a common start** (the reference started from torch's (12)-(13) point): this isolates the
   iterations, where the two differ only by rounding (different summation orders: per-user loop vs
   batched matmuls), O(eps) per step, propagated through <= 330 gradient steps. Tolerance
   ``ITER_TOL = 1e-13`` on F, W, F W and on the rates of *all* iterates. Observed (complex128, 10 dB
   unless noted): conventional PGA <= 9e-16 (precoders) and <= 3e-15 (rates) on 100 channels at each
   of 0/10/20 dB; the shipped 10 dB model <= 1.0e-14 and <= 3.5e-14 on 1024 channels (99th percentile
   1.2e-15 and 1.8e-15); so the margin is >= 3x on the worst of 1024 channels.
2. **End to end** (each from its own init). The start points differ by more than rounding: torch loads
   both Gram matrices ``H H^H`` and ``F0^H F0`` with ``10 eps tr(G)`` before its Cholesky solves (a rank
   guard), a relative perturbation of the solution of at most ``10 eps tr(G) / lambda_min(G)``, while the
   reference inverts them without loading (rounding ``~ eps cond(G)``). With ``kappa_b = sum over both G
   of tr(G) / lambda_min(G)`` (12 to 50 on this preset) the starts differ by ``<= ~10 eps kappa_b``
   (observed <= 3 eps kappa_b). The iterations propagate that difference with a gain measured by finite
   differences on the reference of <= 1.7 for conventional PGA (30 channels x 3 SNRs) and usually
   <= 4 for the learned steps (40 channels; they are 20x larger than conventional PGA's), but with a
   tail: on 1 of 1024 channels, whose trajectory dips from 15.8 to 11.5 bits at layer 5, the gain
   reaches ~40. Tolerance ``TOL_FACTOR * eps * kappa_b`` with ``TOL_FACTOR = 100`` (<= 4.7e-13 on the
   test channels) on the final F, W, F W and the final rate. Observed: conventional <= 5.3 eps kappa
   (30 channels x 3 SNRs); model <= 60 eps kappa on the final F W and <= 41 on the final rate over 1024
   channels (median 0.5), <= 1.5 on the test channels. Rates of *intermediate* layers are not checked
   end to end: on that one channel the layer-9 rate differs by 214 eps kappa (1e-12), which is
   amplification of the start difference (from a common start the same layer agrees to 3.5e-14).

``test_tolerance_detects_a_step_size_change`` checks that the tolerances are not vacuous: changing one
of the 300 conventional F step sizes by a relative 1e-6 moves F W by 1.2e-10 to 1.7e-10, 290 to 450
times the end-to-end tolerance and > 1000 times ``ITER_TOL``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from beamlearn.hybrid import pga, pga_init
from beamlearn.learned import PerSNRModels
from beamlearn.scenarios import get_scenario
from beamlearn.systems.unfolded_pga import WEIGHTS
from beamlearn.testing import conventional_pga_steps, hybrid_sum_rate_numpy, pga_init_numpy, pga_numpy_batch

C128 = torch.complex128
BATCH = 10
SEED = 2024
SNRS_DB = (0.0, 10.0, 20.0)
EPS = np.finfo(np.float64).eps
TOL_FACTOR = 100.0
ITER_TOL = 1e-13


@pytest.fixture(scope="module")
def channels() -> torch.Tensor:
    return get_scenario("unfolded-pga").channel_model()(BATCH, seed=SEED, dtype=C128)


def _power_noise(snr_db: float) -> tuple[float, float]:
    return get_scenario("unfolded-pga").power_and_noise(snr_db)


def _kappa(g: np.ndarray) -> float:
    ev = np.linalg.eigvalsh(g)
    return float(ev.sum() / ev.min())


def tolerances(hn: np.ndarray) -> np.ndarray:
    """Per-channel tolerance ``TOL_FACTOR * eps * kappa_b`` (see the module docstring)."""
    out = []
    for h in hn:
        f0 = np.exp(1j * np.angle(h.conj().T))
        out.append(TOL_FACTOR * EPS * (_kappa(h @ h.conj().T) + _kappa(f0.conj().T @ f0)))
    return np.asarray(out)


def rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample relative Frobenius error over the last two axes."""
    return np.linalg.norm(a - b, axis=(-2, -1)) / np.linalg.norm(b, axis=(-2, -1))


def assert_agree(tol, f_t, w_t, f_r, w_r, rates_t, rates_r, what: str):
    """Per-channel errors of the final F, W, F W and of the rates (``[B, ...]``) within ``tol``."""
    errs = {
        "F": rel(f_t, f_r),
        "W": rel(w_t, w_r),
        "FW": rel(f_t @ w_t, f_r @ w_r),
        "rates": np.max(np.abs(rates_t - rates_r) / np.abs(rates_r), axis=-1).reshape(-1),
    }
    tol = np.broadcast_to(tol, errs["F"].shape)
    for name, e in errs.items():
        bad = np.flatnonzero(~(e <= tol))
        assert bad.size == 0, (
            f"{what}, {name}: relative error {e[bad]} exceeds {tol[bad]} on channels {bad} (max error {np.max(e):.2e})"
        )


def check_against_reference(channels, power, noise, mu, lam, f_t, w_t, rates_t, **kw):
    """End-to-end and common-start comparisons of a torch run (final F, W; rates of every iterate
    ``[B, I+1]``) with the reference for the step sizes ``mu``, ``lam``."""
    hn = channels.numpy()
    f_t, w_t, rates_t = f_t.numpy(), w_t.numpy(), rates_t.numpy()
    # 1. from torch's start point: all iterates
    start = tuple(x.numpy() for x in pga_init(channels, power))
    f_r, w_r, rates_r = pga_numpy_batch(hn, power, noise, mu, lam, init=start, return_history=True, **kw)
    assert_agree(ITER_TOL, f_t, w_t, f_r, w_r, rates_t, rates_r, "common start")
    # 2. end to end: the final iterate
    f_r, w_r, rates_r = pga_numpy_batch(hn, power, noise, mu, lam, return_history=True, **kw)
    assert_agree(tolerances(hn), f_t, w_t, f_r, w_r, rates_t[:, -1:], rates_r[:, -1:], "end to end")
    return rates_r


def test_reference_iterates_are_feasible(channels):
    power, noise = _power_noise(10.0)
    mu, lam = conventional_pga_steps(iterations=3)
    f, w = pga_numpy_batch(channels.numpy()[:3], power, noise, mu, lam)
    np.testing.assert_allclose(np.abs(f), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(f @ w, axis=(-2, -1)) ** 2, power, rtol=1e-14)


@pytest.mark.parametrize("snr_db", SNRS_DB)
def test_init_matches_reference(channels, snr_db):
    power, noise = _power_noise(snr_db)
    hn = channels.numpy()
    f_t, w_t = (x.numpy() for x in pga_init(channels, power))
    f_r, w_r = (np.stack(x) for x in zip(*(pga_init_numpy(h, power) for h in hn), strict=True))
    r_t = np.array([[hybrid_sum_rate_numpy(h, f, w, noise)] for h, f, w in zip(hn, f_t, w_t, strict=True)])
    r_r = np.array([[hybrid_sum_rate_numpy(h, f, w, noise)] for h, f, w in zip(hn, f_r, w_r, strict=True)])
    assert_agree(tolerances(hn), f_t, w_t, f_r, w_r, r_t, r_r, "init")


@pytest.mark.parametrize("snr_db", SNRS_DB)
def test_conventional_pga_matches_reference(channels, snr_db):
    power, noise = _power_noise(snr_db)
    out, hist = pga(channels, power, noise, iterations=30, inner_steps=10, return_history=True)
    mu, lam = conventional_pga_steps(iterations=30, inner_steps=10)
    rates_r = check_against_reference(channels, power, noise, mu, lam, out.analog, out.digital, hist)
    assert np.all(rates_r[:, -1] > rates_r[:, 0])  # PGA improves on its start point


def test_projection_once_per_layer_matches_reference(channels):
    power, noise = _power_noise(10.0)
    out, hist = pga(channels, power, noise, iterations=10, inner_steps=10, inner_projection=False, return_history=True)
    mu, lam = conventional_pga_steps(iterations=10, inner_steps=10)
    check_against_reference(channels, power, noise, mu, lam, out.analog, out.digital, hist, inner_projection=False)


def test_shipped_unfolded_model_matches_reference(channels):
    model = PerSNRModels("unfolded-pga", WEIGHTS, get_scenario("unfolded-pga")).model_for(10.0)
    assert (model.layers, model.inner_steps, model.include_ln2, model.inner_projection) == (10, 10, True, True)
    power, noise = _power_noise(10.0)
    with torch.no_grad():
        rates_t, bf = model.forward_layers(channels, power, noise, return_beamformers=True)
    mu = model.mu.detach().cpu().numpy()
    lam = model.lam.detach().cpu().numpy()
    assert not np.allclose(mu, 0.01)  # really the learned steps, not conventional PGA's
    rates_r = check_against_reference(channels, power, noise, mu, lam, bf.analog, bf.digital, rates_t)
    # and the learned steps beat 30 conventional iterations on these channels (spec s6)
    _, hist_conv = pga(channels, power, noise, return_history=True)
    assert rates_r[:, -1].mean() > hist_conv[:, -1].mean().item()


def test_tolerance_detects_a_step_size_change(channels):
    power, noise = _power_noise(10.0)
    hn = channels.numpy()[:3]
    out = pga(channels[:3], power, noise)
    mu, lam = conventional_pga_steps()
    mu[15, 5] *= 1 + 1e-6
    f_r, w_r = pga_numpy_batch(hn, power, noise, mu, lam)
    err = rel(out.analog.numpy() @ out.digital.numpy(), f_r @ w_r)
    assert np.all(err > 10 * tolerances(hn)), err
    assert np.all(err > 1000 * ITER_TOL), err
