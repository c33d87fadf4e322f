"""Edge TPU detection on real sysfs and /dev layouts, and the child-process delegate probe."""
import os
import shutil

import pytest

from edgecheck import artifacts as art
from edgecheck.artifacts import user_model
from edgecheck.build.compile import find_compiler
from edgecheck.measure.devices import MEASURED, Device
from edgecheck.measure.edgetpu import find_edge_tpus, probe


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
    cpu = Device("cpu", MEASURED)
    tpu = Device("tpu", MEASURED)
    assert cpu.cannot_run(m) is None
    assert "no compiled *_edgetpu.tflite" in tpu.cannot_run(m)
    m.edgetpu_tflite = m.tflite  # as user_model() marks a file holding edgetpu-custom-op
    assert "only the tpu device runs it" in cpu.cannot_run(m)
    assert tpu.cannot_run(m) is None


@pytest.mark.skipif(find_compiler() is None,
                    reason="edgetpu_compiler is not installed (x86-64 Debian, Coral apt repository)")
def test_real_compiler_compiles_a_built_model(smoke_artifacts, tmp_path):
    from edgecheck.build.compile import compile_model
    from edgecheck.compilerlog import parse

    out, text = compile_model(find_compiler(), art.load(smoke_artifacts).models[0].tflite, tmp_path)
    log = parse(text)
    assert out.is_file() and log.models[0].fully_mapped
