"""CI smoke test of the one-command reproduction (`beamlearn reproduce mser --quick`)."""

import csv

import pytest
from typer.testing import CliRunner

from beamlearn.cli import app

ARGS = ["reproduce", "mser", "--quick", "--no-progress", "--channels", "12"]


def test_reproduce_mser_quick_writes_figures_and_report(tmp_path):
    out = tmp_path / "rep"
    res = CliRunner().invoke(app, [*ARGS, "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("fig8.csv", "fig8.png", "report.md", "results.json"):
        assert (out / name).exists(), name
    rows = list(csv.DictReader(open(out / "fig8.csv")))
    ser = {(r["method"], float(r["snr_db"])): float(r["ser_mean"]) for r in rows}
    expected = {"mser-gd", "mser-gd-15", "mser-fd-gd", "mmse-gd", "mmse-fd-gd", "mmse-omp", "mmse-mo"}
    assert {m for m, _ in ser} >= expected
    for s in (5.0, 15.0):
        assert all(0 <= v <= 1 for (_, t), v in ser.items() if t == s)
        # 100 GD iterations improve on 15 from the same start and symbols
        assert ser[("mser-gd", s)] < ser[("mser-gd-15", s)]
        if ("mser-unfolded", s) in ser:  # shipped models: the trained network beats its untrained self (GD-15)
            assert ser[("mser-unfolded", s)] < ser[("mser-gd-15", s)]
    report = (out / "report.md").read_text()
    assert "## Claims" in report and "A1:" in report and "20,680" in report
    # a second run resumes from the cache and gives the same table
    res2 = CliRunner().invoke(app, [*ARGS, "--out", str(out)])
    assert res2.exit_code == 0, res2.output
    assert list(csv.DictReader(open(out / "fig8.csv")))[0]["ser_mean"] == rows[0]["ser_mean"]


def test_layer_sweep_trains_each_depth_and_writes_fig7(tmp_path):
    from beamlearn.systems.mser.reproduce import layer_sweep

    rows, claim = layer_sweep(tmp_path, layers=(1, 2), epochs=1, train_channels=20, log=None)
    assert {r["layers"] for r in rows} == {1, 2}
    assert {r["epoch"] for r in rows} == {0, 1}  # the untrained network, then one epoch
    assert all(0 <= r["val_ser_bound"] <= 2 for r in rows)
    assert (tmp_path / "fig7.csv").exists() and (tmp_path / "fig7.png").exists()
    assert claim.holds is None and "needs L=6 and L=15" in claim.text  # A8 is only judged with both depths


def test_training_size_sweep_scores_each_model_against_gd(tmp_path):

    from beamlearn.scenarios import get_scenario
    from beamlearn.systems.mser.reproduce import training_size_sweep

    h = get_scenario("mser").channel_model()(6, seed=3)
    rows, claim = training_size_sweep(tmp_path, h, 0.05, sizes=(20, 40), epochs=1, log=None)
    assert [r[0] for r in rows] == ["20", "40"]
    sers = [float(r[1]) for r in rows]
    assert all(0 < v < 1 for v in sers)
    assert [float(r[2]) for r in rows] == [pytest.approx(0.05 / v, rel=1e-2) for v in sers]
    assert claim.holds in (True, False) and "20:" in claim.measured
    assert (tmp_path / "train_channels20" / "model.blm").exists()
