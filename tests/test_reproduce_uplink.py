"""CI smoke test of the uplink system's reproduction (`beamlearn reproduce uplink --quick --train`).

One quick run trains every model of the reduced grids (a few hundred samples, two epochs) and is shared by
the tests; the no-train path is run against empty manifests (nothing shipped) and against a manifest that
ships one of the models trained here.
"""

import csv
import math
import time

import pytest

from beamlearn.learned import WeightsManifest
from beamlearn.systems import uplink as uplink_system
from beamlearn.systems.uplink.reproduce import _figures, _ints, reproduce
from beamlearn.systems.uplink.train import UplinkConfig, scenario_for

FIGS = ("fig2", "fig4a", "fig4b", "fig5a", "fig5b")
# every single-cell acceptance criterion of spec s9.3 (Figs. 2, 4a, 4b, 5a, 5b, Table I)
CRITERIA = (
    "Fig. 2: R(proposed) >= 1.05 x R(supervised)",
    "Fig. 2: R(unsupervised) < R(supervised)",
    "Fig. 2: the gain (proposed - supervised) / supervised is non-decreasing",
    "Fig. 4(a): R(proposed) >=",
    "Fig. 4(a): ordering proposed > learned channel + ZF > learned channel + BF",
    "Fig. 4(a): proposed (ZF loss) within 5 %",
    "Fig. 4(b): NMSE(two-step CSI-Net) < NMSE(proposed CSI-Net)",
    "Fig. 4(b): ... yet R(proposed) > R(learned channel + ZF)",
    "Fig. 5(a): R(proposed) >=",
    "Fig. 5(a): |R(ZF loss) - R(original)| <= 2 %",
    "Fig. 5(a): R(proposed) >= 1.05 x R(learned channel + ZF)",
    "Fig. 5(a): learned channel + BF is the lowest curve",
    "Fig. 5(a): also run at N = 32",
    "Fig. 5(b): R(proposed) non-decreasing in L",
    "Fig. 5(b): R(proposed) >= 0.93 x R(WMMSE)",
    "Fig. 5(b): |R(ZF loss) - R(proposed)| <= 2 %",
    "Fig. 5(b): R(proposed) at L <= K/2",
    "Fig. 5(b): R(proposed) > R(learned channel + BF)",
    "Table I: ZF-loss step time < original at K = 2",
    "Table I: reduced-dimension step time < original at K = 2",
    "Table I: the ZF-loss ratio increases with K",
    "Table I: the ZF-loss ratio exceeds 0.8 at K = 10",
)
LEARNED4 = {"uplink-mdl", "uplink-mdl-zf", "learned-channel-zf", "learned-channel-bf"}
REFS = {"wmmse-perfect-csi", "zf-perfect-csi"}


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce-uplink")
    t0 = time.perf_counter()
    report = reproduce(out, quick=True, train=True, progress=False, log=None)
    return out, report, time.perf_counter() - t0


def test_quick_train_writes_every_file(quick):
    out, _, seconds = quick
    for name in FIGS:
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.png").stat().st_size > 0, name
    for name in ("table1.csv", "report.md", "results.json"):
        assert (out / name).is_file(), name
    assert any((out / "models").rglob("model.blm")) and any((out / "data").iterdir())
    assert seconds < 120, f"the quick run took {seconds:.0f} s"


def test_figure_csvs_have_the_columns_methods_and_finite_values(quick):
    out, _, _ = quick
    expected = {
        "fig2": ({2}, {"uplink-mdl", "uplink-mdl-supervised", "uplink-mdl-unsupervised"}),
        "fig4a": ({2}, LEARNED4 | REFS),
        "fig5a": ({2}, LEARNED4 | REFS),
        "fig5b": ({1, 2}, LEARNED4 | REFS),
    }
    for name, (xs, methods) in expected.items():
        rows = _rows(out / f"{name}.csv")
        assert list(rows[0]) == ["x", "method", "sum_rate_mean", "sum_rate_ci95", "channels", "scenario"], name
        assert {int(r["x"]) for r in rows} == xs, name
        assert {r["method"] for r in rows} == methods, name
        for r in rows:
            assert math.isfinite(float(r["sum_rate_mean"])) and float(r["sum_rate_mean"]) > 0, (name, r)
            assert math.isfinite(float(r["sum_rate_ci95"])) and float(r["sum_rate_ci95"]) >= 0, (name, r)
            assert int(r["channels"]) == 100
    rows = _rows(out / "fig4b.csv")
    assert list(rows[0]) == ["x", "method", "nmse_mean", "nmse_ci95", "channels", "scenario"]
    assert {r["method"] for r in rows} == LEARNED4
    assert all(0 < float(r["nmse_mean"]) < math.inf for r in rows)
    # the perfect-CSI references bound the learned methods (WMMSE also beats ZF on average)
    rate = {(r["method"], int(r["x"])): float(r["sum_rate_mean"]) for r in _rows(out / "fig5b.csv")}
    assert rate[("wmmse-perfect-csi", 1)] == rate[("wmmse-perfect-csi", 2)]  # WMMSE does not depend on L
    assert all(rate[("wmmse-perfect-csi", 2)] > rate[(m, 2)] for m in LEARNED4)
    t1 = _rows(out / "table1.csv")
    assert [int(r["K"]) for r in t1] == [2, 4, 6, 8, 10]
    assert all(float(r["original_step_s"]) > 0 and float(r["zf_pct"]) > 0 for r in t1)


def test_report_lists_every_criterion_with_a_verdict(quick):
    out, report, _ = quick
    text = (out / "report.md").read_text()
    for c in CRITERIA:
        assert c in text, c
    texts = [c.text for c in report.claims]
    for c in CRITERIA:
        assert any(t.startswith(c) for t in texts), c
    for c in report.claims:
        assert c.holds is not None or c.measured.startswith("not run: "), c
    # the quick grid has K = 2 only: Fig. 2's K = 10 criterion cannot run, Fig. 5(b)'s L-drop one can
    by = {c.text: c for c in report.claims}
    assert by["Fig. 2: R(proposed) >= 1.05 x R(supervised) at N = K = 10"].holds is None
    assert next(c for t, c in by.items() if t.startswith("Fig. 5(b): R(proposed) at L <= K/2")).holds is not None
    assert "Models evaluated and their training budget" in text and "trained here" in text
    assert "| 300 | 2 |" in text  # every model's budget: 300 training samples, 2 epochs


def test_rerun_resumes_from_the_cache(quick):
    out, _, first = quick
    before = {n: (out / f"{n}.csv").read_text() for n in (*FIGS, "table1")}
    t0 = time.perf_counter()
    reproduce(out, quick=True, train=True, progress=False, log=None)
    again = time.perf_counter() - t0
    assert again < max(10.0, first / 2), f"rerun took {again:.1f} s (first run {first:.1f} s)"
    for n, text in before.items():
        assert (out / f"{n}.csv").read_text() == text, n


def test_no_train_with_nothing_shipped_reports_not_shipped(tmp_path, monkeypatch):
    for name in list(uplink_system.WEIGHTS):
        monkeypatch.setitem(uplink_system.WEIGHTS, name, WeightsManifest(tmp_path / "empty", system="uplink"))
    out = tmp_path / "rep"
    report = reproduce(out, quick=True, channels=20, figs="4,5b", table1=False, progress=False, log=None)
    text = (out / "report.md").read_text()
    assert "not shipped" in text and "## Not shipped / not run" in text
    rows = _rows(out / "fig4a.csv")  # the references at the shipped configuration S1, N = K = 4
    assert {r["method"] for r in rows} == REFS and {int(r["x"]) for r in rows} == {4}
    assert {int(r["x"]) for r in _rows(out / "fig5b.csv")} == {6}
    assert _rows(out / "fig4b.csv") == []
    assert not (out / "fig2.csv").exists()
    assert all(c.holds is None for c in report.claims)
    for c in CRITERIA:
        assert c in text, c


def test_no_train_evaluates_a_shipped_model(quick, tmp_path, monkeypatch):
    out, _, _ = quick
    sc = scenario_for(UplinkConfig(scenario="uplink-s1", num_users=2, num_bs_antennas=2))
    (model_file,) = (out / "models").glob("uplink-s1_K=2_N=2/uplink-mdl-[0-9a-f]*/model.blm")
    manifest = WeightsManifest(tmp_path / "weights", system="uplink")
    manifest.add(model_file, sc, file="s1-k2.blm")
    for name in list(uplink_system.WEIGHTS):
        empty = WeightsManifest(tmp_path / "empty", system="uplink")
        monkeypatch.setitem(uplink_system.WEIGHTS, name, manifest if name == "uplink-mdl" else empty)
    rep = tmp_path / "rep"
    reproduce(rep, quick=True, figs="4", fig4_sizes=2, table1=False, progress=False, log=None)
    rows = {(r["method"], int(r["x"])): float(r["sum_rate_mean"]) for r in _rows(rep / "fig4a.csv")}
    trained = {(r["method"], int(r["x"])): float(r["sum_rate_mean"]) for r in _rows(out / "fig4a.csv")}
    assert rows[("uplink-mdl", 2)] == pytest.approx(trained[("uplink-mdl", 2)], rel=1e-6)  # same test channels
    assert ("wmmse-perfect-csi", 2) in rows and ("wmmse-perfect-csi", 4) in rows
    text = (rep / "report.md").read_text()
    assert "shipped (s1-k2.blm)" in text and "uplink-mdl-zf at N = K = 2, 4: not shipped" in text


def test_settings_parse_lists_and_figures():
    assert _ints("fig5a_users", "2,4", ()) == [2, 4]
    assert _ints("fig5a_users", 6, ()) == [6]
    assert _ints("fig5a_users", [2, "8"], ()) == [2, 8]
    assert _ints("fig5a_users", None, (1, 2)) == [1, 2]
    assert _figures("2,4") == ["2", "4a", "4b"]
    assert _figures(None) == ["2", "4a", "4b", "5a", "5b"]
    assert _figures("fig5b") == ["5b"]
    with pytest.raises(ValueError, match="unknown figure"):
        _figures("3")
    with pytest.raises(ValueError, match="integers"):
        _ints("fig2_sizes", "two", ())
