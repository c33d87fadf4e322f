"""The measurement worker: times models in its own process, on this machine or on a board.

Standalone on purpose: it runs under Python 3.7 and newer with only numpy and an
interpreter package (ai_edge_litert, tflite_runtime or Google's pycoral), so a
Coral Dev Board on Mendel Linux (Python 3.7, tflite_runtime 2.5) can run it. It
reads one JSON job on stdin and writes one JSON line per model as soon as that
model is done, so a crash loses only the model being measured:

    {"device": "tpu"|"a53"|"cpu", "threads": 1, "tpu_device": null,
     "rounds": 30, "warmup_rounds": 2, "round_seconds": 0.01,
     "models": [{"name": "1x32", "path": "/tmp/x/1x32_edgetpu.tflite"}]}

Each line: {"name", "ok", "samples" (seconds per invoke, one per round),
"iterations", "load_seconds", "first_invoke_seconds", "interpreter", "host"}
or {"name", "ok": false, "error"}. Do not use syntax newer than Python 3.7 here.
"""
import json
import os
import platform
import sys
import time


def _interpreter_module():
    for name in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        try:
            module = __import__(name, fromlist=["Interpreter"])
            return name, module
        except ImportError:
            continue
    raise RuntimeError("no TFLite interpreter: install ai-edge-litert or tflite-runtime")


def _delegate(module, device):
    lib = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}.get(
        platform.system(), "libedgetpu.so.1")
    return module.load_delegate(lib, {"device": device} if device else {})


def _is_a53():
    try:
        with open("/proc/cpuinfo") as f:
            parts = [line.split(":", 1)[1].strip().lower() for line in f if line.lower().startswith("cpu part")]
        return "0xd03" in parts
    except OSError:
        return False


def _host():
    info = {"node": platform.node(), "machine": platform.machine(), "python": platform.python_version()}
    try:
        with open("/proc/device-tree/model", "rb") as f:
            info["board"] = f.read().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        pass
    return info


def measure(job, model, module, module_name):
    import numpy as np

    t0 = time.perf_counter()
    delegates = [_delegate(module, job.get("tpu_device"))] if job["device"] == "tpu" else None
    interp = module.Interpreter(model_path=model["path"], num_threads=int(job.get("threads", 1)),
                                experimental_delegates=delegates)
    interp.allocate_tensors()
    load = time.perf_counter() - t0
    d = interp.get_input_details()[0]
    interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    t0 = time.perf_counter()
    interp.invoke()
    first = time.perf_counter() - t0
    invoke = interp.invoke
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.005 and n < 10000:
        invoke()
        n += 1
    per = (time.perf_counter() - t0) / n
    iterations = max(1, int(job.get("round_seconds", 0.01) / per + 0.999))
    loop = range(iterations)
    for _ in range(int(job.get("warmup_rounds", 2))):
        for _ in loop:
            invoke()
    samples = []
    for _ in range(int(job.get("rounds", 30))):
        start = time.perf_counter()
        for _ in loop:
            invoke()
        samples.append((time.perf_counter() - start) / iterations)
    return {"name": model["name"], "ok": True, "samples": samples, "iterations": iterations, "load_seconds": load,
            "first_invoke_seconds": first, "interpreter": module_name, "host": _host()}


def main():
    job = json.load(sys.stdin)
    if job["device"] == "a53" and not _is_a53():
        print(json.dumps({"fatal": "this host's CPU is not an Arm Cortex-A53 (no CPU part 0xd03 in /proc/cpuinfo)"}))
        return 3
    try:
        module_name, module = _interpreter_module()
    except RuntimeError as e:
        print(json.dumps({"fatal": str(e)}))
        return 3
    abort_after = int(os.environ.get("EDGECHECK_WORKER_ABORT_AFTER", "-1"))  # fault injection for tests
    for i, model in enumerate(job["models"]):
        if i == abort_after:
            sys.stdout.flush()
            os.abort()
        try:
            line = measure(job, model, module, module_name)
        except Exception as e:  # noqa: BLE001 - one model's failure is reported, the others go on
            line = {"name": model["name"], "ok": False, "error": "{}: {}".format(type(e).__name__, e)}
        print(json.dumps(line))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
