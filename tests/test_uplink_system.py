"""System 4 (uplink model-driven beamforming): the data flow from a paired UL/DL source to a score on the
true downlink, the networks' constraints, persistence, the two-step baselines' LMMSE input and a tiny
training run on the shared trainer."""

import math

import pytest
import torch

from beamlearn.channels.uplink_pairs import MismatchRayleighChannel
from beamlearn.estimation import lmmse_estimate, orthogonal_pilots, uplink_ls_statistic
from beamlearn.evaluate import evaluate
from beamlearn.experiment import run_grid
from beamlearn.interface import PerfectCSI
from beamlearn.learned import load_model, train
from beamlearn.metrics.rates import sum_rate
from beamlearn.observation import ObservationSpec
from beamlearn.precoding import WMMSE, ZF, optimal_structure
from beamlearn.registry import build_method
from beamlearn.scenarios import get_scenario
from beamlearn.systems.uplink.model import LearnedChannelBF, UplinkMDL, from_real, to_real
from beamlearn.systems.uplink.train import UplinkConfig, UplinkTask, make_data, mean_rate, scenario_for

C128 = torch.complex128


def test_paired_observation_uses_the_sources_uplink_and_pilots_give_the_ls_statistic():
    sc = get_scenario("uplink-s1")
    h, u = sc.channel_model().pair(50, seed=3, dtype=C128)
    obs = sc.observation.observe(h, 100.0, 1.0, torch.Generator().manual_seed(0), uplink=u)
    assert torch.equal(obs.uplink, u) and torch.equal(obs.channel, u.mH)
    with pytest.raises(ValueError, match="paired"):
        sc.observation.observe(h, 100.0, 1.0)  # no uplink: the paired mapping cannot invert the source
    spec = ObservationSpec("uplink", mapping="paired", pilot_length=6)
    g = torch.Generator().manual_seed(1)
    o = spec.observe(h, 10.0, 1.0, g, uplink=u)
    x = orthogonal_pilots(4, 6, 4 * 10.0, dtype=C128)
    assert torch.equal(o.pilots, x) and o.received.shape == (50, 4, 6)
    torch.testing.assert_close(o.uplink, uplink_ls_statistic(o.received, x, 10.0))
    # L >= K: the statistic is H_U plus noise of variance sigma^2 / (L P) per entry
    err = (o.uplink - u).abs().pow(2).mean()
    assert abs(float(err) - 1.0 / 60) < 5 * (1.0 / 60) / math.sqrt(50 * 16)
    assert ObservationSpec.parse("uplink:paired:0:6") == spec
    with pytest.raises(ValueError, match="takes no uplink"):
        ObservationSpec("pilots", pilot_length=4).observe(h, 1.0, 1.0, uplink=u)


def test_wmmse_is_the_perfect_csi_reference_in_uplink_scenarios(tmp_path):
    sc = get_scenario("uplink-s1")
    m = build_method("wmmse", sc)
    assert isinstance(m, PerfectCSI) and m.observes == "truth"
    assert not isinstance(build_method("zf", sc), PerfectCSI)  # other methods read the uplink
    rows = evaluate("uplink-s1", "wmmse,zf", num_channels=40, progress=False, out_dir=tmp_path)
    h, _ = sc.channel_model().pair(40, seed=0)
    p, s2 = sc.power_and_noise(20)
    direct = sum_rate(h, WMMSE()(h, p, s2).precoder, s2).mean()
    rate = {r["method"]: r["sum_rate_mean"] for r in rows}
    assert rate["wmmse"] == pytest.approx(float(direct), rel=1e-5)
    # ZF on the uplink read as the downlink suffers from the unknown c*Phi mismatch
    assert rate["zf"] < 0.5 * rate["wmmse"]


def test_run_grid_checks_the_uplink_argument():
    sc = get_scenario("uplink-s1")
    h, u = sc.channel_model().pair(4, seed=0)
    with pytest.raises(ValueError, match="uplink has 3 channels"):
        run_grid(sc, {"zf": ZF()}, [20], h, uplink=u[:3], progress=False)
    with pytest.raises(ValueError, match="not 'uplink'"):
        run_grid(sc.replace(observation=ObservationSpec()), {"zf": ZF()}, [20], h, uplink=u, progress=False)


def test_real_packing_round_trip():
    x = torch.randn(5, 6, 3, dtype=torch.complex64)
    v = to_real(x)
    assert v.shape == (5, 36)
    assert torch.equal(from_real(v, 6, 3), x)


@pytest.mark.parametrize("arch,n,k", [("small", 4, 4), ("massive", 16, 3)])
def test_untrained_network_meets_power_and_softmax_constraints(arch, n, k):
    torch.manual_seed(0)
    m = UplinkMDL(n, k, arch=arch).eval()
    u = torch.randn(7, n, k, dtype=torch.complex64)
    h_hat, pf, qf = m.heads(u)
    torch.testing.assert_close(pf.sum(-1), torch.ones(7))
    torch.testing.assert_close(qf.sum(-1), torch.ones(7))
    assert bool((pf >= 0).all() and (qf >= 0).all())
    for power in (1.0, 100.0):
        w = m(u, power, 1.0).precoder
        assert w.shape == (7, n, k)
        torch.testing.assert_close((w.abs() ** 2).sum((-2, -1)), torch.full((7,), power), rtol=1e-5, atol=0)
    # the model's beamformer is the structure (7) of its learned channel and powers
    w = m(u, 10.0, 1.0).precoder
    torch.testing.assert_close(w, optimal_structure(h_hat.mH, 10 * pf, 10 * qf, 1.0))


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    m = LearnedChannelBF(4, 2, beamformer="bf", input_scale=2.0, output_scale=3.0, lmmse=True).eval()
    mean = torch.randn(4, 2, dtype=C128)
    cov = torch.eye(2, dtype=C128) * 2 + 0.5j * torch.tensor([[0, 1], [-1, 0]], dtype=C128)
    m.set_uplink_statistics(mean, cov)
    m.save(tmp_path / "m.blm")
    m2 = load_model(tmp_path / "m.blm").eval()
    assert isinstance(m2, LearnedChannelBF) and m2.config() == m.config()
    u = torch.randn(3, 4, 2, dtype=torch.complex64)
    torch.testing.assert_close(m2(u, 5.0, 1.0).precoder, m(u, 5.0, 1.0).precoder)
    # the complex statistics survive the float32 model (kept as real pairs, imaginary parts included)
    assert torch.view_as_complex(m2.ul_cov.contiguous())[0, 1].imag == pytest.approx(0.5)


def test_learned_channel_reads_the_lmmse_estimate_from_pilots():
    sc = get_scenario("uplink-s2-pilots").replace(num_bs_antennas=8)
    h, u = sc.channel_model().pair(30, seed=0, dtype=C128)
    obs = sc.observation.observe(h, 10.0, 1.0, torch.Generator().manual_seed(0), uplink=u)
    m = LearnedChannelBF(8, 6, lmmse=True).double()
    mean, cov = torch.zeros(8, 6, dtype=C128), torch.eye(6, dtype=C128) * 3.0
    m.set_uplink_statistics(mean, cov)
    got = m.channel_input(obs, 1.0)
    torch.testing.assert_close(got, lmmse_estimate(obs.received, obs.pilots, 1.0, cov, mean=mean))
    no_lmmse = LearnedChannelBF(8, 6)
    assert torch.equal(no_lmmse.channel_input(obs, 1.0), obs.uplink)  # the LS statistic


def test_config_validation_and_scenario_overrides():
    with pytest.raises(ValueError, match="method"):
        UplinkConfig(method="magic")
    with pytest.raises(ValueError, match="scenario"):
        UplinkConfig(scenario="mser")
    with pytest.raises(ValueError, match="alpha_r"):
        UplinkConfig(alpha_r=-1.0)
    sc = scenario_for(UplinkConfig(scenario="uplink-s2", num_users=6, pilots=3, train_channels=200))
    assert (sc.num_users, sc.observation.pilot_length) == (6, 3) and "K=6" in sc.name
    assert UplinkConfig(method="supervised").weights() == (1.0, 1.0, 0.0)
    assert UplinkConfig(method="unsupervised").weights() == (0.0, 0.0, 1.0)
    assert UplinkConfig().weights() == (1.0, 1.0, 1e-3)
    with pytest.raises(ValueError, match="paired"):
        UplinkConfig(dataset="x.blch")
    assert UplinkConfig(scenario="uplink-s2", train_channels=200).per_user and not UplinkConfig().per_user
    assert not UplinkConfig(scenario="uplink-s2", csi_per_user=False, train_channels=200).per_user


def test_labels_rebuild_the_wmmse_rate():
    sc = get_scenario("uplink-s1").replace(num_users=3, num_bs_antennas=3)
    d = make_data(sc, 60, 5, labels=True, label_iterations=200)
    p, s2 = sc.power_and_noise(20)
    w = optimal_structure(d["h"], p * d["pf"], p * d["qf"], s2)
    rebuilt = sum_rate(d["h"], w, s2)
    ref = sum_rate(d["h"], WMMSE(iterations=200, init=("mrt", "rzf"))(d["h"], p, s2).precoder, s2)
    assert float((rebuilt >= ref - 0.01).float().mean()) >= 0.95


@pytest.mark.parametrize("method,loss", [("proposed", "reduced"), ("learned-channel-bf", "original")])
def test_tiny_training_improves_and_resumes(tmp_path, method, loss):
    c = UplinkConfig(
        scenario="uplink-s1",
        num_users=2,
        num_bs_antennas=2,
        method=method,
        loss=loss,
        epochs=4,
        train_channels=400,
        val_channels=100,
        batch_size=50,
        label_iterations=50,
        data_cache=str(tmp_path / "data"),
    )
    s = train(UplinkTask(c), tmp_path / "run", progress=False, log=None)
    assert s["best_val"] > s["untrained_val"]
    m = load_model(tmp_path / "run" / "model.blm")
    sc = scenario_for(c)
    assert m.unsupported(sc) is None
    assert "trained on observation" in m.unsupported(
        sc.replace(observation=ObservationSpec("uplink", mapping="paired", pilot_length=2))
    )
    te = make_data(sc, 50, 1, labels=False)
    assert math.isfinite(mean_rate(m, te["h"], te["u"], te["y"], sc))
    # resuming a finished run changes nothing
    s2 = train(UplinkTask(c), tmp_path / "run", progress=False, log=None)
    assert s2["best_val"] == s["best_val"]


def test_mismatch_source_matches_the_scenario():
    cm = get_scenario("uplink-s1").channel_model()
    assert isinstance(cm, MismatchRayleighChannel) and cm.paired


@pytest.mark.parametrize("beamformer", ["zf", "bf"])
def test_two_step_baselines_meet_the_power_budget(beamformer):
    torch.manual_seed(1)
    m = LearnedChannelBF(6, 3, beamformer=beamformer).eval()
    u = torch.randn(9, 6, 3, dtype=torch.complex64)
    for power in (0.5, 1e3):
        w = m(u, power, 1.0).precoder
        assert w.shape == (9, 6, 3) and bool(torch.isfinite(w).all())
        assert bool(((w.abs() ** 2).sum((-2, -1)) <= power * (1 + 1e-5)).all())


def test_per_user_csi_net_maps_each_column_alone():
    from beamlearn.systems.uplink.model import CSINet

    torch.manual_seed(0)
    n, k = 5, 3
    net = CSINet(n, k, "massive", per_user=True)
    u = torch.randn(4, n, k, dtype=torch.complex64)
    y = from_real(net(to_real(u)), n, k)
    for j in range(k):  # column j of the output is the shared network applied to column j alone
        single = from_real(net.net(to_real(u[:, :, j : j + 1])), n, 1)[..., 0]
        torch.testing.assert_close(y[..., j], single)
    m = UplinkMDL(n, k, arch="massive", csi_per_user=True)
    assert sum(p.numel() for p in m.csi.parameters()) < sum(
        p.numel() for p in UplinkMDL(n, k, "massive").csi.parameters()
    )


def test_every_method_manifest_is_listed_and_checksummed():
    from typer.testing import CliRunner

    from beamlearn.cli import app
    from beamlearn.systems.uplink import SYSTEM, WEIGHTS

    assert SYSTEM.manifests() == WEIGHTS
    out = CliRunner().invoke(app, ["systems"]).output
    assert "shipped weights (uplink-mdl): uplink-s1 at 20 dB" in out
    for name, man in WEIGHTS.items():  # every shipped file loads against its manifest checksum
        for e in man.entries:
            assert man.load(e).model_name in ("uplink-mdl", "uplink-learned-channel"), name
