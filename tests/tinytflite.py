"""Tiny .tflite files with known sizes, written with the flatbuffers schema itself (no TensorFlow).

``dense_tflite(path, [n_in, h1, ..., n_out])`` writes one FULLY_CONNECTED per layer with int8 weights, int32
biases and int8 activations, as the converter does; options make the variants the Edge TPU compiler refuses
(float weights, dynamic batch, an operator it does not run) or accepts (float input and output through
QUANTIZE/DEQUANTIZE, per-channel weights). The files load and run in LiteRT (tests/test_allocation.py).
"""
from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import tflite

INT8, INT32, FLOAT32 = tflite.TensorType.INT8, tflite.TensorType.INT32, tflite.TensorType.FLOAT32
OPS = tflite.BuiltinOperator


def _ivec(b: flatbuffers.Builder, start, values) -> int:
    start(b, len(values))
    for v in reversed(values):
        b.PrependInt32(int(v))
    return b.EndVector()


def _fvec(b: flatbuffers.Builder, start, values) -> int:
    start(b, len(values))
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return b.EndVector()


def _lvec(b: flatbuffers.Builder, start, values) -> int:
    start(b, len(values))
    for v in reversed(values):
        b.PrependInt64(int(v))
    return b.EndVector()


def _offsets(b: flatbuffers.Builder, start, offs) -> int:
    start(b, len(offs))
    for o in reversed(offs):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def dense_tflite(path: str | Path, sizes: list[int], *, float_weights: bool = False, float_edges: bool = False,
                 per_channel: bool = False, dynamic_batch: bool = False, extra_op: str | None = None,
                 bias: bool = True, seed: int = 0) -> Path:
    """Write the dense network ``sizes`` = [n_in, ..., n_out] and return its path."""
    rng = np.random.default_rng(seed)
    tensors: list[dict] = []  # name, shape, type, data (bytes or None), scale, zero_point, qdim
    ops: list[tuple[str, list[int], list[int]]] = []

    def tensor(name, shape, ttype, data=None, scale=None, zp=None, qdim=0) -> int:
        tensors.append(dict(name=name, shape=shape, type=ttype, data=data, scale=scale, zp=zp, qdim=qdim))
        return len(tensors) - 1

    act = FLOAT32 if float_weights else INT8
    x = tensor("input", [1, sizes[0]], FLOAT32 if (float_edges or float_weights) else INT8,
               scale=None if (float_edges or float_weights) else [0.05], zp=None if float_weights else [0])
    graph_in = x
    if float_edges and not float_weights:
        q = tensor("input_int8", [1, sizes[0]], INT8, scale=[0.05], zp=[0])
        ops.append(("QUANTIZE", [x], [q]))
        x = q
    for i, (a, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        if float_weights:
            w = tensor(f"w{i}", [o, a], FLOAT32, rng.standard_normal((o, a)).astype(np.float32).tobytes())
            bb = tensor(f"b{i}", [o], FLOAT32, np.zeros(o, np.float32).tobytes()) if bias else -1
            y = tensor(f"y{i}", [1, o], FLOAT32)
        else:
            ws = [0.01 + 0.001 * (k % 7) for k in range(o)] if per_channel else [0.01]
            w = tensor(f"w{i}", [o, a], INT8, rng.integers(-127, 128, (o, a), dtype=np.int8).tobytes(),
                       scale=ws, zp=[0] * len(ws), qdim=0)
            bb = tensor(f"b{i}", [o], INT32, np.zeros(o, np.int32).tobytes(), scale=[0.05 * s for s in ws],
                        zp=[0] * len(ws)) if bias else -1
            y = tensor(f"y{i}", [1, o], INT8, scale=[0.1], zp=[0])
        ops.append(("FULLY_CONNECTED", [x, w, bb], [y]))
        x = y
    if extra_op:
        y = tensor("extra", [1, sizes[-1]], act, scale=None if float_weights else [0.1],
                   zp=None if float_weights else [0])
        ops.append((extra_op, [x], [y]))
        x = y
    if float_edges and not float_weights:
        y = tensor("output_float", [1, sizes[-1]], FLOAT32)
        ops.append(("DEQUANTIZE", [x], [y]))
        x = y
    graph_out = x

    b = flatbuffers.Builder(1024 + sum(len(t["data"] or b"") for t in tensors))
    # buffers: 0 is the empty sentinel; each constant tensor gets its own
    buf_offs, buf_index = [], []
    tflite.BufferStart(b)
    buf_offs.append(tflite.BufferEnd(b))
    for t in tensors:
        if t["data"]:
            data = b.CreateByteVector(t["data"])
            tflite.BufferStart(b)
            tflite.BufferAddData(b, data)
            buf_offs.append(tflite.BufferEnd(b))
            buf_index.append(len(buf_offs) - 1)
        else:
            buf_index.append(0)
    t_offs = []
    for t, bi in zip(tensors, buf_index):
        name = b.CreateString(t["name"])
        shape = _ivec(b, tflite.TensorStartShapeVector, t["shape"])
        sig = _ivec(b, tflite.TensorStartShapeSignatureVector, [-1] + t["shape"][1:]) \
            if dynamic_batch and len(t["shape"]) == 2 and t["data"] is None else None
        quant = None
        if t["scale"]:
            sc = _fvec(b, tflite.QuantizationParametersStartScaleVector, t["scale"])
            zp = _lvec(b, tflite.QuantizationParametersStartZeroPointVector, t["zp"])
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, sc)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            tflite.QuantizationParametersAddQuantizedDimension(b, t["qdim"])
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        if sig is not None:
            tflite.TensorAddShapeSignature(b, sig)
        tflite.TensorAddType(b, t["type"])
        tflite.TensorAddBuffer(b, bi)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        t_offs.append(tflite.TensorEnd(b))
    names = list(dict.fromkeys(name for name, _, _ in ops))
    code_offs = []
    for n in names:
        code = getattr(OPS, n)
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, 1 if n != "FULLY_CONNECTED" or float_weights else 4)
        code_offs.append(tflite.OperatorCodeEnd(b))
    op_offs = []
    for n, ins, outs in ops:
        iv = _ivec(b, tflite.OperatorStartInputsVector, ins)
        ov = _ivec(b, tflite.OperatorStartOutputsVector, outs)
        opts = None
        if n == "FULLY_CONNECTED":
            tflite.FullyConnectedOptionsStart(b)
            opts = tflite.FullyConnectedOptionsEnd(b)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, names.index(n))
        tflite.OperatorAddInputs(b, iv)
        tflite.OperatorAddOutputs(b, ov)
        if opts is not None:
            tflite.OperatorAddBuiltinOptionsType(b, tflite.BuiltinOptions.FullyConnectedOptions)
            tflite.OperatorAddBuiltinOptions(b, opts)
        op_offs.append(tflite.OperatorEnd(b))
    tv = _offsets(b, tflite.SubGraphStartTensorsVector, t_offs)
    ov = _offsets(b, tflite.SubGraphStartOperatorsVector, op_offs)
    iv = _ivec(b, tflite.SubGraphStartInputsVector, [graph_in])
    outv = _ivec(b, tflite.SubGraphStartOutputsVector, [graph_out])
    sg_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tv)
    tflite.SubGraphAddOperators(b, ov)
    tflite.SubGraphAddInputs(b, iv)
    tflite.SubGraphAddOutputs(b, outv)
    tflite.SubGraphAddName(b, sg_name)
    sg = tflite.SubGraphEnd(b)
    sgv = _offsets(b, tflite.ModelStartSubgraphsVector, [sg])
    cv = _offsets(b, tflite.ModelStartOperatorCodesVector, code_offs)
    bv = _offsets(b, tflite.ModelStartBuffersVector, buf_offs)
    desc = b.CreateString("edgecheck tests: tinytflite")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, cv)
    tflite.ModelAddSubgraphs(b, sgv)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, bv)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    path = Path(path)
    path.write_bytes(bytes(b.Output()))
    return path
