"""JCEHB signalling overhead (eqs. 47-51, acceptance A7) and complexity orders (eqs. 34-38, acceptance A8)."""

from __future__ import annotations

import doctest

import pytest

from beamlearn.systems.jcehb import overhead
from beamlearn.systems.jcehb.overhead import complexity, overhead_curve, pilot_bits, signalling_overhead

Q = 8  # bits per pilot element (spec s9 item 32)


# ---------------------------------------------------------------- A7: pilot bits and Fig. 9 orderings


def test_pilot_bits_defaults_a7():
    b = pilot_bits()
    assert b["elements_f"] == 1408 and b["elements_eq"] == 256
    assert b["Q_f"] == 1408 * Q and b["Q_eq"] == 256 * Q
    # (47) term by term: N_r N_RF^r + N_t N_RF^t + N_RF^t L
    assert pilot_bits(32, 4, 8, 2, 5, 3) == {
        "Q_f": 3 * (8 * 2 + 32 * 4 + 4 * 5),
        "Q_eq": 3 * 4 * 5,
        "elements_f": 8 * 2 + 32 * 4 + 4 * 5,
        "elements_eq": 4 * 5,
    }


def test_fig9_orderings_a7():
    o2 = signalling_overhead(2, slots_per_frame=10, num_samples=20, bits_per_element=Q)
    assert (o2["Q_offline"], o2["Q_single"], o2["Q_online"]) == (33280 * Q, 28160 * Q, 7936 * Q)
    assert o2["Q_offline"] > o2["Q_single"] > o2["Q_online"]

    o16 = signalling_overhead(16, slots_per_frame=10, num_samples=20, bits_per_element=Q)
    assert (o16["Q_single"], o16["Q_offline"], o16["Q_online"]) == (225280 * Q, 69120 * Q, 63488 * Q)
    assert o16["Q_single"] > 3 * o16["Q_offline"]  # single >> offline
    assert o16["Q_offline"] > o16["Q_online"]
    assert abs(o16["Q_offline"] - o16["Q_online"]) < 0.1 * o16["Q_offline"]  # offline ~ online


def test_signalling_overhead_formulas():
    q_f, q_eq = pilot_bits()["Q_f"], pilot_bits()["Q_eq"]
    for n in (1, 3, 7):
        o = signalling_overhead(n, slots_per_frame=6, num_samples=11)
        assert o["num_frames"] == n and o["Q_f"] == q_f and o["Q_eq"] == q_eq
        assert o["Q_single"] == n * 6 * q_f  # (49)
        assert o["Q_offline"] == n * 6 * q_eq + 11 * q_f  # (50)
        assert o["Q_online"] == n * (6 * q_eq + q_f)  # (51)


def test_overhead_curve_rows_and_monotonicity():
    rows = overhead_curve()
    assert [r[0] for r in rows] == list(range(1, 17))
    for n, single, offline, online in rows:
        o = signalling_overhead(n)
        assert (single, offline, online) == (o["Q_single"], o["Q_offline"], o["Q_online"])
    for col in (1, 2, 3):
        values = [r[col] for r in rows]
        assert all(b > a for a, b in zip(values[:-1], values[1:], strict=True))
    # the per-frame increments are constant (linear in n): T_s Q_f, T_s Q_eq, T_s Q_eq + Q_f
    b = pilot_bits()
    steps = {(r2[1] - r1[1], r2[2] - r1[2], r2[3] - r1[3]) for r1, r2 in zip(rows[:-1], rows[1:], strict=True)}
    assert steps == {(10 * b["Q_f"], 10 * b["Q_eq"], 10 * b["Q_eq"] + b["Q_f"])}
    # offline starts above single (the N_sample Q_f samples are spent up front) and ends far below it
    assert rows[0][2] > rows[0][1] and rows[-1][2] < rows[-1][1]
    # keyword arguments pass through
    assert overhead_curve(3, bits_per_element=1, slots_per_frame=2)[-1] == (
        3,
        3 * 2 * 1408,
        3 * 2 * 256 + 20 * 1408,
        3 * (2 * 256 + 1408),
    )


def test_bits_scale_linearly_in_q():
    o1 = signalling_overhead(5, bits_per_element=1)
    o4 = signalling_overhead(5, bits_per_element=4)
    for key in ("Q_f", "Q_eq", "Q_single", "Q_offline", "Q_online"):
        assert o4[key] == 4 * o1[key]


# ---------------------------------------------------------------- A8: complexity numbers of spec s7


def test_complexity_defaults_a8():
    c = complexity()
    assert c["rls"] == 92160
    assert c["cedun"] == 16384
    assert c["ssca"] == 24084480 and f"{c['ssca']:.3e}" == "2.408e+07"
    assert f"{c['hbdun']:.3e}" == "1.450e+06"
    assert c["hbdun"] == pytest.approx(5 * (16 * 16**2.37 + 4**2 * 4**2 * 16**2 * 4 + 4 * 4 * 16**2 * 4))
    # the exponent 2.37 (not 2) is what gives 1.450e6
    assert f"{5 * (16 * 16**2 + 262144 + 16384):.3e}" == "1.413e+06"
    # (38) with the s4.14 widths: K (128*512 + 512*512 + 512*128) + K (512*1024 + 1024*1024 + 1024*640)
    assert c["blackbox_ce"] == 4 * 393216 and c["blackbox_bf"] == 4 * 2228224
    assert c["blackbox"] == 10485760
    assert all(isinstance(c[key], int) for key in ("rls", "ssca", "cedun", "blackbox"))


def test_complexity_scaling():
    base = complexity()
    # (34)/(36): linear in the iterations / layers and in K, quadratic in N_RF^t
    assert complexity(rls_iterations=45)["rls"] * 2 == base["rls"]
    assert complexity(num_users=8)["rls"] == 2 * base["rls"]
    assert complexity(num_tx_rf=32)["rls"] == 4 * base["rls"]
    assert complexity(cedun_layers=32)["cedun"] == 2 * base["cedun"]
    assert complexity(num_users=2)["cedun"] * 2 == base["cedun"]
    # (35)/(37): linear in the iterations / layers
    assert complexity(sca_iterations=140)["ssca"] == 2 * base["ssca"]
    assert complexity(hbdun_layers=10)["hbdun"] == pytest.approx(2 * base["hbdun"])
    # the unfolded networks are far cheaper than the conventional algorithms at the defaults
    assert base["cedun"] < base["rls"] and base["hbdun"] < base["ssca"] / 10
    # one HBDUN layer is cheaper than one SSCA iteration (M^2.37 < M^3)
    assert complexity(hbdun_layers=1)["hbdun"] < complexity(sca_iterations=1)["ssca"]
    # (38): linear in K
    assert complexity(num_users=1)["blackbox"] * 4 == base["blackbox"]
    assert complexity(blackbox_ce_widths=[2, 3], blackbox_bf_widths=(5, 7, 11))["blackbox"] == 4 * (6 + 35 + 77)


# ---------------------------------------------------------------- argument validation


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_tx_antennas": 0}, "num_tx_antennas"),
        ({"num_tx_rf": 0}, "num_tx_rf"),
        ({"num_tx_rf": 65}, "num_tx_rf"),
        ({"num_rx_antennas": -1}, "num_rx_antennas"),
        ({"num_rx_rf": 33}, "num_rx_rf"),
        ({"pilot_length": 0}, "pilot_length"),
        ({"bits_per_element": 0}, "bits_per_element"),
    ],
)
def test_pilot_bits_rejects_bad_sizes(kwargs, name):
    with pytest.raises(ValueError, match=name):
        pilot_bits(**kwargs)
    with pytest.raises(ValueError, match=name):
        signalling_overhead(1, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "name"),
    [
        ((0,), {}, "num_frames"),
        ((-3,), {}, "num_frames"),
        ((2,), {"slots_per_frame": 0}, "slots_per_frame"),
        ((2,), {"num_samples": 0}, "num_samples"),
    ],
)
def test_signalling_overhead_rejects_bad_arguments(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        signalling_overhead(*args, **kwargs)


def test_overhead_curve_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_frames"):
        overhead_curve(0)
    with pytest.raises(ValueError, match="num_samples"):
        overhead_curve(4, num_samples=0)
    with pytest.raises(TypeError):
        overhead_curve(4, num_frames=3)  # set by the curve itself


@pytest.mark.parametrize(
    "name",
    [
        "num_users",
        "num_streams",
        "num_tx_rf",
        "num_rx_rf",
        "rls_iterations",
        "sca_iterations",
        "cedun_layers",
        "hbdun_layers",
    ],
)
def test_complexity_rejects_nonpositive_sizes(name):
    with pytest.raises(ValueError, match=name):
        complexity(**{name: 0})


def test_complexity_rejects_bad_widths():
    with pytest.raises(ValueError, match="blackbox_ce_widths"):
        complexity(blackbox_ce_widths=(128,))
    with pytest.raises(ValueError, match=r"blackbox_bf_widths\[1\]"):
        complexity(blackbox_bf_widths=(512, 0, 640))
    with pytest.raises(TypeError, match="blackbox_ce_widths"):
        complexity(blackbox_ce_widths=128)
    with pytest.raises(TypeError, match="blackbox_bf_widths"):
        complexity(blackbox_bf_widths=(512, 1024.0))


def test_non_integers_are_type_errors():
    with pytest.raises(TypeError, match="num_frames"):
        signalling_overhead(2.0)
    with pytest.raises(TypeError, match="bits_per_element"):
        pilot_bits(bits_per_element=True)
    with pytest.raises(TypeError, match="hbdun_layers"):
        complexity(hbdun_layers="5")


def test_docstring_examples():
    result = doctest.testmod(overhead, verbose=False)
    assert result.attempted >= 4 and result.failed == 0
