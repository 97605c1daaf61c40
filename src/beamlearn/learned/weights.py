"""Shipped weights: a per-system manifest of model files with the scenario, SNR and checksum of each.

A system keeps its trained models in a folder with a ``manifest.json``::

    {"system": "unfolded-pga",
     "models": [{"file": "snr10.blm", "model": "unfolded-pga", "snr_db": 10.0,
                 "scenario": "unfolded-pga", "scenario_fingerprint": "3f0c...", "config": {...},
                 "sha256": "...", "training": {...}}, ...]}

The support check of a learned method reads the manifest (which scenarios and SNRs have a model)
instead of hard-coding sizes, and :meth:`WeightsManifest.load` refuses a file whose checksum does not
match the manifest. Two digests identify what a model was trained for:

* :func:`interface_fingerprint`: array sizes and power convention (what the learned parameters
  depend on). A shipped model serves any scenario with the same interface, whatever its channel
  source: evaluating a model on channels it was not trained on (a 3GPP drop, a ray-traced scene) is
  a legitimate generalisation test.
* :func:`scenario_fingerprint`: the interface plus the channel model, recorded so that a user can
  tell whether a scenario is the training distribution (:meth:`WeightsManifest.trained_on`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..io import _atomic_target, write_json
from .base import LearnedMethod, load_model
from .serialization import ModelFileError, file_sha256, read_model_file

__all__ = ["WeightsEntry", "WeightsManifest", "scenario_fingerprint", "interface_fingerprint", "MANIFEST"]

MANIFEST = "manifest.json"
_IGNORED = ("name", "snr_db", "source", "observation")
_INTERFACE = (
    "num_bs_antennas",
    "num_users",
    "num_rf_chains",
    "num_rx_antennas",
    "num_streams",
    "num_rx_rf_chains",
    "power_reference",
    "noise_var",
    "power",
    "snr_reference",
    "phase_bits",
)


def _digest(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def interface_fingerprint(scenario) -> str:
    """A 16-hex-digit digest of a scenario's array sizes and power convention."""
    summary = scenario.summary()
    return _digest({k: summary[k] for k in _INTERFACE if k in summary})  # snr_reference only when not "total"


def scenario_fingerprint(scenario) -> str:
    """A 16-hex-digit digest of what a model depends on in a :class:`~beamlearn.scenarios.Scenario`: sizes,
    power convention and channel source; not the name, SNR grid, description or observation (a model
    trained with perfect CSI may be evaluated on estimated channels)."""
    return _digest({k: v for k, v in scenario.summary().items() if k not in _IGNORED})


@dataclass(frozen=True)
class WeightsEntry:
    """One shipped model file (see the module docstring)."""

    file: str
    model: str
    snr_db: float | None
    scenario: str
    scenario_fingerprint: str
    interface_fingerprint: str
    sha256: str
    config: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    observation: dict | None = None  # for models that consume observations: the one they were trained with


class WeightsManifest:
    """The models in ``folder`` as listed by its ``manifest.json`` (an empty manifest if it has none)."""

    def __init__(self, folder: str | os.PathLike, system: str = ""):
        self.folder = Path(folder)
        self.system = system
        self.entries: list[WeightsEntry] = []
        path = self.folder / MANIFEST
        if path.is_file():
            obj = json.loads(path.read_text())
            self.system = obj.get("system", system)
            self.entries = [WeightsEntry(**e) for e in obj.get("models", [])]

    def __repr__(self) -> str:
        return f"WeightsManifest({str(self.folder)!r}, {len(self.entries)} models)"

    def for_scenario(self, scenario) -> list[WeightsEntry]:
        """The entries that can serve ``scenario``: trained for its sizes and power convention."""
        fp, obs = interface_fingerprint(scenario), scenario.observation.summary()
        return [
            e for e in self.entries if e.interface_fingerprint == fp and (e.observation is None or e.observation == obs)
        ]

    def trained_on(self, scenario) -> list[WeightsEntry]:
        """The entries trained on ``scenario``'s own channel distribution."""
        fp = scenario_fingerprint(scenario)
        return [e for e in self.entries if e.scenario_fingerprint == fp]

    def snrs(self, scenario=None) -> list[float]:
        """Training SNRs (dB) of the models, for ``scenario`` when given."""
        es = self.entries if scenario is None else self.for_scenario(scenario)
        return sorted({float(e.snr_db) for e in es if e.snr_db is not None})

    def unsupported(self, scenario, snrs=None) -> str | None:
        """Why the shipped models cannot serve ``scenario`` at ``snrs`` (``None`` when they can)."""
        es = self.for_scenario(scenario)
        if not es:
            trained = sorted({e.scenario for e in self.entries}) or ["none"]
            return (
                f"no shipped model was trained for this scenario's sizes and power convention (models exist "
                f"for: {', '.join(trained)}; "
                f"train one with `beamlearn train {self.system}`)"
            )
        have = self.snrs(scenario)
        missing = [float(s) for s in (snrs or []) if float(s) not in have]
        if missing and have:
            return (
                f"no shipped model for SNR {', '.join(f'{s:g}' for s in missing)} dB "
                f"(shipped: {', '.join(f'{s:g}' for s in have)})"
            )
        return None

    def find(self, scenario, snr_db: float | None = None, tolerance_db: float = 1e-6) -> WeightsEntry:
        """The entry for ``scenario`` trained at ``snr_db``, preferring one trained on the scenario's own
        channel distribution (a ``ValueError`` lists what exists)."""
        own = {e.file for e in self.trained_on(scenario)}
        es = sorted(self.for_scenario(scenario), key=lambda e: e.file not in own)
        if snr_db is not None:
            es = [e for e in es if e.snr_db is not None and abs(float(e.snr_db) - snr_db) <= tolerance_db]
        if not es:
            reason = self.unsupported(scenario, None if snr_db is None else [snr_db])
            raise ValueError(f"{self.system}: {reason or f'no shipped model at {snr_db:g} dB'}")
        return es[0]

    def load(self, entry: WeightsEntry, map_location=None) -> LearnedMethod:
        """Load ``entry``'s file after checking it against the manifest's SHA-256."""
        path = self.folder / entry.file
        if not path.is_file():
            raise ModelFileError(f"shipped model {path} is missing")
        digest = file_sha256(path)
        if digest != entry.sha256:
            raise ModelFileError(
                f"shipped model {path} does not match its manifest checksum "
                f"(sha256 {digest[:16]}..., manifest {entry.sha256[:16]}...); it was modified or damaged"
            )
        model = load_model(path, map_location=map_location)
        if model.model_name != entry.model:
            raise ModelFileError(f"{path} holds model {model.model_name!r}, the manifest says {entry.model!r}")
        return model

    def add(self, model_file: str | os.PathLike, scenario, *, file: str | None = None) -> WeightsEntry:
        """Copy ``model_file`` into the folder (as ``file``) and list it, replacing an entry of the same
        file name; its SNR, configuration and training record come from the file's metadata, which must
        not contradict ``scenario`` (``interface_fingerprint``, when the file records one)."""
        header, _ = read_model_file(model_file)
        meta = header.get("metadata") or {}
        recorded = meta.get("interface_fingerprint")
        if recorded is not None and recorded != interface_fingerprint(scenario):
            raise ValueError(
                f"{model_file} was trained for other sizes or another power convention than scenario {scenario.name!r}"
            )
        name = file or Path(model_file).name
        target = self.folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        if Path(model_file).resolve() != target.resolve():
            with _atomic_target(target) as tmp:
                Path(tmp).write_bytes(Path(model_file).read_bytes())
        entry = WeightsEntry(
            file=name,
            model=header["model"],
            snr_db=meta.get("snr_db"),
            scenario=scenario.name,
            scenario_fingerprint=scenario_fingerprint(scenario),
            interface_fingerprint=interface_fingerprint(scenario),
            sha256=file_sha256(target),
            config=header.get("config", {}),
            training=meta.get("training", {}),
            observation=meta.get("observation"),
        )
        self.entries = [e for e in self.entries if e.file != name] + [entry]
        self.entries.sort(key=lambda e: (e.scenario, e.snr_db if e.snr_db is not None else float("-inf"), e.file))
        write_json(self.folder / MANIFEST, {"system": self.system, "models": [asdict(e) for e in self.entries]})
        return entry
