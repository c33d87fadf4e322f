"""``hostcpu2``: this host's CPU with two interpreter threads, as a third party would add a kind.

The whole kind: a name, how it is found, its threads. It is measured like the built-in kinds (the worker in
fresh processes, pytest-benchmark in the session), reported and compared; it declares no role, so the
paper's claims do not use it."""
from edgecheck.measure.device import DeviceKind, SelectOptions
from edgecheck.measure.local import host_cpu_device


class HostCpuTwoThreads(DeviceKind):
    name = "hostcpu2"
    exact_cpu_kernels = True
    description = "this host's CPU, two interpreter threads (an example plugin kind)"

    def threads(self, options: SelectOptions) -> int:
        return 2

    def detect(self, options: SelectOptions):
        return host_cpu_device(self, self.threads(options)), None


KIND = HostCpuTwoThreads()
