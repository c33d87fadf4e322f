"""``a53-sim``: the Cortex-A53's twin, a prediction from the constants (``twins.model.predict_a53``).

Stands in for ``a53`` when this host is not one (auto) and plays its role in the claims, labelled simulated."""
from __future__ import annotations

from edgecheck.artifacts import ModelEntry
from edgecheck.measure.device import SIMULATED, Device, DeviceKind, SelectOptions
from edgecheck.measure.twin import TwinDevice


class CortexA53Twin(DeviceKind):
    name = "a53-sim"
    simulated = True
    role = "a53"
    description = "the Cortex-A53's twin (simulated)"

    def threads(self, options: SelectOptions) -> int:
        from edgecheck.measure.kinds.a53 import KIND as A53

        return A53.threads(options)

    def detect(self, options: SelectOptions):
        c = options.twin_constants()
        from edgecheck.measure.kinds.a53 import KIND as A53

        meta = {"twin": self.name, "constants_sha256": c.sha256, "constants_path": c.path, "_constants": c,
                "clock_hz": float(c.value(A53.name, "clock_hz"))}
        return TwinDevice(self.name, SIMULATED, self.threads(options), meta, impl=self), None

    def key(self, device: Device) -> str:
        m = device.metadata
        return (f"{self.name}:threads={device.threads},clock={m['clock_hz'] / 1e6:g}MHz,"
                f"constants={m['constants_sha256'][:12]}")

    def provenance(self, device: Device) -> str:
        m = device.metadata
        return (f"simulated by the Cortex-A53 twin ({device.threads} thread(s), {m['clock_hz'] / 1e6:g} MHz, "
                f"constants {m['constants_sha256'][:12]})")

    def predict(self, device: Device, model: ModelEntry):
        from edgecheck.twins.model import predict_a53, workload

        return predict_a53(workload(model.tflite), device.metadata["_constants"], device.threads,
                           device.metadata["clock_hz"])

    def power_model(self, constants, threads: int, end: str = "value"):
        from edgecheck.measure.kinds.a53 import KIND as A53

        return A53.power_model(constants, threads, end)


KIND = CortexA53Twin()
