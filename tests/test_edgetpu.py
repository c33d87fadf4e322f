"""Edge TPU detection on real sysfs and /dev layouts, and the child-process delegate probe."""
import os
import shutil

import pytest

from edgecheck import artifacts as art
from edgecheck.artifacts import user_model
from edgecheck.build.compile import find_compiler
from edgecheck.measure.device import MEASURED, Device
from edgecheck.measure.edgetpu import find_edge_tpus, probe
from edgecheck.measure.kinds.cpu import KIND as CPU
from edgecheck.measure.kinds.tpu import KIND as TPU


def _usb_device(root, name, vid, pid, speed, busnum=2, devnum=3):
    d = root / name
    d.mkdir(parents=True)
    # the kernel's files in /sys/bus/usb/devices/<port>/ (one value per file, newline-terminated)
    for f, v in {"idVendor": vid, "idProduct": pid, "speed": speed, "busnum": busnum, "devnum": devnum,
                 "manufacturer": "Google Inc."}.items():
        (d / f).write_text(f"{v}\n")
    return d


def test_finds_usb_and_pci(tmp_path):
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    (dev / "bus" / "usb" / "002").mkdir(parents=True)
    (dev / "bus" / "usb" / "002" / "003").write_text("")
    (dev / "apex_0").write_text("")
    _usb_device(sysfs, "2-1", "18d1", "9302", "5000")
    _usb_device(sysfs, "1-1.2", "1a6e", "089a", "480", busnum=1, devnum=5)
    _usb_device(sysfs, "1-1.3", "046d", "c52b", "12")  # a mouse
    tpus = find_edge_tpus(dev, sysfs)
    assert [t.type for t in tpus] == ["pci", "usb", "usb"]
    assert tpus[0].path.endswith("apex_0") and tpus[0].accessible
    by_path = {os.path.basename(t.path): t for t in tpus[1:]}
    assert by_path["2-1"].usb_speed == "USB 3 (5 Gb/s)" and by_path["2-1"].state == "usb"
    assert by_path["1-1.2"].state.startswith("usb (firmware not yet loaded)")
    assert "USB 2 speed" in by_path["1-1.2"].note


def test_no_tpu_here(tmp_path):
    assert find_edge_tpus(tmp_path / "dev", tmp_path / "sys") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can open any device node")
def test_permission_problem_is_named(tmp_path):
    (tmp_path / "dev").mkdir()
    node = tmp_path / "dev" / "apex_0"
    node.write_text("")
    node.chmod(0)
    (t,) = find_edge_tpus(tmp_path / "dev", tmp_path / "sys")
    assert t.accessible is False and "apex" in t.note


def test_probe_reports_the_childs_error(smoke_artifacts):
    """Without libedgetpu the real child process fails to load the delegate; the session gets its message."""
    if shutil.which("ldconfig") and "libedgetpu" in os.popen("ldconfig -p").read():
        pytest.skip("libedgetpu is installed here")
    model = art.load(smoke_artifacts).models[0].tflite
    ok, message = probe(str(model))
    assert not ok and "cannot load the Edge TPU delegate libedgetpu.so.1" in message


def test_compiled_user_model_runs_only_on_tpu(smoke_artifacts, tmp_path):
    m = user_model(art.load(smoke_artifacts).models[0].tflite)
    cpu = Device(CPU.name, MEASURED, impl=CPU)
    tpu = Device(TPU.name, MEASURED, impl=TPU)
    assert cpu.cannot_run(m) is None
    assert "no compiled *_edgetpu.tflite" in tpu.cannot_run(m)
    m.edgetpu_tflite = m.tflite  # as user_model() marks a file holding edgetpu-custom-op
    assert "only an Edge TPU runs it" in cpu.cannot_run(m)
    assert tpu.cannot_run(m) is None


@pytest.mark.skipif(find_compiler() is None,
                    reason="edgetpu_compiler is not installed (x86-64 Debian, Coral apt repository)")
def test_real_compiler_compiles_a_built_model(smoke_artifacts, tmp_path):
    from edgecheck.build.compile import compile_model
    from edgecheck.compilerlog import parse

    out, text = compile_model(find_compiler(), art.load(smoke_artifacts).models[0].tflite, tmp_path)
    log = parse(text)
    assert out.is_file() and log.models[0].fully_mapped


STAND_IN = {
    "pycoral/__init__.py": '''"""STAND-IN for Google's pycoral, written by edgecheck's tests (tests/test_edgetpu.py).
It is NOT pycoral: it runs a model on the CPU through ai-edge-litert and records every call in
$PYCORAL_STANDIN_LOG, so the tests see that edgecheck goes through pycoral first. Google's pycoral comes from
Coral's repository (it cannot be installed here); PyPI's 'pycoral' is an unrelated project."""
__version__ = "0+edgecheck.test.stand.in"
STAND_IN = True
''',
    "pycoral/utils/__init__.py": '"""STAND-IN (edgecheck tests only)."""\n',
    "pycoral/utils/edgetpu.py": '''"""STAND-IN (edgecheck tests only) for pycoral.utils.edgetpu: no Edge TPU, a CPU
interpreter, every call recorded."""
import json
import os


def list_edge_tpus():
    return []


def get_runtime_version():
    return "stand-in, no libedgetpu"


def make_interpreter(model_path_or_content, device=None, delegate=None):
    with open(os.environ["PYCORAL_STANDIN_LOG"], "a") as f:
        f.write(json.dumps({"model": str(model_path_or_content), "device": device, "pid": os.getpid()}) + "\\n")
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(model_path_or_content))
''',
}


@pytest.fixture
def pycoral_stand_in(tmp_path, monkeypatch):
    """A labelled stand-in ``pycoral`` package on sys.path (and PYTHONPATH, for child processes); its calls' log."""
    import sys

    root = tmp_path / "stand-in"
    for name, text in STAND_IN.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    log = tmp_path / "pycoral-calls.jsonl"
    log.touch()
    monkeypatch.setenv("PYCORAL_STANDIN_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", str(root))
    monkeypatch.syspath_prepend(str(root))
    for mod in [m for m in sys.modules if m == "pycoral" or m.startswith("pycoral.")]:
        monkeypatch.delitem(sys.modules, mod)
    yield log
    for mod in [m for m in sys.modules if m == "pycoral" or m.startswith("pycoral.")]:
        del sys.modules[mod]


def _calls(log):
    import json

    return [json.loads(x) for x in log.read_text().splitlines()]


def test_pycoral_first_in_the_delegate_probe(pycoral_stand_in, smoke_artifacts):
    """With pycoral installed, the child-process probe opens the TPU through pycoral.utils.edgetpu.make_interpreter
    (so pycoral's own libedgetpu/TFLite pairing is used), not LiteRT's load_delegate."""
    import json

    model = str(art.load(smoke_artifacts).models[0].tflite)
    ok, message = probe(model, "usb:0")
    assert ok, message
    assert json.loads(message)["via"] == "pycoral.utils.edgetpu.make_interpreter"
    assert [(c["model"], c["device"]) for c in _calls(pycoral_stand_in)] == [(model, "usb:0")]


def test_pycoral_first_in_the_worker_on_a_tpu(pycoral_stand_in, smoke_artifacts):
    """The board-side worker times the TPU through pycoral when it is there, and says so."""
    from test_remote import Timing, smoke_job

    from edgecheck.measure import sweep
    from edgecheck.measure.transport import LocalTransport

    job, files, models = smoke_job(smoke_artifacts, Timing(processes=1, rounds=2), with_inputs=False)
    job.update(device=TPU.name, accelerator=TPU.accelerator, tpu_device="pci:0", memory=False,
               models=[{"name": models[0].name}])
    result = sweep.run(LocalTransport(), job, files)
    assert result.interpreter == "pycoral.utils.edgetpu"
    assert result.of(models[0].name).timings and not result.of(models[0].name).errors
    calls = _calls(pycoral_stand_in)
    assert calls and {c["device"] for c in calls} == {"pci:0"}
    assert {c["model"] for c in calls} == {str(models[0].tflite)}


def test_pycoral_first_for_the_tpu_interpreter(pycoral_stand_in, smoke_artifacts):
    """tpu_interpreter(model) (LocalDevice.open) goes through pycoral's make_interpreter with the --tpu-device
    selector; _tpu_device records pycoral as the interpreter."""
    from edgecheck.interpreter import find_package
    from edgecheck.measure.local import LocalDevice

    m = user_model(art.load(smoke_artifacts).models[0].tflite)
    m.edgetpu_tflite = m.tflite  # stands for the compiled file: the stand-in runs it on the CPU
    dev = LocalDevice(TPU.name, MEASURED, 1, {"selector": ":0", "_package": find_package()}, impl=TPU)
    runner = dev.open(m)
    assert type(runner.interp).__module__.startswith("ai_edge_litert")  # what the stand-in made
    assert [(c["model"], c["device"]) for c in _calls(pycoral_stand_in)] == [(str(m.tflite), ":0")]
