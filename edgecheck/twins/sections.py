"""The constants table's sections: one per platform the twins model, named as the measured kinds they stand
in for (``measure/kinds/tpu.py``, ``measure/kinds/a53.py``). The twins read their constants through these
names; nothing else in the twins names a device."""
from __future__ import annotations

TPU = "tpu"  # the Edge TPU: tpu-sim's constants, and the power model of a measured Edge TPU
A53 = "a53"  # the Cortex-A53: a53-sim's constants, and the power model of a measured Cortex-A53
