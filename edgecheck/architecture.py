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

    def __post_init__(self) -> None:
        if not isinstance(self.layers, int) or self.layers < 1:
            raise EdgecheckError(f"architecture: hidden layers must be a whole number >= 1, got {self.layers!r}")
        if not isinstance(self.width, int) or self.width < 1:
            raise EdgecheckError(f"architecture: neurons per layer must be a whole number >= 1, got {self.width!r}")
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
        return [n_in] + [self.width] * self.layers + [n_out]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Architecture:
        return cls(int(d["layers"]), int(d["width"]), str(d.get("activation", "relu")))


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

_ITEM = re.compile(r"^(\d+)x(\d+)(?:-([a-z0-9]+))?$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")


def _numbers(text: str, what: str, spec: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        m = _RANGE.match(part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise EdgecheckError(f"grid {spec!r}: {what} range {part!r} runs backwards")
            out.extend(range(lo, hi + 1))
        elif part.isdigit():
            out.append(int(part))
        else:
            raise EdgecheckError(f"grid {spec!r}: {what} must be numbers or ranges like 1-4, got {part!r}")
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
                raise EdgecheckError(f"grid {spec!r}: expected key=value, got {part!r}")
            key, value = (s.strip() for s in part.split("=", 1))
            if key not in ("layers", "widths", "activation"):
                raise EdgecheckError(f"grid {spec!r}: unknown key {key!r}; use layers, widths, activation")
            fields[key] = value
        if "layers" not in fields or "widths" not in fields:
            raise EdgecheckError(f"grid {spec!r}: needs both layers=... and widths=...")
        act = fields.get("activation", "relu")
        for layers in _numbers(fields["layers"], "layers", spec):
            for width in _numbers(fields["widths"], "widths", spec):
                archs.add(Architecture(layers, width, act))
    else:
        for item in text.split(","):
            m = _ITEM.match(item.strip())
            if not m:
                known = ", ".join(NAMED_GRIDS)
                raise EdgecheckError(
                    f"grid {spec!r}: {item.strip()!r} is not LAYERSxWIDTH (e.g. 2x64) and no grid has that name "
                    f"(named grids: {known})"
                )
            archs.add(Architecture(int(m.group(1)), int(m.group(2)), m.group(3) or "relu"))
    return sorted(archs)


def format_grid(archs: list[Architecture]) -> str:
    """The explicit form of a grid; ``parse_grid(format_grid(a)) == sorted(set(a))``."""
    return ",".join(a.name for a in sorted(set(archs)))
