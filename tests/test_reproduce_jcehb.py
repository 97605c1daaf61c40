"""CI smoke test of the JCEHB reproduction (`beamlearn reproduce jcehb --quick [--train]`).

The train path trains every model at tiny budgets into a temporary folder (independent of the shipped
weights); the no-train path evaluates the shipped models.
"""

import csv
import math

import pytest

from beamlearn.systems.jcehb.reproduce import METHODS, reproduce


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce-jcehb")
    return out, reproduce(out, quick=True, train=True, progress=False, log=None)


def test_quick_train_writes_the_files_and_evaluates_every_method(trained):
    out, report = trained
    for name in ("fig9_overhead.csv", "fig9_overhead.png", "fig10_rate_vs_snr.csv", "fig12_phase_bits.csv"):
        assert (out / name).is_file(), name
    assert (out / "report.md").is_file() and (out / "results.json").is_file()
    rows = _rows(out / "fig10_rate_vs_snr.csv")
    # quick keeps three methods; all trained here at 10 dB
    assert {r["method"] for r in rows} == {"jcehb-joint", "rls-ssca-16", "rls-zf"}
    assert all(float(r["snr_db"]) == 10.0 and int(r["channels"]) == 16 for r in rows)
    assert all(math.isfinite(float(r["sum_rate_mean"])) and float(r["sum_rate_mean"]) > 0 for r in rows)
    assert any((out / "models").rglob("model.blm"))
    for name in METHODS:
        if name not in ("rls-ssca", "rls-ssca-16", "rls-zf"):
            assert (out / "models" / name / "manifest.json").is_file(), name


def test_report_states_each_claim_with_a_verdict_or_why_not(trained):
    out, report = trained
    text = (out / "report.md").read_text()
    for key in ("Fig. 9 / A7", "B6", "B8 (Fig. 12)", "B2 (Table I)", "B5 (Table III)", "Complexity"):
        assert key in text, key
    for c in report.claims:
        assert c.holds is not None or c.measured.startswith("not run: "), c
    a7 = next(c for c in report.claims if c.text.startswith("Fig. 9 / A7"))
    assert a7.holds is True  # the overhead calculator reproduces the spec's numbers exactly
    bits = _rows(out / "fig12_phase_bits.csv")
    assert {r["phase_bits"] for r in bits} == {"1", "8", "inf"}


def test_quick_with_the_shipped_models(tmp_path):
    report = reproduce(tmp_path, quick=True, progress=False, log=None)
    rows = _rows(tmp_path / "fig10_rate_vs_snr.csv")
    assert {"jcehb-joint", "rls-ssca-16", "rls-zf"} <= {r["method"] for r in rows}
    assert any(c.text.startswith("B6") for c in report.claims)


def test_unknown_setting_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown setting"):
        reproduce(tmp_path, quick=True, bogus=1, log=None)
