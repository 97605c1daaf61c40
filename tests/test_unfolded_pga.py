"""Unfolded PGA network, its training loop and the pretrained models (spec unfolded-pga-hbf.md s4, s7.8)."""

import csv
import dataclasses
import math

import pytest
import torch

from beamlearn.constraints import precoder_power
from beamlearn.hybrid import hybrid_sum_rate, pga, pga_init
from beamlearn.learned import ModelFileError, PerSNRModels, train
from beamlearn.metrics import sum_rate
from beamlearn.precoding import zf_precoder
from beamlearn.scenarios import get_scenario
from beamlearn.systems.unfolded_pga import WEIGHTS, UnfoldedPGA, UnfoldedPGATask
from beamlearn.systems.unfolded_pga import UnfoldedPGAConfig as TrainConfig
from beamlearn.systems.unfolded_pga import train as trainmod

C64, C128 = torch.complex64, torch.complex128


def channels(b, seed, dtype=C128, device="cpu"):
    return get_scenario("unfolded-pga").channel_model()(b, seed=seed, dtype=dtype, device=device)


def train_unfolded_pga(config, out, **kw):
    return train(UnfoldedPGATask(config), out, **kw)


def available_unfolded_pga_snrs():
    return WEIGHTS.snrs(get_scenario("unfolded-pga"))


def load_pretrained_unfolded_pga(snr_db):
    return PerSNRModels("unfolded-pga", WEIGHTS, get_scenario("unfolded-pga")).model_for(float(snr_db))


SMALL = dict(snr_db=10.0, layers=2, inner_steps=2, epochs=2, train_channels=40, val_channels=20, batch_size=10, seed=3)


# --------------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------------
def test_parameters_and_config():
    m = UnfoldedPGA()
    assert m.name == "unfolded-pga" and m.learned and m.hybrid
    assert m.mu.shape == (10, 10) and m.lam.shape == (10,)
    assert sum(p.numel() for p in m.parameters()) == 110
    assert torch.all(m.mu == 0.01) and torch.all(m.lam == 1e-4)
    assert m.config() == {
        "layers": 10,
        "inner_steps": 10,
        "mu_init": 0.01,
        "lam_init": 1e-4,
        "include_ln2": True,
        "inner_projection": True,
        "num_rf_chains": None,
    }
    assert UnfoldedPGA(**m.config()).config() == m.config()
    with pytest.raises(ValueError, match="layers"):
        UnfoldedPGA(layers=0)
    with pytest.raises(TypeError, match="include_ln2"):
        UnfoldedPGA(include_ln2=1)


@pytest.mark.parametrize("dtype", [C64, C128])
@pytest.mark.parametrize("inner_projection", [True, False])
def test_untrained_equals_conventional_pga(dtype, inner_projection):
    h = channels(16, seed=1, dtype=dtype)
    m = UnfoldedPGA(layers=4, inner_steps=3, inner_projection=inner_projection)
    with torch.no_grad():
        rates, bf = m.forward_layers(h, 10.0, 1.0, return_beamformers=True)
    ref, hist = pga(h, 10.0, 1.0, iterations=4, inner_steps=3, inner_projection=inner_projection, return_history=True)
    assert torch.equal(bf.analog, ref.analog) and torch.equal(bf.digital, ref.digital)
    assert torch.equal(rates, hist)
    assert bf.precoder.dtype == dtype


def test_forward_layers_feasible_and_differentiable():
    h = channels(8, seed=2)
    m = UnfoldedPGA(layers=3, inner_steps=2)
    with torch.no_grad():
        m.mu.mul_(5.0)
        m.lam.mul_(20.0)
    rates, bf = m.forward_layers(h, 100.0, 1.0, return_beamformers=True)
    assert rates.shape == (8, 4)
    f0, w0 = pga_init(h, 100.0)
    assert torch.allclose(rates[:, 0], hybrid_sum_rate(h, f0, w0, 1.0))
    assert torch.allclose(rates[:, -1], sum_rate(h, bf.precoder, 1.0), atol=1e-10)
    assert (1 - bf.analog.abs()).abs().max() <= 1e-12
    assert torch.allclose(precoder_power(bf.precoder), torch.full((8,), 100.0, dtype=torch.float64), rtol=1e-10)
    (-rates[:, 1:].mean(0).sum()).backward()
    for p in (m.mu, m.lam):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    out = m(h, 100.0, 1.0)
    assert torch.allclose(out.precoder, bf.precoder)


def test_save_load_round_trip(tmp_path):
    m = UnfoldedPGA(layers=3, inner_steps=2, include_ln2=False)
    with torch.no_grad():
        m.mu.copy_(torch.rand(3, 2, dtype=torch.float64))
        m.lam.copy_(torch.rand(3, dtype=torch.float64) * 1e-3)
    m.metadata = {"snr_db": 5.0}
    path = tmp_path / "sub" / "model.blm"
    m.save(path, metadata={"training": {"best_epoch": 3}})
    m2 = UnfoldedPGA.load(path)
    assert m2.config() == m.config()
    assert torch.equal(m2.mu, m.mu) and torch.equal(m2.lam, m.lam)
    assert m2.metadata == {"snr_db": 5.0, "training": {"best_epoch": 3}}
    h = channels(4, seed=3)
    assert torch.equal(m2(h, 3.0, 1.0).precoder, m(h, 3.0, 1.0).precoder)
    assert [p.name for p in path.parent.iterdir()] == ["model.blm"]  # no temporary files left
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a beamlearn model file"):
        UnfoldedPGA.load(tmp_path / "other.pt")


# --------------------------------------------------------------------------------------------------
# training configuration
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field,value",
    [
        ("layers", 0),
        ("inner_steps", 0),
        ("epochs", -1),
        ("train_channels", 0),
        ("val_channels", 0),
        ("batch_size", 501),
        ("lr", -1e-3),
        ("lr_decay", 1.5),
        ("loss", "mse"),
        ("dtype", "float32"),
        ("snr_db", float("nan")),
        ("scenario", "mser"),
        ("scenario", "nope"),
        ("seed", -1),
        ("num_rf_chains", 3),
    ],
)
def test_config_validation_names_parameter(field, value):
    with pytest.raises((ValueError, TypeError), match=field):
        TrainConfig(**{field: value})


def test_config_defaults():
    c = TrainConfig()
    assert (c.snr_db, c.layers, c.inner_steps, c.epochs, c.train_channels, c.val_channels, c.batch_size) == (
        10.0,
        10,
        10,
        20,
        500,
        200,
        10,
    )
    assert c.lr_decay == 0.97 and c.learning_rate == 1e-3
    assert TrainConfig(snr_db=20).learning_rate == 1e-4  # stability safeguard (documented deviation)
    assert TrainConfig(snr_db=20, lr=1e-3).learning_rate == 1e-3
    assert c.train_seed != c.val_seed
    with pytest.raises(TypeError, match="layers"):
        TrainConfig(layers=2.0)


# --------------------------------------------------------------------------------------------------
# training loop
# --------------------------------------------------------------------------------------------------
def _read_log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_log_checkpoint_and_model(tmp_path):
    cfg = TrainConfig(**SMALL)
    s = train_unfolded_pga(cfg, tmp_path, progress=False, log=None)
    for name in ("train_log.csv", "checkpoint.pt", "model.blm", "summary.json"):
        assert (tmp_path / name).exists()
    rows = _read_log(tmp_path / "train_log.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert list(rows[0]) == ["epoch", "stage", "train_rate", "val_rate", "lr", "seconds"]
    assert float(rows[1]["lr"]) == pytest.approx(1e-3) and float(rows[2]["lr"]) == pytest.approx(0.97e-3)
    vals = [float(r["val_rate"]) for r in rows]
    assert s["best_epoch"] == max(range(3), key=lambda i: vals[i])
    assert s["best_val"] == pytest.approx(max(vals))
    # epoch 0 is the untrained network = conventional PGA with I iterations on the validation set
    sc = get_scenario("unfolded-pga")
    h_val = sc.channel_model()(cfg.val_channels, seed=cfg.val_seed, dtype=C128)
    _, hist = pga(h_val, 10.0, 1.0, iterations=2, inner_steps=2, return_history=True)
    assert vals[0] == pytest.approx(hist[:, -1].mean().item(), abs=1e-12)
    m = UnfoldedPGA.load(tmp_path / "model.blm")
    assert m.metadata["snr_db"] == 10.0 and m.metadata["training"]["best_epoch"] == s["best_epoch"]
    with torch.no_grad():
        r = m.forward_layers(h_val, 10.0, 1.0)[:, -1].mean().item()
    assert r == pytest.approx(s["best_val"], abs=1e-12)
    assert s["best_val"] > vals[0]  # training helps even on this tiny problem


def test_resume_equals_uninterrupted(tmp_path):
    cfg = TrainConfig(**SMALL)
    full = train_unfolded_pga(cfg, tmp_path / "full", progress=False, log=None)

    class Stop(Exception):
        pass

    def crash_after_epoch_1(line):
        if line.startswith("epoch 1/"):
            raise Stop  # the epoch-1 checkpoint has been written

    with pytest.raises(Stop):
        train_unfolded_pga(cfg, tmp_path / "cut", progress=False, log=crash_after_epoch_1)
    assert [int(r["epoch"]) for r in _read_log(tmp_path / "cut" / "train_log.csv")] == [0, 1]
    lines = []
    resumed = train_unfolded_pga(cfg, tmp_path / "cut", progress=False, log=lines.append)
    assert lines[0].startswith("resuming")
    key = lambda rows: [(r["epoch"], r["train_rate"], r["val_rate"], r["lr"]) for r in rows]  # noqa: E731
    assert key(resumed["log"]) == key(full["log"])
    assert resumed["best_epoch"] == full["best_epoch"]
    a = UnfoldedPGA.load(tmp_path / "full" / "model.blm")
    b = UnfoldedPGA.load(tmp_path / "cut" / "model.blm")
    assert torch.equal(a.mu, b.mu) and torch.equal(a.lam, b.lam)
    ca = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    cb = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert torch.equal(ca["model"]["mu"], cb["model"]["mu"])
    # extending a finished run to more epochs is allowed; a different configuration is not
    with pytest.raises(ValueError, match="lr"):
        train_unfolded_pga(dataclasses.replace(cfg, lr=5e-3), tmp_path / "cut", progress=False, log=None)
    # resume=False starts afresh
    again = train_unfolded_pga(
        dataclasses.replace(cfg, lr=5e-3), tmp_path / "cut", progress=False, log=None, resume=False
    )
    assert again["lr"] == 5e-3


def test_best_epoch_is_kept(tmp_path, monkeypatch):
    cfg = TrainConfig(**dict(SMALL, epochs=3))
    # reference: the parameters after one epoch
    ref = train_unfolded_pga(dataclasses.replace(cfg, epochs=1), tmp_path / "one", progress=False, log=None)
    ck1 = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["model"]
    assert ref["epochs"] == 1
    # script the validation rates: epoch 1 is the best, later epochs are worse
    script = iter([10.0, 12.0, 11.0, float("nan")])
    real = trainmod.evaluate_layers

    def fake(model, h, power, noise_var, batch_size=1000):
        out = real(model, h, power, noise_var, batch_size)
        if h.shape[0] == cfg.val_channels:
            out = out.clone()
            out[-1] = next(script)
        return out

    monkeypatch.setattr(trainmod, "evaluate_layers", fake)
    s = train_unfolded_pga(cfg, tmp_path / "three", progress=False, log=None)
    assert s["best_epoch"] == 1 and s["best_val"] == 12.0 and math.isnan(s["last_val"])
    m = UnfoldedPGA.load(tmp_path / "three" / "model.blm")
    assert torch.equal(m.mu, ck1["mu"]) and torch.equal(m.lam, ck1["lam"])


# --------------------------------------------------------------------------------------------------
# pretrained models
# --------------------------------------------------------------------------------------------------
def test_pretrained_models_load():
    assert available_unfolded_pga_snrs() == [0.0, 5.0, 10.0, 15.0, 20.0]
    m = load_pretrained_unfolded_pga(10)
    assert isinstance(m, UnfoldedPGA) and m.metadata["snr_db"] == 10.0
    assert m.config()["layers"] == 10 and m.config()["inner_steps"] == 10
    assert load_pretrained_unfolded_pga(20.0).metadata["snr_db"] == 20.0
    with pytest.raises(ValueError, match="available SNRs.*0, 5, 10, 15, 20"):
        load_pretrained_unfolded_pga(7)
    # the 10 dB model beats conventional PGA (30 iterations) on fresh channels
    h = channels(200, seed=777)
    with torch.no_grad():
        r = m.forward_layers(h, 10.0, 1.0).mean(0)
    _, hist = pga(h, 10.0, 1.0, return_history=True)
    assert r[-1] > hist[:, -1].mean() + 0.15
    assert r.diff().min() > -1e-3  # sum-over-layers loss: monotone per-layer curve


@pytest.mark.slow
def test_pretrained_acceptance_s7_8():
    # spec s7.8 (a)-(e) on 1000 test channels (seed 12345), complex128
    h = channels(1000, seed=12345)
    for snr in (0, 5, 10, 15, 20):
        p = 10 ** (snr / 10)
        m = load_pretrained_unfolded_pga(snr)
        with torch.no_grad():
            layers = m.forward_layers(h, p, 1.0).mean(0)
        _, hist = pga(h, p, 1.0, return_history=True)
        pga30 = hist[:, -1].mean().item()
        zf = sum_rate(h, zf_precoder(h, p), 1.0).mean().item()
        final = layers[-1].item()
        if snr == 10:
            assert final >= 16.40  # (a)
            assert final - pga30 >= 0.2  # (b)
            assert layers[3].item() > pga30  # (d), sum-over-layers reading
        elif snr < 20:
            assert final - pga30 >= 0.1  # (b)
        else:
            assert final >= pga30 - 0.05  # (e)
        if snr <= 15:
            assert final >= 0.94 * zf  # (c)
