"""``tpu-sim``: the Edge TPU's twin, a prediction from published constants with a band (``twins.model``).

Stands in for ``tpu`` when no Edge TPU is found (auto) and plays its role in the claims, labelled simulated."""
from __future__ import annotations

from edgecheck.artifacts import ModelEntry
from edgecheck.errors import EdgecheckError
from edgecheck.measure.device import SIMULATED, Device, DeviceKind, SelectOptions
from edgecheck.measure.twin import TwinDevice


class EdgeTpuTwin(DeviceKind):
    name = "tpu-sim"
    simulated = True
    role = "tpu"
    description = "the Edge TPU's twin (simulated)"

    def detect(self, options: SelectOptions):
        from edgecheck.twins.model import band_confidence, check_tpu_clock, check_tpu_host, check_tpu_link, host_name

        c = options.twin_constants()
        host = check_tpu_host(options.tpu_host)
        meta = {"twin": self.name, "constants_sha256": c.sha256, "constants_path": c.path, "_constants": c,
                "link": check_tpu_link(options.tpu_link), "host": host, "host_name": host_name(c, host),
                "band_confidence": {r: band_confidence(c, r) for r in ("cached", "streamed")},
                "clock_hz": check_tpu_clock(c, float(options.tpu_clock_mhz) * 1e6)}
        return TwinDevice(self.name, SIMULATED, 1, meta, impl=self), None

    def key(self, device: Device) -> str:
        m = device.metadata
        return (f"{self.name}:link={m['link']},host={m.get('host') or 'any'},clock={m['clock_hz'] / 1e6:g}MHz,"
                f"constants={m['constants_sha256'][:12]}")

    def provenance(self, device: Device) -> str:
        m = device.metadata
        low = [r for r, v in (m.get("band_confidence") or {}).items() if v == "low"]
        return (f"simulated by the Edge TPU twin ({m['link']}, host: {m.get('host_name') or 'any host'}, "
                f"{m['clock_hz'] / 1e6:g} MHz, constants {m['constants_sha256'][:12]})"
                + (f"; band low confidence in the {' and '.join(low)} regime" if low else ""))

    def cannot_run(self, device: Device, model: ModelEntry) -> str | None:
        """Besides the general reasons: a model the Edge TPU compiler would refuse is not predicted (an
        inconclusive outcome naming the reason; the A53 twin still answers)."""
        why = super().cannot_run(device, model)
        if why:
            return why
        from edgecheck.modelfile import read_model
        from edgecheck.outcome import NOT_TESTABLE, Outcome
        from edgecheck.twins.model import tpu_refusal

        comp = model.compiler or {}
        unmapped = sorted({op for m in comp.get("models") or [] for op in m.get("unmapped_operators") or []}
                          - {"QUANTIZE", "DEQUANTIZE"})
        if comp.get("failure"):
            refusal = f"its compiler log says so: {comp['failure']['message']}"
        elif unmapped:
            refusal = (f"its compiler log leaves {', '.join(unmapped)} on the CPU (the twin does not cost a partly "
                       "mapped model)")
        else:
            try:
                refusal = tpu_refusal(read_model(model.tflite))
            except EdgecheckError:
                return None  # an unreadable file fails in measure() with its own message
        if refusal is None:
            return None
        return Outcome.inconclusive(NOT_TESTABLE, "Edge TPU compiler would accept the model", False, True,
                                    refusal).summary

    def predict(self, device: Device, model: ModelEntry):
        from edgecheck.twins.model import predict_tpu, workload

        return predict_tpu(workload(model.tflite), device.metadata["_constants"], device.metadata["link"],
                           device.metadata["clock_hz"], model.compiler, device.metadata.get("host"))

    def power_model(self, constants, threads: int, end: str = "value"):
        from edgecheck.measure.kinds.tpu import KIND as TPU

        return TPU.power_model(constants, threads, end)


KIND = EdgeTpuTwin()
