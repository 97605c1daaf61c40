"""The experiment grid: cache keys, seeding, long-term statistics, output checks."""

import pytest
import torch

from beamlearn.evaluate import evaluate
from beamlearn.experiment import _long_term_covariance, run_grid
from beamlearn.hybrid import PGA
from beamlearn.learned import load_model
from beamlearn.observation import ObservationSpec
from beamlearn.precoding import ZF
from beamlearn.scenarios import get_scenario
from beamlearn.systems.unfolded_pga import WEIGHTS

SC = get_scenario("unfolded-pga")


def _h(n=12, seed=3):
    return SC.channel_model()(n, seed=seed, dtype=torch.complex128)


def test_cache_distinguishes_method_configuration_weights_and_scenario(tmp_path):
    h = _h()

    def rate(method, sc=SC, snr=10.0):
        return run_grid(sc, {"m": method}, [snr], h, cache_dir=tmp_path, progress=False).mean("m", snr)

    short, long = (
        rate(PGA(num_rf_chains=4, iterations=1, inner_steps=1)),
        rate(PGA(num_rf_chains=4, iterations=8, inner_steps=2)),
    )
    assert short != long  # same name, other configuration: not served from the cache
    assert rate(PGA(num_rf_chains=4, iterations=1, inner_steps=1)) == short  # same configuration: served
    assert (
        rate(PGA(num_rf_chains=4, iterations=1, inner_steps=1), sc=SC.replace(power_reference="power", power=1.0))
        != short
    )
    m = WEIGHTS.load(WEIGHTS.find(SC, 10.0))
    a = rate(m)
    with torch.no_grad():
        m.mu.mul_(0.5)  # other weights, same name and configuration
    assert rate(m) != a
    # SNRs that print alike do not share a cell
    assert rate(ZF(), snr=10.0) != rate(ZF(), snr=10.0000004)


def test_grid_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    run_grid(SC, {"zf": ZF()}, [0.0, 10.0], _h(), progress=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_long_term_covariance_is_independent_of_the_test_channels():
    a = _long_term_covariance(SC, _h(12, seed=1), seed=0)
    b = _long_term_covariance(SC, _h(30, seed=2), seed=0)
    assert torch.equal(a, b) and a.shape == (32, 32)
    assert torch.allclose(a, a.mH) and torch.linalg.eigvalsh(a).min() > -1e-9
    # a dataset source (no model to draw from) falls back to the test channels themselves
    h = _h(8)
    sc = SC.replace(channel=SC.channel.__class__("dataset", {"path": "unused.blch"}))
    rows = h.reshape(-1, 32)
    assert torch.allclose(_long_term_covariance(sc, h, seed=0), rows.mH @ rows / rows.shape[0])


def test_pilot_observation_uses_the_long_term_covariance():
    from beamlearn.estimation import lmmse_estimate

    spec = ObservationSpec("pilots", pilot_length=8, estimator="lmmse")
    h, cov = _h(4), _long_term_covariance(SC, _h(4), seed=0)
    o = spec.observe(h, 10.0, 1.0, torch.Generator().manual_seed(0), covariance=cov)
    assert o.covariance is cov
    assert torch.allclose(o.channel, lmmse_estimate(o.received, o.pilots, 1.0, cov))


def test_outputs_that_do_not_fit_the_scenario_are_refused(tmp_path):
    model = load_model(WEIGHTS.folder / WEIGHTS.find(SC, 10.0).file)
    with pytest.raises(ValueError, match="do not fit the scenario"):
        evaluate("mser", [], [0.0], num_channels=3, models={"u": model}, progress=False)
