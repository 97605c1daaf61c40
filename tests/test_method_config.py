"""Every classical method's configuration is derived from its constructor and rebuilds the method."""

import inspect

import pytest

from beamlearn import hybrid, precoding
from beamlearn.hybrid import PGA, SCARMM, MOAltMin, OMPHybrid
from beamlearn.interface import BeamformingMethod
from beamlearn.precoding import MRT, RZF, SCA, WMMSE, ZF, CapacityBound

# each class with non-default arguments, so that a value read back from the wrong attribute shows
CASES = [
    MRT(num_streams=2, normalization="per_stream"),
    ZF(normalization="per_stream"),
    RZF(num_streams=3),
    WMMSE(num_streams=2, iterations=7, init=["rzf", "mrt"], mu_steps=20, mu_search="bisection"),
    CapacityBound(num_streams=2),
    SCA(iterations=3, barrier_stages=4, newton_steps=2),
    PGA(
        iterations=4,
        inner_steps=3,
        mu=0.02,
        lam=2e-4,
        include_ln2=False,
        inner_projection=False,
        num_rf_chains=6,
        seed=5,
    ),
    SCARMM(6, sca_iterations=3, outer_iterations=4, inner_iterations=2, seed=None),
    MOAltMin(5, wmmse_iterations=7, outer_iterations=4, inner_iterations=3, seed=2),
    OMPHybrid(6, num_angles=40, wmmse_iterations=9),
]


def _exported_methods(*modules):
    return {
        obj
        for mod in modules
        for obj in vars(mod).values()
        if inspect.isclass(obj) and issubclass(obj, BeamformingMethod) and not obj.learned
    }


@pytest.mark.parametrize("method", CASES, ids=lambda m: type(m).__name__)
def test_config_rebuilds_the_method(method):
    config = method.config()
    params = [n for n in inspect.signature(type(method).__init__).parameters if n != "self"]
    assert list(config) == params
    rebuilt = type(method)(**config)
    assert rebuilt.config() == config
    assert repr(rebuilt) == repr(method)


def test_every_classical_method_is_covered():
    assert {type(m) for m in CASES} == _exported_methods(precoding, hybrid)
