"""CI smoke test of the one-command reproduction (`beamlearn reproduce unfolded-pga --quick`)."""

import csv

from typer.testing import CliRunner

from beamlearn.cli import app


def test_reproduce_quick_writes_figures_and_report(tmp_path):
    out = tmp_path / "rep"
    res = CliRunner().invoke(app, ["reproduce", "unfolded-pga", "--quick", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    for name in ("fig2a.csv", "fig2a.png", "fig2b.csv", "fig2b.png", "report.md", "results.json"):
        assert (out / name).exists(), name
    rows = list(csv.DictReader(open(out / "fig2b.csv")))
    methods = {r["method"] for r in rows}
    assert methods == {"unfolded-pga", "pga", "sca-rmm", "mo-altmin", "omp", "zf", "wmmse"}
    rate = {(r["method"], float(r["snr_db"])): float(r["sum_rate_mean"]) for r in rows}
    # the trained network improves on its untrained counterpart (conventional PGA) on the same channels
    assert rate[("unfolded-pga", 10.0)] > rate[("pga", 10.0)]
    a = list(csv.DictReader(open(out / "fig2a.csv")))
    pga_curve = [float(r["pga"]) for r in a]
    assert len(pga_curve) == 61 and pga_curve[-1] >= pga_curve[0]
    report = (out / "report.md").read_text()
    assert "## Claims" in report and "Quick run" in report
    # a second run resumes from the cache and gives the same table
    res2 = CliRunner().invoke(app, ["reproduce", "unfolded-pga", "--quick", "--out", str(out), "--no-progress"])
    assert res2.exit_code == 0
    assert list(csv.DictReader(open(out / "fig2b.csv")))[0]["sum_rate_mean"] == rows[0]["sum_rate_mean"]
