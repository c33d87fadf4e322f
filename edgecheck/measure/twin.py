"""A twin as a device: one deterministic predicted value per model, labelled simulated.

The kind (``kinds/tpu_sim.py``, ``kinds/a53_sim.py``) predicts; this turns its
``twins.model.Prediction`` into an entry with the band beside the central value.
"""
from __future__ import annotations

from dataclasses import dataclass

from edgecheck.artifacts import ModelEntry
from edgecheck.measure.device import Device
from edgecheck.results import Energy, Entry, Latency


@dataclass
class TwinDevice(Device):
    """A twin: its kind predicts each model from the session's constants (``metadata["_constants"]``)."""

    @property
    def constants(self):
        return self.metadata["_constants"]

    @property
    def provenance(self) -> str:
        return self.impl.provenance(self)

    def measure(self, model: ModelEntry, ctx=None) -> Entry:
        c = self.constants
        p = self.impl.predict(self, model)
        split = p.breakdown.get("cache_split_from")
        latency = Latency.from_samples([p.latency_s], statistic="predicted seconds per invoke (deterministic, one "
                                                                "value)", simulated=True)
        power = self.power_model(c)
        energy = Energy(total_j=p.energy_j, power_w=p.power_w, dynamic_j=None,
                        model_idle_w=power[0] if power else None,
                        provenance=f"simulated: {self.name} power model x predicted latency")
        twin = {"breakdown": p.breakdown, "constants_sha256": c.sha256, "constants_path": c.path,
                "compiler_log_used": split == "compiler log"}
        if p.band:
            # the band beside the central value: what the twin's constants and the compiler's possible
            # allocations allow (seconds, watts, joules)
            latency.band = p.band["latency_s"]
            energy.band = p.band["energy_j"]
            energy.band_j = [p.band["energy_j"]["low"], p.band["energy_j"]["high"]]
            energy.power_band_w = p.band["power_w"]
        if p.near_limit:
            twin["near_limit"] = p.near_limit
        if p.notes:
            twin["notes"] = p.notes
        return self.new_entry(model, latency=latency, energy=energy, twin=twin)


__all__ = ["TwinDevice"]
