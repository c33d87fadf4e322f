"""``a53``: an Arm Cortex-A53 (the Coral Dev Board's CPU), measured here when this host is one, or on a board.

The paper's CPU platform (claim role ``a53``); its twin is ``a53-sim``."""
from __future__ import annotations

from edgecheck.measure.device import DeviceKind, SelectOptions
from edgecheck.measure.local import host_cpu_device

CORTEX_A53_PART = "0xd03"


def is_cortex_a53(cpuinfo_text: str | None = None) -> bool:
    """True when /proc/cpuinfo names Arm's Cortex-A53 (implementer 0x41, part 0xd03)."""
    if cpuinfo_text is None:
        from edgecheck.sysfs import read_text

        cpuinfo_text = read_text("/proc/cpuinfo", "procfs")
        if cpuinfo_text is None:
            return False
    parts = {line.split(":", 1)[1].strip().lower() for line in cpuinfo_text.splitlines()
             if line.lower().startswith("cpu part") and ":" in line}
    implementers = {line.split(":", 1)[1].strip().lower() for line in cpuinfo_text.splitlines()
                    if line.lower().startswith("cpu implementer") and ":" in line}
    return CORTEX_A53_PART in parts and (not implementers or "0x41" in implementers)


class CortexA53(DeviceKind):
    name = "a53"
    role = "a53"
    twin = "a53-sim"
    auto = True
    remote = True
    cpu_part = (CORTEX_A53_PART, "Arm Cortex-A53")
    exact_cpu_kernels = True
    calibration = "board"
    description = "an Arm Cortex-A53 (measured; the paper's CPU)"

    def is_host(self, options: SelectOptions) -> bool:
        return is_cortex_a53(options.cpuinfo_text)

    def check_options(self, options: SelectOptions) -> None:
        from edgecheck.twins.model import check_a53_threads

        check_a53_threads(options.a53_threads)

    def threads(self, options: SelectOptions) -> int:
        self.check_options(options)
        return options.a53_threads

    def detect(self, options: SelectOptions):
        if not self.is_host(options):
            return None, "this host's CPU is not an Arm Cortex-A53 (no CPU part 0xd03 in /proc/cpuinfo)"
        return host_cpu_device(self, self.threads(options)), None

    def power_model(self, constants, threads: int, end: str = "value"):
        from edgecheck.twins.model import power_model

        return power_model(constants, self.name, threads, end)

    def cache_geometry(self, constants):
        from edgecheck.twins.model import a53_l2

        return a53_l2(constants)


KIND = CortexA53()
