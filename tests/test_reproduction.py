"""Claims and the report writer."""

import json
import math

from beamlearn.reproduction import Claim, Report, Table, check, render, write_report


def test_check_records_the_criterion_and_never_passes_nan():
    c = check("x is large", "16.5", 16.45, at_least=16.4)
    assert c.holds and c.criterion == ">= 16.4" and c.measured == "16.450" and c.value == 16.45
    assert not check("x", "-", 16.39, at_least=16.4).holds
    assert check("x", "-", 2.0, at_least=1.0, at_most=3.0).criterion == ">= 1 and <= 3"
    assert not check("x", "-", 4.0, at_least=1.0, at_most=3.0).holds
    assert not check("x", "-", math.nan, at_least=-math.inf).holds
    assert check("x", "-", 1.0).holds and check("x", "-", 1.0).criterion == ""


def test_report_renders_and_writes(tmp_path):
    r = Report(
        "T",
        intro=["intro line"],
        claims=[check("a", "1", 1.0, at_least=0.5), Claim("b", "2", "3", False), Claim("c", "-", "info")],
        tables=[Table("Tab", ["x", "y"], [[1, 2]], note="n")],
        results={"k": 1},
        quick=True,
    )
    md = render(r)
    assert md.startswith("# T\n\nintro line\n") and "Quick run" in md
    assert "| a | 1 | 1.000 | yes |" in md and "| b | 2 | 3 | **no** |" in md and "| c | - | info | - |" in md
    assert "## Tab" in md and "| 1 | 2 |" in md
    assert not r.all_hold
    write_report(tmp_path, r)
    assert (tmp_path / "report.md").read_text() == md
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["k"] == 1 and res["quick"] and res["claims"][0]["criterion"] == ">= 0.5"
