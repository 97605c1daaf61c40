"""Command-line options generated from configuration dataclasses, and the checks around systems."""

import dataclasses
import shutil

import pytest
import torch
from typer.testing import CliRunner

import beamlearn.cli
from beamlearn.learned import LearnedMethod, TrainConfig, TrainingTask, WeightsManifest, load_model, option
from beamlearn.registry import MethodInfo, method_table
from beamlearn.scenarios import get_scenario
from beamlearn.systems import System, register_system, unregister_system

runner = CliRunner()
SEEN = {}


class Tiny(LearnedMethod):
    name = "tiny"
    model_name = "test-cli-tiny"

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))


@dataclasses.dataclass(frozen=True)
class RichConfig(TrainConfig):
    phases: tuple[int, ...] = option((30, 15, 15), "Epochs of the phases.")
    widths: list[float] = dataclasses.field(default_factory=lambda: [0.5, 1.0], metadata={"help": "Widths."})
    gate: bool | None = option(None, "A tri-state switch.")
    label: str = option("x", "A label.")
    epochs: int = option(1, "Epochs.")
    train_channels: int = option(4, "Samples.")
    val_channels: int = option(2, "Samples.")
    batch_size: int = option(2, "Batch.")


class RichTask(TrainingTask):
    metric = "m"

    def build_model(self):
        SEEN["config"] = self.config
        return Tiny()

    def data(self):
        return torch.zeros(4, 1, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64)

    def loss(self, model, x):
        e = (model.w - 1.0) ** 2 + 0 * x.sum()
        return e, -e.expand(x.shape[0])

    def validate(self, model, x):
        return float(-((model.w - 1.0) ** 2))


def _reproduce(out_dir, *, quick, channels, train, device, progress, log, **extra):
    from beamlearn.reproduction import Report, write_report

    SEEN["extra"] = extra
    report = Report("rich", results=extra)
    write_report(out_dir, report)
    return report


RICH = System("rich", "Rich options (test only)", train_config=RichConfig, task=RichTask, reproduce=_reproduce)


@pytest.fixture
def rich():
    register_system(RICH)
    yield
    unregister_system("rich")


def test_options_of_every_field_kind(rich, tmp_path):
    app = beamlearn.cli.build_app()
    res = runner.invoke(app, ["train", "rich", "--out", str(tmp_path / "a"), "--no-progress"])
    assert res.exit_code == 0, res.output
    c = SEEN["config"]
    assert c.phases == (30, 15, 15) and c.widths == [0.5, 1.0] and c.gate is None and c.label == "x"
    res = runner.invoke(
        app,
        [
            "train",
            "rich",
            "--out",
            str(tmp_path / "b"),
            "--phases",
            "5,6",
            "--widths",
            "2.5",
            "--no-gate",
            "--label",
            "y",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    c = SEEN["config"]
    assert c.phases == (5, 6) and c.widths == [2.5] and c.gate is False and c.label == "y"
    res = runner.invoke(app, ["train", "rich", "--out", str(tmp_path / "c"), "--phases", "5,x", "--no-progress"])
    assert res.exit_code != 0 and "comma-separated int" in res.output


def test_reproduce_passes_settings(rich, tmp_path):
    res = runner.invoke(
        beamlearn.cli.build_app(),
        [
            "reproduce",
            "rich",
            "--out",
            str(tmp_path),
            "--set",
            "seed=7",
            "--set",
            "snr_db=[0, 10]",
            "--set",
            "name=abc",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert SEEN["extra"] == {"seed": 7, "snr_db": [0, 10], "name": "abc"}
    res = runner.invoke(beamlearn.cli.build_app(), ["reproduce", "rich", "--out", str(tmp_path), "--set", "oops"])
    assert res.exit_code == 2 and "KEY=VALUE" in res.output


def test_system_declarations_are_checked():
    @dataclasses.dataclass(frozen=True)
    class Clashing(TrainConfig):
        out: str = "x"

    with pytest.raises(ValueError, match="clash with the options"):
        System("bad", "bad", train_config=Clashing, task=RichTask)
    with pytest.raises(ValueError, match="both train_config and task"):
        System("bad", "bad", train_config=RichConfig)
    dup = System("dup", "dup", methods=(MethodInfo("zf", "another zf", lambda sc: None),))
    register_system(dup)
    try:
        with pytest.raises(ValueError, match="method 'zf', which the classical catalogue already has"):
            method_table()
    finally:
        unregister_system("dup")


def test_saving_needs_a_model_name_of_the_class_itself(tmp_path):
    class Sub(Tiny):
        def __init__(self, extra: int = 1):
            super().__init__()
            self.extra = extra

    with pytest.raises(TypeError, match="model_name of its own"):
        Sub().save(tmp_path / "m.blm")


def test_evaluate_model_checks_and_labels(tmp_path):
    from beamlearn.learned import train
    from beamlearn.systems.unfolded_pga import UnfoldedPGAConfig, UnfoldedPGATask

    train(
        UnfoldedPGATask(
            UnfoldedPGAConfig(
                snr_db=10, epochs=0, layers=1, inner_steps=1, train_channels=10, val_channels=5, batch_size=5
            )
        ),
        tmp_path / "a" / "m",
        progress=False,
        log=None,
    )
    m = load_model(tmp_path / "a" / "m" / "model.blm")
    assert m.unsupported(get_scenario("unfolded-pga")) is None
    assert "other array sizes" in m.unsupported(get_scenario("rayleigh"))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    app = beamlearn.cli.build_app()
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--methods",
            "",
            "--model",
            str(tmp_path / "a" / "m" / "model.blm"),
            "--model",
            str(tmp_path / "b" / "m" / "model.blm"),
            "--snr-db",
            "10",
            "--channels",
            "4",
            "--out",
            str(tmp_path / "ev"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.output.count("unfolded-pga[") == 2  # both files, two labels
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--scenario",
            "rayleigh",
            "--methods",
            "zf",
            "--model",
            str(tmp_path / "a" / "m" / "model.blm"),
            "--channels",
            "4",
            "--out",
            str(tmp_path / "e2"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 2 and "does not apply" in res.output


def test_manifest_prefers_the_model_trained_on_the_scenario(tmp_path):
    from beamlearn.systems.unfolded_pga import WEIGHTS

    sc = get_scenario("unfolded-pga")
    src = WEIGHTS.folder / WEIGHTS.find(sc, 10.0).file
    w = WeightsManifest(tmp_path, system="t")
    w.add(src, sc.replace(name="aaa-other", channel=get_scenario("rayleigh").channel), file="other.blm")
    w.add(src, sc, file="own.blm")
    assert w.find(sc, 10.0).file == "own.blm"
    w.add(src, sc.replace(name="zzz-other", channel=get_scenario("rayleigh").channel), file="other.blm")
    assert [e.scenario for e in w.entries] == ["unfolded-pga", "zzz-other"]  # sorted: own first, other last
    assert w.find(sc.replace(channel=get_scenario("rayleigh").channel), 10.0).file == "other.blm"
