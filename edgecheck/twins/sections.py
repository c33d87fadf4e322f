"""The constants table's sections: one per platform the twins model, named as the measured kinds they stand
in for (``measure/kinds/tpu.py``, ``measure/kinds/a53.py``). The twins read their constants through these
names; nothing else in the twins names a device."""
from __future__ import annotations

TPU = "tpu"  # the Edge TPU: tpu-sim's constants, and the power model of a measured Edge TPU
A53 = "a53"  # the Cortex-A53: a53-sim's constants, and the power model of a measured Cortex-A53

# The hosts whose part of the Edge TPU's invoke overhead the constants hold (tpu.hosts; --tpu-host), and the one
# whose figure is central when no host is named (the best-ranked source's; the band then spans every host)
TPU_HOSTS = ("x86-64", "rpi4", "rpi5", "coral-dev-board", "jetson-nano")
REFERENCE_HOST = "x86-64"
