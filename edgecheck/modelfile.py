"""What is inside a .tflite file, read from the flatbuffer itself.

Operators with versions, tensors with their quantization, and per dense layer
the weight and bias bytes and MACs. The interpreter is not used here: after
``allocate_tensors()`` LiteRT reports expanded per-channel scales even for a
per-tensor model, so quantization is read from the file (see docs/stack.md).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgecheck.errors import EdgecheckError

EDGETPU_CUSTOM_OP = "edgetpu-custom-op"


@dataclass
class TensorInfo:
    index: int
    name: str
    shape: list[int]
    dtype: str
    buffer_bytes: int
    scale: list[float]
    zero_point: list[int]
    quantized_dimension: int
    shape_signature: list[int] = field(default_factory=list)  # -1 marks a dynamic dimension; empty when absent

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass
class OperatorInfo:
    name: str
    version: int
    inputs: list[int]
    outputs: list[int]


@dataclass
class DenseLayer:
    """One FULLY_CONNECTED operator: the unit the twins cost."""

    in_features: int
    out_features: int
    weight_bytes: int
    bias_bytes: int
    macs: int
    weight_dtype: str
    weight_quantization: str  # "per-tensor", "per-channel" or "none"
    input_bytes: int
    output_bytes: int


# Operators with weights: (weights input, bias input). Their MACs are computed below; any other operator that
# takes a constant float or int8 tensor of 2 or more dimensions is counted as weighted too, with unknown MACs.
WEIGHTED_OPS = {"FULLY_CONNECTED": (1, 2), "CONV_2D": (1, 2), "DEPTHWISE_CONV_2D": (1, 2), "CONV_3D": (1, 2),
                "TRANSPOSE_CONV": (1, 3)}
_WEIGHT_DTYPES = ("int8", "uint8", "int16", "float16", "float32")


@dataclass
class WeightedOp:
    """One operator with weights (dense or not): what ``inspect`` counts, so no layer is left out."""

    operator: str
    params: int  # weight and bias elements
    weight_bytes: int
    bias_bytes: int
    macs: int | None  # None where edgecheck does not know the operator's arithmetic


@dataclass
class ModelInfo:
    path: str
    file_bytes: int
    operators: list[OperatorInfo]
    tensors: list[TensorInfo]
    inputs: list[int]
    outputs: list[int]
    dense_layers: list[DenseLayer] = field(default_factory=list)
    weighted_ops: list[WeightedOp] = field(default_factory=list)

    @property
    def feed_forward(self) -> bool:
        """True when every operator with weights is a dense layer (the family the twins and the paper cover)."""
        return all(w.operator == "FULLY_CONNECTED" for w in self.weighted_ops)

    @property
    def operator_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.operators:
            counts[op.name] = counts.get(op.name, 0) + 1
        return counts

    def text(self, edgetpu_refusal: str | None = None, notes: list[str] | None = None) -> list[str]:
        """``edgecheck inspect``'s summary for people (``tpu_refusal``'s reason, with its fix, passed in)."""
        return _model_text(self, edgetpu_refusal, notes or [])

    @property
    def compiled_for_edgetpu(self) -> bool:
        return any(op.name == EDGETPU_CUSTOM_OP for op in self.operators)

    @property
    def params(self) -> int:
        """Weights and biases of every operator that has them (dense, convolution, ...)."""
        return sum(w.params for w in self.weighted_ops)

    @property
    def macs(self) -> int | None:
        """Multiply-accumulates per inference; None when an operator's arithmetic is unknown here."""
        if any(w.macs is None for w in self.weighted_ops):
            return None
        return sum(w.macs for w in self.weighted_ops)

    @property
    def weight_bytes(self) -> int:
        return sum(w.weight_bytes for w in self.weighted_ops)

    def summary(self) -> dict:
        """What ``edgecheck inspect`` prints."""

        def io(i: int) -> dict:
            t = self.tensors[i]
            return {"name": t.name, "dtype": t.dtype, "shape": t.shape, "shape_signature": t.shape_signature or t.shape,
                    "dynamic_dimensions": [k for k, d in enumerate(t.shape_signature) if d == -1],
                    "quantization": {"scale": t.scale, "zero_point": t.zero_point}}

        quant = sorted({d.weight_quantization for d in self.dense_layers})
        return {
            "path": self.path,
            "file_bytes": self.file_bytes,
            "params": self.params,
            "macs": self.macs,
            "weight_bytes": self.weight_bytes,
            "bias_bytes": sum(w.bias_bytes for w in self.weighted_ops),
            "feed_forward": self.feed_forward,
            "weighted_operators": [asdict(w) for w in self.weighted_ops],
            "dense_layers": [asdict(d) for d in self.dense_layers],
            "dense_weight_quantization": quant[0] if len(quant) == 1 else quant,
            "operators": [{"name": op.name, "version": op.version} for op in self.operators],
            "operator_counts": self.operator_counts,
            "compiled_for_edgetpu": self.compiled_for_edgetpu,
            "inputs": [io(i) for i in self.inputs],
            "outputs": [io(i) for i in self.outputs],
        }


def _io_text(t: TensorInfo) -> str:
    text = f"{t.name} {t.dtype} {t.shape}"
    dynamic = [k for k, d in enumerate(t.shape_signature) if d == -1]
    if dynamic:
        what = "batch dimension" if dynamic == [0] else f"dimension(s) {dynamic}"
        text += f" -- DYNAMIC {what}: shape signature {t.shape_signature} (the Edge TPU needs it fixed)"
    if len(t.scale) == 1:
        text += f", scale {t.scale[0]:.4g}, zero point {t.zero_point[0] if t.zero_point else 0}"
    return text


def _model_text(info: ModelInfo, edgetpu_refusal: str | None, notes: list[str]) -> list[str]:
    """``inspect``'s summary for people: size, parameters, operators, input and output (a dynamic dimension
    flagged), weight quantization, and whether the Edge TPU compiler would take it, with the fix if not."""
    from edgecheck.textfmt import fmt_bytes, fmt_number

    ops = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in info.operator_counts.items())
    quant = sorted({d.weight_quantization for d in info.dense_layers}) or ["-"]
    lines = [f"{info.path}: {fmt_bytes(info.file_bytes)}, {fmt_number(info.params)} parameters "
             f"({fmt_bytes(info.weight_bytes)} of weights), {fmt_number(info.macs)} MACs per inference",
             f"  operators: {ops}" + ("" if info.feed_forward else " (not feed-forward: the twins cost dense layers "
                                                                     "only)")]
    lines += [f"  input:  {_io_text(info.tensors[i])}" for i in info.inputs]
    lines += [f"  output: {_io_text(info.tensors[i])}" for i in info.outputs]
    lines.append(f"  dense weights: {', '.join(quant)}"
                 + (f" {info.dense_layers[0].weight_dtype}" if info.dense_layers else ""))
    if info.compiled_for_edgetpu:
        lines.append("  Edge TPU: compiled for it (edgetpu-custom-op)")
    elif edgetpu_refusal:
        lines.append(f"  Edge TPU: not runnable: {edgetpu_refusal}")
    else:
        lines.append("  Edge TPU: the compiler should accept it (full int8, fixed shapes, supported operators)")
    lines += [f"  note: {n}" for n in notes]
    lines.append("  (--json prints every field)")
    return lines


def _dtype_names() -> dict[int, str]:
    import tflite

    return {getattr(tflite.TensorType, n): n.lower() for n in dir(tflite.TensorType) if n.isupper()}


_ITEMSIZE = {"int8": 1, "uint8": 1, "int16": 2, "float16": 2, "int32": 4, "float32": 4, "int64": 8, "float64": 8}


def read_model(path: str | Path) -> ModelInfo:
    """Parse a .tflite file; errors name the file."""
    try:
        import tflite
    except ImportError as e:  # pragma: no cover - tflite is a core dependency
        raise EdgecheckError("reading .tflite files needs the package tflite") from e
    path = Path(path)
    from edgecheck.files import read_bytes

    buf = read_bytes(path, f"{path}", "model")
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise EdgecheckError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        if model.SubgraphsLength() < 1:
            raise EdgecheckError(f"{path}: model has no subgraph")
        sg = model.Subgraphs(0)
        dtypes = _dtype_names()
        tensors = []
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            q = t.Quantization()
            scale = q.ScaleAsNumpy().tolist() if q is not None and not q.ScaleIsNone() else []
            zp = q.ZeroPointAsNumpy().tolist() if q is not None and not q.ZeroPointIsNone() else []
            b = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
            nbytes = 0
            if b is not None:
                nbytes = b.DataLength() or int(b.Size())
            shape = t.ShapeAsNumpy().tolist() if not t.ShapeIsNone() else []
            signature = t.ShapeSignatureAsNumpy().tolist() if not t.ShapeSignatureIsNone() else []
            if any(d < 0 for d in shape):  # -1 (dynamic) belongs in the signature; a shape's dimensions are sizes
                raise EdgecheckError(f"{path}: tensor {i} has the shape {shape}: a negative dimension")
            bad = [v for v in (q.ScaleAsNumpy().tolist() if q is not None and not q.ScaleIsNone() else [])
                   if not math.isfinite(v)]
            if bad:
                raise EdgecheckError(f"{path}: tensor {i} has a quantization scale of {bad[0]!r}, not a finite number")
            tensors.append(TensorInfo(
                index=i, name=(t.Name() or b"").decode("utf-8", "replace"), shape=[int(s) for s in shape],
                dtype=dtypes.get(t.Type(), str(t.Type())), buffer_bytes=int(nbytes),
                scale=[float(s) for s in scale], zero_point=[int(z) for z in zp],
                quantized_dimension=int(q.QuantizedDimension()) if q is not None else 0,
                shape_signature=[int(s) for s in signature],
            ))
        ops = []
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = tflite.BUILTIN_OPCODE2NAME.get(builtin, str(builtin))
            if name == "CUSTOM":
                name = (code.CustomCode() or b"CUSTOM").decode("utf-8", "replace")
            ops.append(OperatorInfo(name, int(code.Version()), [int(x) for x in op.InputsAsNumpy()],
                                    [int(x) for x in op.OutputsAsNumpy()]))
        inputs = [int(x) for x in sg.InputsAsNumpy()]
        outputs = [int(x) for x in sg.OutputsAsNumpy()]
    except EdgecheckError:
        raise
    except Exception as e:  # a corrupt flatbuffer raises anything from struct to IndexError
        raise EdgecheckError(f"{path}: corrupt or unsupported TFLite file ({type(e).__name__}: {e})") from None
    info = ModelInfo(str(path), len(buf), ops, tensors, inputs, outputs)
    try:
        info.dense_layers = [_dense(info, op) for op in ops if op.name == "FULLY_CONNECTED"]
        info.weighted_ops = [w for op in ops if (w := _weighted(info, op)) is not None]
    except (IndexError, ValueError) as e:  # an operator pointing at tensors that are not there
        raise EdgecheckError(f"{path}: corrupt or unsupported TFLite file ({type(e).__name__}: {e})") from None
    return info


def _elements(t: TensorInfo) -> int:
    return int(np.prod(t.shape, dtype=np.int64)) if t.shape else 0


def _const(info: ModelInfo, i: int) -> TensorInfo | None:
    if i < 0 or i >= len(info.tensors):
        return None
    t = info.tensors[i]
    return t if t.buffer_bytes > 0 else None


def _weighted(info: ModelInfo, op: OperatorInfo) -> WeightedOp | None:
    """The weights, biases and MACs of one operator, or None when it has no weights."""
    if op.name in WEIGHTED_OPS:
        wi, bi = WEIGHTED_OPS[op.name]
        w = _const(info, op.inputs[wi]) if len(op.inputs) > wi else None
        b = _const(info, op.inputs[bi]) if len(op.inputs) > bi else None
        if w is None:
            return None  # weights computed at run time (not a layer with weights of its own)
        out = info.tensors[op.outputs[0]]
        n_out = _elements(out)
        ws = w.shape
        macs = {"FULLY_CONNECTED": lambda: _elements(w) * max(1, n_out // max(1, ws[0])),  # x batch
                "CONV_2D": lambda: n_out * int(np.prod(ws[1:], dtype=np.int64)),
                "DEPTHWISE_CONV_2D": lambda: n_out * int(np.prod(ws[1:3], dtype=np.int64)),
                "CONV_3D": lambda: n_out * int(np.prod(ws[:4], dtype=np.int64)),
                "TRANSPOSE_CONV": lambda: _elements(info.tensors[op.inputs[2]]) * int(np.prod(ws[:3], dtype=np.int64)),
                }[op.name]()
        return WeightedOp(op.name, _elements(w) + (_elements(b) if b else 0), w.buffer_bytes or _nbytes(w),
                          (b.buffer_bytes or _nbytes(b)) if b else 0, int(macs))
    consts = [t for i in op.inputs if (t := _const(info, i)) is not None
              and t.dtype in _WEIGHT_DTYPES and len(t.shape) >= 2]
    if not consts:
        return None
    return WeightedOp(op.name, sum(_elements(t) for t in consts), sum(t.buffer_bytes for t in consts), 0, None)


def _nbytes(t: TensorInfo) -> int:
    return int(np.prod(t.shape, dtype=np.int64)) * _ITEMSIZE.get(t.dtype, 4) if t.shape else 0


def _dense(info: ModelInfo, op: OperatorInfo) -> DenseLayer:
    x = info.tensors[op.inputs[0]]
    w = info.tensors[op.inputs[1]]
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    b = info.tensors[op.inputs[2]] if has_bias else None
    out_f, in_f = (w.shape + [1, 1])[:2]
    y = info.tensors[op.outputs[0]]
    quant = "none" if not w.scale else "per-channel" if w.per_channel else "per-tensor"
    return DenseLayer(
        in_features=int(in_f), out_features=int(out_f),
        weight_bytes=w.buffer_bytes or _nbytes(w),
        bias_bytes=(b.buffer_bytes or _nbytes(b)) if b is not None else 0,
        macs=int(in_f) * int(out_f), weight_dtype=w.dtype, weight_quantization=quant,
        input_bytes=_nbytes(x), output_bytes=_nbytes(y),
    )
