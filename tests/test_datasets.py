import csv

import pytest
import torch
from typer.testing import CliRunner

from beamlearn.channels import RayleighChannel
from beamlearn.cli import app
from beamlearn.datasets import DatasetError, build_dataset, load_channels, read_metadata, save_channels


def test_round_trip_is_exact(tmp_path):
    for dtype in (torch.complex64, torch.complex128):
        h = RayleighChannel(3, 8, 2)(5, seed=0, dtype=dtype)
        save_channels(tmp_path / "a.blch", h, {"note": "x"})
        g, header = load_channels(tmp_path / "a.blch")
        assert g.dtype == dtype and torch.equal(g, h)
        assert header["metadata"] == {"note": "x"} and header["shape"] == [5, 3, 2, 8]


def test_same_seed_same_file_and_metadata(tmp_path):
    a = build_dataset("rayleigh", 4, 16, 230, 5, tmp_path / "a.blch", chunk_size=100, progress=False)
    b = build_dataset("rayleigh", 4, 16, 230, 5, tmp_path / "b.blch", chunk_size=100, progress=False)
    assert (tmp_path / "a.blch").read_bytes() == (tmp_path / "b.blch").read_bytes()
    assert a["sha256"] == b["sha256"]
    meta = a["metadata"]
    assert (meta["source"], meta["num_users"], meta["num_antennas"], meta["drops"], meta["seed"]) == (
        "rayleigh",
        4,
        16,
        230,
        5,
    )
    assert "beamlearn" in meta["versions"]
    c = build_dataset("rayleigh", 4, 16, 230, 6, tmp_path / "c.blch", progress=False)
    assert c["sha256"] != a["sha256"]
    assert not (tmp_path / "a.blch.parts").exists()


def test_interrupted_build_resumes_and_gives_the_same_file(tmp_path, monkeypatch):
    ref = build_dataset("clustered-ula", 4, 32, 250, 3, tmp_path / "ref.blch", chunk_size=100, progress=False)
    # simulate an interruption after the first chunk: fail when the second chunk is drawn
    import beamlearn.datasets as ds

    calls = {"n": 0}
    orig = ds.save_channels

    def flaky(path, h, metadata=None):
        if str(path).endswith("chunk_000001.blch"):
            raise KeyboardInterrupt
        calls["n"] += 1
        return orig(path, h, metadata)

    monkeypatch.setattr(ds, "save_channels", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_dataset("clustered-ula", 4, 32, 250, 3, tmp_path / "x.blch", chunk_size=100, progress=False)
    assert (tmp_path / "x.blch.parts" / "chunk_000000.blch").exists() and not (tmp_path / "x.blch").exists()
    monkeypatch.setattr(ds, "save_channels", orig)
    drawn = []
    from beamlearn.channels import ClusteredChannel

    orig_call = ClusteredChannel.__call__

    def counting(self, n, **kw):
        drawn.append(n)
        return orig_call(self, n, **kw)

    monkeypatch.setattr(ClusteredChannel, "__call__", counting)
    out = build_dataset("clustered-ula", 4, 32, 250, 3, tmp_path / "x.blch", chunk_size=100, progress=False)
    assert drawn == [100, 50]  # chunk 0 was reused
    assert out["sha256"] == ref["sha256"]


def test_truncated_and_corrupted_files_are_refused(tmp_path):
    h = RayleighChannel(2, 4)(10, seed=1)
    p = tmp_path / "a.blch"
    save_channels(p, h)
    raw = p.read_bytes()
    (tmp_path / "t.blch").write_bytes(raw[:-7])
    with pytest.raises(DatasetError, match="truncated"):
        load_channels(tmp_path / "t.blch")
    (tmp_path / "h.blch").write_bytes(raw[:12])
    with pytest.raises(DatasetError, match="truncated"):
        load_channels(tmp_path / "h.blch")
    bad = bytearray(raw)
    bad[-3] ^= 0xFF
    (tmp_path / "c.blch").write_bytes(bytes(bad))
    with pytest.raises(DatasetError, match="SHA-256"):
        load_channels(tmp_path / "c.blch")
    (tmp_path / "n.blch").write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(DatasetError, match="not a beamlearn channel dataset"):
        read_metadata(tmp_path / "n.blch")
    with pytest.raises(DatasetError, match="does not exist"):
        load_channels(tmp_path / "missing.blch")


def test_mismatched_dataset_is_refused(tmp_path):
    save_channels(tmp_path / "a.blch", RayleighChannel(2, 4)(3, seed=0))
    with pytest.raises(DatasetError, match="K=2 users, but 4"):
        load_channels(tmp_path / "a.blch", num_users=4)
    with pytest.raises(DatasetError, match="N=4 BS antennas, but 32"):
        load_channels(tmp_path / "a.blch", num_antennas=32)


def test_non_finite_channels_are_not_written(tmp_path):
    h = RayleighChannel(2, 4)(3, seed=0)
    h[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        save_channels(tmp_path / "a.blch", h)


def test_bad_build_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown channel source"):
        build_dataset("deepmimo", 4, 8, 10, 0, tmp_path / "a.blch", progress=False)
    with pytest.raises(ValueError, match="drops"):
        build_dataset("rayleigh", 4, 8, 0, 0, tmp_path / "a.blch", progress=False)


def test_cli_build_evaluate_and_train_on_a_dataset(tmp_path):
    runner = CliRunner()
    f = tmp_path / "d.blch"
    res = runner.invoke(
        app,
        [
            "dataset",
            "build",
            "--source",
            "clustered-ula",
            "--users",
            "4",
            "--antennas",
            "32",
            "--drops",
            "130",
            "--seed",
            "2",
            "--out",
            str(f),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--dataset",
            str(f),
            "--methods",
            "zf,unfolded-pga",
            "--snr-db",
            "10",
            "--out",
            str(tmp_path / "ev"),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(tmp_path / "ev" / "results.csv")))
    assert [r["method"] for r in rows] == ["zf", "unfolded-pga"] and rows[0]["channels"] == "130"
    h, _ = load_channels(f)
    from beamlearn.metrics import sum_rate
    from beamlearn.precoding import zf_precoder

    assert float(rows[0]["sum_rate_mean"]) == pytest.approx(
        sum_rate(h, zf_precoder(h, 10.0), 1.0).double().mean().item(), rel=1e-6
    )
    res = runner.invoke(
        app,
        [
            "train",
            "unfolded-pga",
            "--snr-db",
            "10",
            "--out",
            str(tmp_path / "tr"),
            "--epochs",
            "1",
            "--train-channels",
            "100",
            "--val-channels",
            "30",
            "--layers",
            "2",
            "--inner-steps",
            "2",
            "--dataset",
            str(f),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["dataset", "info", str(f)])
    assert res.exit_code == 0 and "verified" in res.output
    f.write_bytes(f.read_bytes()[:-10])
    res = runner.invoke(app, ["evaluate", "--dataset", str(f), "--methods", "zf", "--no-progress"])
    assert res.exit_code == 2 and "truncated" in res.output
