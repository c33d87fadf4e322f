"""Full-integer int8 conversion that the Edge TPU compiler accepts (build stage only).

Settings (docs/stack.md): from_keras_model, a representative dataset of training
windows, TFLITE_BUILTINS_INT8 only, int8 input and output, static batch 1, and
per-tensor dense weights (what the Edge TPU's fully-connected op expects). The
scales are then verified from the flatbuffer, not trusted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecheck.errors import EdgecheckError
from edgecheck.modelfile import read_model

REPRESENTATIVE_WINDOWS = 200


def to_int8_tflite(model, F_repr: np.ndarray) -> bytes:
    import keras
    import tensorflow as tf

    # A static [1, n] input: rebuild the same graph on a batch-1 Input and copy the weights.
    n_in = model.input_shape[-1]
    inp = keras.Input(shape=(n_in,), batch_size=1, name="features")
    x = inp
    for layer in model.layers[1:]:
        x = layer(x)
    static = keras.Model(inp, x)

    def representative():
        for row in F_repr[:REPRESENTATIVE_WINDOWS]:
            yield [row.reshape(1, -1).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(static)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    return conv.convert()


def check_edgetpu_ready(path: Path) -> dict:
    """Verify what the Edge TPU compiler needs; returns the model's summary."""
    info = read_model(path)
    summary = info.summary()
    problems = []
    for d in info.dense_layers:
        if d.weight_dtype != "int8":
            problems.append(f"dense weights are {d.weight_dtype}, not int8")
        if d.weight_quantization != "per-tensor":
            problems.append(f"dense weights are {d.weight_quantization}-quantized, not per-tensor")
    for io in summary["inputs"] + summary["outputs"]:
        if io["dtype"] != "int8":
            problems.append(f"tensor {io['name']} is {io['dtype']}, not int8")
        if io["shape"][:1] != [1]:
            problems.append(f"tensor {io['name']} has shape {io['shape']}, not a static batch of 1")
    if problems:
        raise EdgecheckError(f"{path}: not a full-int8 model the Edge TPU compiler accepts: "
                             + "; ".join(sorted(set(problems))))
    return summary
