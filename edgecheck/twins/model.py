"""Calibrated twins of the Edge TPU and the Cortex-A53: predicted latency and power
of a feed-forward .tflite from its own structure.

Deterministic: one value per model, no noise. Every constant comes from
``constants.json`` (with its source, confidence and the range the public
sources support) or a fitted file from ``edgecheck calibrate``; the
fingerprint of a prediction names the constants' sha256 and whether a
compiler log set the on-chip/off-chip split.

The Edge TPU twin gives a band with every prediction: low, central and high
latency, power and energy, from the ends of its constants' ranges and of the
compiler's possible allocations (``allocation.split``). The central value is
the one deterministic sample; near the on-chip limit the other outcome lies
in the band and the prediction states both.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgecheck.errors import EdgecheckError
from edgecheck.files import load_json, sha256_bytes
from edgecheck.modelfile import DenseLayer, ModelInfo, read_model
from edgecheck.twins import allocation
from edgecheck.twins.cache import CacheGeometry, miss_fraction
from edgecheck.twins.sections import A53, REFERENCE_HOST, TPU, TPU_HOSTS

DEFAULT_CONSTANTS = Path(__file__).with_name("constants.json")
LINKS = ("pcie", "usb3", "usb2")
# Operators the twins cost: dense layers by their work, the rest (without parameters) by per-operator overhead.
CHEAP_OPS = {"QUANTIZE", "DEQUANTIZE", "RELU", "RELU6", "TANH", "LOGISTIC", "SOFTMAX", "RESHAPE"}
# What the Edge TPU compiler maps (https://coral.ai/docs/edgetpu/models-intro/#supported-operations, as listed
# for the same compiler by https://developer.axis.com/computer-vision/on-device/system-on-chip/artpec-7/supported-ops/)
EDGETPU_OPS = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS", "FULLY_CONNECTED",
    "L2_NORMALIZATION", "LOGISTIC", "LSTM", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD",
    "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUARED_DIFFERENCE",
    "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE", "TRANSPOSE_CONV"}
FLOAT_TYPES = {"float32", "float16", "float64"}
UNVERIFIED_PER_CHANNEL = ("per-channel FULLY_CONNECTED weights: compiler support unverified; for per-tensor weights, "
                          "as edgecheck's build makes them, set converter._experimental_disable_per_channel_"
                          "quantization_for_dense_layers = True before converter.convert()")
# the one-line fix of each reason the Edge TPU compiler refuses a model (tpu_refusal)
FIX_FIXED_BATCH = ("fix: give the model a fixed batch size before converting: keras.Input(shape=(N,), batch_size=1), "
                   "or tf.lite.TFLiteConverter.from_concrete_functions([tf.function(model).get_concrete_function("
                   "tf.TensorSpec([1, N], tf.float32))], model)")
FIX_FULL_INT8 = ("fix: convert to full int8 with int8 input and output: converter.optimizations = "
                 "[tf.lite.Optimize.DEFAULT]; converter.representative_dataset = SAMPLES; "
                 "converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]; "
                 "converter.inference_input_type = converter.inference_output_type = tf.int8")
FIX_OPERATOR = ("fix: build the model from operators the Edge TPU runs (FULLY_CONNECTED, CONV_2D, RELU, SOFTMAX, ...: "
                "https://coral.ai/docs/edgetpu/models-intro/#supported-operations)")


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

    def range(self, *keys: str) -> tuple:
        """(low, value, high) of a constant; low and high default to the value (a constant known exactly)."""
        v = self.value(*keys)
        node = self.data
        for k in keys:
            node = node[k]
        if not isinstance(node, dict):
            return v, v, v
        return node.get("low", v), v, node.get("high", v)


def load_constants(path: str | Path | None = None) -> Constants:
    """The packaged constants, or ``--twin-constants PATH`` (a file written by ``edgecheck calibrate``). Every
    constant is checked by type, sign and range (``CONSTANT_BOUNDS``) when it is loaded, and a file must hold
    every constant the packaged one does: a wrong file is one line before anything runs."""
    from edgecheck.files import read_bytes

    path = Path(path) if path else DEFAULT_CONSTANTS
    data = load_json(path, "edgecheck.twin-constants/1", "--twin-constants", kind="twin constants")
    if path != DEFAULT_CONSTANTS:
        packaged = load_json(DEFAULT_CONSTANTS, "edgecheck.twin-constants/1", "packaged twin constants",
                             kind="twin constants")
        _same_constants(data, packaged, "", path)
    _check_constants(data, "", path)
    bad = _outside_range(data)
    if bad:
        where, v, lo, hi = bad
        raise EdgecheckError(f"--twin-constants {path}: {where} = {v!r} lies outside its own range [{lo!r}, {hi!r}]; "
                             "the band is built from low and high, so change them with the value")
    return Constants(data, sha256_bytes(read_bytes(path, f"--twin-constants {path}", "twin constants")), str(path))


_POSITIVE_WHOLE = (1, 2**62, True)
_BYTES = (1, 2**40, True)
_RATE = (1e-300, 1e13, False)  # bytes per second: > 0
_SECONDS = (0, 10.0, False)  # an overhead: >= 0, below 10 s per call
_WATTS = (0, 1000.0, False)
# Every constant of the twins by its place (fnmatch patterns; the first match wins): (low, high, whole number).
# A value, and its low and high ends, must be numbers of that type within these bounds.
CONSTANT_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "*.clocks_hz": _POSITIVE_WHOLE, "*.clock_hz": _POSITIVE_WHOLE,
    "tpu.mac_array": (1, 2**20, True),
    "tpu.matvec_utilization": (1e-12, 1.0, False),  # a share of the MAC array's peak: (0, 1]
    "*_bytes_per_output": (0, 1024, True),
    "tpu.allocation.pad_dims_to": (1, 4096, True),
    "tpu.allocation.compiler_1_0.dense_outputs_cap": _POSITIVE_WHOLE,
    "tpu.allocation.compiler_1_0.conv_budget_factor": (1e-6, 100.0, False),
    "*_bytes": _BYTES,
    "*.l2_ways": (1, 1024, True),
    "*overhead_s": _SECONDS,
    "*Bps*": _RATE,
    "tpu.band.*_margin": (0, 10.0, False),
    "*.macs_per_cycle": (1e-6, 1e6, False),
    "*_w": _WATTS,
}


def constant_bound(where: str) -> tuple[float, float, bool] | None:
    import fnmatch

    return next((b for pattern, b in CONSTANT_BOUNDS.items() if fnmatch.fnmatchcase(where, pattern)), None)


def _check_constants(node, where: str, path) -> None:
    """Each constant's value, low and high: a number (a list of them for ``clocks_hz``) of its type, within its
    bounds. A bool is no number here (``true`` as a MAC-array size is refused)."""
    if not isinstance(node, dict):
        return
    if "value" in node:
        bound = constant_bound(where)
        for end in ("value", "low", "high"):
            if end not in node:
                continue
            v = node[end]
            for i, x in enumerate(v if isinstance(v, list) and where.endswith("clocks_hz") else [v]):
                at = f"{where}.{end}" + (f"[{i}]" if isinstance(v, list) else "")
                _check_constant(x, at, bound, path)
            if isinstance(v, list) and not v:
                raise EdgecheckError(f"--twin-constants {path}: {where}.{end} is an empty list")
        return
    for key, child in node.items():
        if key not in ("schema", "note"):
            _check_constant_node(child, f"{where}.{key}" if where else key, path)


def _check_constant_node(node, where: str, path) -> None:
    if isinstance(node, dict):
        _check_constants(node, where, path)
    elif not isinstance(node, str):  # a bare number (no value/low/high): checked as a value
        _check_constant(node, where, constant_bound(where), path)


def _check_constant(x, at: str, bound, path) -> None:
    import math

    from edgecheck.errors import one_line

    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise EdgecheckError(f"--twin-constants {path}: {at} is {one_line(repr(x))[:40]}, expected a finite number")
    if bound is None:
        return
    lo, hi, whole = bound
    if whole and x != int(x):
        raise EdgecheckError(f"--twin-constants {path}: {at} is {x!r}, expected a whole number")
    if not lo <= x <= hi:
        what = "a positive" if lo > 0 else "a non-negative"
        raise EdgecheckError(f"--twin-constants {path}: {at} is {x!r}, expected {what} "
                             f"{'whole number' if whole else 'number'} at most {hi:g}"
                             + (f" and at least {lo:g}" if lo > 1e-6 else ""))


def _same_constants(given, packaged, where: str, path) -> None:
    """``given`` holds every constant ``packaged`` does (a file from ``edgecheck calibrate`` is a whole copy)."""
    if not isinstance(packaged, dict):
        return
    if not isinstance(given, dict):
        raise EdgecheckError(f"--twin-constants {path}: {where} is {type(given).__name__}, expected an object")
    for key, child in packaged.items():
        at = f"{where}.{key}" if where else key
        if key in ("note",):
            continue
        if key not in given:
            raise EdgecheckError(f"--twin-constants {path}: {at} is missing (the packaged constants.json lists every "
                                 "constant)")
        if isinstance(child, dict) and "value" not in child:
            _same_constants(given[key], child, at, path)
        elif isinstance(child, dict) and not isinstance(given[key], (dict, int, float)):
            raise EdgecheckError(f"--twin-constants {path}: {at} is {type(given[key]).__name__}, expected an object "
                                 "with value (and low, high)")


def _outside_range(node, where: str = "") -> tuple | None:
    """The first constant whose value is not within its [low, high] (an edit that forgot the range), or None."""
    if isinstance(node, dict):
        v, lo, hi = node.get("value"), node.get("low"), node.get("high")
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (v, lo, hi)) and not lo <= v <= hi:
            return where, v, lo, hi
        for k, child in node.items():
            found = _outside_range(child, f"{where}.{k}" if where else str(k))
            if found:
                return found
    return None


def check_tpu_link(link: str) -> str:
    if link not in LINKS:
        raise EdgecheckError(f"--tpu-link: unknown link {link!r}; use {', '.join(LINKS)}")
    return link


def check_tpu_clock(c: Constants, clock_hz: float | None) -> float:
    """An Edge TPU clock libedgetpu can set (the constants' ``tpu.clocks_hz``), in Hz."""
    clock = float(clock_hz or c.value(TPU, "clock_hz"))
    allowed = [float(x) for x in c.value(TPU, "clocks_hz")]
    if clock not in allowed:
        raise EdgecheckError(f"--tpu-clock: {clock / 1e6:g} MHz is not an Edge TPU clock "
                             f"({', '.join(f'{x / 1e6:g}' for x in allowed)} MHz)")
    return clock


@dataclass
class Workload:
    """What the twins need from a model: its dense layers, operator count, the operators that run on the host
    at its edges (QUANTIZE of a float input, DEQUANTIZE to a float output: name, elements) and, for the Edge
    TPU, why its compiler would refuse the model (None when it would not)."""

    layers: list[DenseLayer]
    n_ops: int
    source: str
    host_ops: list[tuple[str, int]] = field(default_factory=list)
    tpu_refusal: str | None = None

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

    def param_layers(self) -> list[allocation.ParamLayer]:
        return [allocation.ParamLayer(d.in_features, d.out_features, 1, d.bias_bytes > 0) for d in self.layers]

    @property
    def per_channel(self) -> bool:
        return any(d.weight_quantization == "per-channel" for d in self.layers)


def workload_from_sizes(layer_sizes: list[int], source: str = "layer sizes") -> Workload:
    """The int8 dense network [n_in, ..., n_out] as the build makes it (one FULLY_CONNECTED per layer),
    for results that carry a model's layer sizes but not its file."""
    if len(layer_sizes) < 2:
        raise EdgecheckError(f"{source}: needs at least input and output sizes, got {layer_sizes}")
    layers = [DenseLayer(a, b, a * b, 4 * b, a * b, "int8", "per-tensor", a, b)
              for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    return Workload(layers, len(layers), source)


def tpu_refusal(info: ModelInfo) -> str | None:
    """Why edgetpu_compiler would refuse the model, or None: float weights or float compute ("Model not
    quantized"), an operator the Edge TPU does not run, or a dynamic shape. QUANTIZE of a graph input and
    DEQUANTIZE to a graph output are the float edges every Edge TPU model may have: they run on the host."""
    inputs, outputs = set(info.inputs), set(info.outputs)
    dynamic = [t.name for t in info.tensors if -1 in t.shape_signature]
    if dynamic:
        return (f"dynamic shape: tensor {dynamic[0]!r} has shape signature "
                f"{next(t.shape_signature for t in info.tensors if t.name == dynamic[0])} (the compiler needs every "
                f"tensor's size fixed at compile time); {FIX_FIXED_BATCH}")
    for op in info.operators:
        ts = [info.tensors[i] for i in op.inputs + op.outputs if i >= 0]
        floats = [t for t in ts if t.dtype in FLOAT_TYPES]
        if op.name == "QUANTIZE" and all(i in inputs for i in op.inputs if info.tensors[i].dtype in FLOAT_TYPES):
            continue
        if op.name == "DEQUANTIZE" and all(i in outputs for i in op.outputs):
            continue
        if floats:
            return (f"Model not quantized: {op.name} computes on {floats[0].dtype} tensor {floats[0].name!r} (the "
                    "compiler needs full-integer int8 weights and activations; float is allowed only at the model's "
                    f"input and output, through QUANTIZE and DEQUANTIZE); {FIX_FULL_INT8}")
        if op.name not in EDGETPU_OPS:
            return (f"operator {op.name} is not supported by the Edge TPU (it and everything after it would run on "
                    f"the CPU, which the twin does not cost); {FIX_OPERATOR}")
    return None


def _host_ops(info: ModelInfo) -> list[tuple[str, int]]:
    """QUANTIZE/DEQUANTIZE at the model's float edges, with the elements each converts."""
    out = []
    for op in info.operators:
        if op.name in ("QUANTIZE", "DEQUANTIZE") and any(info.tensors[i].dtype in FLOAT_TYPES for i in op.inputs
                                                         + op.outputs):
            shape = info.tensors[op.outputs[0]].shape
            n = 1
            for d in shape:
                n *= max(1, d)
            out.append((op.name, n))
    return out


def workload(path: str | Path) -> Workload:
    """Read a .tflite; an operator the twins cannot cost is an error that names it. A model the Edge TPU
    compiler would refuse is still costed (the A53 twin answers for it) and carries ``tpu_refusal``."""
    info = read_model(path)
    if info.compiled_for_edgetpu:
        raise EdgecheckError(f"{path}: compiled for the Edge TPU; the twins need the CPU .tflite it was compiled from")
    refusal = tpu_refusal(info)
    # an operator without parameters is costed by its per-operator overhead; one with weights (a convolution,
    # an LSTM: modelfile's weighted operators) the twins cannot cost
    unknown = sorted({w.operator for w in info.weighted_ops if w.operator != "FULLY_CONNECTED"})
    if unknown:
        raise EdgecheckError(f"{path}: the twins cost feed-forward models only; cannot cost {', '.join(unknown)}"
                             + (f" (and the Edge TPU compiler would refuse it: {refusal})" if refusal else ""))
    if not info.dense_layers:
        raise EdgecheckError(f"{path}: no FULLY_CONNECTED layer to cost")
    return Workload(info.dense_layers, len(info.operators), str(path), _host_ops(info), refusal)


@dataclass
class Prediction:
    device: str
    latency_s: float
    power_w: float
    energy_j: float
    breakdown: dict = field(default_factory=dict)
    band: dict | None = None  # {"latency_s"|"power_w"|"energy_j": {"low", "central", "high"}}
    near_limit: dict | None = None  # both outcomes when the allocation is open
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def cache_split(layers: list[DenseLayer], cache_bytes: int) -> tuple[int, int]:
    """(cached, streamed) footprint bytes of dense layers under the central allocation rules (first fit in graph
    order, 8 B per output channel, a layer cached or streamed whole) against ``cache_bytes``."""
    pl = [allocation.ParamLayer(d.in_features, d.out_features, 1, d.bias_bytes > 0) for d in layers]
    a = allocation.allocate(pl, allocation.Limits(int(cache_bytes), None))
    return a.cached_bytes, a.streamed_bytes


class TpuRefused(EdgecheckError):
    """The Edge TPU compiler would refuse this model; ``reason`` says why (the A53 twin still answers)."""

    def __init__(self, source: str, reason: str):
        self.reason = reason
        super().__init__(f"{source}: the Edge TPU cannot run this model: {reason}")


def power_model(c: Constants, device: str, threads: int = 1, end: str = "value") -> tuple[float, float]:
    """(idle, active) watts of the board while ``device`` (TPU or A53) runs inferences:
    the same supply powers both, so both include the board's idle power. ``end``: "low", "value" or "high"."""
    i = {"low": 0, "value": 1, "high": 2}[end]
    if device == TPU:
        return (c.range(TPU, "power", "board_idle_w")[i],
                c.range(TPU, "power", "tpu_active_w")[i] + c.range(TPU, "power", "host_drive_w")[i])
    if device == A53:
        return c.range(A53, "power", "board_idle_w")[i], threads * c.range(A53, "power", "core_active_w")[i]
    raise EdgecheckError(f"no power model for device {device!r} (host CPUs are out of scope)")


def _log_split(compiler: dict | None) -> tuple[int, int] | None:
    models = (compiler or {}).get("models") or []
    if models and all(m.get("on_chip_used_bytes") is not None for m in models):
        return (sum(m["on_chip_used_bytes"] for m in models),
                sum(m.get("off_chip_streamed_bytes") or 0 for m in models))
    return None


def check_tpu_host(host: str | None) -> str | None:
    if host is not None and host not in TPU_HOSTS:
        raise EdgecheckError(f"--tpu-host: unknown host {host!r}; use {', '.join(TPU_HOSTS)}")
    return host


def host_overhead(c: Constants, host: str | None) -> tuple[float, float, float]:
    """(low, central, high) host part of the Edge TPU's invoke overhead (CPU class, runtime and API): the host's
    own range, or with no host the envelope across the hosts of the constants (central: the reference host's)."""
    if host is not None:
        return c.range(TPU, "hosts", host, "overhead_s")
    hosts = c.value(TPU, "hosts")
    ends = [c.range(TPU, "hosts", h, "overhead_s") for h in hosts]
    return min(e[0] for e in ends), c.range(TPU, "hosts", REFERENCE_HOST, "overhead_s")[1], max(e[2] for e in ends)


def host_name(c: Constants, host: str | None) -> str:
    if host is None:
        return "any host (the band spans " + ", ".join(c.data[TPU]["hosts"][h].get("name", h)
                                                      for h in c.data[TPU]["hosts"]) + ")"
    return c.data[TPU]["hosts"][host].get("name", host)


def band_confidence(c: Constants, regime: str) -> str:
    """The band's confidence in a regime: low when it rests on fewer than three sources or its leave-one-source-out
    coverage is below 80 % (``constants.json`` tpu.band, written from ``tpufit.envelope_report``)."""
    node = c.data[TPU]["band"].get(f"{regime}_margin", {})
    return node.get("confidence", "medium") if isinstance(node, dict) else "medium"


def predict_tpu(w: Workload, c: Constants, link: str = "pcie", clock_hz: float | None = None,
                compiler: dict | None = None, host: str | None = None) -> Prediction:
    """Invoke overhead (the device part of the link + the host part of ``host``, or the envelope across hosts)
    + compute on the MAC array + (when anything streams) the streaming overhead + I/O and uncached parameters
    over the link + the host's QUANTIZE/DEQUANTIZE at float edges; with its band."""
    check_tpu_link(link)
    check_tpu_host(host)
    host_ends = host_overhead(c, host)
    clock = check_tpu_clock(c, clock_hz)
    if w.tpu_refusal:
        raise TpuRefused(w.source, w.tpu_refusal)
    logged = _log_split(compiler)
    split = None
    if logged is not None:
        allocs = dict.fromkeys(("low", "value", "high"), logged)
        split_from = "compiler log"
    else:
        split = allocation.split(w.param_layers(), c)
        allocs = {"low": (split.most_cached.cached_bytes, split.most_cached.streamed_bytes),
                  "value": (split.central.cached_bytes, split.central.streamed_bytes),
                  "high": (split.least_cached.cached_bytes, split.least_cached.streamed_bytes)}
        split_from = "modelled allocation (compilers 14-16)"
    host_s = sum(c.value(A53, "op_overhead_s") + n / c.value(A53, "l2_Bps") for _, n in w.host_ops)

    def latency(end: str, streamed: int) -> tuple[float, dict]:
        i, fast = {"low": 0, "value": 1, "high": 2}[end], {"low": 2, "value": 1, "high": 0}[end]
        overhead = c.range(TPU, "links", link, "overhead_s")[i] + host_ends[i]
        rate = c.range(TPU, "links", link, "rate_Bps")[fast]
        util = c.range(TPU, "matvec_utilization")[fast]
        stream = c.range(TPU, "links", link, "stream_overhead_s")[i] if streamed > 0 else 0.0
        transfer = (w.io_bytes + streamed) / rate
        compute = w.macs / (c.value(TPU, "mac_array") * util * clock)
        t = overhead + stream + transfer + compute + host_s
        margin = c.value(TPU, "band", "streamed_margin" if streamed > 0 else "cached_margin")
        t *= {"low": 1 - margin, "value": 1.0, "high": 1 + margin}[end]
        return t, {"overhead_s": overhead, "host_overhead_s": host_ends[i], "stream_overhead_s": stream,
                   "transfer_s": transfer, "compute_s": compute,
                   "host_ops_s": host_s}

    lat = {end: latency(end, allocs[end][1])[0] for end in ("low", "value", "high")}
    central_latency, parts = latency("value", allocs["value"][1])
    power = {end: sum(power_model(c, TPU, end=end)) for end in ("low", "value", "high")}
    band = {"latency_s": {"low": lat["low"], "central": lat["value"], "high": lat["high"]},
            "power_w": {"low": power["low"], "central": power["value"], "high": power["high"]},
            "energy_j": {"low": lat["low"] * power["low"], "central": lat["value"] * power["value"],
                         "high": lat["high"] * power["high"]}}
    cached, streamed = allocs["value"]
    notes = [UNVERIFIED_PER_CHANNEL] if w.per_channel else []
    regime = "streamed" if streamed > 0 else "cached"
    if band_confidence(c, regime) == "low":
        why = c.data[TPU]["band"][f"{regime}_margin"].get("confidence_why", "")
        notes.append(f"low confidence: the {regime} band" + (f" ({why})" if why else ""))
    near = None
    if split is not None and split.near_limit:
        # the central outcome as predicted, the other as the extreme allocation that differs from it
        other = split.least_cached if [w == "cached" for w in split.central.placement] == \
            [w == "cached" for w in split.most_cached.placement] else split.most_cached
        outcomes = sorted([central_latency, latency("value", other.streamed_bytes)[0]])
        if_cached, if_streamed = outcomes
        near = {"margin_pct": split.margin_pct, "if_cached_s": if_cached, "if_streamed_s": if_streamed,
                "cached_bytes": [split.most_cached.cached_bytes, split.least_cached.cached_bytes],
                "streamed_bytes": [split.most_cached.streamed_bytes, split.least_cached.streamed_bytes],
                "text": f"within {split.margin_pct:.1f} % of the on-chip limit: {if_cached * 1e3:.3g} ms if cached, "
                        f"{if_streamed * 1e3:.3g} ms if streamed"}
        notes.append(near["text"])
    breakdown = {**parts, "cached_bytes": cached, "streamed_bytes": streamed, "cache_split_from": split_from,
                 "link": link, "clock_hz": clock, "host": host, "host_name": host_name(c, host),
                 "band_confidence": band_confidence(c, regime)}
    if split is not None:
        breakdown["allocation"] = {"placement": split.central.placement, "footprint_bytes": split.central.footprints}
    return Prediction("Edge TPU twin", central_latency, power["value"], central_latency * power["value"], breakdown,
                      band, near, notes)


def check_a53_threads(n: int) -> None:
    if not 1 <= n <= 4:
        raise EdgecheckError(f"--a53-threads: must be 1 to 4 (the Cortex-A53 cluster has four cores), got {n}")


def a53_l2(c: Constants) -> CacheGeometry:
    """The Cortex-A53's L2 as the constants describe it (the board's, wherever the results were read)."""
    return CacheGeometry(int(c.value(A53, "l2_bytes")), int(c.value(A53, "l2_ways")),
                         int(c.value(A53, "page_bytes")),
                         source=f"{Path(c.path).name}: a53.l2_bytes, l2_ways, page_bytes")


def predict_a53(w: Workload, c: Constants, threads: int = 1, clock_hz: float | None = None) -> Prediction:
    """Interpreter overhead + the larger of NEON compute and weight traffic: the
    weights the L2 keeps between inferences come from L2, the rest from LPDDR4
    (the split from the L2's geometry, ``cache.miss_fraction``); with its band.

    The band takes every constant at the end of its documented range that makes the latency low or high
    (``constants.json``: the boards in scope, 1.2-1.5 GHz, a 512 KiB or 1 MiB L2, measured DRAM rates, the
    interpreter's overheads as stated assumptions), as the Edge TPU twin's band does."""
    check_a53_threads(threads)
    central_clock = float(clock_hz or c.value(A53, "clock_hz"))

    def latency(end: str) -> tuple[float, dict]:
        i, fast = {"low": 0, "value": 1, "high": 2}[end], {"low": 2, "value": 1, "high": 0}[end]
        clock = central_clock if end == "value" else float(c.range(A53, "clock_hz")[fast])
        compute = w.macs / (c.range(A53, "macs_per_cycle")[fast] * clock * threads)
        l2 = a53_l2(c)
        if end != "value":
            l2 = CacheGeometry(int(c.range(A53, "l2_bytes")[fast]), l2.ways, l2.page_bytes, source=l2.source)
        miss = miss_fraction(w.param_bytes, l2)
        dram_rate = min(c.range(A53, "dram_Bps_per_core")[fast] * threads, c.range(A53, "dram_Bps_total")[fast])
        memory = (w.param_bytes * (1 - miss) / (c.range(A53, "l2_Bps")[fast] * threads)
                  + w.param_bytes * miss / dram_rate)
        overhead = c.range(A53, "invoke_overhead_s")[i] + w.n_ops * c.range(A53, "op_overhead_s")[i]
        return overhead + max(compute, memory), {
            "overhead_s": overhead, "compute_s": compute, "memory_s": memory, "l2_miss_fraction": miss,
            "bound": "compute" if compute >= memory else "memory", "threads": threads, "clock_hz": clock}

    lat = {end: latency(end)[0] for end in ("low", "value", "high")}
    central, breakdown = latency("value")
    power = {end: sum(power_model(c, A53, threads, end)) for end in ("low", "value", "high")}
    band = {"latency_s": {"low": lat["low"], "central": central, "high": lat["high"]},
            "power_w": {"low": power["low"], "central": power["value"], "high": power["high"]},
            "energy_j": {"low": lat["low"] * power["low"], "central": central * power["value"],
                         "high": lat["high"] * power["high"]}}
    return Prediction("Cortex-A53 twin", central, power["value"], power["value"] * central, breakdown, band)
