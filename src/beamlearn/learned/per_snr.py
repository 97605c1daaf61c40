"""Learned methods trained at one SNR each, selected by the SNR of the call.

Unfolded networks learn step sizes whose good values depend strongly on the SNR (the unfolded-PGA
spec, s4), so a system may ship one model per SNR. :class:`PerSNRModels` makes such a family look like
one method with the common call ``method(observation, power, noise_var)``: the SNR
``10 log10(P / sigma^2)`` of the call picks the model.
"""

from __future__ import annotations

import torch

from ..interface import Beamformers, BeamformingMethod
from .weights import WeightsManifest

__all__ = ["PerSNRModels"]


class PerSNRModels(BeamformingMethod):
    """The models of ``manifest`` trained for ``scenario``, one per training SNR (dB), loaded lazily.

    ``power`` and ``noise_var`` must be scalars; an SNR with no model (within ``tolerance_db``) raises
    a ``ValueError`` listing the SNRs available.
    """

    learned = True

    def __init__(self, name: str, manifest: WeightsManifest, scenario, tolerance_db: float = 1e-6, hint: str = ""):
        super().__init__()
        self.name = name
        self.manifest = manifest
        self.scenario = scenario
        self.snrs = manifest.snrs(scenario)
        self.tolerance_db = tolerance_db
        self.hint = hint
        self.models = torch.nn.ModuleDict()

    def config(self) -> dict:
        return {"name": self.name, "snrs": self.snrs}

    def fingerprint(self) -> str:
        """Digest of the family: its name and the checksums of the model files it draws from."""
        import hashlib

        files = sorted(e.sha256 for e in self.manifest.for_scenario(self.scenario))
        return hashlib.sha256(repr((self.name, files)).encode()).hexdigest()[:16]

    def model_for(self, snr_db: float) -> BeamformingMethod:
        match = [s for s in self.snrs if abs(s - snr_db) <= self.tolerance_db]
        if not match:
            avail = ", ".join(f"{s:g}" for s in self.snrs) or "none"
            raise ValueError(
                f"{self.name}: no model trained at {snr_db:g} dB; available SNRs (dB): {avail}. {self.hint}".rstrip()
            )
        key = f"{match[0]:g}".replace(".", "p").replace("-", "m")
        if key not in self.models:
            self.models[key] = self.manifest.load(self.manifest.find(self.scenario, match[0]))
        return self.models[key]

    @property
    def observes(self) -> str:  # follows the models of the family
        return self.model_for(self.snrs[0]).observes if self.snrs else "channel"

    def forward(self, h, power, noise_var) -> Beamformers:
        if isinstance(power, torch.Tensor) or isinstance(noise_var, torch.Tensor):
            if (isinstance(power, torch.Tensor) and power.numel() != 1) or (
                isinstance(noise_var, torch.Tensor) and noise_var.numel() != 1
            ):
                raise ValueError(f"{self.name}: power and noise_var must be scalars (one model per SNR)")
            power, noise_var = float(power), float(noise_var)
        snr_db = self.scenario.snr_db_of(power, noise_var)  # the scenario's SNR reference (total or per stream)
        device = h.device if isinstance(h, torch.Tensor) else h.channel.device
        model = self.model_for(snr_db).to(device)
        return model(h, power, noise_var)
