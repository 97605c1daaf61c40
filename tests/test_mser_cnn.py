"""The black-box benchmark CNN of the MSER paper (spec mser-unfolding-hbf.md s4.11, s4.13)."""

import csv
import math

import pytest
import torch

from beamlearn.learned import load_model, train
from beamlearn.scenarios import get_scenario
from beamlearn.systems.mser.cnn import (
    BenchmarkCNN,
    CNNConfig,
    CNNTask,
    cnn_loss,
    fc_parameters,
    freeze_except_fc,
    parameter_count,
)
from beamlearn.systems.mser.objective import sum_mse

SC = get_scenario("mser")
SMALL = dict(epochs=2, train_channels=40, val_channels=20, batch_size=20, channels=8, num_samples=64, seed=1)


def channels(shape, seed=0, dtype=torch.complex64):
    return SC.channel_model()(shape, seed=seed, dtype=dtype)


def check_constraints(bf, power, k=2, nr=8, nt=64, rt=8, rr=4, dk=3):
    lead = bf.precoder.shape[:-2]
    assert bf.precoder.shape == (*lead, nt, k * dk)
    assert bf.analog.shape == (*lead, nt, rt) and bf.digital.shape == (*lead, rt, k * dk)
    assert bf.rx_analog.shape == (*lead, k, nr, rr) and bf.rx_digital.shape == (*lead, k, rr, dk)
    one = torch.ones((), dtype=bf.analog.real.dtype)
    torch.testing.assert_close(bf.analog.abs(), one.expand(bf.analog.shape))  # |F| = 1
    torch.testing.assert_close(bf.rx_analog.abs(), one.expand(bf.rx_analog.shape))  # |U| = 1
    torch.testing.assert_close(bf.precoder, bf.analog @ bf.digital)
    p = torch.as_tensor(power, dtype=one.dtype).expand(lead)
    torch.testing.assert_close(bf.precoder.abs().square().sum((-1, -2)), p)  # ||F V||^2 = P
    cols = (bf.rx_analog @ bf.rx_digital).abs().square().sum(-2)  # ||U_k^H w_ik||^2
    torch.testing.assert_close(cols, one.expand(cols.shape))
    assert bf.detection == "sign"


def test_outputs_meet_the_constraints_at_default_sizes():
    m = BenchmarkCNN()
    assert m.config() == {
        "num_bs_antennas": 64,
        "num_rf_chains": 8,
        "num_users": 2,
        "num_rx_antennas": 8,
        "num_rx_rf_chains": 4,
        "num_streams": 3,
        "channels": 32,
        "criterion": "ser",
        "modulation": "qpsk",
    }
    assert m.learned and m.hybrid and not m.training  # eval mode from the start
    assert m.metadata == {"modulation": "qpsk", "modulation_order": 4}
    n = sum(p.numel() for p in m.parameters())
    assert n == parameter_count() == 3_061_272
    h = channels(4)
    with torch.no_grad():
        bf = m(h, 1.0, 0.01)
    check_constraints(bf, 1.0)
    with torch.no_grad():  # complex128 channels, another power
        bf = m(h.to(torch.complex128), 2.5, 0.01)
    assert bf.precoder.dtype == torch.complex128
    check_constraints(bf, 2.5)


def test_batched_leading_dims_match_per_channel_calls():
    m = BenchmarkCNN(channels=8)
    h = channels((3, 2))
    power = torch.tensor([[1.0, 2.0], [0.5, 1.0], [1.0, 3.0]])
    with torch.no_grad():
        bf = m(h, power, 0.1)
        check_constraints(bf, power)
        one = m(h[1, 1], 1.0, 0.1)  # eval-mode BatchNorm: no coupling across the batch
    assert bf.precoder.shape == (3, 2, 64, 6) and one.precoder.shape == (64, 6)
    torch.testing.assert_close(bf.precoder[1, 1], one.precoder, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bf.rx_digital[1, 1], one.rx_digital, rtol=1e-4, atol=1e-5)


def test_wrong_sizes_and_options_are_refused():
    m = BenchmarkCNN(channels=4)
    with pytest.raises(ValueError, match="K=2, Nr=8, Nt=64"):
        m(torch.zeros(2, 3, 8, 64, dtype=torch.complex64), 1.0, 0.1)
    with pytest.raises(TypeError, match="complex"):
        m(torch.zeros(2, 2, 8, 64), 1.0, 0.1)
    with pytest.raises(ValueError, match="criterion"):
        BenchmarkCNN(criterion="mae")
    with pytest.raises(ValueError, match="modulation"):
        BenchmarkCNN(modulation="8psk")
    with pytest.raises(ValueError, match="num_rf_chains"):
        BenchmarkCNN(num_rf_chains=4)  # fewer than K D_k = 6


def test_tiny_inputs_pass_the_pooling():
    """Maps of side 1 and odd sides (MaxPool2x2 with ceil_mode, then AdaptiveMaxPool to 4 x 4)."""
    m = BenchmarkCNN(
        num_bs_antennas=5,
        num_rf_chains=3,
        num_users=3,
        num_rx_antennas=1,
        num_rx_rf_chains=1,
        num_streams=1,
        channels=4,
    )
    h = torch.randn(2, 3, 1, 5, dtype=torch.complex64)
    with torch.no_grad():
        bf = m(h, 1.0, 0.1)
    check_constraints(bf, 1.0, k=3, nr=1, nt=5, rt=3, rr=1, dk=1)


def test_save_load_round_trip_reproduces_outputs(tmp_path):
    torch.manual_seed(0)
    m = BenchmarkCNN(channels=8, criterion="mse", modulation="16qam")
    path = tmp_path / "cnn.blm"
    m.save(path, metadata={"snr_db": 15.0})
    back = load_model(path)
    assert isinstance(back, BenchmarkCNN) and not back.training
    assert back.config() == m.config()
    assert back.metadata["modulation_order"] == 16 and back.metadata["snr_db"] == 15.0
    h = channels(3)
    with torch.no_grad():
        a, b = m(h, 1.0, 0.05), back(h, 1.0, 0.05)
    assert a.detection == b.detection == "equalized"
    for f in ("precoder", "analog", "digital", "rx_analog", "rx_digital"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f


def test_freeze_except_fc_leaves_only_fc_trainable():
    m = BenchmarkCNN(channels=4)
    fc = freeze_except_fc(m)
    linear = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)]
    assert len(linear) == 12  # 3 per CNN
    ids = {id(p) for mod in linear for p in mod.parameters()}
    assert {id(p) for p in fc} == ids == {id(p) for p in fc_parameters(m)}
    trainable = {name for name, p in m.named_parameters() if p.requires_grad}
    assert {id(p) for p in m.parameters() if p.requires_grad} == ids
    assert trainable and all(isinstance(m.get_submodule(n.rsplit(".", 1)[0]), torch.nn.Linear) for n in trainable)
    m.train()
    cnn_loss(m, m.link(channels(4), 1.0, 0.1), num_samples=16).backward()
    assert all((p.grad is not None) == (id(p) in ids) for p in m.parameters())


def test_losses():
    m = BenchmarkCNN(channels=4)
    link = m.link(channels(5), 1.0, 0.1)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        ser = cnn_loss(m, link, generator=g, num_samples=64)
        g.manual_seed(3)
        assert float(ser) == float(cnn_loss(m, link, generator=g, num_samples=64))  # symbols from the generator
    assert 0 < float(ser) <= 2 * 6  # sum over D = 6 streams of P_R + P_I
    m.criterion = "mse"
    torch.testing.assert_close(cnn_loss(m, link), sum_mse(link, m.design(link)).mean())


def test_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    m = BenchmarkCNN(channels=8).train()
    link = m.link(channels(8, seed=1), *SC.power_and_noise(10.0))
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = cnn_loss(m, link, generator=torch.Generator().manual_seed(5), num_samples=64)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses


def test_config_checks():
    c = CNNConfig()
    assert (c.snr_db, c.scenario, c.modulation, c.criterion, c.channels) == (20.0, "mser", "qpsk", "ser", 32)
    assert (c.train_channels, c.val_channels, c.epochs, c.batch_size) == (10000, 100, 100, 20)
    assert (c.learning_rate, c.momentum, c.lr_decay, c.lr_step) == (0.01, 0.9, 0.5, 10)
    for kw, name in [
        (dict(momentum=1.0), "momentum"),
        (dict(criterion="mae"), "criterion"),
        (dict(modulation="8psk"), "modulation"),
        (dict(channels=0), "channels"),
        (dict(scenario="unfolded-pga"), "scenario"),
        (dict(train_channels=41, batch_size=20), "train_channels % batch_size"),
        (dict(snr_db=math.inf), "snr_db"),
    ]:
        with pytest.raises(ValueError, match=name):
            CNNConfig(**kw)
    st = CNNTask(CNNConfig(epochs=30)).stages()
    assert len(st) == 1 and st[0].optimizer == "sgd" and st[0].momentum == 0.9
    assert (st[0].lr, st[0].lr_step, st[0].lr_decay, st[0].parameters) == (0.01, 10, 0.5, None)


def test_training_with_the_shared_trainer(tmp_path):
    out = tmp_path / "run"
    summary = train(CNNTask(CNNConfig(snr_db=10.0, **SMALL)), out, progress=False, log=None)
    assert (out / "train_log.csv").exists() and (out / "model.blm").exists()
    with open(out / "train_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert {"train_minus_ser_bound", "val_minus_ser_bound"} <= set(rows[0])
    vals = [float(r["val_minus_ser_bound"]) for r in rows]
    assert all(-2 <= v < 0 for v in vals)  # minus a per-stream SER bound
    assert float(rows[1]["lr"]) == 0.01
    m = load_model(out / "model.blm")
    assert isinstance(m, BenchmarkCNN) and m.channels == 8
    assert m.metadata["snr_db"] == 10.0 and m.metadata["criterion"] == "ser"
    assert m.metadata["training"]["best_epoch"] == summary["best_epoch"]

    # transfer learning: start from that model and train the FC layers only
    cfg = CNNConfig(snr_db=10.0, **{**SMALL, "epochs": 1, "seed": 2}, fc_only=True, init_from=str(out / "model.blm"))
    task = CNNTask(cfg)
    assert task.stages()[0].parameters is fc_parameters
    train(task, tmp_path / "ft", progress=False, log=None)
    ft = load_model(tmp_path / "ft" / "model.blm")
    fc = {id(p) for p in fc_parameters(ft)}
    names = [n for n, p in ft.named_parameters() if id(p) not in fc]
    before, after = dict(m.named_parameters()), dict(ft.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in names)  # convolutions and BatchNorm affine frozen
