"""The one measurement set-up (``start_recorder``) that the pytest session and ``edgecheck calibrate`` share:
a real model measured on this host's cpu by a real worker, the results file written, everything closed."""
from support import load
from tinytflite import dense_tflite

from edgecheck import artifacts as art
from edgecheck.measure.devices import select
from edgecheck.measure.recorder import TimingOptions, start_recorder


def test_start_recorder_measures_and_closes_the_worker_and_the_file(tmp_path):
    model = art.user_model(dense_tflite(tmp_path / "m.tflite", [64, 32, 4]))
    (device,) = select(["cpu"]).devices
    results = tmp_path / "results.json"
    lines = []
    with start_recorder(results, {"run": {"devices": [device.to_dict()]}},
                        TimingOptions(processes=2, rounds=2, round_seconds=0.001), plan={device.key: [model]},
                        progress=lines.append, idle_timeout_s=120) as recorder:
        entry = recorder.measure(model, device)
        assert recorder.ctx.transports and recorder.results.lock is not None  # the worker and the file are open
        recorder.results.compact()
    assert not recorder.ctx.transports and recorder.results.lock is None  # both closed on leaving
    assert entry.ok and len(entry.latency.processes) >= 2
    assert any("cpu: timing 1 model in up to 2 fresh processes" in line for line in lines)
    (saved,) = load(results)["entries"]
    assert saved["status"] == "ok" and saved["model"]["sha256"] == model.sha256
    assert not results.with_name(results.name + ".journal").exists()
