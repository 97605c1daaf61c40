"""The shared input checks (``beamlearn._validation``) and the dtype table (``beamlearn._dtypes``)."""

import math

import numpy as np
import pytest
import torch

from beamlearn._dtypes import COMPLEX_DTYPES, dtype_name, numpy_dtype, real_dtype, resolve_dtype
from beamlearn._validation import check_bool, check_one_of, check_real


def test_check_one_of():
    assert check_one_of("form", "sinr", ("sinr", "logdet")) == "sinr"
    with pytest.raises(ValueError, match=r"form must be one of 'sinr', 'logdet', got 'snr'"):
        check_one_of("form", "snr", ("sinr", "logdet"))
    with pytest.raises(ValueError, match="got True"):  # True == 1, but a bool is not an allowed int
        check_one_of("bits", True, (1, 2))
    with pytest.raises(ValueError, match="mode"):  # unhashable and tensor values are simply not allowed
        check_one_of("mode", torch.ones(3), ("a",))
    with pytest.raises(ValueError, match="mode"):
        check_one_of("mode", ["a"], ("a",))


def test_check_bool():
    assert check_bool("flag", False) is False
    for bad in (0, 1, None, "True", np.bool_(True)):
        with pytest.raises(TypeError, match="flag must be True or False"):
            check_bool("flag", bad)


def test_check_real():
    assert check_real("mu", 3) == 3.0 and isinstance(check_real("mu", 3), float)
    assert check_real("mu", np.float32(0.5), 0, 1) == 0.5
    assert check_real("delta", 0.5, 0, 1, open_lower=True, open_upper=True) == 0.5
    with pytest.raises(TypeError, match="mu must be a real number"):
        check_real("mu", True)
    with pytest.raises(TypeError, match="mu"):
        check_real("mu", "0.1")
    with pytest.raises(ValueError, match=r"mu must be a finite real number in \(-inf, inf\)"):
        check_real("mu", math.nan)
    with pytest.raises(ValueError, match=r"delta must be a finite real number in \(0, 1\), got 1"):
        check_real("delta", 1, 0, 1, open_lower=True, open_upper=True)
    with pytest.raises(ValueError, match=r"x must be a finite real number in \[2, inf\)"):
        check_real("x", 1.5, 2)
    with pytest.raises(ValueError, match=r"x must be a finite real number in \(-inf, 0\]"):
        check_real("x", 1e-9, None, 0)


def test_dtype_table():
    assert resolve_dtype("complex64") is torch.complex64
    assert resolve_dtype(torch.complex128) is torch.complex128
    assert dtype_name(torch.complex64) == "complex64" and numpy_dtype("complex128") == np.complex128
    assert real_dtype("complex128") is torch.float64 and real_dtype(torch.complex64) is torch.float32
    assert set(COMPLEX_DTYPES) == {"complex64", "complex128"}
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("complex32")
    with pytest.raises(TypeError, match="precision must be one of"):  # a real dtype is the wrong kind
        resolve_dtype(torch.float32, "precision")
    with pytest.raises(TypeError, match="dtype"):
        resolve_dtype(np.complex64)
