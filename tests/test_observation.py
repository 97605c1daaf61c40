"""Pilots, the LS and LMMSE estimators, and what the transmitter observes (ObservationSpec).

Every numeric check uses complex128 and is against a closed form or an oracle written here in NumPy;
statistical checks use tolerances of a few standard errors computed from the sample size.
"""

import math

import numpy as np
import pytest
import torch

from beamlearn.estimation import lmmse_estimate, ls_estimate, orthogonal_pilots
from beamlearn.evaluate import evaluate
from beamlearn.observation import PERFECT_CSI, ObservationSpec
from beamlearn.scenarios import get_scenario

C128 = torch.complex128
Z = 5.0  # standard errors allowed in the statistical checks (two-sided false-alarm rate ~6e-7 per check)


def crandn(*shape, gen, var=1.0):
    """i.i.d. CN(0, var) samples (complex128), drawn here independently of the library."""
    re = torch.randn(shape, generator=gen, dtype=torch.float64)
    im = torch.randn(shape, generator=gen, dtype=torch.float64)
    return torch.complex(re, im) * math.sqrt(var / 2)


def hermitian_toeplitz(n, rho):
    """Covariance C_ij = rho^(i-j) for i >= j, conj for i < j (Hermitian, PD for |rho| < 1)."""
    c = np.empty((n, n), dtype=np.complex128)
    for i in range(n):
        for j in range(n):
            c[i, j] = rho ** (i - j) if i >= j else np.conj(rho) ** (j - i)
    return c


def lmmse_oracle(y, x, s2, c):
    """LMMSE of each row h ~ CN(0, C) (C = E[h^H h]) from the row y = h X + w, w ~ CN(0, s2 I).

    Column form: u = h^T has E[u u^H] = conj(C), v = y^T = X^T u + w^T. The LMMSE estimate is
    u_hat = conj(C) conj(X) (X^T conj(C) conj(X) + s2 I)^{-1} v; transposing,
    h_hat = y (X^H C X + s2 I)^{-1} X^H C.
    """
    t = x.shape[1]
    a = x.conj().T @ c @ x + s2 * np.eye(t)
    return np.linalg.solve(a.T, y.swapaxes(-1, -2)).swapaxes(-1, -2) @ x.conj().T @ c


def mmse_error_cov(x, s2, c):
    """Error covariance E[e^H e] of the LMMSE row estimate: C - C X (X^H C X + s2 I)^{-1} X^H C."""
    t = x.shape[1]
    a = x.conj().T @ c @ x + s2 * np.eye(t)
    return c - c @ x @ np.linalg.solve(a, x.conj().T @ c)


# -- pilots -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,t,power", [(4, 4, 1.0), (4, 7, 2.5), (8, 16, 0.3), (5, 3, 1.7), (1, 1, 4.0)])
def test_orthogonal_pilots_power_and_orthogonality(n, t, power):
    x = orthogonal_pilots(n, t, power, dtype=C128)
    assert x.shape == (n, t) and x.dtype == C128
    col_power = (x.abs() ** 2).sum(0)
    torch.testing.assert_close(col_power, torch.full((t,), power, dtype=torch.float64), rtol=1e-12, atol=0)
    if t >= n:
        expected = (t * power / n) * torch.eye(n, dtype=C128)
        torch.testing.assert_close(x @ x.mH, expected, rtol=0, atol=1e-12 * t * power)


# -- least squares ----------------------------------------------------------------------------------


def test_ls_recovers_channel_exactly_without_noise_batched():
    gen = torch.Generator().manual_seed(1)
    n, t = 6, 9
    h = crandn(2, 3, 5, n, gen=gen)  # leading dims [2, 3], R = 5 rows
    x = orthogonal_pilots(n, t, 0.7, dtype=C128)
    est = ls_estimate(h @ x, x)
    assert est.shape == h.shape
    torch.testing.assert_close(est, h, rtol=0, atol=1e-12)
    # any full-row-rank pilots, with noise: LS is y X^+ (NumPy pseudo-inverse as the oracle)
    xr = crandn(n, t, gen=gen)
    y = h @ xr + crandn(2, 3, 5, t, gen=gen, var=0.1)
    expected = y.numpy() @ np.linalg.pinv(xr.numpy())
    np.testing.assert_allclose(ls_estimate(y, xr).resolve_conj().numpy(), expected, rtol=0, atol=1e-10)


def test_ls_refuses_short_pilots():
    x = orthogonal_pilots(8, 5, dtype=C128)
    with pytest.raises(ValueError, match="pilot_length"):
        ls_estimate(torch.zeros(3, 2, 5, dtype=C128), x)


# -- LMMSE --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,t", [(4, 6), (6, 3)])  # LMMSE works for any pilot length, also T < N
def test_lmmse_matches_numpy_oracle(n, t):
    gen = torch.Generator().manual_seed(2)
    c = hermitian_toeplitz(n, 0.8 * np.exp(0.6j))
    x = crandn(n, t, gen=gen)
    y = crandn(2, 3, 4, t, gen=gen)  # leading dims [2, 3], 4 rows each
    s2 = 0.37
    got = lmmse_estimate(y, x, s2, torch.from_numpy(c))
    np.testing.assert_allclose(got.numpy(), lmmse_oracle(y.numpy(), x.numpy(), s2, c), rtol=0, atol=1e-11)


def test_lmmse_batched_covariance_and_noise_match_oracle():
    gen = torch.Generator().manual_seed(3)
    n, t, b = 4, 5, 3
    covs = [hermitian_toeplitz(n, r) for r in (0.2, 0.9j, -0.5 + 0.3j)]
    s2 = torch.tensor([0.1, 1.0, 3.0], dtype=torch.float64)
    x = orthogonal_pilots(n, t, 1.3, dtype=C128)
    y = crandn(b, 2, t, gen=gen)
    got = lmmse_estimate(y, x, s2, torch.from_numpy(np.stack(covs)))
    for i in range(b):
        np.testing.assert_allclose(
            got[i].numpy(), lmmse_oracle(y[i].numpy(), x.numpy(), float(s2[i]), covs[i]), rtol=0, atol=1e-11
        )


def test_lmmse_mse_below_ls_and_equal_to_theory():
    """Rows h ~ CN(0, C) with a correlated complex C; y = h X + w. The LS error per row is
    s2 tr((X X^H)^{-1}) = s2 N^2 / (T p); the LMMSE error covariance is E = C - C X A^{-1} X^H C (both
    closed forms). A row's squared error ||e||^2 (e ~ CN(0, E)) is a sum of lambda_i Exp(1), variance
    sum lambda_i^2, which gives the standard error of the empirical mean over M rows."""
    gen = torch.Generator().manual_seed(4)
    n, t, p, s2, m = 4, 6, 1.0, 1.0, 40000
    c = hermitian_toeplitz(n, 0.85 * np.exp(0.4j))
    lc = np.linalg.cholesky(c)
    h = crandn(m, n, gen=gen) @ torch.from_numpy(lc.conj().T)  # E[h^H h] = L L^H = C
    x = orthogonal_pilots(n, t, p, dtype=C128)
    y = h @ x + crandn(m, t, gen=gen, var=s2)

    err_ls = ((ls_estimate(y, x) - h).abs() ** 2).sum(-1).numpy()
    err_lmmse = ((lmmse_estimate(y, x, s2, torch.from_numpy(c)) - h).abs() ** 2).sum(-1).numpy()

    ls_theory = s2 * n * n / (t * p)
    e = mmse_error_cov(x.numpy(), s2, c)
    lam = np.linalg.eigvalsh(e)
    mmse_theory = float(np.trace(e).real)
    assert mmse_theory < ls_theory  # the closed forms themselves
    assert abs(err_ls.mean() - ls_theory) <= Z * ls_theory * math.sqrt(n / m)  # n i.i.d. Exp entries per row
    assert abs(err_lmmse.mean() - mmse_theory) <= Z * math.sqrt((lam**2).sum() / m)
    assert err_lmmse.mean() <= err_ls.mean()


# -- ObservationSpec --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(kind="estimated"), "kind"),
        (dict(kind="pilots", pilot_length=8, estimator="mmse"), "estimator"),
        (dict(kind="pilots"), "pilot_length"),
        (dict(kind="pilots", pilot_length=0), "pilot_length"),
        (dict(kind="pilots", pilot_length=-3), "pilot_length"),
        (dict(kind="pilots", pilot_length=8, pilot_power=0.0), "pilot_power"),
        (dict(kind="uplink", uplink_error_var=-0.1), "uplink_error_var"),
        (dict(kind="uplink", mapping=""), "mapping"),
    ],
)
def test_observation_spec_validation_names_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ObservationSpec(**kwargs)


def test_uplink_mapping_is_checked_when_observing_and_can_be_registered_later():
    from beamlearn.observation import UPLINK_MAPPINGS, register_uplink_mapping

    spec = ObservationSpec(kind="uplink", mapping="test-conj")  # allowed: a system may register it later
    h = torch.randn(3, 2, 4, dtype=torch.complex128)
    with pytest.raises(ValueError, match="mapping must be one of"):
        spec.observe(h, 1.0, 1.0)
    register_uplink_mapping("test-conj", lambda h, g: h.conj().transpose(-1, -2), lambda u: u.transpose(-1, -2).conj())
    try:
        o = spec.observe(h, 1.0, 1.0)
        assert torch.equal(o.uplink, h.conj().transpose(-1, -2)) and torch.equal(o.channel, h)
    finally:
        UPLINK_MAPPINGS.pop("test-conj")


def test_observation_spec_wrong_types_name_parameter():
    with pytest.raises((TypeError, ValueError), match="pilot_length"):
        ObservationSpec("pilots", pilot_length=2.5)
    with pytest.raises((TypeError, ValueError), match="uplink_error_var"):
        ObservationSpec("uplink", uplink_error_var="big")


def test_perfect_csi_returns_true_channel_object():
    h = crandn(3, 2, 4, gen=torch.Generator().manual_seed(5))
    for spec in (PERFECT_CSI, ObservationSpec()):
        obs = spec.observe(h, 1.0, 1.0)
        assert obs.kind == "perfect" and obs.channel is h


def test_uplink_reciprocal_exact():
    h = crandn(5, 3, 4, gen=torch.Generator().manual_seed(6))
    obs = ObservationSpec("uplink").observe(h, 1.0, 1.0, torch.Generator().manual_seed(0))
    assert obs.uplink.shape == (5, 4, 3)
    assert torch.equal(obs.uplink, h.transpose(-1, -2))
    assert torch.equal(obs.channel, h)
    # multi-antenna users: the downlink view of the exact uplink is the true channel
    hm = crandn(2, 3, 2, 4, gen=torch.Generator().manual_seed(7))
    assert torch.equal(ObservationSpec("uplink").observe(hm, 1.0, 1.0).channel, hm)


def test_uplink_error_variance():
    """Error entries are i.i.d. CN(0, v): |e|^2 ~ v Exp(1), so the mean over M entries has standard
    error v / sqrt(M); the pseudo-variance E[e^2] is 0 (circular), standard error v / sqrt(M) too."""
    v = 0.3
    h = crandn(400, 4, 8, gen=torch.Generator().manual_seed(8))
    obs = ObservationSpec("uplink", uplink_error_var=v).observe(h, 1.0, 1.0, torch.Generator().manual_seed(1))
    e = obs.channel - h
    torch.testing.assert_close(obs.uplink - h.transpose(-1, -2), e.transpose(-1, -2), rtol=0, atol=0)
    m = e.numel()
    assert abs(float((e.abs() ** 2).mean()) - v) <= Z * v / math.sqrt(m)
    assert abs(complex((e**2).mean())) <= Z * v / math.sqrt(m)


@pytest.mark.parametrize("pilot_power,data_power", [(2.0, 1.0), (None, 4.0)])
def test_pilots_ls_error_variance(pilot_power, data_power):
    """Model (estimation.pilots docstring): Y = H X + W, ||X[:, t]||^2 = p, so X X^H = (T p / N) I and the
    LS error W X^H (X X^H)^{-1} has row covariance s2 (X X^H)^{-1} = (s2 N / (T p)) I: i.i.d. entries of
    variance s2 N / (T p). ``pilot_power=None`` means p = the data power P."""
    b, k, n, t, s2 = 400, 4, 8, 12, 0.5
    p = pilot_power if pilot_power is not None else data_power
    v = s2 * n / (t * p)
    h = crandn(b, k, n, gen=torch.Generator().manual_seed(9))
    spec = ObservationSpec("pilots", pilot_length=t, pilot_power=pilot_power, estimator="ls")
    obs = spec.observe(h, data_power, s2, torch.Generator().manual_seed(2))
    assert obs.kind == "pilots" and obs.pilots.shape == (n, t) and obs.received.shape == (b, k, t)
    torch.testing.assert_close((obs.pilots.abs() ** 2).sum(0), torch.full((t,), p, dtype=torch.float64))
    e = (obs.channel - h).reshape(-1, n)
    rows = e.shape[0]
    # mean squared error per entry: standard error v / sqrt(entries)
    assert abs(float((e.abs() ** 2).mean()) - v) <= Z * v / math.sqrt(e.numel())
    # the error covariance across antennas is v I: each entry of the sample covariance of the error
    # rows has standard error v / sqrt(rows)
    cov = (e.mH @ e / rows).numpy()
    assert np.abs(cov - v * np.eye(n)).max() <= Z * v / math.sqrt(rows)
    # the noise is the only source of error: the received signal is H X + W with W of variance s2
    w = obs.received - h @ obs.pilots
    assert abs(float((w.abs() ** 2).mean()) - s2) <= Z * s2 / math.sqrt(w.numel())


def test_pilots_lmmse_observation_uses_sample_covariance():
    b, k, n, t, s2 = 50, 3, 4, 2, 0.8  # T < N: only LMMSE can estimate
    gen = torch.Generator().manual_seed(10)
    h = crandn(b, k, n, gen=gen)
    obs = ObservationSpec("pilots", pilot_length=t, estimator="lmmse").observe(h, 2.0, s2, gen)
    rows = h.reshape(-1, n).numpy()
    c = rows.conj().T @ rows / rows.shape[0]
    np.testing.assert_allclose(obs.covariance.numpy(), c, rtol=0, atol=1e-12)
    expected = lmmse_oracle(obs.received.numpy(), obs.pilots.numpy(), s2, c)
    np.testing.assert_allclose(obs.channel.numpy(), expected, rtol=0, atol=1e-11)
    with pytest.raises(ValueError, match="pilot_length"):
        ObservationSpec("pilots", pilot_length=t, estimator="ls").observe(h, 2.0, s2, gen)


# -- through the experiment runner ------------------------------------------------------------------


def test_evaluate_with_pilot_estimates_loses_rate_and_gap_shrinks_with_pilot_power():
    sc = get_scenario("rayleigh")  # N=16, K=4, sigma^2=1: P = 10^(SNR/10)
    b, t = 200, sc.num_bs_antennas

    def rates(observation):
        rows = evaluate(
            sc.replace(observation=observation),
            "zf",
            [0, 20],
            num_channels=b,
            seed=0,
            dtype="complex128",
            progress=False,
        )
        return {r["snr_db"]: r["sum_rate_mean"] for r in rows}

    perfect = rates(PERFECT_CSI)
    # independent closed form under perfect CSI on the same channels: K log2(1 + P / (sigma^2 ||H^+||_F^2))
    h = sc.channel_model()(b, seed=0, dtype=C128).numpy()
    pinv_f2 = (np.abs(np.linalg.pinv(h)) ** 2).sum((-2, -1))
    for snr in (0.0, 20.0):
        p = 10 ** (snr / 10)
        assert perfect[snr] == pytest.approx(float(np.mean(sc.num_users * np.log2(1 + p / pinv_f2))), rel=1e-9)

    est = {
        pp: rates(ObservationSpec("pilots", pilot_length=t, pilot_power=pp, estimator="ls"))
        for pp in (None, 1.0, 10.0, 100.0)
    }
    # the default pilot power is the data power P: 1 at 0 dB, 100 at 20 dB (same seeds, same numbers)
    assert est[None][0.0] == est[1.0][0.0] and est[None][20.0] == est[100.0][20.0]
    for snr in (0.0, 20.0):
        gaps = [perfect[snr] - est[pp][snr] for pp in (1.0, 10.0, 100.0)]
        assert gaps[0] > gaps[1] > gaps[2] > 0, (snr, gaps)
    # at 0 dB with pilot power P the estimation error (variance s2 N / (T p) = 1) costs a large share
    assert est[None][0.0] < 0.8 * perfect[0.0]


def test_sounder_gives_noisy_measurements_within_the_pilot_budget():
    spec = ObservationSpec("pilots", pilot_length=6, estimator="lmmse")
    h = torch.randn(2, 3, 4, 8, dtype=torch.complex128)  # MIMO users: K=3, Nr=4, N=8
    o = spec.observe(h, 1.0, 1e-30, torch.Generator().manual_seed(0))
    x = torch.randn(8, 4, dtype=torch.complex128)
    c = torch.randn(2, 3, 4, 2, dtype=torch.complex128)
    y = o.sound(x, c)  # essentially noise-free: C^H H X
    assert torch.allclose(y, c.mH @ (h @ x), atol=1e-12)
    assert o.sound(x[:, :2]).shape == (2, 3, 4, 2) and o.sound.used == 6
    with pytest.raises(ValueError, match="pilot budget exceeded"):
        o.sound(x[:, :1])


def test_scenario_refuses_ls_with_too_few_pilots():
    from beamlearn.scenarios import get_scenario

    sc = get_scenario("rayleigh")  # N = 16
    with pytest.raises(ValueError, match="pilot_length >= N=16"):
        sc.replace(observation=ObservationSpec("pilots", pilot_length=8, estimator="ls"))
    sc.replace(observation=ObservationSpec("pilots", pilot_length=8, estimator="lmmse"))
