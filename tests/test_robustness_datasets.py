"""Dataset files that are damaged, hand-made or absurd are refused with one clear line naming the file;
builds check their size up front, stream their chunks and survive a concurrent build of the same file."""

import errno
import hashlib
import json
import shutil
import struct
import threading
import weakref

import pytest
import torch
from typer.testing import CliRunner

import beamlearn.datasets as ds
from beamlearn.channels import RayleighChannel
from beamlearn.channels.base import ChannelModel
from beamlearn.channels.dataset import DatasetChannel
from beamlearn.cli import app
from beamlearn.datasets import DatasetError, build_dataset, load_channels, read_metadata, save_channels


def _data(drops=3, k=2, n=4, seed=0) -> bytes:
    return RayleighChannel(k, n)(drops, seed=seed).numpy().tobytes()


def _header(data: bytes, shape=(3, 2, 4), **changes) -> dict:
    h = {
        "format": "beamlearn-channels",
        "version": 1,
        "shape": list(shape),
        "dtype": "complex64",
        "sha256": hashlib.sha256(data).hexdigest(),
        "metadata": {},
    }
    h.update(changes)
    return h


def _write(path, header=None, data=b"", *, raw_header: bytes | None = None, length: int | None = None):
    """A dataset file written by hand (no header_sha256, as files written before it existed)."""
    hb = raw_header if raw_header is not None else json.dumps(header, sort_keys=True).encode()
    path.write_bytes(b"BLCHAN01" + struct.pack("<Q", len(hb) if length is None else length) + hb + data)
    return path


def _refused(path, *words, header_only=False):
    """load_channels, read_metadata (header problems), DatasetChannel and `dataset info` all refuse
    ``path`` with one line naming it and containing ``words``."""
    calls = [load_channels, DatasetChannel] + ([read_metadata] if header_only else [])
    for call in calls:
        with pytest.raises(DatasetError) as e:
            call(path)
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg, msg
        for w in words:
            assert w in msg, msg
    res = CliRunner().invoke(app, ["dataset", "info", str(path)])
    assert res.exit_code == 2 and res.exception is None or isinstance(res.exception, SystemExit), res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and path.name in lines[0], res.output


# -- item 5: non-finite data with a valid checksum ------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), complex(0, float("-inf"))])
def test_non_finite_data_with_a_valid_checksum_is_refused(tmp_path, bad):
    h = RayleighChannel(4, 8)(40, seed=0)
    h[7, 1, 3] = bad
    data = h.numpy().tobytes()
    p = _write(tmp_path / "nan.blch", _header(data, shape=(40, 4, 8)), data)
    _refused(p, "non-finite", "drop 7")
    with pytest.raises(DatasetError, match="non-finite"):
        load_channels(p, verify=False)
    # and training on it stops with that error instead of finishing with "train nan val nan"
    res = CliRunner().invoke(
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
            "30",
            "--val-channels",
            "10",
            "--layers",
            "2",
            "--inner-steps",
            "2",
            "--dataset",
            str(p),
            "--no-progress",
        ],
    )
    assert res.exit_code != 0 and "non-finite" in res.output and "nan" not in res.output.replace(str(p), ""), res.output


# -- item 6: size checked up front, chunks streamed ------------------------------------------------------


class _Boom(RuntimeError):
    pass


def test_build_whose_size_exceeds_the_free_disk_is_refused_up_front(tmp_path, monkeypatch):
    def no_draw(self, *a, **kw):
        raise _Boom("a chunk was drawn before the size check")

    monkeypatch.setattr(ChannelModel, "__call__", no_draw)
    out = tmp_path / "big" / "d.blch"
    with pytest.raises(ValueError) as e:  # real disk: 1e10 drops x 4 x 64 x 8 bytes = 20 TB
        build_dataset("rayleigh", 4, 64, 10_000_000_000, 0, out, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "drops=10000000000" in msg and "20.5 TB" in msg and "free" in msg, msg
    assert not out.exists() and not (tmp_path / "big" / "d.blch.parts").exists()
    res = CliRunner().invoke(
        app,
        ["dataset", "build", "--source", "rayleigh", "--users", "4", "--antennas", "64"]
        + ["--drops", "10000000000", "--out", str(out), "--no-progress"],
    )
    assert res.exit_code == 2 and res.output.startswith("error: drops=10000000000 needs"), res.output
    assert not (tmp_path / "big" / "d.blch.parts").exists()

    # a small build against a nearly full disk: sizes named, nothing written
    monkeypatch.setattr(ds.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 5000, 5000))
    with pytest.raises(ValueError, match=r"drops=1000 needs about 128.0 KB of disk \(1000 drops x K=2 x N=4 x 8 bytes"):
        build_dataset("rayleigh", 2, 4, 1000, 0, tmp_path / "s.blch", progress=False)
    with pytest.raises(ValueError, match=r"K=2 x Nr=3 x N=4 x 16 bytes"):
        build_dataset(
            "rayleigh",
            2,
            4,
            1000,
            0,
            tmp_path / "s.blch",
            progress=False,
            dtype="complex128",
            source_options={"num_rx_antennas": 3},
        )
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the output folder


class _Tracked(ChannelModel):
    """Rayleigh channels; remembers (weakly) every chunk it handed out."""

    def __init__(self):
        self.inner = RayleighChannel(3, 8)
        self.num_users, self.num_bs_antennas = 3, 8
        self.refs, self.alive = [], []

    def describe(self):
        return {"kind": "tracked"}

    def _sample(self, batch_shape, generator, device, dtype):
        self.alive.append(sum(r() is not None for r in self.refs))
        h = self.inner._sample(batch_shape, generator, device, dtype)
        self.refs.append(weakref.ref(h))
        return h


def test_build_streams_chunks_and_writes_the_same_bytes_as_save_channels(tmp_path):
    model = _Tracked()
    header = build_dataset(model, 3, 8, 95, 4, tmp_path / "a.blch", chunk_size=10, progress=False)
    assert len(model.refs) == 10 and max(model.alive) <= 1, model.alive  # one chunk in memory at a time
    h, loaded = load_channels(tmp_path / "a.blch")
    assert h.shape == (95, 3, 8) and loaded == header
    # byte-identical to writing all drops at once
    save_channels(tmp_path / "b.blch", h, header["metadata"])
    assert (tmp_path / "a.blch").read_bytes() == (tmp_path / "b.blch").read_bytes()
    for kw in ({"dtype": "complex128", "source_options": {"num_rx_antennas": 2}}, {}):
        a = build_dataset("clustered-ula", 2, 8, 23, 1, tmp_path / "c.blch", chunk_size=5, progress=False, **kw)
        g, _ = load_channels(tmp_path / "c.blch")
        save_channels(tmp_path / "d.blch", g, a["metadata"])
        assert (tmp_path / "c.blch").read_bytes() == (tmp_path / "d.blch").read_bytes()


def test_a_failed_write_or_a_non_finite_source_is_one_line_and_keeps_the_chunks(tmp_path, monkeypatch):
    orig = ds._header_bytes

    def disk_full(shape, dtype, sha256, metadata):
        if shape[0] == 25 and sha256 != "0" * 64:  # the final header, after all chunks were streamed
            raise OSError(errno.ENOSPC, "No space left on device")
        return orig(shape, dtype, sha256, metadata)

    monkeypatch.setattr(ds, "_header_bytes", disk_full)
    out = tmp_path / "a.blch"
    with pytest.raises(ValueError) as e:
        build_dataset("rayleigh", 2, 4, 25, 0, out, chunk_size=10, progress=False)
    assert "\n" not in str(e.value) and "No space left on device" in str(e.value) and str(out) in str(e.value)
    assert not out.exists() and len(list((tmp_path / "a.blch.parts").glob("chunk_*.blch"))) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["a.blch.parts"]  # no temporary file left
    monkeypatch.setattr(ds, "_header_bytes", orig)

    class NaNSource(_Tracked):
        def _sample(self, batch_shape, generator, device, dtype):
            h = super()._sample(batch_shape, generator, device, dtype)
            if len(self.refs) == 2:
                h[0, 0, 0, 0] = float("nan")
            return h

    with pytest.raises(ValueError, match="source NaNSource gave non-finite channels .* in chunk 1"):
        build_dataset(NaNSource(), 3, 8, 25, 0, tmp_path / "n.blch", chunk_size=10, progress=False)
    assert not (tmp_path / "n.blch").exists()


# -- low severity: headers -----------------------------------------------------------------------------

D = _data()
BAD_HEADERS = {
    "missing-sha256": (dict(sha256=None), "lacks sha256"),
    "missing-shape": (dict(shape=None), "lacks shape"),
    "missing-dtype": (dict(dtype=None), "lacks dtype"),
    "missing-metadata": (dict(metadata=None), "lacks metadata"),
    "missing-format": (dict(format=None), "unsupported dataset format"),
    "json-list": (b"[1, 2, 3]", "JSON object was expected"),
    "json-string": (b'"abc"', "JSON object was expected"),
    "not-utf8": (b'{"a": "\xff"}', "corrupted header"),
    "deep-nesting": (b"[" * 100_000, "corrupted header"),
    "huge-integer": (b'{"shape": [' + b"9" * 5000 + b"]}", "corrupted header"),
    "huge-header-length": (2**63, "declares a header of 9223372036854775808 bytes"),
    "max-header-length": (2**64 - 1, "declares a header of"),
    "header-length-beyond-file": (10**6, "truncated"),
    "huge-shape": (dict(shape=[10**12, 2, 4]), "expected 64000000000000 bytes"),
    "overflowing-shape": (dict(shape=[2**40, 2**40, 2**40]), "truncated"),
    "float-shape": (dict(shape=[3.0, 2, 4]), "shape must be a list of integers"),
    "bool-shape": (dict(shape=[3, True, 4]), "shape must be a list of integers"),
    "negative-shape": (dict(shape=[3, -2, 4]), "at least 1"),
    "short-shape": (dict(shape=[3, 8]), "[D, K, N]"),
    "string-shape": (dict(shape="3x2x4"), "shape must be a list of integers"),
    "unknown-dtype": (dict(dtype="float32"), "unsupported dtype 'float32'"),
    "list-dtype": (dict(dtype=["complex64"]), "unsupported dtype"),
    "string-version": (dict(version="1"), "version '1'"),
    "future-version": (dict(version=2), "version 2"),
    "number-sha256": (dict(sha256=5), "sha256 must be 64 hex digits"),
    "list-metadata": (dict(metadata=[1]), "metadata must be a JSON object"),
    "unknown-field": (dict(extra=1), "unknown field(s) 'extra'"),
}


@pytest.mark.parametrize("case", BAD_HEADERS)
def test_bad_header_is_refused_in_one_line(tmp_path, case):
    change, word = BAD_HEADERS[case]
    p = tmp_path / f"{case}.blch"
    if isinstance(change, bytes):
        _write(p, raw_header=change, data=D)
    elif isinstance(change, int):
        _write(p, _header(D), D, length=change)
    else:
        h = _header(D, **{k: v for k, v in change.items() if v is not None})
        for k in [k for k, v in change.items() if v is None]:
            del h[k]
        _write(p, h, D)
    _refused(p, word, header_only=not case.endswith(("huge-shape", "overflowing-shape")))


def test_every_flipped_header_byte_is_refused(tmp_path):
    save_channels(tmp_path / "a.blch", RayleighChannel(2, 4)(3, seed=0), {"drops": 3, "note": "x", "snr": 0.5})
    raw = (tmp_path / "a.blch").read_bytes()
    n = struct.unpack("<Q", raw[8:16])[0]
    p = tmp_path / "b.blch"
    for mask in (0x01, 0x02, 0x10):
        for i in range(16 + n):
            bad = bytearray(raw)
            bad[i] ^= mask
            p.write_bytes(bytes(bad))
            with pytest.raises(DatasetError) as e:
                load_channels(p)
            assert "\n" not in str(e.value) and str(p) in str(e.value)
    bad = bytearray(raw)
    bad[raw.index(b'"x"') + 1] ^= 0x01  # the note "x" -> "y": valid JSON, caught by the header checksum
    p.write_bytes(bytes(bad))
    with pytest.raises(DatasetError, match="SHA-256 of its header does not match"):
        read_metadata(p)
    assert json.loads(raw[16 : 16 + n])["header_sha256"] == ds._header_digest(json.loads(raw[16 : 16 + n]))


def test_files_without_a_header_checksum_still_load_and_new_files_are_reproducible(tmp_path):
    h = RayleighChannel(2, 4)(3, seed=0)
    data = h.numpy().tobytes()
    old = _write(tmp_path / "old.blch", _header(data, metadata={"note": "old"}), data)  # the old writer's bytes
    g, header = load_channels(old)
    assert torch.equal(g, h) and "header_sha256" not in header and header["metadata"] == {"note": "old"}
    a = build_dataset("rayleigh", 2, 4, 7, 3, tmp_path / "a.blch", chunk_size=3, progress=False)
    build_dataset("rayleigh", 2, 4, 7, 3, tmp_path / "b.blch", chunk_size=3, progress=False)
    assert (tmp_path / "a.blch").read_bytes() == (tmp_path / "b.blch").read_bytes()
    assert a["header_sha256"] == ds._header_digest(a)


# -- low severity: paths and sizes -----------------------------------------------------------------------


def test_directory_and_zero_drop_datasets_are_refused(tmp_path):
    (tmp_path / "d.blch").mkdir()
    _refused(tmp_path / "d.blch", "is a directory", header_only=True)
    with pytest.raises(ValueError, match="is a directory"):
        build_dataset("rayleigh", 2, 4, 5, 0, tmp_path / "d.blch", progress=False)
    p = _write(tmp_path / "empty.blch", _header(b"", shape=(0, 2, 4)), b"")
    _refused(p, "holds no drops", header_only=True)
    with pytest.raises(ValueError, match="no drops"):
        save_channels(tmp_path / "e.blch", torch.zeros(0, 2, 4, dtype=torch.complex64))
    assert not (tmp_path / "e.blch").exists()


# -- low severity: concurrent builds ---------------------------------------------------------------------


def test_concurrent_builds_of_the_same_file_all_end_with_the_same_valid_file(tmp_path):
    ref = build_dataset("rayleigh", 2, 4, 200, 0, tmp_path / "ref.blch", chunk_size=1, progress=False)
    for trial in range(6):
        out = tmp_path / f"t{trial}" / "x.blch"
        errors, headers = [], []

        def run(out=out, errors=errors, headers=headers):
            try:
                headers.append(build_dataset("rayleigh", 2, 4, 200, 0, out, chunk_size=1, progress=False))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert out.read_bytes() == (tmp_path / "ref.blch").read_bytes() and headers == [ref] * 3
        assert [p.name for p in out.parent.iterdir()] == ["x.blch"]


def test_stale_chunks_and_a_damaged_stamp_are_not_trusted(tmp_path, monkeypatch):
    ref = build_dataset("rayleigh", 2, 4, 25, 1, tmp_path / "ref.blch", chunk_size=10, progress=False)
    orig = ds.save_channels

    def flaky(path, h, metadata=None):
        if str(path).endswith("chunk_000002.blch"):
            raise KeyboardInterrupt
        return orig(path, h, metadata)

    monkeypatch.setattr(ds, "save_channels", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_dataset("rayleigh", 2, 4, 25, 1, tmp_path / "x.blch", chunk_size=10, progress=False)
    monkeypatch.setattr(ds, "save_channels", orig)
    parts = tmp_path / "x.blch.parts"
    # a chunk of the right shape but other data (say, left by an older build) must not be reused ...
    save_channels(parts / "chunk_000001.blch", RayleighChannel(2, 4)(10, seed=99))
    out = build_dataset("rayleigh", 2, 4, 25, 1, tmp_path / "x.blch", chunk_size=10, progress=False)
    assert out["sha256"] == ref["sha256"] and not parts.exists()
    # ... and a damaged settings stamp is no crash
    parts.mkdir()
    (parts / "settings.json").write_text('{"source": ')
    out = build_dataset("rayleigh", 2, 4, 25, 1, tmp_path / "x.blch", chunk_size=10, progress=False)
    assert out["sha256"] == ref["sha256"] and not parts.exists()
