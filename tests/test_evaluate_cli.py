import csv

import pytest
import torch
from typer.testing import CliRunner

from beamlearn.cli import app
from beamlearn.evaluate import COLUMNS, evaluate, format_table
from beamlearn.registry import available_methods, resolve_methods
from beamlearn.scenarios import get_scenario

runner = CliRunner()


def test_evaluate_writes_csv_and_png(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--scenario",
            "unfolded-pga",
            "--methods",
            "zf,wmmse,mrt",
            "--snr-db",
            "0,10",
            "--channels",
            "64",
            "--seed",
            "3",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "SNR [dB]" in res.output and "wmmse" in res.output
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert list(rows[0]) == COLUMNS
    assert [(r["method"], float(r["snr_db"])) for r in rows] == [
        ("zf", 0.0),
        ("zf", 10.0),
        ("wmmse", 0.0),
        ("wmmse", 10.0),
        ("mrt", 0.0),
        ("mrt", 10.0),
    ]
    assert all(int(r["channels"]) == 64 for r in rows)
    rate = {(r["method"], float(r["snr_db"])): float(r["sum_rate_mean"]) for r in rows}
    assert rate[("wmmse", 10.0)] > rate[("zf", 10.0)] > rate[("mrt", 10.0)]
    png = (out / "sum_rate_vs_snr.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_is_seeded_and_resumes(tmp_path):
    sc = get_scenario("unfolded-pga")
    a = evaluate(sc, "zf,rzf", [0, 10], num_channels=32, seed=1, out_dir=tmp_path, progress=False)
    b = evaluate(sc, "zf,rzf", [0, 10], num_channels=32, seed=1, progress=False)
    assert [r["sum_rate_mean"] for r in a] == [r["sum_rate_mean"] for r in b]
    # resume: rows of the finished pairs come back from disk unchanged (seconds included)
    c = evaluate(sc, "zf,rzf,mrt", [0, 10], num_channels=32, seed=1, out_dir=tmp_path, progress=False)
    assert [float(r["seconds"]) for r in c[:4]] == pytest.approx([r["seconds"] for r in a])
    assert len(c) == 6
    # a different seed is a different configuration: nothing is reused
    d = evaluate(sc, "zf", [0], num_channels=32, seed=2, out_dir=tmp_path, progress=False)
    assert d[0]["sum_rate_mean"] != a[0]["sum_rate_mean"]


def test_evaluate_mimo_scenario_uses_applicable_methods():
    sc = get_scenario("mser")
    names = available_methods(sc)
    assert "wmmse" in names and "capacity" in names and "zf" not in names
    rows = evaluate(sc, "all", [10.0], num_channels=8, progress=False)
    r = {x["method"]: x["sum_rate_mean"] for x in rows}
    assert r["wmmse"] <= r["capacity"] + 1e-6


def test_evaluate_on_given_channels_refuses_non_finite():
    sc = get_scenario("unfolded-pga")
    h = sc.channel_model()(4, seed=0)
    h[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        evaluate(sc, "zf", [0], channels=h, progress=False)
    with pytest.raises(ValueError, match="N=32"):
        evaluate(sc, "zf", [0], channels=torch.ones(4, 4, 16, dtype=torch.complex64), progress=False)


def test_method_resolution_errors():
    sc = get_scenario("mser")
    with pytest.raises(ValueError, match="unknown method 'svd'"):
        resolve_methods("wmmse,svd", sc)
    with pytest.raises(ValueError, match="does not apply"):
        resolve_methods("zf", sc)


def test_cli_errors_exit_2():
    res = runner.invoke(app, ["evaluate", "--scenario", "nope", "--channels", "4", "--no-progress"])
    assert res.exit_code == 2 and "unknown scenario" in res.output
    res = runner.invoke(app, ["evaluate", "--snr-db", "0,x", "--channels", "4", "--no-progress"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["evaluate", "--channels", "0"])
    assert res.exit_code == 2


def test_scenarios_and_methods_listing():
    res = runner.invoke(app, ["scenarios"])
    assert res.exit_code == 0
    for name in ("unfolded-pga", "mser", "jcehb", "uplink-s2", "asnet"):
        assert name in res.output
    assert "num_bs_antennas=32" in res.output
    res = runner.invoke(app, ["methods"])
    assert res.exit_code == 0 and "wmmse" in res.output


def test_format_table():
    rows = [
        {"method": "zf", "snr_db": 0.0, "sum_rate_mean": 1.5, "seconds": 0.1},
        {"method": "wmmse", "snr_db": 0.0, "sum_rate_mean": 2.0, "seconds": 0.2},
    ]
    t = format_table(rows)
    assert "1.500" in t and "2.000" in t


def test_evaluate_a_trained_model_file(tmp_path):
    res = runner.invoke(
        app,
        [
            "train",
            "unfolded-pga",
            "--snr-db",
            "10",
            "--out",
            str(tmp_path / "m"),
            "--epochs",
            "1",
            "--train-channels",
            "20",
            "--val-channels",
            "10",
            "--layers",
            "2",
            "--inner-steps",
            "2",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--methods",
            "pga",
            "--model",
            str(tmp_path / "m" / "model.blm"),
            "--snr-db",
            "10",
            "--channels",
            "20",
            "--out",
            str(tmp_path / "ev"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(tmp_path / "ev" / "results.csv")))
    assert [r["method"] for r in rows] == ["pga", "unfolded-pga[m]"]
    (tmp_path / "bad.pt").write_bytes((tmp_path / "m" / "model.blm").read_bytes()[:300])
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--methods",
            "zf",
            "--model",
            str(tmp_path / "bad.pt"),
            "--channels",
            "4",
            "--out",
            str(tmp_path / "ev2"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 2 and "damaged" in res.output
