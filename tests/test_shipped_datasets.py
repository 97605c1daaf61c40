"""The ray-traced datasets shipped in data/ (built with `beamlearn dataset build --source rt:munich`):
readable offline, as documented, and usable by evaluate."""

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from beamlearn.cli import app
from beamlearn.datasets import load_channels
from beamlearn.precoding import zf_precoder

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("n", [32, 64])
def test_shipped_munich_dataset(n):
    h, header = load_channels(DATA / f"rt_munich_k4_n{n}.blch", num_users=4, num_antennas=n)
    meta = header["metadata"]
    assert h.shape == (300, 4, n) and meta["source"] == "rt:munich" and meta["seed"] == 0
    assert meta["source_parameters"]["normalize"] == "per-user ||h_k||^2 = N"
    # documented normalisation: ||h_k||^2 = N for every user and drop
    assert torch.allclose(h.abs().square().sum(-1), torch.full((300, 4), float(n)), rtol=1e-4)
    # ZF removes the inter-user interference on ray-traced channels too
    hd = h.to(torch.complex128)
    a = (hd @ zf_precoder(hd, 10.0)).abs()
    d = torch.diagonal(a, dim1=-2, dim2=-1)
    assert ((a - torch.diag_embed(d)).amax((-2, -1)) / d.amin(-1)).max() < 1e-8


def test_evaluate_on_the_ray_traced_set(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--dataset",
            str(DATA / "rt_munich_k4_n64.blch"),
            "--methods",
            "zf,wmmse",
            "--snr-db",
            "0,10",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "over 300 channels" in res.output
