"""Where ``edgetpu_compiler`` puts a model's parameters: on-chip (cached) or off-chip (streamed every invoke).

The rules, each derived from public compiler output (``fixtures/edgetpu_compiler/cases.json``, 47 cases from
three independent sources; docs/tpu-twin.md):

- **Footprint** of a layer (compilers 14-16): its int8 weights plus a table of 8 bytes per output channel
  (a float32 multiplier and an int32 offset; exact for random dense layers 256^2..1024^2 and for eight
  convolutions). Identity kernels get no table (0 B) and one bundled model 4 B: the table is the band's
  uncertainty. Whether an int32 bias adds 4 B per channel, and whether dimensions that are not multiples of 64
  are padded to 64, is not in the public record: the high footprint assumes both.
- **Order**: layers fill the cache in graph order, first fit: a layer that no longer fits is streamed and the
  next one may still be cached. Layers are never split between the two.
- **A single layer** larger than about 7.06 MiB (between 2688^2, cached, and 2752^2, streamed) is streamed
  whole, even though the compiler reports 7.88 MiB free for such a model.
- **Budget**: used + remaining is 7.73 MiB for a cached 256^2 layer and 7.88 MiB for an all-streamed model;
  it shrinks with activation-heavy models (not modelled: the twins cost dense networks).
- **Compiler 1.0 (2019)** padded inputs to 4 and outputs to 64 with an int32 bias per padded output, counted
  convolution parameters twice against its budget and stopped caching dense stacks after about 8,000 output
  channels: a profile of its own (``profile="1.0"``), used only for old compiler logs.

Near the limits the evidence cannot decide: ``split`` returns the central allocation and the two extremes,
and says how close the model is to the limit that decides.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgecheck.twins.sections import TPU

MODERN, OLD = "16", "1.0"
SCENARIOS = ("low", "central", "high")  # footprint assumption: fewest, central, most bytes


def ceil_to(x: int, m: int) -> int:
    return -(-x // m) * m


@dataclass(frozen=True)
class ParamLayer:
    """One operator whose parameters the compiler places: FULLY_CONNECTED (k=1) or CONV_2D (k x k).

    ``cin_eff`` is the input the compiler sees when it differs from ``cin`` (compiler 1.0 padded a flattened
    image's channel dimension to 4: a 2x2x3 input is 16 wide)."""

    cin: int
    cout: int
    k: int = 1
    bias: bool = True
    kind: str = "fc"
    cin_eff: int | None = None

    @property
    def weight_bytes(self) -> int:
        return self.k * self.k * self.cin * self.cout

    @property
    def raw_bytes(self) -> int:
        """int8 weights and int32 bias as the .tflite stores them."""
        return self.weight_bytes + (4 * self.cout if self.bias else 0)


def profile_for(compiler_version: str | None) -> str:
    """The allocation profile of a compiler version: 1.x is the 2019 compiler, everything else modern."""
    return OLD if compiler_version and compiler_version.split(".")[0] == "1" else MODERN


@dataclass(frozen=True)
class Limits:
    """What a compiler profile allows, from the constants (central, or one end of their range)."""

    budget_bytes: int
    single_layer_bytes: int | None = None  # modern: a larger layer is streamed whole
    dense_outputs_cap: int | None = None  # compiler 1.0: cached dense output channels
    conv_budget_factor: int = 1  # compiler 1.0 charged convolution parameters twice


def footprint(layer: ParamLayer, profile: str = MODERN, scenario: str = "central", table_bytes: tuple = (0, 8, 8),
              bias_bytes: tuple = (0, 0, 4), pad_to: tuple = (1, 1, 64)) -> int:
    """Bytes the compiler counts for ``layer``; the three tuples are (low, central, high) per scenario."""
    i = SCENARIOS.index(scenario)
    if profile == OLD:
        cin = layer.cin_eff or layer.cin
        if layer.kind == "conv":
            return layer.k * layer.k * ceil_to(cin, 4) * layer.cout + 4 * layer.cout
        out = 16 if layer.cout <= 16 else ceil_to(layer.cout, 64)
        return (ceil_to(cin, 4) + 4) * out
    pad = pad_to[i]
    cin, cout = ceil_to(layer.cin, pad), ceil_to(layer.cout, pad)
    table = table_bytes[i] + (bias_bytes[i] if layer.bias else 0)
    return layer.k * layer.k * cin * cout + table * cout


@dataclass
class Allocation:
    """One allocation: bytes on-chip and off-chip, and per layer where it went and why."""

    cached_bytes: int
    streamed_bytes: int
    placement: list[str] = field(default_factory=list)  # "cached", "streamed: too large", "streamed: full"
    footprints: list[int] = field(default_factory=list)

    @property
    def streams(self) -> bool:
        return self.streamed_bytes > 0

    def to_dict(self) -> dict:
        return asdict(self)


def allocate(layers: list[ParamLayer], limits: Limits, profile: str = MODERN, scenario: str = "central",
             **footprint_kw) -> Allocation:
    """First fit in graph order; a layer is cached whole or streamed whole."""
    used = outputs = 0
    out = Allocation(0, 0)
    for layer in layers:
        f = footprint(layer, profile, scenario, **footprint_kw)
        charge = f * (limits.conv_budget_factor if layer.kind == "conv" else 1)
        if limits.single_layer_bytes is not None and f > limits.single_layer_bytes:
            where = "streamed: larger than one layer may be"
        elif used + charge > limits.budget_bytes:
            where = "streamed: cache full"
        elif limits.dense_outputs_cap is not None and layer.kind == "fc" and \
                outputs + layer.cout > limits.dense_outputs_cap:
            where = "streamed: compiler 1.0 dense cap"
        else:
            where = "cached"
            used += charge
            outputs += layer.cout if layer.kind == "fc" else 0
        if where == "cached":
            out.cached_bytes += f
        else:
            out.streamed_bytes += f
        out.placement.append(where)
        out.footprints.append(f)
    return out


@dataclass
class Split:
    """The central allocation and the two it may turn out to be where the evidence cannot decide."""

    central: Allocation
    most_cached: Allocation
    least_cached: Allocation
    profile: str
    margin_pct: float | None = None  # how close the deciding footprint is to its limit, when the outcome is open

    @property
    def near_limit(self) -> bool:
        """True when the layers cached differ between the central allocation and an extreme one."""
        cached = [[w == "cached" for w in a.placement] for a in (self.central, self.most_cached, self.least_cached)]
        return cached[0] != cached[1] or cached[0] != cached[2]

    def to_dict(self) -> dict:
        return {"profile": self.profile, "central": self.central.to_dict(), "most_cached": self.most_cached.to_dict(),
                "least_cached": self.least_cached.to_dict(), "near_limit": self.near_limit,
                "margin_pct": self.margin_pct}


def limits_from(c, end: str = "value", profile: str = MODERN) -> Limits:
    """The profile's limits from the twin constants; ``end`` is "value", "low" or "high"."""
    def get(*keys):
        return c.range(*keys)[{"low": 0, "value": 1, "high": 2}[end]]

    if profile == OLD:
        return Limits(int(get(TPU, "allocation", "compiler_1_0", "budget_bytes")),
                      dense_outputs_cap=int(get(TPU, "allocation", "compiler_1_0", "dense_outputs_cap")),
                      conv_budget_factor=int(c.value(TPU, "allocation", "compiler_1_0", "conv_budget_factor")))
    return Limits(int(get(TPU, "cache_bytes")), int(get(TPU, "allocation", "single_layer_limit_bytes")))


def footprint_options(c) -> dict:
    """The footprint's (low, central, high) assumptions from the twin constants."""
    return {"table_bytes": c.range(TPU, "allocation", "table_bytes_per_output"),
            "bias_bytes": c.range(TPU, "allocation", "bias_bytes_per_output"),
            "pad_to": c.range(TPU, "allocation", "pad_dims_to")}


def split(layers: list[ParamLayer], c, profile: str = MODERN, budget_bytes: int | None = None) -> Split:
    """Central, most-cached and least-cached allocations of ``layers`` under the constants ``c``.

    ``budget_bytes`` replaces the budget (a compiler log's used + remaining/available)."""
    kw = footprint_options(c)

    def lim(end: str) -> Limits:
        lm = limits_from(c, end, profile)
        if budget_bytes is not None:
            lm = Limits(budget_bytes, lm.single_layer_bytes, lm.dense_outputs_cap, lm.conv_budget_factor)
        return lm

    central = allocate(layers, lim("value"), profile, "central", **kw)
    most = allocate(layers, lim("high"), profile, "low", **kw)
    least = allocate(layers, lim("low"), profile, "high", **kw)
    s = Split(central, most, least, profile)
    if s.near_limit:
        s.margin_pct = _margin(layers, central, lim("value"), profile, kw)
    return s


def _margin(layers: list[ParamLayer], alloc: Allocation, limits: Limits, profile: str, kw: dict) -> float:
    """Percent between the deciding footprint and its limit: the closest layer to a single-layer limit, or the
    cumulative footprint to the budget, whichever is nearer."""
    best = float("inf")
    used = 0
    for layer, f, where in zip(layers, alloc.footprints, alloc.placement):
        charge = f * (limits.conv_budget_factor if layer.kind == "conv" else 1)
        if limits.single_layer_bytes:
            best = min(best, abs(f - limits.single_layer_bytes) / limits.single_layer_bytes * 100)
        best = min(best, abs(used + charge - limits.budget_bytes) / limits.budget_bytes * 100)
        if where == "cached":
            used += charge
    return best
