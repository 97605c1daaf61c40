"""Model files (learned/serialization.py), save/load of learned methods (learned/base.py) and the
weights manifest (learned/weights.py)."""

import hashlib
import json
import os
import pickle

import numpy as np
import pytest
import torch

from beamlearn.learned import LearnedMethod, ModelFileError, WeightsManifest, load_model
from beamlearn.learned.serialization import MAGIC, read_model_file, write_model_file
from beamlearn.scenarios import get_scenario
from beamlearn.systems.unfolded_pga import WEIGHTS, UnfoldedPGA


class TinyModel(LearnedMethod):
    """A learned method with parameters of several dtypes and buffers (test-only model name)."""

    model_name = "test-model-files-tiny"

    def __init__(self, width: int = 3, scale: float = 0.5, tag: str = "a", flags: list | None = None):
        super().__init__()
        self.width, self.scale, self.tag, self.flags = width, scale, tag, flags
        self.w_c64 = torch.nn.Parameter(torch.zeros(width, 2, dtype=torch.complex64))
        self.w_f64 = torch.nn.Parameter(torch.zeros(width, dtype=torch.float64))
        self.w_f32 = torch.nn.Parameter(torch.zeros(2, width, dtype=torch.float32))
        self.register_buffer("counts", torch.zeros(width, dtype=torch.int64))
        self.register_buffer("mask", torch.zeros(width, dtype=torch.bool))
        self.register_buffer("c128", torch.zeros(1, dtype=torch.complex128))

    def forward(self, h, power, noise_var):  # pragma: no cover - not used
        raise NotImplementedError


def randomised(model: TinyModel, seed: int = 0) -> TinyModel:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.dtype == torch.bool:
                t.copy_(torch.rand(t.shape, generator=g) > 0.5)
            elif t.dtype == torch.int64:
                t.copy_(torch.randint(-(2**62), 2**62, t.shape, generator=g))
            elif t.is_complex():
                t.copy_(
                    torch.complex(
                        torch.randn(t.shape, generator=g, dtype=torch.float64),
                        torch.randn(t.shape, generator=g, dtype=torch.float64),
                    ).to(t.dtype)
                )
            else:
                t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64).to(t.dtype))
        # values whose bits a lossy round trip would change (parameters must be finite: NaN and inf
        # only in a buffer, where masks may hold them on purpose)
        model.w_f64[:2] = torch.tensor([-0.0, 5e-324], dtype=torch.float64)  # signed zero, subnormal
        model.w_f32[0, 0] = 1e-45  # subnormal float32
        model.c128[0] = complex(float("nan"), float("-inf"))
    return model


def raw_bytes(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().cpu().numpy().tobytes()


def assert_bit_equal(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert raw_bytes(a[name]) == raw_bytes(b[name]), name


# -- round trip ---------------------------------------------------------------------------------------


def test_round_trip_is_bit_exact_with_config_and_metadata(tmp_path):
    model = randomised(TinyModel(width=4, scale=0.25, tag="tiny", flags=[1, "x", None]))
    model.metadata = {"scenario": "unit", "snr_db": 3.0}
    path = tmp_path / "m.blm"
    model.save(path, metadata={"snr_db": 7.5, "training": {"epochs": [1, 2], "loss": 0.125}})
    assert sorted(os.listdir(tmp_path)) == ["m.blm"]  # no temporary file left behind
    assert model.metadata == {"scenario": "unit", "snr_db": 3.0}  # save does not change the model

    loaded = load_model(path)
    assert type(loaded) is TinyModel and not loaded.training
    assert loaded.config() == {"width": 4, "scale": 0.25, "tag": "tiny", "flags": [1, "x", None]}
    assert loaded.metadata == {"scenario": "unit", "snr_db": 7.5, "training": {"epochs": [1, 2], "loss": 0.125}}
    assert loaded.source_path == str(path)
    assert_bit_equal(model.state_dict(), loaded.state_dict())
    assert {n: p.dtype for n, p in loaded.named_parameters()} == {
        "w_c64": torch.complex64,
        "w_f64": torch.float64,
        "w_f32": torch.float32,
    }
    assert all(isinstance(p, torch.nn.Parameter) for p in loaded.parameters())

    again = TinyModel.load(path, map_location="cpu")
    assert_bit_equal(model.state_dict(), again.state_dict())
    # the header is plain JSON that names the model and indexes the tensors
    header, tensors = read_model_file(path)
    assert header["model"] == "test-model-files-tiny" and header["config"] == loaded.config()
    assert_bit_equal(model.state_dict(), tensors)
    # a second save over the same path replaces it atomically, leaving no temporary files
    randomised(model, seed=1).save(path)
    assert sorted(os.listdir(tmp_path)) == ["m.blm"]
    assert_bit_equal(model.state_dict(), load_model(path).state_dict())


# -- damaged files ------------------------------------------------------------------------------------


def test_every_single_byte_flip_is_refused(tmp_path):
    path = tmp_path / "small.blm"
    randomised(TinyModel(width=3)).save(path, metadata={"snr_db": 1.0})
    good = path.read_bytes()
    assert good[:8] == MAGIC and len(good) < 4000
    (hlen,) = np.frombuffer(good[40:48], dtype="<u8")
    assert 48 + int(hlen) < len(good)  # there is tensor data after the header
    bad = tmp_path / "bad.blm"
    for i in range(len(good)):  # magic, checksum, header length, header and data: every position
        flipped = bytearray(good)
        flipped[i] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        with pytest.raises(ModelFileError) as err:
            load_model(bad)
        assert isinstance(err.value, ValueError)
        expected = "not a beamlearn model file" if i < 8 else "checksum"
        assert expected in str(err.value), (i, str(err.value))
    for damaged in (good[:-1], good + b"\0", good[:47], good[:8], b""):  # truncated or extended
        bad.write_bytes(damaged)
        with pytest.raises(ModelFileError):
            load_model(bad)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.blm")


class _Payload:
    """Unpickling this creates the file named by ``target`` (code execution via __reduce__)."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_pickles_are_refused_without_executing_code(tmp_path, writer):
    # the payload is live: loading it the unsafe way does create its file
    control = tmp_path / "control"
    ctl_file = tmp_path / "ctl.pkl"
    if writer == "pickle":
        ctl_file.write_bytes(pickle.dumps(_Payload(control)))
        pickle.loads(ctl_file.read_bytes()).close()
    else:
        torch.save(_Payload(control), ctl_file)
        torch.load(ctl_file, weights_only=False).close()
    assert control.exists()

    sentinel = tmp_path / "SENTINEL"
    path = tmp_path / "evil.blm"
    if writer == "pickle":
        with open(path, "wb") as f:
            pickle.dump(_Payload(sentinel), f)
    else:
        torch.save(_Payload(sentinel), path)
    for load in (load_model, UnfoldedPGA.load, TinyModel.load, read_model_file):
        with pytest.raises(ModelFileError, match="not a beamlearn model file"):
            load(path)
    assert not sentinel.exists()


def test_unknown_model_and_wrong_class_are_refused(tmp_path):
    unknown = tmp_path / "unknown.blm"
    write_model_file(
        unknown, {"model": "no-such-model", "config": {}, "metadata": {}}, {"w": torch.ones(2, dtype=torch.float64)}
    )
    with pytest.raises(ModelFileError, match="no-such-model"):
        load_model(unknown)

    tiny = tmp_path / "tiny.blm"
    TinyModel().save(tiny)
    with pytest.raises(ModelFileError, match="UnfoldedPGA"):
        UnfoldedPGA.load(tiny)
    shipped = WEIGHTS.folder / WEIGHTS.entries[0].file
    with pytest.raises(ModelFileError, match="TinyModel"):
        TinyModel.load(shipped)
    assert isinstance(UnfoldedPGA.load(shipped), UnfoldedPGA)

    # a configuration the class rejects, and parameters that do not fit it
    bad_cfg = tmp_path / "bad_cfg.blm"
    write_model_file(bad_cfg, {"model": TinyModel.model_name, "config": {"depth": 2}, "metadata": {}}, {})
    with pytest.raises(ModelFileError, match="configuration"):
        load_model(bad_cfg)
    bad_state = tmp_path / "bad_state.blm"
    state = dict(TinyModel(width=2).state_dict())
    write_model_file(bad_state, {"model": TinyModel.model_name, "config": {"width": 3}, "metadata": {}}, state)
    with pytest.raises(ModelFileError, match="parameters"):
        load_model(bad_state)


# -- weights manifest ---------------------------------------------------------------------------------


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_manifest_add_lists_and_loads(tmp_path):
    sc = get_scenario("rayleigh")
    folder = tmp_path / "weights"
    src = tmp_path / "trained.blm"
    model = randomised(TinyModel(width=2, tag="five"))
    model.save(src, metadata={"snr_db": 5.0, "training": {"best_epoch": 3}})

    man = WeightsManifest(folder, system="tiny-system")
    assert man.entries == [] and man.unsupported(sc) is not None
    entry = man.add(src, sc, file="tiny_snr5.blm")
    assert (entry.file, entry.model, entry.snr_db, entry.scenario) == (
        "tiny_snr5.blm",
        TinyModel.model_name,
        5.0,
        "rayleigh",
    )
    assert entry.sha256 == sha256(folder / "tiny_snr5.blm") == sha256(src)
    assert entry.config == model.config() and entry.training == {"best_epoch": 3}
    listed = json.loads((folder / "manifest.json").read_text())
    assert listed["system"] == "tiny-system"
    assert [(m["file"], m["snr_db"], m["sha256"]) for m in listed["models"]] == [("tiny_snr5.blm", 5.0, entry.sha256)]

    reread = WeightsManifest(folder)
    assert reread.entries == [entry] and reread.system == "tiny-system"
    assert reread.snrs() == [5.0] and reread.snrs(sc) == [5.0]
    assert reread.find(sc, 5.0) == entry and reread.trained_on(sc) == [entry]
    assert_bit_equal(model.state_dict(), reread.load(entry).state_dict())

    # listing the same file name again replaces its entry; a second SNR adds one
    model.save(src, metadata={"snr_db": 10.0})
    man.add(src, sc, file="tiny_snr10.blm")
    assert [e.file for e in WeightsManifest(folder).entries] == ["tiny_snr5.blm", "tiny_snr10.blm"]
    man.add(src, sc, file="tiny_snr5.blm")
    assert sorted(e.snr_db for e in WeightsManifest(folder).entries) == [10.0, 10.0]


def test_manifest_refuses_file_modified_after_listing(tmp_path):
    sc = get_scenario("rayleigh")
    src = tmp_path / "m.blm"
    randomised(TinyModel()).save(src, metadata={"snr_db": 0.0})
    man = WeightsManifest(tmp_path / "w", system="tiny-system")
    entry = man.add(src, sc)
    # replaced by another valid model file: only the manifest checksum can tell
    randomised(TinyModel(), seed=5).save(tmp_path / "w" / entry.file, metadata={"snr_db": 0.0})
    with pytest.raises(ModelFileError, match="does not match its manifest checksum"):
        man.load(entry)
    (tmp_path / "w" / entry.file).unlink()
    with pytest.raises(ModelFileError, match="missing"):
        man.load(entry)


def test_manifest_unsupported_explains_sizes_and_missing_snrs(tmp_path):
    sc = get_scenario("rayleigh")
    src = tmp_path / "m.blm"
    man = WeightsManifest(tmp_path / "w", system="tiny-system")
    for snr in (0.0, 10.0):
        TinyModel().save(src, metadata={"snr_db": snr})
        man.add(src, sc, file=f"snr{snr:g}.blm")
    assert man.unsupported(sc) is None and man.unsupported(sc, [0, 10.0]) is None

    other = sc.replace(num_bs_antennas=32)
    msg = man.unsupported(other, [0.0])
    assert "sizes" in msg and "rayleigh" in msg and "beamlearn train tiny-system" in msg
    with pytest.raises(ValueError, match="sizes"):
        man.find(other, 0.0)
    # another channel source with the same sizes is served (a generalisation test), not trained on
    moved = sc.with_channel("correlated-rayleigh")
    assert man.unsupported(moved, [0.0]) is None and man.trained_on(moved) == []

    msg = man.unsupported(sc, [0.0, 5.0, 20.0])
    assert "5, 20 dB" in msg and "shipped: 0, 10" in msg
    with pytest.raises(ValueError, match="SNR 5 dB"):
        man.find(sc, 5.0)


def test_shipped_unfolded_pga_manifest_verifies():
    assert WEIGHTS.entries, "the unfolded-pga system ships models"
    listed = json.loads((WEIGHTS.folder / "manifest.json").read_text())["models"]
    assert [m["file"] for m in listed] == [e.file for e in WEIGHTS.entries]
    for e in WEIGHTS.entries:
        path = WEIGHTS.folder / e.file
        assert sha256(path) == e.sha256, e.file
        model = WEIGHTS.load(e)
        assert isinstance(model, UnfoldedPGA) and model.model_name == e.model
        assert model.metadata["snr_db"] == e.snr_db
        assert model.config() == e.config
    sc = get_scenario("unfolded-pga")
    assert WEIGHTS.unsupported(sc, WEIGHTS.snrs(sc)) is None
    assert WEIGHTS.snrs(sc) == sorted(e.snr_db for e in WEIGHTS.entries)


def test_non_finite_parameters_are_refused(tmp_path):
    model = randomised(TinyModel(width=4, scale=0.25, tag="tiny", flags=[]))
    with torch.no_grad():
        model.w_f64[1] = float("nan")
    model.save(tmp_path / "nan.blm")
    with pytest.raises(ModelFileError, match=r"parameters \['w_f64'\] hold non-finite values"):
        load_model(tmp_path / "nan.blm")
