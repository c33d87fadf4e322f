"""``cpu``: this host's CPU (any but a Cortex-A53, which is the ``a53`` kind), timed through the CPU interpreter.

It plays no role in the paper's claims: it is the real, measured device of every machine, whose figures
check the harness and the twins' form."""
from __future__ import annotations

from edgecheck.measure.device import DeviceKind, SelectOptions
from edgecheck.measure.local import host_cpu_device


class HostCpu(DeviceKind):
    name = "cpu"
    auto = True
    remote = True
    exact_cpu_kernels = True
    calibration = "host-form"
    description = "this host's CPU (measured)"

    def applies(self, options: SelectOptions) -> str | None:
        """Why this host's CPU is not this kind, or None."""
        from edgecheck.measure.kinds.a53 import KIND as A53

        if A53.is_host(options):
            return f"this host's CPU is a Cortex-A53: use --device={A53.name}"
        return None

    def detect(self, options: SelectOptions):
        why = self.applies(options)
        if why:
            return None, why
        return host_cpu_device(self, self.threads(options)), None

    def cache_geometry(self, constants):
        from edgecheck.twins.cache import read_cache

        return read_cache(level=2)


KIND = HostCpu()
