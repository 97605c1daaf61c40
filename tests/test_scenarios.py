import pytest

from beamlearn.scenarios import PRESETS, ChannelSpec, Scenario, get_scenario


def test_power_and_noise_conventions():
    sc = get_scenario("unfolded-pga")
    assert sc.power_and_noise(10.0) == pytest.approx((10.0, 1.0))
    sc2 = get_scenario("mser")
    p, s2 = sc2.power_and_noise(20.0)
    assert p == 1.0 and s2 == pytest.approx(0.01)


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(num_rf_chains=3), r"num_rf_chains must be an integer in \[4, 32\]"),
        (dict(num_rf_chains=33), r"num_rf_chains must be an integer in \[4, 32\]"),
        (dict(num_users=0), "num_users"),
        (dict(num_bs_antennas=-4), "num_bs_antennas"),
        (dict(num_streams=2), r"num_streams must be an integer in \[1, 1\]"),
        (dict(noise_var=0.0), "noise_var must be a finite number > 0"),
        (dict(power=-1.0), "power must be a finite number > 0"),
        (dict(power=float("nan")), "power"),
        (dict(phase_bits=0), "phase_bits"),
        (dict(snr_db=(0.0, float("inf"))), "snr_db"),
        (dict(snr_db=()), "snr_db"),
        (dict(power_reference="snr"), "power_reference"),
        (dict(num_users=40), "K\\*Ns=40 streams exceed N=32"),
    ],
)
def test_invalid_scenarios_raise_clear_errors(changes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        get_scenario("unfolded-pga").replace(**changes)


def test_mimo_stream_and_rf_constraints():
    base = get_scenario("mser")
    with pytest.raises(ValueError, match=r"num_rf_chains must be an integer in \[6, 64\]"):
        base.replace(num_rf_chains=5)  # N_RF < K*Ns
    with pytest.raises(ValueError, match=r"num_rx_rf_chains must be an integer in \[3, 8\]"):
        base.replace(num_rx_rf_chains=2)
    with pytest.raises(ValueError, match=r"num_streams must be an integer in \[1, 8\]"):
        base.replace(num_streams=9)


def test_channel_spec_errors():
    with pytest.raises(ValueError, match="channel kind"):
        ChannelSpec("deepmimo")
    with pytest.raises((ValueError, TypeError), match="gain_variance"):
        Scenario("x", 8, 2, channel=ChannelSpec("clustered", dict(gain_variance=0.0)))
    with pytest.raises(ValueError, match="UPA"):
        Scenario("x", 8, 2, channel=ChannelSpec("clustered", dict(bs_array=("upa", 3, 3))))


def test_upa_scenario():
    sc = Scenario("upa", 16, 2, channel=ChannelSpec("clustered", dict(bs_array=("upa", 4, 4), zod_range=(1.0, 2.0))))
    h = sc.channel_model()(3, seed=0)
    assert h.shape == (3, 2, 16)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        get_scenario("nope")


def test_presets_match_specs():
    p = PRESETS["unfolded-pga"]
    assert (p.num_bs_antennas, p.num_users, p.num_rf_chains) == (32, 4, 4)
    assert p.channel.params["num_clusters"] * p.channel.params["rays_per_cluster"] == 10
    j = PRESETS["jcehb"]
    assert (j.num_bs_antennas, j.num_rf_chains, j.num_rx_antennas, j.num_rx_rf_chains, j.num_users, j.num_streams) == (
        64,
        16,
        32,
        4,
        4,
        4,
    )
    m = PRESETS["mser"]
    assert (m.num_bs_antennas, m.num_rf_chains, m.num_users, m.num_rx_antennas, m.num_rx_rf_chains, m.num_streams) == (
        64,
        8,
        2,
        8,
        4,
        3,
    )
