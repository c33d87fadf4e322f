"""The benchmark suite: one benchmark per (architecture, device).

Parametrized by edgecheck's plugin from --grid/--artifacts/--model and --device.
Each benchmark times the model with pytest-benchmark, records the result, and
checks that the device computed what the build computed.
"""


def test_inference(benchmark, edgecheck, edgecheck_model, device):
    entry = edgecheck.measure(benchmark, edgecheck_model, device)
    assert entry["status"] == "ok"
    if device.kind == "simulated":
        # a twin gives exactly one deterministic prediction per model, never a fake distribution
        assert entry["latency"]["samples"] == [entry["latency"]["stats"]["median"]] and entry["latency"]["simulated"]
        assert entry["energy"]["provenance"].startswith("simulated")
        return
    if entry["latency"] is not None:
        assert entry["latency"]["stats"]["median"] > 0
        assert entry["latency"]["rounds"] >= edgecheck.timing.rounds
    on_device = entry.get("on_device")
    if on_device and "agreement_with_build" in on_device and device.exact_cpu_kernels:
        # The same int8 model on a CPU interpreter must give the build's predictions.
        assert on_device["agreement_with_build"] >= 0.99, (
            f"{edgecheck_model.name} on {device.name} agrees with the build's int8 predictions on only "
            f"{on_device['agreement_with_build']:.1%} of test windows"
        )
