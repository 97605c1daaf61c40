"""Issue 13: no silently wrong numbers, and one-line errors instead of tracebacks.

Each test names the item of the issue it guards. The CLI tests check the exit code, that the error
is a single ``error: ...`` line naming the parameter or file, and that no traceback is printed.
"""

import csv
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from beamlearn.cli import build_app
from beamlearn.evaluate import evaluate
from beamlearn.learned import TrainConfig, TrainingTask, train
from beamlearn.scenarios import get_scenario
from beamlearn.systems.unfolded_pga import UnfoldedPGAConfig, UnfoldedPGATask

DATA = Path(__file__).resolve().parents[1] / "data"
runner = CliRunner()
EV = ["evaluate", "--no-progress", "--snr-db", "0,10", "--channels", "40"]


def cli(*args):
    return runner.invoke(build_app(), [str(a) for a in args])


def one_line_error(res, *words):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    for w in words:
        assert w in lines[0], (w, lines[0])


def train_tiny(out):
    """An untrained one-layer unfolded-PGA model (N=32, K=4) in ``out/model.blm``."""
    res = cli(
        "train",
        "unfolded-pga",
        "--out",
        out,
        "--snr-db",
        "10",
        "--epochs",
        "0",
        "--layers",
        "1",
        "--inner-steps",
        "1",
        "--train-channels",
        "10",
        "--val-channels",
        "5",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output


def rows(path):
    return {(r["method"], float(r["snr_db"])): float(r["sum_rate_mean"]) for r in csv.DictReader(open(path))}


def test_item1_resume_never_reuses_rows_of_another_configuration(tmp_path):
    """An interrupted run of another configuration leaves old rows and a new run.json behind; the
    re-run must compute the new configuration, not print the old numbers."""
    sc = get_scenario("unfolded-pga")
    kw = dict(num_channels=60, progress=False)
    evaluate(sc, "wmmse,zf", [0.0, 10.0], seed=1, out_dir=tmp_path / "x", **kw)
    evaluate(sc, "wmmse,zf", [0.0, 10.0], seed=2, out_dir=tmp_path / "y", **kw)
    # the state an interrupted seed-2 run into x leaves: seed-1 rows under a seed-2 run.json
    shutil.copy(tmp_path / "y" / "run.json", tmp_path / "x" / "run.json")
    again = evaluate(sc, "wmmse,zf", [0.0, 10.0], seed=2, out_dir=tmp_path / "x", **kw)
    fresh = evaluate(sc, "wmmse,zf", [0.0, 10.0], seed=2, **kw)
    assert [r["sum_rate_mean"] for r in again] == [r["sum_rate_mean"] for r in fresh]
    # a truncated results.csv or a broken run.json does not block a re-run either
    (tmp_path / "x" / "results.csv").write_text("method,snr")
    (tmp_path / "x" / "run.json").write_text("{broken")
    again = evaluate(sc, "wmmse,zf", [0.0, 10.0], seed=2, out_dir=tmp_path / "x", **kw)
    assert [r["sum_rate_mean"] for r in again] == [r["sum_rate_mean"] for r in fresh]


def test_item2_a_model_retrained_in_place_is_evaluated_again(tmp_path):
    small = [
        "--snr-db",
        "10",
        "--layers",
        "2",
        "--inner-steps",
        "2",
        "--train-channels",
        "20",
        "--val-channels",
        "10",
        "--no-progress",
    ]
    assert cli("train", "unfolded-pga", "--out", tmp_path / "m", "--epochs", "0", *small).exit_code == 0
    ev = [*EV, "--methods", "zf", "--model", tmp_path / "m" / "model.blm", "--out", tmp_path / "ev"]
    assert cli(*ev).exit_code == 0
    first = rows(tmp_path / "ev" / "results.csv")
    # retrained in place: other step sizes (the untrained network with other initial steps)
    res = cli(
        "train",
        "unfolded-pga",
        "--out",
        tmp_path / "m",
        "--epochs",
        "0",
        "--no-resume",
        *small[:4],
        "--inner-steps",
        "3",
        *small[6:],
    )
    assert res.exit_code == 0, res.output
    assert cli(*ev).exit_code == 0
    second = rows(tmp_path / "ev" / "results.csv")
    assert second[("unfolded-pga[m]", 10.0)] != first[("unfolded-pga[m]", 10.0)]
    assert second[("zf", 10.0)] == first[("zf", 10.0)]  # the unchanged method is served from the cache
    assert (
        cli(
            *EV[:-2],
            "--channels",
            "40",
            "--methods",
            "zf",
            "--model",
            tmp_path / "m" / "model.blm",
            "--out",
            tmp_path / "fresh",
        ).exit_code
        == 0
    )
    assert rows(tmp_path / "fresh" / "results.csv") == second
    # another batch size is another experiment (the SER draws depend on it)
    res = cli(*ev, "--batch-size", "7", "--metric", "ser")
    assert res.exit_code == 0


def test_item4_non_finite_model_outputs_are_an_error(tmp_path):
    from beamlearn.systems.unfolded_pga import UnfoldedPGA

    m = UnfoldedPGA(layers=2, inner_steps=2)
    with torch.no_grad():
        m.mu[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite"):
        evaluate("unfolded-pga", [], [10.0], num_channels=8, models={"nan": m}, progress=False)


def test_item5_non_finite_channels_and_diverging_training_are_errors(tmp_path):
    h = get_scenario("rayleigh").channel_model()(8, seed=0)
    h[3, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="channels holds non-finite values"):
        evaluate("rayleigh", "zf", [0.0], channels=h, progress=False)

    class NaNData(UnfoldedPGATask):
        def data(self):
            tr, va = super().data()
            tr = tr.clone()
            tr[0, 0, 0] = float("nan")
            return tr, va

    cfg = UnfoldedPGAConfig(
        snr_db=10, epochs=1, layers=1, inner_steps=1, train_channels=10, val_channels=5, batch_size=5
    )
    with pytest.raises(ValueError, match="training data .* non-finite"):
        train(NaNData(cfg), tmp_path / "a", progress=False, log=None)

    class Diverging(UnfoldedPGATask):
        def loss(self, model, h):
            loss, per = super().loss(model, h)
            return loss * float("inf"), per

    with pytest.raises(FloatingPointError, match="diverged"):
        train(Diverging(cfg), tmp_path / "b", progress=False, log=None)


def test_item9_two_models_in_folders_of_the_same_name_both_run(tmp_path):
    train_tiny(tmp_path / "a" / "run")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    res = cli(
        *EV,
        "--methods",
        "",
        "--model",
        tmp_path / "a" / "run" / "model.blm",
        "--model",
        tmp_path / "b" / "run" / "model.blm",
        "--out",
        tmp_path / "ev",
    )
    assert res.exit_code == 0, res.output
    assert len({m for m, _ in rows(tmp_path / "ev" / "results.csv")}) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_item10_cuda_without_cuda_is_one_line_everywhere(tmp_path):
    one_line_error(cli("reproduce", "unfolded-pga", "--quick", "--device", "cuda", "--out", tmp_path), "device", "CUDA")
    one_line_error(cli(*EV, "--device", "cuda", "--out", tmp_path / "e"), "device", "CUDA")
    one_line_error(
        cli("train", "unfolded-pga", "--snr-db", "10", "--device", "cuda", "--out", tmp_path / "t"), "device", "CUDA"
    )


# ---- low-severity: the refusal was right, the message was not ------------------------------------------------
def test_bad_output_folders(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    one_line_error(cli(*EV, "--methods", "zf", "--out", f), str(f))
    one_line_error(cli("train", "unfolded-pga", "--snr-db", "10", "--out", f, "--no-progress"), str(f))


def test_bad_devices_snrs_and_sizes(tmp_path):
    one_line_error(cli(*EV, "--methods", "zf", "--device", "foo", "--out", tmp_path), "device", "foo")
    one_line_error(cli("evaluate", "--methods", "zf", "--snr-db", "400", "--out", tmp_path), "snr_db")
    one_line_error(cli("evaluate", "--methods", "zf", "--snr-db", "1e9", "--out", tmp_path), "snr_db")
    one_line_error(cli("evaluate", "--methods", "zf", "--channels", "1000000000000", "--out", tmp_path), "channels")
    one_line_error(
        cli(
            "train",
            "unfolded-pga",
            "--snr-db",
            "10",
            "--train-channels",
            "1000000000000",
            "--batch-size",
            "10",
            "--out",
            tmp_path / "t",
            "--no-progress",
        ),
        "channels",
    )
    one_line_error(cli(*EV, "--methods", "zf", "--seed", str(2**70), "--out", tmp_path / "s"), "seed")


def test_duplicate_snrs_are_computed_once(tmp_path):
    res = cli("evaluate", "--methods", "zf", "--snr-db", "10,10", "--channels", "8", "--out", tmp_path, "--no-progress")
    assert res.exit_code == 0
    assert len(list(csv.DictReader(open(tmp_path / "results.csv")))) == 1


def test_damaged_checkpoints_and_caches(tmp_path):
    args = [
        "train",
        "unfolded-pga",
        "--snr-db",
        "10",
        "--epochs",
        "1",
        "--layers",
        "1",
        "--inner-steps",
        "1",
        "--train-channels",
        "10",
        "--val-channels",
        "5",
        "--batch-size",
        "5",
        "--out",
        tmp_path / "t",
        "--no-progress",
    ]
    assert cli(*args).exit_code == 0
    (tmp_path / "t" / "checkpoint.pt").write_bytes(b"garbage")
    one_line_error(cli(*args), "checkpoint", "--no-resume")
    assert cli(*args, "--no-resume").exit_code == 0
    # a damaged cache cell is recomputed, never trusted
    out = tmp_path / "ev"
    assert cli(*EV, "--methods", "zf", "--out", out).exit_code == 0
    before = rows(out / "results.csv")
    for f in (out / "cache").rglob("*.pt"):
        f.write_bytes(f.read_bytes()[:20])
    assert cli(*EV, "--methods", "zf", "--out", out).exit_code == 0
    assert rows(out / "results.csv") == before


def test_bad_model_files(tmp_path):
    one_line_error(cli(*EV, "--methods", "zf", "--model", tmp_path, "--out", tmp_path / "e"), "is a directory")
    (tmp_path / "x.blm").write_bytes(b"BLMODEL1" + b"\0" * 50)
    one_line_error(cli(*EV, "--methods", "zf", "--model", tmp_path / "x.blm", "--out", tmp_path / "e"), "damaged")
    # a model for N=32, K=4 on N=64 channels
    train_tiny(tmp_path / "m")
    one_line_error(
        cli(
            *EV,
            "--methods",
            "zf",
            "--dataset",
            DATA / "rt_munich_k4_n64.blch",
            "--model",
            tmp_path / "m" / "model.blm",
            "--out",
            tmp_path / "e",
        ),
        "does not apply",
    )


def test_python_inputs_name_the_argument():
    import numpy as np

    with pytest.raises(TypeError, match="channels"):
        evaluate("rayleigh", "zf", [0.0], channels=np.ones((2, 4, 16), dtype=np.complex64), progress=False)
    with pytest.raises(TypeError, match="channels"):
        evaluate("rayleigh", "zf", [0.0], channels=torch.ones(2, 4, 16), progress=False)
    with pytest.raises(ValueError, match="seed"):
        evaluate("rayleigh", "zf", [0.0], num_channels=4, seed=2**70, progress=False)
    with pytest.raises(ValueError, match="snr_db"):
        evaluate("rayleigh", "zf", [float("nan")], num_channels=4, progress=False)


def test_train_config_checks_the_device():
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="foo")
    assert isinstance(TrainingTask, type)
