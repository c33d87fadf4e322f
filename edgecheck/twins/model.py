"""Calibrated twins of the Edge TPU and the Cortex-A53: predicted latency and power
of a feed-forward .tflite from its own structure.

Deterministic: one value per model, no noise. Every constant comes from
``constants.json`` (with its source) or a fitted file from
``edgecheck calibrate``; the fingerprint of a prediction names the constants'
sha256 and whether a compiler log set the on-chip/off-chip split.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgecheck.errors import EdgecheckError
from edgecheck.files import load_json, sha256_bytes
from edgecheck.modelfile import DenseLayer, read_model
from edgecheck.twins.cache import CacheGeometry, miss_fraction

DEFAULT_CONSTANTS = Path(__file__).with_name("constants.json")
LINKS = ("pcie", "usb3", "usb2")
# Operators the twins cost: dense layers by their work, the rest by per-operator overhead only.
CHEAP_OPS = {"QUANTIZE", "DEQUANTIZE", "RELU", "RELU6", "TANH", "LOGISTIC", "SOFTMAX", "RESHAPE"}


@dataclass(frozen=True)
class Constants:
    data: dict
    sha256: str
    path: str

    def value(self, *keys: str):
        node = self.data
        for k in keys:
            try:
                node = node[k]
            except (KeyError, TypeError):
                raise EdgecheckError(f"{self.path}: missing twin constant {'.'.join(keys)}") from None
        return node["value"] if isinstance(node, dict) and "value" in node else node


def load_constants(path: str | Path | None = None) -> Constants:
    """The packaged constants, or ``--twin-constants PATH`` (a file written by ``edgecheck calibrate``)."""
    path = Path(path) if path else DEFAULT_CONSTANTS
    data = load_json(path, "edgecheck.twin-constants/1", "--twin-constants")
    return Constants(data, sha256_bytes(path.read_bytes()), str(path))


def check_tpu_link(link: str) -> str:
    if link not in LINKS:
        raise EdgecheckError(f"--tpu-link: unknown link {link!r}; use {', '.join(LINKS)}")
    return link


def check_tpu_clock(c: Constants, clock_hz: float | None) -> float:
    """An Edge TPU clock libedgetpu can set (the constants' ``tpu.clocks_hz``), in Hz."""
    clock = float(clock_hz or c.value("tpu", "clock_hz"))
    allowed = [float(x) for x in c.value("tpu", "clocks_hz")]
    if clock not in allowed:
        raise EdgecheckError(f"--tpu-clock: {clock / 1e6:g} MHz is not an Edge TPU clock "
                             f"({', '.join(f'{x / 1e6:g}' for x in allowed)} MHz)")
    return clock


@dataclass
class Workload:
    """What the twins need from a model: its dense layers and operator count."""

    layers: list[DenseLayer]
    n_ops: int
    source: str

    @property
    def macs(self) -> int:
        return sum(d.macs for d in self.layers)

    @property
    def param_bytes(self) -> int:
        return sum(d.weight_bytes + d.bias_bytes for d in self.layers)

    @property
    def params(self) -> int:
        return sum(d.in_features * d.out_features + d.out_features for d in self.layers)

    @property
    def io_bytes(self) -> int:
        return (self.layers[0].input_bytes + self.layers[-1].output_bytes) if self.layers else 0


def workload_from_sizes(layer_sizes: list[int], source: str = "layer sizes") -> Workload:
    """The int8 dense network [n_in, ..., n_out] as the build makes it (one FULLY_CONNECTED per layer),
    for results that carry a model's layer sizes but not its file."""
    if len(layer_sizes) < 2:
        raise EdgecheckError(f"{source}: needs at least input and output sizes, got {layer_sizes}")
    layers = [DenseLayer(a, b, a * b, 4 * b, a * b, "int8", "per-tensor", a, b)
              for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    return Workload(layers, len(layers), source)


def workload(path: str | Path) -> Workload:
    """Read a .tflite; an operator the twins cannot cost is an error that names it."""
    info = read_model(path)
    if info.compiled_for_edgetpu:
        raise EdgecheckError(f"{path}: compiled for the Edge TPU; the twins need the CPU .tflite it was compiled from")
    unknown = sorted({op.name for op in info.operators} - CHEAP_OPS - {"FULLY_CONNECTED"})
    if unknown:
        raise EdgecheckError(f"{path}: the twins cost feed-forward models only; cannot cost {', '.join(unknown)}")
    if not info.dense_layers:
        raise EdgecheckError(f"{path}: no FULLY_CONNECTED layer to cost")
    return Workload(info.dense_layers, len(info.operators), str(path))


@dataclass
class Prediction:
    device: str
    latency_s: float
    power_w: float
    energy_j: float
    breakdown: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def cache_split(layers: list[DenseLayer], cache_bytes: int) -> tuple[int, int]:
    """(cached, streamed) parameter bytes: layers fill the on-chip cache in order,
    and a layer that no longer fits is streamed whole, as the compiler reports."""
    cached = streamed = 0
    for d in layers:
        b = d.weight_bytes + d.bias_bytes
        if cached + b <= cache_bytes:
            cached += b
        else:
            streamed += b
    return cached, streamed


def power_model(c: Constants, device: str, threads: int = 1) -> tuple[float, float]:
    """(idle, active) watts of the board while ``device`` ("tpu" or "a53") runs inferences:
    the same supply powers both, so both include the board's idle power."""
    if device == "tpu":
        return (c.value("tpu", "power", "board_idle_w"),
                c.value("tpu", "power", "tpu_active_w") + c.value("tpu", "power", "host_drive_w"))
    if device == "a53":
        return c.value("a53", "power", "board_idle_w"), threads * c.value("a53", "power", "core_active_w")
    raise EdgecheckError(f"no power model for device {device!r} (host CPUs are out of scope)")


def predict_tpu(w: Workload, c: Constants, link: str = "pcie", clock_hz: float | None = None,
                compiler: dict | None = None) -> Prediction:
    """Invoke overhead + I/O and uncached parameters over the link + compute on the MAC array."""
    check_tpu_link(link)
    clock = check_tpu_clock(c, clock_hz)
    models = (compiler or {}).get("models") or []
    if models and all(m.get("on_chip_used_bytes") is not None for m in models):
        cached = sum(m["on_chip_used_bytes"] for m in models)
        streamed = sum(m.get("off_chip_streamed_bytes") or 0 for m in models)
        split_from = "compiler log"
    else:
        cached, streamed = cache_split(w.layers, int(c.value("tpu", "cache_bytes")))
        split_from = "layer-by-layer estimate"
    overhead = float(c.value("tpu", "links", link, "overhead_s"))
    rate = float(c.value("tpu", "links", link, "rate_Bps"))
    transfer = (w.io_bytes + streamed) / rate
    mac_rate = c.value("tpu", "mac_array") * c.value("tpu", "matvec_utilization") * clock
    compute = w.macs / mac_rate
    latency = overhead + transfer + compute
    power = sum(power_model(c, "tpu"))
    return Prediction("tpu-sim", latency, power, power * latency, {
        "overhead_s": overhead, "transfer_s": transfer, "compute_s": compute, "cached_bytes": cached,
        "streamed_bytes": streamed, "cache_split_from": split_from, "link": link, "clock_hz": clock})


def check_a53_threads(n: int) -> None:
    if not 1 <= n <= 4:
        raise EdgecheckError(f"--a53-threads: must be 1 to 4 (the Cortex-A53 cluster has four cores), got {n}")


def a53_l2(c: Constants) -> CacheGeometry:
    """The Cortex-A53's L2 as the constants describe it (the board's, wherever the results were read)."""
    return CacheGeometry(int(c.value("a53", "l2_bytes")), int(c.value("a53", "l2_ways")),
                         int(c.value("a53", "page_bytes")),
                         source=f"{Path(c.path).name}: a53.l2_bytes, l2_ways, page_bytes")


def predict_a53(w: Workload, c: Constants, threads: int = 1, clock_hz: float | None = None) -> Prediction:
    """Interpreter overhead + the larger of NEON compute and weight traffic: the
    weights the L2 keeps between inferences come from L2, the rest from LPDDR4
    (the split from the L2's geometry, ``cache.miss_fraction``)."""
    check_a53_threads(threads)
    clock = float(clock_hz or c.value("a53", "clock_hz"))
    compute = w.macs / (c.value("a53", "macs_per_cycle") * clock * threads)
    miss = miss_fraction(w.param_bytes, a53_l2(c))
    dram_rate = min(c.value("a53", "dram_Bps_per_core") * threads, c.value("a53", "dram_Bps_total"))
    memory = w.param_bytes * (1 - miss) / (c.value("a53", "l2_Bps") * threads) + w.param_bytes * miss / dram_rate
    overhead = c.value("a53", "invoke_overhead_s") + w.n_ops * c.value("a53", "op_overhead_s")
    latency = overhead + max(compute, memory)
    power = sum(power_model(c, "a53", threads))
    return Prediction("a53-sim", latency, power, power * latency, {
        "overhead_s": overhead, "compute_s": compute, "memory_s": memory, "l2_miss_fraction": miss,
        "bound": "compute" if compute >= memory else "memory", "threads": threads, "clock_hz": clock})
