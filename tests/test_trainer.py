"""The shared trainer: stages, checkpoints, resume after a kill, best epoch, configuration checks."""

import csv
import dataclasses

import pytest
import torch

from beamlearn.interface import Beamformers
from beamlearn.learned import LearnedMethod, Stage, TrainConfig, TrainingTask, load_model, train


class Quadratic(LearnedMethod):
    """Two parameter groups fitted to noisy targets: a regression whose loss is easy to read."""

    name = "quadratic"
    model_name = "test-trainer-quadratic"

    def __init__(self, size: int = 3):
        super().__init__()
        self.size = size
        self.a = torch.nn.Parameter(torch.zeros(size, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.zeros(size, dtype=torch.float64))

    def forward(self, h, power, noise_var):  # pragma: no cover - not a beamformer
        return Beamformers()


@dataclasses.dataclass(frozen=True)
class QuadConfig(TrainConfig):
    epochs: int = 6
    train_channels: int = 40
    val_channels: int = 10
    batch_size: int = 8
    two_stages: bool = True


class QuadTask(TrainingTask):
    metric = "score"

    def build_model(self):
        return Quadratic()

    def data(self):
        g = torch.Generator().manual_seed(self.config.seed)
        target = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
        x = target + 0.1 * torch.randn(
            self.config.train_channels + self.config.val_channels, 3, generator=g, dtype=torch.float64
        )
        return x[: self.config.train_channels], x[self.config.train_channels :]

    def _err(self, model, x):
        return ((model.a + model.b - x) ** 2).sum(-1)

    def loss(self, model, x):
        e = self._err(model, x)
        return e.mean(), -e

    def validate(self, model, x):
        return float(-self._err(model, x).mean())

    def stages(self):
        c = self.config
        if not c.two_stages:
            return super().stages()
        return [
            Stage("a-only", 2, 0.1, parameters=lambda m: [m.a]),
            Stage(
                "b-only",
                c.epochs - 2,
                0.05,
                parameters=lambda m: [m.b],
                optimizer="sgd",
                momentum=0.9,
                lr_decay=0.5,
                lr_step=2,
            ),
        ]


def _log(path):
    return list(csv.DictReader(open(path)))


def test_stages_train_only_their_parameters(tmp_path):
    seen = []

    def snapshot(epoch):
        m = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
        seen.append((epoch, m["a"].clone(), m["b"].clone()))

    s = train(QuadTask(QuadConfig()), tmp_path, progress=False, log=None, on_epoch_end=snapshot)
    (_, a1, b1), (_, a2, b2), (_, a3, b3) = seen[0], seen[1], seen[2]
    assert torch.all(b1 == 0) and torch.all(b2 == 0) and not torch.all(a1 == 0)  # stage 1 trains a only
    assert torch.equal(a3, a2) and not torch.equal(b3, b2)  # stage 2 trains b only
    rows = _log(tmp_path / "train_log.csv")
    assert list(rows[0]) == ["epoch", "stage", "train_score", "val_score", "lr", "seconds"]
    assert [r["stage"] for r in rows] == ["untrained", "a-only", "a-only", "b-only", "b-only", "b-only", "b-only"]
    # stage 2: SGD at 0.05 halved every 2 epochs (StepLR)
    assert [float(r["lr"]) for r in rows[3:]] == pytest.approx([0.05, 0.05, 0.025, 0.025])
    assert s["best_val"] == max(float(r["val_score"]) for r in rows) and s["best_val"] > float(rows[0]["val_score"])
    m = load_model(tmp_path / "model.blm")
    assert m.metadata["training"]["best_epoch"] == s["best_epoch"]


@pytest.mark.parametrize("kill_after", [2, 3])
def test_killed_run_resumes_to_the_same_weights(tmp_path, kill_after):
    """Killed after epoch 2 (the stage boundary) or 3 (inside stage 2, with SGD momentum and a step
    schedule in flight), the resumed run ends bit-identical to an uninterrupted one."""
    cfg = QuadConfig(seed=4)
    full = train(QuadTask(cfg), tmp_path / "full", progress=False, log=None)

    class Killed(Exception):
        pass

    def kill(epoch):
        if epoch == kill_after:
            raise Killed

    with pytest.raises(Killed):
        train(QuadTask(cfg), tmp_path / "cut", progress=False, log=None, on_epoch_end=kill)
    assert len(_log(tmp_path / "cut" / "train_log.csv")) == kill_after + 1
    lines = []
    resumed = train(QuadTask(cfg), tmp_path / "cut", progress=False, log=lines.append)
    assert lines[0].startswith(f"resuming {tmp_path / 'cut'} after epoch {kill_after}")
    a, b = load_model(tmp_path / "full" / "model.blm"), load_model(tmp_path / "cut" / "model.blm")
    assert torch.equal(a.a, b.a) and torch.equal(a.b, b.b)
    key = lambda rows: [(r["epoch"], r["stage"], r["train_score"], r["val_score"], r["lr"]) for r in rows]  # noqa: E731
    assert key(resumed["log"]) == key(full["log"]) and resumed["best_epoch"] == full["best_epoch"]
    ca = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    cb = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert torch.equal(ca["model"]["b"], cb["model"]["b"])
    assert ca["optimizer"]["state"][0]["momentum_buffer"].equal(cb["optimizer"]["state"][0]["momentum_buffer"])


def test_resume_refuses_another_configuration(tmp_path):
    train(QuadTask(QuadConfig(epochs=3)), tmp_path, progress=False, log=None)
    with pytest.raises(ValueError, match="batch_size: checkpoint 8 vs config 4"):
        train(QuadTask(QuadConfig(epochs=3, batch_size=4)), tmp_path, progress=False, log=None)
    # more epochs extend the run; resume=False starts afresh
    more = train(QuadTask(QuadConfig(epochs=5)), tmp_path, progress=False, log=None)
    assert [r["epoch"] for r in more["log"]] == [0, 1, 2, 3, 4, 5]
    fresh = train(QuadTask(QuadConfig(epochs=3, batch_size=4)), tmp_path, progress=False, log=None, resume=False)
    assert len(fresh["log"]) == 4


def test_stages_must_cover_the_epochs_and_config_is_validated(tmp_path):
    class Bad(QuadTask):
        def stages(self):
            return [Stage("s", 1, 0.1)]

    with pytest.raises(ValueError, match="add up to 1 epochs.*epochs=6"):
        train(Bad(QuadConfig()), tmp_path, progress=False, log=None)
    for field, value in [
        ("epochs", -1),
        ("batch_size", 0),
        ("lr", -1.0),
        ("lr_decay", 0.0),
        ("lr_step", 0),
        ("dtype", "float16"),
        ("seed", -2),
    ]:
        with pytest.raises((ValueError, TypeError), match=field if field != "dtype" else "dtype"):
            QuadConfig(**{field: value})
    with pytest.raises(ValueError, match="optimizer"):
        Stage("s", 1, 0.1, optimizer="lbfgs")
    with pytest.raises(TypeError, match="TrainingTask"):
        train(object(), tmp_path)


def test_random_initialisation_is_seeded(tmp_path):
    class RandomInit(QuadTask):
        def build_model(self):
            m = Quadratic()
            with torch.no_grad():
                m.a.normal_()  # the global RNG
            return m

    torch.rand(7)  # whatever the process did before
    a = train(RandomInit(QuadConfig(seed=1, epochs=3, two_stages=False)), tmp_path / "a", progress=False, log=None)
    torch.rand(3)
    b = train(RandomInit(QuadConfig(seed=1, epochs=3, two_stages=False)), tmp_path / "b", progress=False, log=None)
    assert a["log"][0]["val_score"] == b["log"][0]["val_score"]
    assert torch.equal(load_model(tmp_path / "a" / "model.blm").a, load_model(tmp_path / "b" / "model.blm").a)


def test_resume_refuses_changed_stages_but_allows_a_longer_last_stage(tmp_path):
    class Half(QuadTask):  # stages of epochs // 2 and the rest: extending epochs would move the boundary
        def stages(self):
            e = self.config.epochs
            return [
                Stage("a-only", e // 2, 0.1, parameters=lambda m: [m.a]),
                Stage("b-only", e - e // 2, 0.05, parameters=lambda m: [m.b]),
            ]

    class Killed(Exception):
        pass

    def kill(epoch):
        if epoch == 3:
            raise Killed

    with pytest.raises(Killed):
        train(Half(QuadConfig(epochs=4)), tmp_path, progress=False, log=None, on_epoch_end=kill)
    with pytest.raises(ValueError, match="other training stages"):
        train(Half(QuadConfig(epochs=8)), tmp_path, progress=False, log=None)
    # QuadTask's default layout keeps stage 1 at 2 epochs and grows the last stage: allowed
    with pytest.raises(Killed):
        train(QuadTask(QuadConfig(epochs=4)), tmp_path / "q", progress=False, log=None, on_epoch_end=kill)
    more = train(QuadTask(QuadConfig(epochs=6)), tmp_path / "q", progress=False, log=None)
    assert [r["stage"] for r in more["log"]][1:] == ["a-only"] * 2 + ["b-only"] * 4


def test_task_sees_its_stage_and_saves_its_own_state(tmp_path):
    seen = []

    class Staged(QuadTask):
        def __init__(self, config):
            super().__init__(config)
            self.calls = 0

        def loss(self, model, x):
            seen.append(self.stage.options.get("phase"))
            self.calls += 1
            return super().loss(model, x)

        def stages(self):
            return [Stage("one", 1, 0.1, options={"phase": 1}), Stage("two", 1, 0.1, options={"phase": 2})]

        def state_dict(self):
            return {"calls": self.calls}

        def load_state_dict(self, state):
            self.calls = state.get("calls", 0)

    task = Staged(QuadConfig(epochs=2))
    train(task, tmp_path, progress=False, log=None)
    assert seen == [1] * 5 + [2] * 5  # 40 samples in batches of 8
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["task"] == {"calls": 10}
    again = Staged(QuadConfig(epochs=2))
    train(again, tmp_path, progress=False, log=None)  # finished: nothing to do, state restored
    assert again.calls == 10


class _NaNGrad(torch.autograd.Function):
    """Identity forward; a NaN gradient backward when ``bad``."""

    @staticmethod
    def forward(ctx, w, bad):
        ctx.bad = bad
        return w.clone()

    @staticmethod
    def backward(ctx, g):
        return (g * float("nan") if ctx.bad else g), None


def test_a_non_finite_gradient_step_is_skipped_with_clipping(tmp_path):
    """With grad_clip, a step whose gradient is NaN is skipped (and reported), so the parameters stay finite;
    without any finite step in an epoch the run stops with a clear error."""
    from toy_system import ToyConfig, ToyTask

    from beamlearn.learned import Stage

    class Flaky(ToyTask):
        calls = 0

        def stages(self):
            return [Stage("train", self.config.epochs, 0.2, grad_clip=10.0)]

        def loss(self, model, h):
            Flaky.calls += 1
            w = _NaNGrad.apply(model.log_scale, Flaky.calls % 2 == 0)  # every other step: NaN gradient
            loss, per = super().loss(model, h)
            return loss + 0 * w, per

    lines = []
    out = train(Flaky(ToyConfig(epochs=2)), tmp_path / "run", progress=False, log=lines.append)
    model = load_model(out["model_path"])
    assert torch.isfinite(model.log_scale).all()
    assert any("steps skipped: non-finite gradient" in line for line in lines)

    class Broken(Flaky):
        def loss(self, model, h):
            loss, per = ToyTask.loss(self, model, h)
            return loss + 0 * _NaNGrad.apply(model.log_scale, True), per

    with pytest.raises(FloatingPointError, match="every gradient of epoch 1 was non-finite"):
        train(Broken(ToyConfig(epochs=2)), tmp_path / "broken", progress=False, log=None)
