"""Training one dense classifier with Keras 3 (build stage only; imports TensorFlow)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from edgecheck.architecture import Architecture


@dataclass(frozen=True)
class TrainConfig:
    """The training budget; fixed so the default grid trains in minutes on 2 cores."""

    max_epochs: int = 12
    batch_size: int = 128
    patience: int = 3  # early stopping on validation loss
    learning_rate: float = 1e-3
    max_train_windows: int = 4000  # the training set is capped at this size
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def keras_model(arch: Architecture, n_in: int, n_out: int):
    """Input(batch 1 at conversion) -> L x Dense(N, act) -> Dense(classes) logits."""
    import keras

    inputs = keras.Input(shape=(n_in,), name="features")
    x = inputs
    for i, width in enumerate(arch.layer_sizes(n_in, n_out)[1:-1]):  # a widened variant's first layer is wider
        x = keras.layers.Dense(width, activation=arch.activation, name=f"hidden{i + 1}")(x)
    outputs = keras.layers.Dense(n_out, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"ffnn_{arch.name}")


def train(arch: Architecture, F_train: np.ndarray, y_train: np.ndarray, F_val: np.ndarray, y_val: np.ndarray,
          n_classes: int, cfg: TrainConfig):
    """Train with fixed seeds and deterministic ops; returns (model, info)."""
    from edgecheck.build.pool import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras
    import tensorflow as tf

    # A fresh Keras state per model: layer and graph names carry a per-process counter (functional_1_1 for the
    # second model in a process) that the converter writes into the .tflite, so without this a model's bytes
    # would depend on which models its process trained before it (a serial build vs a pool).
    keras.backend.clear_session()
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    model = keras_model(arch, F_train.shape[1], n_classes)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience, restore_best_weights=True)
    t0 = time.perf_counter()
    hist = model.fit(F_train, y_train, validation_data=(F_val, y_val), epochs=cfg.max_epochs,
                     batch_size=cfg.batch_size, callbacks=[stop], verbose=0, shuffle=True)
    info = {"epochs_run": len(hist.history["loss"]), "train_seconds": round(time.perf_counter() - t0, 3),
            "best_val_loss": float(min(hist.history["val_loss"])), "keras_params": int(model.count_params())}
    return model, info


def float_predict(model, F: np.ndarray) -> np.ndarray:
    """Float class predictions; a direct call avoids Keras' per-model predict retracing."""
    return np.asarray(model(F, training=False)).argmax(axis=1)


def widen_trained(model, arch: Architecture, n_in: int, n_out: int):
    """``model`` (trained as ``arch`` without its widening) with ``arch.first_width - arch.width`` more neurons in
    its first hidden layer, all of whose weights and biases are zero: the same function (the extra neurons output
    relu(0) = 0 and the next layer's weights from them are 0, so float and int8 predictions are the base's), and
    the kernels do the extra MACs all the same. A variant that differs from its base only in the work it does."""
    extra = (arch.first_width or arch.width) - arch.width
    if extra <= 0:
        return model
    wide = keras_model(arch, n_in, n_out)
    for i, (src, dst) in enumerate(zip(model.layers[1:], wide.layers[1:])):
        w, b = src.get_weights()
        if i == 0:  # the first hidden layer: zero columns for its new neurons
            w = np.concatenate([w, np.zeros((w.shape[0], extra), w.dtype)], axis=1)
            b = np.concatenate([b, np.zeros(extra, b.dtype)])
        elif i == 1:  # the layer after it: zero rows for the inputs from those neurons
            w = np.concatenate([w, np.zeros((extra, w.shape[1]), w.dtype)], axis=0)
        dst.set_weights([w, b])
    return wide
