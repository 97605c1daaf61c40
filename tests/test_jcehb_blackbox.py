"""The JCEHB black-box NN benchmark (spec s4.14): shapes, constraints, the library call, scaling, persistence,
training and argument checks, on small sizes (N=16, Nr=8, M=8, R=2, Ns=2, K=2)."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

from beamlearn.hybrid.equivalent import equivalent_channel, normalized_noise, sum_rate_eq, user_powers
from beamlearn.learned import load_model, model_classes
from beamlearn.metrics.rates import sum_rate
from beamlearn.observation import ObservationSpec
from beamlearn.scenarios import get_scenario
from beamlearn.systems.jcehb import blackbox
from beamlearn.systems.jcehb.blackbox import BlackBoxJCEHB

K, N, NR, M, R, NS, L = 2, 16, 8, 8, 2, 2, 8
POWER = 8.0  # P = 2 per stream (exercises the sqrt(P) scaling)
NOISE = 0.2  # sigma^2: SNR 10 dB per stream
NV = normalized_noise(NOISE, POWER, K, NS)  # sigma_tilde^2 = sigma^2 / P = 0.1, the networks' units


def make(**kw) -> BlackBoxJCEHB:
    kw = {"pilot_length": L, "ce_width": 64, "bf_width": 128, **kw}
    return BlackBoxJCEHB(K, N, NR, M, R, NS, **kw)


def channels(b: int, seed: int = 0, dtype=torch.complex64) -> torch.Tensor:
    cm = get_scenario("jcehb").channel.build(K, N, NR)
    return cm(b, seed=seed, dtype=dtype)


def unstack(digital: torch.Tensor) -> torch.Tensor:
    """``[..., M, K*Ns]`` -> ``[..., K, M, Ns]`` (inverse of ``stack_users``)."""
    return digital.unflatten(-1, (K, NS)).movedim(-2, -3)


def test_doctests():
    assert doctest.testmod(blackbox, extraglobs={"torch": torch}).failed == 0


def test_registered_and_sizes():
    assert model_classes()["jcehb-blackbox"] is BlackBoxJCEHB
    m = BlackBoxJCEHB()  # the paper's sizes: 128 -> 512 -> 512 -> 128 and 512 -> 1024 -> 1024 -> 640
    assert [lin.in_features for lin in m.cedun.net[::3]] == [128, 512, 512]
    assert m.cedun.net[-1].out_features == 128
    assert [lin.in_features for lin in m.digital.net[::3]] == [512, 1024, 1024]
    assert m.digital.net[-1].out_features == 640
    assert sum(p.numel() for p in m.parameters()) == 2_635_008
    assert m.observes == "observation" and make(csi="perfect").observes == "truth"


def test_shapes_and_constraints():
    torch.manual_seed(0)
    m = make()
    h = channels(6)
    h_eq, view, f_gram, gram, f_bb, w_bb = m.train_forward(h, NV)
    assert h_eq.shape == view.shape == (6, K, R, M)
    assert f_bb.shape == (6, K, M, NS) and w_bb.shape == (6, K, R, NS)
    assert f_bb.dtype == w_bb.dtype == torch.complex64
    assert torch.allclose(user_powers(f_bb, f_gram), torch.full((6, K), float(NS)), atol=1e-4)
    f_rf, w_rf, _, _ = m.analog_stage(K)
    assert torch.allclose(f_rf.abs(), torch.full_like(f_rf.abs(), 1 / math.sqrt(N)), atol=1e-6)
    assert torch.allclose(w_rf.abs(), torch.full_like(w_rf.abs(), 1 / math.sqrt(NR)), atol=1e-6)
    x = m.pilot_matrix()
    assert x.shape == (K, M, L)
    assert torch.allclose(torch.linalg.vector_norm(x, dim=-2), torch.ones(K, L), atol=1e-6)
    with torch.no_grad():  # still unit columns after the pilots are perturbed
        m.cedun.pilots.mul_(torch.rand_like(m.cedun.pilots) + 0.5)
    assert torch.allclose(torch.linalg.vector_norm(m.pilot_matrix(), dim=-2), torch.ones(K, L), atol=1e-6)


def test_seed_determines_init_and_leaves_global_rng():
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    a, b, c = make(seed=1), make(seed=1), make(seed=2)
    assert torch.equal(torch.rand(3), before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["digital.net.0.weight"], sc["digital.net.0.weight"])


@pytest.mark.parametrize("csi", ["pilots", "perfect"])
def test_library_call_on_a_tensor_is_perfect_csi_and_scaled(csi):
    m = make(csi=csi).double().eval()
    h = channels(4, dtype=torch.complex128)
    bf = m(h, POWER, NOISE)
    assert bf.precoder.shape == (4, N, K * NS) and bf.combiner.shape == (4, K, NR, NS)
    f_rf, w_rf, f_gram, gram = m.analog_stage(K, torch.complex128)
    h_eq = equivalent_channel(h, f_rf, w_rf)
    f_bb, w_bb = m.design(h_eq, f_gram, gram, NV)  # perfect CSI: the design on the true H_eq
    p = POWER / (K * NS)
    assert torch.allclose(unstack(bf.digital) / math.sqrt(p), f_bb)
    assert torch.allclose(bf.rx_digital, w_bb)
    # total power P_tot, and the library's rate of the returned beamformers = the rate in the network's units
    assert torch.allclose(bf.precoder.abs().square().sum((-2, -1)), torch.full((4,), POWER, dtype=torch.float64))
    lib = sum_rate(h, bf.precoder, NOISE, combiner=bf.combiner)
    assert torch.allclose(lib, sum_rate_eq(h_eq, f_bb, w_bb, NV, gram), rtol=1e-8)


def test_library_call_on_an_observation_sounds_its_pilots():
    m = make().eval()
    h = channels(4, seed=1)
    g = torch.Generator().manual_seed(0)
    obs = ObservationSpec("pilots", pilot_length=16).observe(h, POWER, NOISE, g)
    bf = m(obs, POWER, NOISE)
    assert obs.sound.used == L  # the model's L pilot symbols out of the budget
    assert bf.precoder.shape == (4, N, K * NS) and bool(torch.isfinite(bf.precoder).all())
    f_rf, w_rf, f_gram, gram = m.analog_stage(K)
    h_eq = equivalent_channel(h, f_rf, w_rf)
    f_bb = unstack(bf.digital) / math.sqrt(POWER / (K * NS))
    assert torch.allclose(user_powers(f_bb, f_gram), torch.full((4, K), float(NS)), atol=1e-4)
    lib = sum_rate(h, bf.precoder, NOISE, combiner=bf.combiner)
    assert torch.allclose(lib, sum_rate_eq(h_eq, f_bb, bf.rx_digital, NV, gram), rtol=1e-4)

    # with (almost) noiseless pilots the call is estimate(H_eq X) -> design: the pilots' sqrt(P) is undone
    quiet = ObservationSpec("pilots", pilot_length=16).observe(h, POWER, 1e-14, g)
    bf_q = m(quiet, POWER, 1e-14)
    y = h_eq @ m.pilot_matrix()
    f_ref, w_ref = m.design(m.estimate(y), f_gram, gram, NV)
    assert torch.allclose(unstack(bf_q.digital) / math.sqrt(POWER / (K * NS)), f_ref, atol=1e-4)
    assert torch.allclose(bf_q.rx_digital, w_ref, atol=1e-4)


def test_complex128_inputs_with_float32_and_float64_networks():
    h = channels(4, dtype=torch.complex128)
    for m in (make().eval(), make().double().eval()):
        g = torch.Generator().manual_seed(3)
        h_eq, view, f_gram, _, f_bb, w_bb = m.train_forward(h, NV, generator=g)
        assert view.dtype == f_bb.dtype == w_bb.dtype == torch.complex128
        assert torch.allclose(user_powers(f_bb, f_gram), torch.full((4, K), float(NS), dtype=torch.float64))
    m32, m64 = make().eval(), make().double().eval()
    _, _, f_gram, gram, f32, _ = m32.train_forward(h, NV, csi="perfect")
    _, _, _, _, f64, _ = m64.train_forward(h, NV, csi="perfect")
    assert torch.allclose(f32, f64, atol=1e-4)  # same network, two precisions


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    m = make()
    m.train_forward(channels(8), NV)  # move the BatchNorm running statistics off their init
    m.eval()
    path = tmp_path / "bb.blm"
    m.save(path, metadata={"snr_db": 10.0})
    m2 = load_model(path)
    assert type(m2) is BlackBoxJCEHB and not m2.training and m2.config() == m.config()
    h = channels(3, seed=2)
    with torch.no_grad():
        a, b = m(h, POWER, NOISE), m2(h, POWER, NOISE)
        assert torch.equal(a.precoder, b.precoder) and torch.equal(a.combiner, b.combiner)
        ra = m.train_forward(h, NV, generator=torch.Generator().manual_seed(7))
        rb = m2.train_forward(h, NV, generator=torch.Generator().manual_seed(7))
        assert all(torch.equal(x, y) for x, y in zip(ra, rb, strict=True))


@pytest.mark.parametrize("csi", ["perfect", "pilots"])
def test_adam_raises_the_training_rate(csi):
    torch.manual_seed(0)
    m = make()
    h = channels(32, seed=3)

    def rate():
        g = torch.Generator().manual_seed(11)  # the same pilot noise every time
        h_eq, _, _, gram, f_bb, w_bb = m.train_forward(h, NV, csi=csi, generator=g)
        return sum_rate_eq(h_eq, f_bb, w_bb, NV, gram).mean()

    if csi == "perfect":  # the training stages: analog + digital on true H_eq, then estimator + digital
        groups = [{"params": m.analog.parameters(), "lr": 1e-2}, {"params": m.digital.parameters()}]
    else:
        groups = [*m.cedun.parameters(), *m.digital.parameters()]
    opt = torch.optim.Adam(groups, lr=1e-3)
    with torch.no_grad():
        start = float(rate())
    for _ in range(15):
        opt.zero_grad()
        (-rate()).backward()
        opt.step()
    with torch.no_grad():
        end = float(rate())
    assert math.isfinite(end) and end > start + 0.1, (start, end)


def test_bad_arguments():
    bad = [
        {"num_rf_chains": N + 1},
        {"num_streams": R + 1},
        {"pilot_length": 0},
        {"ce_width": 0},
        {"bf_width": 0},
        {"noise_cov": "diagonal"},
        {"csi": "estimated"},
        {"phase_bits": 0},
    ]
    sizes = {"num_users": K, "num_bs_antennas": N, "num_rx_antennas": NR, "num_rf_chains": M}
    for kw in bad:
        with pytest.raises(ValueError):
            BlackBoxJCEHB(**{**sizes, "num_rx_rf_chains": R, "num_streams": NS, **kw})
    m = make().eval()
    with pytest.raises(ValueError, match="num_users=2"):  # a fixed K: 3 users are refused
        m(torch.randn(2, 3, NR, N, dtype=torch.complex64), 6.0, NOISE)
    with pytest.raises(ValueError, match="num_users=2"):
        m.train_forward(torch.randn(2, 1, NR, N, dtype=torch.complex64), NV)
    with pytest.raises(ValueError, match="num_users=2"):
        m.design(torch.randn(2, 3, R, M, dtype=torch.complex64), torch.eye(M, dtype=torch.complex64), None, NV)
    with pytest.raises(ValueError, match="Nr=8"):
        m(torch.randn(2, K, NR + 1, N, dtype=torch.complex64), POWER, NOISE)
