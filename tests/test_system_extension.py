"""A new system plugs in through the public extension points only: no edit to cli.py or the catalogue.

The toy system of ``toy_system.py`` is registered at run time; ``systems``, ``train``, ``evaluate
--model``, ``evaluate --methods`` and ``reproduce --quick`` then work for it.
"""

import csv
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import beamlearn.cli
import beamlearn.registry
from beamlearn.learned import load_model
from beamlearn.systems import all_systems, register_system, unregister_system

runner = CliRunner()


@pytest.fixture
def toy():
    import toy_system

    register_system(toy_system.SYSTEM)
    yield toy_system
    unregister_system("toy")


def test_cli_and_catalogue_do_not_name_the_toy():
    for mod in (beamlearn.cli, beamlearn.registry):
        assert "toy" not in Path(mod.__file__).read_text()


def test_toy_system_end_to_end(toy, tmp_path):
    assert "toy" in [s.name for s in all_systems()]
    app = beamlearn.cli.build_app()
    res = runner.invoke(app, ["systems"])
    assert res.exit_code == 0 and "toy: Toy learned RZF" in res.output and "beamlearn train toy" in res.output
    res = runner.invoke(app, ["methods"])
    assert "toy-rzf" in res.output and "[learned, toy]" in res.output

    # train: the configuration's fields are the options
    res = runner.invoke(
        app, ["train", "toy", "--out", str(tmp_path / "m"), "--epochs", "3", "--init-scale", "4", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    log = list(csv.DictReader(open(tmp_path / "m" / "train_log.csv")))
    assert [int(r["epoch"]) for r in log] == [0, 1, 2, 3]
    model = load_model(tmp_path / "m" / "model.blm")
    assert type(model).__name__ == "ToyRZF" and model.config() == {"init_scale": 4.0}
    assert float(model.log_scale.detach().exp()) < 4.0  # training moved the regularisation towards the MMSE value
    res = runner.invoke(app, ["train", "toy", "--out", str(tmp_path / "bad"), "--batch-size", "0", "--no-progress"])
    assert res.exit_code == 2 and "batch_size" in res.output

    # evaluate: the trained file as an extra method, the catalogue entry by name
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--scenario",
            "rayleigh",
            "--methods",
            "zf,toy-rzf",
            "--model",
            str(tmp_path / "m" / "model.blm"),
            "--snr-db",
            "0",
            "--channels",
            "50",
            "--out",
            str(tmp_path / "ev"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    rows = {r["method"]: float(r["sum_rate_mean"]) for r in csv.DictReader(open(tmp_path / "ev" / "results.csv"))}
    assert set(rows) == {"zf", "toy-rzf", "toy-rzf[m]"}
    assert rows["toy-rzf"] > rows["zf"]  # RZF beats ZF at 0 dB

    # reproduce --quick
    res = runner.invoke(app, ["reproduce", "toy", "--quick", "--out", str(tmp_path / "rep"), "--no-progress"])
    assert res.exit_code == 0, res.output
    for name in ("toy.csv", "toy.png", "report.md", "results.json"):
        assert (tmp_path / "rep" / name).exists(), name
    assert "| RZF beats ZF at 0 dB | > 0 |" in (tmp_path / "rep" / "report.md").read_text()


def test_unregistered_toy_is_gone(toy):
    unregister_system("toy")
    assert "toy" not in [s.name for s in all_systems()]
    with pytest.raises(ValueError, match="toy-rzf"):
        beamlearn.registry.build_method("toy-rzf", toy.get_scenario("rayleigh"))
    register_system(toy.SYSTEM)  # the fixture unregisters it again
    assert isinstance(beamlearn.registry.build_method("toy-rzf", toy.get_scenario("rayleigh")), torch.nn.Module)
