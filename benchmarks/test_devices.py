"""The design card's device fixtures: the TPU and A53 interpreters, exercised on the built models."""
import numpy as np


def _agreement(interp, model, features):
    from edgecheck.interpreter import predict

    F, _ = features
    built = np.load(model.predictions)[:200]
    return float(np.mean(predict(interp, F[:200]).argmax(axis=1) == built))


def test_tpu_interpreter_matches_the_cpu(tpu_interpreter, edgecheck_session):
    """On an Edge TPU the int8 outputs agree with the CPU interpreter's on the test windows."""
    models = [m for m in edgecheck_session.models if m.edgetpu_tflite is not None and m.predictions is not None]
    for m in models[:3]:
        assert _agreement(tpu_interpreter(m), m, edgecheck_session.artifacts.test_features()) >= 0.95


def test_a53_interpreter_matches_the_build(a53_interpreter, edgecheck_session):
    for m in [m for m in edgecheck_session.models if m.predictions is not None][:3]:
        assert _agreement(a53_interpreter(m), m, edgecheck_session.artifacts.test_features()) >= 0.99
