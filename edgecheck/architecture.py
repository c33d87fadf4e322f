"""Feed-forward architectures, their exact size and cost, and the named grids.

An architecture is L hidden dense layers of N neurons each; input and output
sizes come from the data. Sizes here are exact and checked in the tests against
Keras' ``count_params`` and against the buffers inside the .tflite file.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from edgecheck.errors import EdgecheckError

ACTIVATIONS = ("relu", "relu6", "tanh", "sigmoid")


@dataclass(frozen=True, order=True)
class Architecture:
    layers: int
    width: int
    activation: str = "relu"
    # a variant that does more work under the same name (``edgecheck build --widen PCT``): its first hidden
    # layer has this many neurons instead of ``width``; None for the paper's architectures
    first_width: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.layers, int) or self.layers < 1:
            raise EdgecheckError(f"architecture: hidden layers must be a whole number >= 1, got {self.layers!r}")
        if not isinstance(self.width, int) or self.width < 1:
            raise EdgecheckError(f"architecture: neurons per layer must be a whole number >= 1, got {self.width!r}")
        if self.first_width is not None and (not isinstance(self.first_width, int) or self.first_width < 1):
            raise EdgecheckError(f"architecture: first hidden layer must be a whole number >= 1, got "
                                 f"{self.first_width!r}")
        if self.activation not in ACTIVATIONS:
            raise EdgecheckError(
                f"architecture: unknown activation {self.activation!r}; use one of {', '.join(ACTIVATIONS)}"
            )

    @property
    def name(self) -> str:
        suffix = "" if self.activation == "relu" else f"-{self.activation}"
        return f"{self.layers}x{self.width}{suffix}"

    def layer_sizes(self, n_in: int, n_out: int) -> list[int]:
        """Neurons per layer from input to output, e.g. [792, 64, 64, 4]."""
        return [n_in] + [self.first_width or self.width] + [self.width] * (self.layers - 1) + [n_out]

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.first_width is None:  # the paper's architectures keep the dict (and the build's keys) they had
            del d["first_width"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Architecture:
        first = d.get("first_width")
        return cls(int(d["layers"]), int(d["width"]), str(d.get("activation", "relu")),
                   None if first is None else int(first))

    def widened(self, percent: float, n_in: int, n_out: int) -> Architecture:
        """The same architecture (same name) with its first hidden layer widened so the MACs per inference grow
        by about ``percent`` %: a model that does more work and is still compared as this architecture. The
        first layer's extra neurons add ``n_in + next`` MACs each (their inputs and the next layer's weights)."""
        if percent <= 0:
            return self
        base = size_of(self, n_in, n_out).macs
        following = self.width if self.layers > 1 else n_out
        extra = max(1, round(percent / 100 * base / (n_in + following)))
        return Architecture(self.layers, self.width, self.activation, (self.first_width or self.width) + extra)


@dataclass(frozen=True)
class Size:
    """Exact size and work of one dense network at batch size 1."""

    params: int  # weights + biases (what Keras' count_params reports)
    macs: int  # multiply-accumulates per inference
    weight_bytes: int  # int8 weights only
    bias_bytes: int  # int32 biases
    layer_sizes: tuple[int, ...]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layer_sizes"] = list(self.layer_sizes)
        return d


def size_of(arch: Architecture, n_in: int, n_out: int) -> Size:
    if n_in < 1 or n_out < 1:
        raise EdgecheckError(f"architecture {arch.name}: input and output sizes must be >= 1, got {n_in} and {n_out}")
    sizes = arch.layer_sizes(n_in, n_out)
    pairs = list(zip(sizes[:-1], sizes[1:]))
    macs = sum(a * b for a, b in pairs)
    biases = sum(b for _, b in pairs)
    return Size(params=macs + biases, macs=macs, weight_bytes=macs, bias_bytes=4 * biases, layer_sizes=tuple(sizes))


NAMED_GRIDS: dict[str, str] = {
    # Tiny models that build in seconds, for tests.
    "smoke": "1x16,2x32,1x64",
    # Hidden layers 1-4 x six widths 32-2048: the smallest are tiny, the largest
    # exceed the Edge TPU's ~8 MB on-chip parameter cache.
    "default": "layers=1-4;widths=32,64,256,512,1024,2048",
}

# Bounds on a grid, checked before anything is built: TensorFlow would otherwise run out of memory or
# spend hours building a model no Edge TPU or A53 could hold (the paper's largest is 14 MiB of weights).
MAX_INT8_WEIGHT_BYTES = 256 * 2**20  # int8 weights of the largest model
MAX_HIDDEN_LAYERS = 64
MAX_ARCHITECTURES = 1000
_MIN_IN, _MIN_OUT = 1, 2  # the smallest input and output a dataset can give: a lower bound before the data is known

_ITEM = re.compile(r"^(\d{1,12})x(\d{1,12})(?:-([a-z0-9]+))?$")
_RANGE = re.compile(r"^(\d{1,12})-(\d{1,12})$")


def _show(text: str, limit: int = 40) -> str:
    """A piece of user input quoted in an error, cut short when it is long."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _numbers(text: str, what: str, spec: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = _RANGE.match(part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise EdgecheckError(f"grid {_show(spec)}: {what} range {_show(part)} runs backwards")
            if hi - lo + 1 > MAX_ARCHITECTURES:
                raise EdgecheckError(f"grid {_show(spec)}: {what} range {_show(part)} holds {hi - lo + 1} values; "
                                     f"a grid has at most {MAX_ARCHITECTURES} architectures")
            out.extend(range(lo, hi + 1))
        elif part.isdigit() and len(part) <= 12:
            out.append(int(part))
        else:
            raise EdgecheckError(f"grid {_show(spec)}: {what} must be numbers or ranges like 1-4, got {_show(part)}")
    return out


def parse_grid(spec: str) -> list[Architecture]:
    """A named grid, or an explicit one.

    Explicit forms: ``1x32,2x64,4x2048`` (add ``-tanh`` for another activation),
    or ``layers=1-4;widths=32,64[;activation=relu]`` for a full product.
    Duplicates are dropped; the order is by layers then width.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise EdgecheckError("--grid: empty grid; use a name (" + ", ".join(NAMED_GRIDS) + ") or e.g. 1x32,2x64")
    spec = spec.strip()
    text = NAMED_GRIDS.get(spec, spec)
    archs: set[Architecture] = set()
    if "=" in text:
        fields: dict[str, str] = {}
        for part in text.split(";"):
            if "=" not in part:
                raise EdgecheckError(f"grid {_show(spec)}: expected key=value, got {_show(part)}")
            key, value = (s.strip() for s in part.split("=", 1))
            if key not in ("layers", "widths", "activation"):
                raise EdgecheckError(f"grid {_show(spec)}: unknown key {_show(key)}; use layers, widths, activation")
            fields[key] = value
        if "layers" not in fields or "widths" not in fields:
            raise EdgecheckError(f"grid {_show(spec)}: needs both layers=... and widths=...")
        act = fields.get("activation", "relu")
        all_layers = _numbers(fields["layers"], "layers", spec)
        all_widths = _numbers(fields["widths"], "widths", spec)
        if len(set(all_layers)) * len(set(all_widths)) > MAX_ARCHITECTURES:
            n = len(set(all_layers)) * len(set(all_widths))
            raise EdgecheckError(f"grid {_show(spec)}: {n} architectures; a grid has at most {MAX_ARCHITECTURES}")
        for layers in all_layers:
            for width in all_widths:
                archs.add(Architecture(layers, width, act))
    else:
        for item in text.split(","):
            m = _ITEM.match(item.strip())
            if not m:
                known = ", ".join(NAMED_GRIDS)
                raise EdgecheckError(
                    f"grid {_show(spec)}: {_show(item.strip())} is not LAYERSxWIDTH (e.g. 2x64) and no grid has that "
                    f"name (named grids: {known})"
                )
            archs.add(Architecture(int(m.group(1)), int(m.group(2)), m.group(3) or "relu"))
            if len(archs) > MAX_ARCHITECTURES:
                raise EdgecheckError(f"grid {_show(spec)}: more than {MAX_ARCHITECTURES} architectures")
    for a in archs:
        check_size(a, _MIN_IN, _MIN_OUT, f"grid {_show(spec)}")
    return sorted(archs)


def check_size(arch: Architecture, n_in: int, n_out: int, where: str) -> None:
    """Refuse an architecture too large to build: more hidden layers or int8 weights than the bounds above
    (with the data's input and output sizes, or their smallest possible values before the data is known)."""
    if arch.layers > MAX_HIDDEN_LAYERS:
        raise EdgecheckError(f"{where}: {arch.name} has {arch.layers} hidden layers; at most {MAX_HIDDEN_LAYERS}")
    weights = size_of(arch, n_in, n_out).weight_bytes
    if weights > MAX_INT8_WEIGHT_BYTES:
        raise EdgecheckError(f"{where}: {arch.name} would hold {weights / 2**20:,.0f} MiB of int8 weights"
                             + (f" with {n_in} inputs" if n_in > _MIN_IN else "")
                             + f"; at most {MAX_INT8_WEIGHT_BYTES // 2**20} MiB (the paper's largest holds 14 MiB)")


def format_grid(archs: list[Architecture]) -> str:
    """The explicit form of a grid; ``parse_grid(format_grid(a)) == sorted(set(a))``."""
    return ",".join(a.name for a in sorted(set(archs)))
