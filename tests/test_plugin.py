"""The pytest plugin driven the way users drive it, through pytest's own pytester: a suite file, options,
a child pytest process, and its output matched line by line."""
import json

import pytest
from support import FAST, INFERENCE, NO_REPORT, REPO, load

from edgecheck import artifacts as art
from edgecheck.errors import EdgecheckError
from edgecheck.measure.devices import SelectOptions, parse_device_option, select
from edgecheck.measure.kinds.a53 import is_cortex_a53


@pytest.fixture
def suite(pytester: pytest.Pytester):
    """A folder holding the benchmark suite's test_inference.py, as a user's checkout does."""
    pytester.makepyfile(test_inference=(REPO / INFERENCE).read_text())
    return pytester


def test_results_file_and_benchmark_json(suite, smoke_artifacts, tmp_path):
    results, bench = tmp_path / "results.json", tmp_path / "bench.json"
    run = suite.runpytest_subprocess("--artifacts", str(smoke_artifacts), "--device", "cpu", "--results",
                                     str(results), f"--benchmark-json={bench}", *FAST, *NO_REPORT)
    run.assert_outcomes(passed=3)
    run.stdout.fnmatch_lines(["*edgecheck results*", "model*params*F1 int8*device*median*load*memory*agree*source*",
                              "1x16 *cpu *measured*", f"results: {results}"])
    data = load(results)
    assert data["measuring_process"]["tensorflow_imported"] is False
    assert data["environment"]["versions"]["ai-edge-litert"]
    assert data["artifacts"]["dataset"]["name"] == "collar"
    assert len(data["entries"]) == 3
    for e in data["entries"]:
        assert e["status"] == "ok" and e["kind"] == "measured"
        assert e["provenance"].startswith("measured on cpu")
        lat = e["latency"]
        # 2 fresh processes of 3 rounds (more where the interval stayed wide), each process's median kept
        assert len(lat["processes"]) >= 2 and len(lat["samples"]) == 3 * len(lat["processes"])
        assert lat["iterations_per_round"] >= 1 and lat["ci95"][0] <= lat["ci95"][1]
        assert lat["stats"]["median"] > 0 and lat["unit"] == "s"
        assert len(lat["in_process"]["samples"]) == 10  # pytest-benchmark's own rounds, in the pytest process
        assert e["on_device"]["agreement_with_build"] == 1.0
        assert e["load_seconds"] > 0 and e["first_invoke_seconds"] > 0
        # memory: the peak of a fresh process that loaded and ran only this model
        assert e["memory"]["peak_rss_bytes"] == e["peak_rss_bytes"] > e["memory"]["baseline_rss_bytes"] > 0
    bench = json.loads(bench.read_text())
    assert set(bench) >= {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    for b in bench["benchmarks"]:
        ei = b["extra_info"]
        assert ei["device"] == "cpu" and ei["provenance"].startswith("measured on cpu")
        assert ei["params"] > 0 and ei["macs"] > 0 and ei["weight_bytes"] > 0
        assert 0 < ei["int8_macro_f1"] <= 1 and 0 < ei["float_macro_f1"] <= 1
        assert b["params"] == {"edgecheck_model": b["param"].split("-")[0], "device": "cpu"}  # readable
        # seconds per invoke, with the invokes of a round as pytest-benchmark's iterations
        assert len(b["stats"]["data"]) == 10 and b["stats"]["iterations"] > 1
        entry = next(e for e in data["entries"] if e["model"]["name"] == b["params"]["edgecheck_model"])
        assert b["stats"]["data"] == pytest.approx(entry["latency"]["in_process"]["samples"])
        assert 0.2 < b["stats"]["median"] / entry["latency"]["stats"]["median"] < 5
    _benchmark_storage_is_history(tmp_path, bench, data)


def _benchmark_storage_is_history(tmp_path, bench: dict, data: dict):
    """pytest-benchmark's saved JSON carries the run (header + measured entries), so its storage is a history."""
    from edgecheck.judge.compare import compare_runs
    from edgecheck.results import load_history

    assert bench["edgecheck"]["header"]["created_utc"] == data["created_utc"]
    storage = tmp_path / ".benchmarks"
    machine = storage / "Linux-CPython-3.11-64bit"
    machine.mkdir(parents=True)
    for i in (1, 2):  # as --benchmark-autosave leaves them: NNNN_commit_date.json
        (machine / f"000{i}_abc_20261207_00000{i}.json").write_text(json.dumps(bench))
    for where in (storage, machine):
        history = load_history(where)
        assert len(history) == 2
        assert sorted(e.model.name for e in history[0].entries) == sorted(e["model"]["name"] for e in data["entries"])
        assert history[0].header["source"].startswith("pytest-benchmark storage")
    cmp = compare_runs(machine, tmp_path / "results.json")
    assert cmp.rows and not cmp.has_regression and cmp.drift is not None
    # refused, each naming its file: a plain pytest-benchmark file, and storage of two machines
    plain = {k: v for k, v in bench.items() if k != "edgecheck"}
    (machine / "0003_abc_20261207_000003.json").write_text(json.dumps(plain))
    with pytest.raises(EdgecheckError, match="0003_abc.*without edgecheck's run header"):
        load_history(machine)
    (storage / "Darwin-CPython-3.12-64bit").mkdir()
    (storage / "Darwin-CPython-3.12-64bit" / "0001_x_y.json").write_text(json.dumps(bench))
    with pytest.raises(EdgecheckError, match="storage of 2 machines"):
        load_history(storage)


def test_resume_measures_only_the_rest(suite, smoke_artifacts, tmp_path):
    results = tmp_path / "r.json"
    first = suite.runpytest_subprocess("--artifacts", str(smoke_artifacts), "--device", "cpu", "--results",
                                       str(results), "-k", "1x16", *FAST, *NO_REPORT)
    first.assert_outcomes(passed=1, deselected=2)
    assert len(load(results)["entries"]) == 1
    second = suite.runpytest_subprocess("--artifacts", str(smoke_artifacts), "--device", "cpu", "--results",
                                        str(results), "--resume", "-rs", *FAST, *NO_REPORT)
    second.assert_outcomes(passed=2, skipped=1)
    second.stdout.fnmatch_lines(["SKIPPED *already measured in*r.json (--resume)"])
    data = load(results)
    assert sorted(e["model"]["name"] for e in data["entries"]) == ["1x16", "1x64", "2x32"]


def test_user_model(suite, smoke_artifacts, tmp_path):
    model = art.load(smoke_artifacts).models[0].tflite
    results = tmp_path / "r.json"
    suite.runpytest_subprocess("--model", str(model), "--device", "cpu", "--results", str(results),
                               *FAST, *NO_REPORT).assert_outcomes(passed=1)
    (e,) = load(results)["entries"]
    assert e["model"]["origin"] == "user" and e["input"].startswith("zeros") and "on_device" not in e


def test_a53_skips_on_other_hosts(suite, smoke_artifacts, tmp_path):
    if is_cortex_a53():
        pytest.skip("this host is a Cortex-A53")
    run = suite.runpytest_subprocess("--artifacts", str(smoke_artifacts), "--device", "a53", "-rs",
                                     "--results", str(tmp_path / "r.json"), *FAST, *NO_REPORT)
    run.assert_outcomes(skipped=3)
    run.stdout.fnmatch_lines(["*a53: this host's CPU is not an Arm Cortex-A53*"])


def test_bad_options_are_clear(suite, smoke_artifacts, tmp_path):
    run = suite.runpytest_subprocess("--artifacts", str(smoke_artifacts), "--device", "gpu",
                                     "--results", str(tmp_path / "r.json"))
    assert run.ret != 0
    assert "unknown device 'gpu'" in run.stdout.str() + run.stderr.str()
    run = suite.runpytest_subprocess("--artifacts", str(tmp_path / "missing"), "--results", str(tmp_path / "r.json"))
    assert run.ret != 0
    assert "is not a directory" in run.stdout.str() + run.stderr.str()


# A verbatim /proc/cpuinfo block of a Raspberry Pi 3 (Cortex-A53) on 64-bit Raspberry Pi OS.
RPI3_CPUINFO = """processor\t: 0
BogoMIPS\t: 38.40
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd03
CPU revision\t: 4
"""
# and of a Raspberry Pi 4 (Cortex-A72), which is not an A53
RPI4_CPUINFO = RPI3_CPUINFO.replace("0xd03", "0xd08").replace("revision\t: 4", "revision\t: 3")


def test_a53_detection():
    assert is_cortex_a53(RPI3_CPUINFO)
    assert not is_cortex_a53(RPI4_CPUINFO)
    assert not is_cortex_a53("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU\n")
    # auto: the real devices found plus the twin of each missing one (no Edge TPU on these machines)
    sel = select(["auto"], SelectOptions(cpuinfo_text=RPI3_CPUINFO))
    assert [d.name for d in sel.devices] == ["a53", "tpu-sim"] and "tpu" in sel.absent
    sel = select(["auto"], SelectOptions(cpuinfo_text="model name: x86"))
    assert [d.name for d in sel.devices] == ["cpu", "tpu-sim", "a53-sim"]
    assert [d.kind for d in sel.devices] == ["measured", "simulated", "simulated"]
    sel = select(["cpu,a53"], SelectOptions(cpuinfo_text="model name: x86"))
    assert "a53" in sel.skipped and [d.name for d in sel.devices] == ["cpu"]


def test_device_option_parsing():
    assert parse_device_option(None) == ["auto"]
    assert parse_device_option(["cpu, a53", "cpu"]) == ["cpu", "a53"]
    with pytest.raises(EdgecheckError, match="unknown device 'tpu2'"):
        parse_device_option(["tpu2"])
    with pytest.raises(EdgecheckError, match="--a53-threads"):
        select(["a53"], SelectOptions(a53_threads=5, cpuinfo_text=RPI3_CPUINFO))


@pytest.mark.parametrize("option, message", [
    (("--device", "gpu"), "--device: unknown device 'gpu'"),
    (("--grid", "3y"), "grid '3y': '3y' is not LAYERSxWIDTH"),
    (("--energy-probe", "sparkle"), "--energy-probe: unknown probe 'sparkle'"),
    (("--rounds", "0"), "--rounds: must be >= 1"),
    (("--energy-window", "nan"), "--energy-window: expected a finite number"),
])
def test_a_bad_option_is_one_line_and_exit_4(suite, smoke_artifacts, tmp_path, option, message):
    args = ("--artifacts", str(smoke_artifacts)) if option[0] != "--grid" else ("--build-dir", str(tmp_path))
    run = suite.runpytest_subprocess(*args, *option, "--results", str(tmp_path / "r.json"))
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    out = run.stdout.str() + run.stderr.str()
    assert message in out and "Traceback" not in out and "INTERNALERROR" not in out
    assert not (tmp_path / "r.json").exists()


def test_a_run_that_measures_nothing_leaves_the_last_results(suite, smoke_artifacts, tmp_path):
    results, report = tmp_path / "r.json", tmp_path / "r.html"
    results.write_text('{"earlier": "run"}')
    report.write_text("<html>earlier</html>")
    run = suite.runpytest_subprocess("--artifacts", str(smoke_artifacts), "--device", "tpu", "--results",
                                     str(results))
    run.assert_outcomes(skipped=3)
    assert results.read_text() == '{"earlier": "run"}' and report.read_text() == "<html>earlier</html>"
    assert not list(tmp_path.glob("r.json.*"))  # no journal, no lock left


def test_a_second_writer_of_the_same_results_is_refused(suite, smoke_artifacts, tmp_path):
    import json
    import socket
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "r.json.lock").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                          "since": "2026-11-27T00:00:00Z"}))
        run = suite.runpytest_subprocess("--artifacts", str(smoke_artifacts), "--device", "tpu-sim",
                                         "--results", str(tmp_path / "r.json"), *NO_REPORT)
        assert run.ret == pytest.ExitCode.USAGE_ERROR
        assert f"is being written by another edgecheck run (pid {holder.pid}" in run.stdout.str() + run.stderr.str()
    finally:
        holder.kill()
        holder.wait()
    # its process gone, the lock is a crash's leftover: the next run takes it over
    suite.runpytest_subprocess("--artifacts", str(smoke_artifacts), "--device", "tpu-sim", "--results",
                               str(tmp_path / "r.json"), *NO_REPORT).assert_outcomes(passed=3)
    assert not (tmp_path / "r.json.lock").exists()


USER_TESTS = '''
import pytest

from edgecheck.interpreter import make_interpreter


def test_mine(tpu_interpreter, energy_probe, benchmark):
    """The design card's shape: this host has no Edge TPU, so it skips with the reason."""


def test_mine_on_this_cpu(edgecheck_session, energy_probe):
    interp = make_interpreter(edgecheck_session.models[0].tflite)
    energy = energy_probe.measure(interp.invoke)
    assert energy.total_j > 0 and energy.provenance.startswith("measured: hwmon probe")
    assert len(energy.windows) == 2 and all(w["samples"] >= 10 for w in energy.windows)
    assert energy_probe.idle()["power_w"] == pytest.approx(2.5)
    assert abs(energy.dynamic_j) < 0.05 * energy.total_j  # constant power: nothing above idle
'''


def test_energy_probe_fixture_in_a_users_own_test(pytester, smoke_artifacts, tmp_path):
    """``def test_mine(tpu_interpreter, energy_probe, benchmark)``: the configured probe (a verbatim ina2xx hwmon
    folder), with idle power and windows, in a user's own test; without a probe it skips with the reason."""
    from test_probes import ina2xx

    sensor = ina2xx(tmp_path / "hwmon")
    pytester.makepyfile(test_mine=USER_TESTS)
    run = pytester.runpytest_subprocess("--artifacts", str(smoke_artifacts), "--device", "tpu-sim", "-rs",
                                        "--assert=plain", "--energy-probe", f"hwmon:{sensor}",
                                        "--energy-window", "0.25", "--energy-windows", "2", "--idle-seconds", "0.25",
                                        "--report", "none")
    run.assert_outcomes(passed=1, skipped=1)
    run.stdout.fnmatch_lines(["*SKIPPED*tpu: *"])
    run = pytester.runpytest_subprocess("--artifacts", str(smoke_artifacts), "--device", "tpu-sim", "-rs",
                                        "--assert=plain", "-k", "on_this_cpu", "--report", "none")
    run.assert_outcomes(skipped=1)
    run.stdout.fnmatch_lines(["*SKIPPED*energy_probe: no --energy-probe given*"])


def test_every_fixture_is_documented_in_pytest_fixtures(pytester):
    run = pytester.runpytest_subprocess("--fixtures", "--assert=plain")
    text = run.stdout.str()
    for name, says in (("tpu_interpreter", "an allocated interpreter for ``model``"),
                       ("a53_interpreter", "Arm Cortex-A53"), ("energy_probe", "energy per inference of your own"),
                       ("edgecheck_session", "The session"), ("edgecheck_model", "The model of this benchmark"),
                       ("device", "The device of this benchmark"), ("edgecheck ", "The recorder"),
                       ("edgecheck_claims", "that claim evaluated")):
        at = text.find(name)
        assert at >= 0 and says in text[at:at + 600], name
