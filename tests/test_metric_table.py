"""The table of named metrics and the conditional (analytic) SER.

Oracles: a NumPy computation of the SER given the symbol vector, written here from the detection
model (decision regions of the square QAM grid, Gaussian noise, no approximation of the
interference), exhaustive enumeration of the QPSK symbol vectors, the AWGN closed form for
interference-free streams, and binomial confidence intervals for Monte Carlo detection.
"""

import csv
import itertools
import math
import re

import numpy as np
import pytest
import torch
from scipy.special import ndtr
from typer.testing import CliRunner

import beamlearn.experiment as experiment
from beamlearn.cli import app
from beamlearn.evaluate import evaluate
from beamlearn.interface import Beamformers
from beamlearn.metrics import (
    METRICS,
    Metric,
    get_metric,
    register_metric,
    ser_awgn,
    ser_conditional,
    ser_monte_carlo,
    ser_qpsk_exact,
    sum_rate,
)
from beamlearn.precoding import zf_precoder
from beamlearn.scenarios import get_scenario

C128 = torch.complex128
Z = 5.0  # standard errors allowed per statistical check (two-sided false-alarm rate ~6e-7)


def crandn(*shape, gen, var=1.0):
    re_ = torch.randn(shape, generator=gen, dtype=torch.float64)
    im_ = torch.randn(shape, generator=gen, dtype=torch.float64)
    return torch.complex(re_, im_) * math.sqrt(var / 2)


def unit_power(x, power=1.0):
    return x * math.sqrt(power) / torch.linalg.norm(x, dim=(-2, -1), keepdim=True)


def levels(m):
    """Unit-energy square M-QAM per-dimension levels and half their spacing."""
    r = math.isqrt(m)
    delta = 1 / math.sqrt(2 * (m - 1) / 3)
    return (2 * np.arange(r) - r + 1) * delta, delta


def effective_gains(h, x, c):
    """NumPy: h [B, K, Nr, N], x [B, N, K*Ns], c [B, K, Nr, Ns] -> G [B, K, Ns, D] = c_kl^H H_k X, ||c_kl||^2."""
    g = np.einsum("bkrl,bkrn,bnd->bkld", c.conj(), h, x)
    return g, (np.abs(c) ** 2).sum(-2)


def conditional_ser_oracle(g, cn, s2, s, m):
    """SER of every stream given the symbol vectors s [..., V, D]: stream (k, l)'s equalised sample is
    s_kl + d + n with d = sum_{ij != kl} (g_ij / g_kl) s_ij, n ~ CN(0, s2 ||c||^2 / |g_kl|^2); a
    dimension is correct when level + offset + noise falls in the level's decision interval.
    g [B, K, Ns, D], cn [B, K, Ns], s [B, V, D] -> [B, K, Ns, V]."""
    b, k, ns, d = g.shape
    own = g.reshape(b, k * ns, d)[:, np.arange(k * ns), np.arange(k * ns)].reshape(b, k, ns)
    z = np.einsum("bkld,bvd->bklv", g / own[..., None], s)
    sent = s.reshape(b, -1, k, ns).transpose(0, 2, 3, 1)  # [B, K, Ns, V]
    sd = (np.sqrt(s2 * cn / 2) / np.abs(own))[..., None]
    lv, delta = levels(m)

    def p_correct(level, value):
        lo = np.where(np.isclose(level, lv[0]), -np.inf, level - delta)
        hi = np.where(np.isclose(level, lv[-1]), np.inf, level + delta)
        return ndtr((hi - value) / sd) - ndtr((lo - value) / sd)

    return 1 - p_correct(sent.real, z.real) * p_correct(sent.imag, z.imag)


def qpsk_points():
    lv, _ = levels(4)
    return np.array([a + 1j * b for a in lv for b in lv])


def mimo_case(seed, b=4, k=2, nr=3, n=6, ns=2, power=1.0, leak=0.15):
    """Multi-antenna users with some inter-stream interference: combiners are each user's top Ns left
    singular vectors, the precoder zero-forces the effective streams c_kl^H H_k plus a random part."""
    gen = torch.Generator().manual_seed(seed)
    h = crandn(b, k, nr, n, gen=gen)
    c = torch.linalg.svd(h).U[..., :ns]  # [B, K, Nr, Ns]
    eff = (c.mH @ h).flatten(-3, -2)  # [B, K*Ns, N]
    x = torch.linalg.pinv(eff)
    x = unit_power(unit_power(x) + leak * unit_power(crandn(b, n, k * ns, gen=gen)), power)
    return h, x, c


# -- ser_conditional ---------------------------------------------------------------------------------


def test_qpsk_enumeration_oracle_equals_ser_qpsk_exact():
    """Averaging the oracle over all 4^D symbol vectors is the exact QPSK SER."""
    h, x, c = mimo_case(0)
    s2 = 0.3
    g, cn = effective_gains(h.numpy(), x.numpy(), c.numpy())
    d = g.shape[-1]
    allv = qpsk_points()[np.array(list(itertools.product(range(4), repeat=d)))]  # [4^D, D]
    per = conditional_ser_oracle(g, cn, s2, np.broadcast_to(allv, (g.shape[0], *allv.shape)), 4)
    exact = ser_qpsk_exact(h, x, s2, combiner=c)
    np.testing.assert_allclose(per.mean(-1), exact.numpy(), rtol=1e-10, atol=1e-14)
    assert 0.01 < float(exact.mean()) < 0.5  # a regime where interference and noise both matter


@pytest.mark.parametrize("mimo", [False, True])
def test_ser_conditional_qpsk_matches_exact_within_sampling_error(mimo):
    """ser_conditional averages V i.i.d. per-vector SERs; their exact spread sigma_v over the uniform
    vectors is known from the enumeration, so each stream's estimate lies within Z sigma_v / sqrt(V)
    of the exact value."""
    s2, v = 0.3, 4000
    if mimo:
        h, x, c = mimo_case(1)
        hn, xn, cnp = h.numpy(), x.numpy(), c.numpy()
    else:
        gen = torch.Generator().manual_seed(2)
        h = crandn(5, 3, 4, gen=gen)
        x = unit_power(crandn(5, 4, 3, gen=gen))
        c = None
        hn, xn, cnp = h.numpy()[:, :, None, :], x.numpy(), np.ones((5, 3, 1, 1), dtype=np.complex128)
    g, cn = effective_gains(hn, xn, cnp)
    d = g.shape[-1]
    allv = qpsk_points()[np.array(list(itertools.product(range(4), repeat=d)))]
    per = conditional_ser_oracle(g, cn, s2, np.broadcast_to(allv, (g.shape[0], *allv.shape)), 4)
    exact, sigma_v = per.mean(-1), per.std(-1)
    np.testing.assert_allclose(exact, ser_qpsk_exact(h, x, s2, combiner=c).numpy(), rtol=1e-10, atol=1e-14)
    est = ser_conditional(h, x, s2, "qpsk", combiner=c, num_vectors=v, generator=torch.Generator().manual_seed(3))
    assert est.shape == exact.shape
    assert (sigma_v > 0).all()  # interference makes the conditional SER depend on the symbols
    assert np.all(np.abs(est.numpy() - exact) <= Z * sigma_v / math.sqrt(v) + 1e-12)


def test_ser_conditional_16qam_matches_monte_carlo():
    """Per stream: the Monte Carlo estimate is a mean of T Bernoulli(p) trials (variance p(1-p)/T); the
    conditional estimate a mean of V per-vector SERs in [0, 1] with mean p (variance <= p(1-p)/V).
    Streams of one channel share symbols, so the pooled check averages per channel (its standard
    deviation is at most the mean of the streams') and uses the independence across channels."""
    gen = torch.Generator().manual_seed(4)
    b, k, n, s2, t, v = 24, 3, 6, 0.02, 20000, 2000
    h = crandn(b, k, n, gen=gen)
    x = unit_power(crandn(b, n, k, gen=gen) * 0.3 + h.mH)  # MRT-like with interference
    cond = ser_conditional(h, x, s2, "16qam", num_vectors=v, generator=torch.Generator().manual_seed(5))
    mc = ser_monte_carlo(h, x, s2, "16qam", num_symbols=t, generator=torch.Generator().manual_seed(6))
    p = cond.squeeze(-1).numpy().clip(1e-6, 1 - 1e-6)
    diff = (cond - mc).squeeze(-1).numpy()
    sd = np.sqrt(p * (1 - p) * (1 / t + 1 / v))
    assert 0.02 < p.mean() < 0.6
    assert np.all(np.abs(diff) <= Z * sd)
    per_channel_sd = sd.mean(-1)
    assert abs(diff.mean()) <= Z * math.sqrt((per_channel_sd**2).sum()) / b


def orthogonal_users(n, k):
    """Two channels [2, K, N] with rows a_k u_k^H (orthonormal u_k) and their sum_j a_j^-2 [2]: under
    total-power ZF every user's gain is sqrt(P / sum_j a_j^-2) and there is no interference."""
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    a = np.array([[0.5, 1.0, 1.7, 2.2], [1.0, 1.0, 1.0, 1.0]])[:, :k]
    return torch.from_numpy(a[:, :, None] * q.conj().T[None, :k, :]), (1 / a**2).sum(-1)


def test_interference_free_qpsk_equals_awgn_closed_form():
    """Orthogonal users with total-power ZF: SNR = P / (sigma^2 sum_j a_j^-2) for every user, and for
    QPSK the conditional SER does not depend on the symbols (each dimension has one error direction),
    so it is ser_awgn(SNR) exactly for any number of vectors."""
    n, k, power, s2 = 6, 4, 2.0, 0.3
    h, inv2 = orthogonal_users(n, k)
    x = zf_precoder(h, power)
    snr = power / (s2 * inv2)  # [2]
    expected = np.repeat(ser_awgn(torch.from_numpy(snr), "qpsk").numpy()[:, None, None], k, axis=1)
    got = ser_conditional(h, x, s2, "qpsk", num_vectors=7, generator=torch.Generator().manual_seed(9))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=0)
    np.testing.assert_allclose(ser_qpsk_exact(h, x, s2).numpy(), expected, rtol=1e-10, atol=0)
    np.testing.assert_allclose(
        get_metric("ser")(h, Beamformers(precoder=x), power, s2).numpy(), expected[:, :, 0].mean(-1), rtol=1e-10, atol=0
    )


def test_interference_free_16qam_is_awgn_on_average():
    """Without interference a 16-QAM symbol's error probability still depends on the symbol: per
    dimension an outer level (probability 1/2) is correct with 1 - q, an inner one with 1 - 2q,
    q = Q(delta / sd). The per-vector SER 1 - Pc_re Pc_im therefore takes three values with
    probabilities 1/4, 1/2, 1/4; their mean is ser_awgn and their spread sigma_v bounds the sampling
    error of the average over V vectors."""
    n, k, power, s2, v = 6, 4, 2.0, 0.02, 4000
    h, inv2 = orthogonal_users(n, k)
    x = zf_precoder(h, power)
    snr = power / (s2 * inv2)
    _, delta = levels(16)
    q = 0.5 * np.array([math.erfc(delta * math.sqrt(s)) for s in snr])  # Q(delta / sd), sd = 1 / sqrt(2 snr)
    pc_out, pc_in = 1 - q, 1 - 2 * q
    vals = np.stack([1 - pc_out**2, 1 - pc_out * pc_in, 1 - pc_in**2])  # [3, B]
    probs = np.array([0.25, 0.5, 0.25])[:, None]
    mean = (probs * vals).sum(0)
    sigma_v = np.sqrt((probs * (vals - mean) ** 2).sum(0))
    np.testing.assert_allclose(mean, ser_awgn(torch.from_numpy(snr), "16qam").numpy(), rtol=1e-12)
    got = ser_conditional(h, x, s2, "16qam", num_vectors=v, generator=torch.Generator().manual_seed(9))
    assert np.all(np.abs(got[..., 0].numpy() - mean[:, None]) <= Z * sigma_v[:, None] / math.sqrt(v))
    # a single vector gives one of the three values exactly
    one = ser_conditional(h, x, s2, "16qam", num_vectors=1, generator=torch.Generator().manual_seed(10))
    assert np.all(np.min(np.abs(one[..., 0].numpy()[None] - vals[:, :, None]), axis=0) < 1e-12)


@pytest.mark.parametrize("name", ["ser", "ser_mc", "ser_16qam", "ser_16qam_mc", "sum_rate", "sum_rate_logdet"])
def test_mimo_users_run_through_metrics(name):
    h, x, c = mimo_case(10, b=3, k=2, nr=3, n=6, ns=2, power=4.0)
    for bf in (Beamformers(precoder=x, combiner=c), Beamformers(precoder=x)):  # given / MMSE combiners
        val = get_metric(name)(h, bf, 4.0, 0.5, torch.Generator().manual_seed(0))
        assert val.shape == (3,) and val.dtype == torch.float64 and torch.isfinite(val).all()
        if name.startswith("ser"):
            assert ((val >= 0) & (val <= 1)).all()
        else:
            assert (val > 0).all()


def test_ser_metric_mimo_without_combiner_when_streams_equal_rx_antennas():
    # regression: MIMO was once told from the shapes by K*Ns != Nr, which fails when K*Ns == Nr
    h, x, _ = mimo_case(11, b=3, k=2, nr=4, n=8, ns=2)  # K*Ns = 4 = Nr
    val = get_metric("ser")(h, Beamformers(precoder=x), 1.0, 0.1, torch.Generator().manual_seed(0))
    assert val.shape == (3,) and ((val >= 0) & (val <= 1)).all()


# -- the metric table --------------------------------------------------------------------------------


@pytest.fixture
def restore_metrics():
    saved = dict(METRICS)
    yield
    METRICS.clear()
    METRICS.update(saved)


def test_get_metric_names_allowed_metrics():
    with pytest.raises(ValueError) as err:
        get_metric("bit_error_rate")
    msg = str(err.value)
    assert "bit_error_rate" in msg
    for name in ("sum_rate", "sum_rate_logdet", "ser", "ser_mc", "ser_16qam", "ser_16qam_mc"):
        assert re.search(rf"\b{name}\b", msg), name
    m = METRICS["ser"]
    assert get_metric(m) is m and get_metric("ser") is m


def test_register_metric_refuses_duplicates_unless_replace(restore_metrics):
    const = Metric("test_const_metric", "const", lambda h, bf, p, s2, g: torch.ones(h.shape[0]))
    assert register_metric(const) is const
    with pytest.raises(ValueError, match="test_const_metric.*replace=True"):
        register_metric(Metric("test_const_metric", "other", const.compute))
    assert get_metric("test_const_metric") is const
    other = Metric("test_const_metric", "other", lambda h, bf, p, s2, g: torch.zeros(h.shape[0]))
    assert register_metric(other, replace=True) is other and get_metric("test_const_metric") is other
    with pytest.raises(ValueError, match="sum_rate"):
        register_metric(Metric("sum_rate", "x", const.compute))
    with pytest.raises(TypeError):
        register_metric("not a metric")
    out = other(torch.zeros(5, 2, 3, dtype=C128), Beamformers(precoder=torch.zeros(5, 3, 2, dtype=C128)), 1.0, 1.0)
    assert out.dtype == torch.float64 and torch.equal(out, torch.zeros(5, dtype=torch.float64))


def test_registered_metric_is_removed_after_fixture():
    assert "test_const_metric" not in METRICS


def test_ser_metric_needs_precoder():
    h = crandn(3, 2, 4, gen=torch.Generator().manual_seed(12))
    bound = Beamformers(sum_rate=torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    for name in ("ser", "ser_mc", "ser_16qam", "ser_16qam_mc"):
        with pytest.raises(ValueError, match=rf"{name}.*needs a precoder.*sum_rate"):
            get_metric(name)(h, bound, 1.0, 1.0)


def test_sum_rate_metric_passes_bound_through_and_scores_precoders():
    gen = torch.Generator().manual_seed(13)
    h = crandn(3, 2, 4, gen=gen)
    bound = torch.tensor([1.25, 2.5, 3.75], dtype=torch.float64)
    for name in ("sum_rate", "sum_rate_logdet"):
        assert torch.equal(get_metric(name)(h, Beamformers(sum_rate=bound), 1.0, 1.0), bound)
    # without a bound: MISO SINR form, NumPy oracle
    x = unit_power(crandn(3, 4, 2, gen=gen), 2.0)
    s2 = 0.4
    gains = np.abs(h.numpy() @ x.numpy()) ** 2  # [B, K, K]
    sig = np.diagonal(gains, axis1=-2, axis2=-1)
    expected = np.log2(1 + sig / (gains.sum(-1) - sig + s2)).sum(-1)
    np.testing.assert_allclose(
        get_metric("sum_rate")(h, Beamformers(precoder=x), 2.0, s2).numpy(), expected, rtol=1e-12
    )
    np.testing.assert_allclose(sum_rate(h, x, s2).numpy(), expected, rtol=1e-12)


# -- through the experiment runner and the CLI -------------------------------------------------------

MC_SYMBOLS = 2000  # symbol vectors per channel of the ser_mc metric (metrics/table.py)


def test_mc_symbol_count_matches_table():
    assert str(MC_SYMBOLS) in METRICS["ser_mc"].description


def test_evaluate_ser_analytic_agrees_with_monte_carlo():
    """ZF with total-power scaling gives every user the gain P / ||H^+||_F^2 and no interference, so the
    analytic column is ser_awgn(P / (sigma^2 ||H^+||_F^2)) per channel (independent oracle below) and
    the Monte Carlo column is a mean over channels x users x 2000 independent Bernoulli trials: its
    standard error is sqrt(sum_b p_b (1 - p_b) / (K T)) / B."""
    sc = get_scenario("rayleigh")
    b = 200
    kw = dict(num_channels=b, seed=0, progress=False)
    ana = {r["snr_db"]: r for r in evaluate(sc, "zf", [0.0, 5.0], metric="ser", **kw)}
    mc = {r["snr_db"]: r for r in evaluate(sc, "zf", [0.0, 5.0], metric="ser_mc", **kw)}
    h = sc.channel_model()(b, seed=0, dtype=torch.complex64).to(C128).numpy()
    pinv_f2 = (np.abs(np.linalg.pinv(h)) ** 2).sum((-2, -1))
    k = sc.num_users
    for snr in (0.0, 5.0):
        p_b = ser_awgn(torch.from_numpy(10 ** (snr / 10) / pinv_f2), "qpsk").numpy()
        assert ana[snr]["channels"] == mc[snr]["channels"] == b
        assert ana[snr]["ser_mean"] == pytest.approx(p_b.mean(), rel=1e-4)
        se = math.sqrt((p_b * (1 - p_b)).sum() / (k * MC_SYMBOLS)) / b
        assert abs(mc[snr]["ser_mc_mean"] - ana[snr]["ser_mean"]) <= Z * se, (snr, se)
    assert ana[5.0]["ser_mean"] < ana[0.0]["ser_mean"]


def test_cli_evaluate_ser_writes_csv_and_log_plot(tmp_path, monkeypatch):
    scales = {}
    original = experiment.atomic_savefig

    def spy(fig, path, **kw):
        scales[str(path)] = [ax.get_yscale() for ax in fig.axes]
        original(fig, path, **kw)

    monkeypatch.setattr(experiment, "atomic_savefig", spy)
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--scenario",
            "rayleigh",
            "--methods",
            "zf",
            "--metric",
            "ser",
            "--snr-db",
            "0,5",
            "--channels",
            "40",
            "--seed",
            "0",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    with open(out / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["method", "snr_db", "ser_mean", "ser_std", "channels", "seconds"]
        rows = list(reader)
    assert [(r["method"], float(r["snr_db"]), int(r["channels"])) for r in rows] == [("zf", 0.0, 40), ("zf", 5.0, 40)]
    direct = evaluate(get_scenario("rayleigh"), "zf", [0.0, 5.0], metric="ser", num_channels=40, seed=0, progress=False)
    assert [float(r["ser_mean"]) for r in rows] == pytest.approx([r["ser_mean"] for r in direct], rel=1e-12)
    png = out / "ser_vs_snr.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert scales == {str(png): ["log"]}


def test_selection_is_enforced_by_the_metrics():
    h = torch.randn(3, 2, 6, dtype=torch.complex128)
    sel = torch.tensor([1, 1, 1, 0, 0, 1], dtype=torch.float64).expand(3, 6)
    x = torch.randn(3, 6, 2, dtype=torch.complex128) * sel[..., None]
    assert get_metric("sum_rate")(h, Beamformers(precoder=x, selection=sel), 1.0, 0.1).shape == (3,)
    x[1, 3, 0] = 0.5  # an unselected antenna radiates
    with pytest.raises(ValueError, match="selection switches off"):
        get_metric("sum_rate")(h, Beamformers(precoder=x, selection=sel), 1.0, 0.1)
