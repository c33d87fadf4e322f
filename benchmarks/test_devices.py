"""The design card's device fixtures: the TPU and A53 interpreters, exercised on the built models."""
from edgecheck.interpreter import predict
from edgecheck.metrics import agreement

WINDOWS = 200


def _agreement_with_build(interp, model) -> float:
    """Share of the first test windows on which this interpreter predicts what the build predicted."""
    ts = model.test_set
    return agreement(predict(interp, ts.features[:WINDOWS]).argmax(axis=1), model.build_predictions[:WINDOWS])


def test_tpu_interpreter_matches_the_cpu(tpu_interpreter, edgecheck_session):
    """On an Edge TPU the int8 outputs agree with the CPU interpreter's on the test windows."""
    models = [m for m in edgecheck_session.models if m.edgetpu_tflite is not None and m.build_predictions is not None]
    for m in models[:3]:
        assert _agreement_with_build(tpu_interpreter(m), m) >= 0.95


def test_a53_interpreter_matches_the_build(a53_interpreter, edgecheck_session):
    for m in [m for m in edgecheck_session.models if m.build_predictions is not None][:3]:
        assert _agreement_with_build(a53_interpreter(m), m) >= 0.99
