"""Energy probes against fake hwmon and powercap trees that mirror the kernel's files and units."""
import os
import threading
import time

import numpy as np
import pytest
from support import FAST, INFERENCE, NO_REPORT, load, run_edgecheck, run_pytest

from edgecheck.errors import EdgecheckError
from edgecheck.measure.probes import (
    HwmonProbe,
    JoulescopeProbe,
    RaplProbe,
    TraceProbe,
    integrate,
    open_probe,
    read_trace,
    wrap_delta,
)


def ina2xx(root, n=0, power_uw=2_500_000, name="ina260", interval_ms=2, with_power=True):
    """A hwmon folder as the ina2xx driver lays it out (values are integers, one per file)."""
    d = root / f"hwmon{n}"
    d.mkdir(parents=True)
    files = {"name": name, "update_interval": interval_ms, "in0_input": 5, "in1_input": 5000,
             "curr1_input": power_uw // 5000, "shunt_resistor": 2000}
    if with_power:
        files["power1_input"] = power_uw
    for f, v in files.items():
        (d / f).write_text(f"{v}\n")
    return d


def test_hwmon_constant_power_integrates(tmp_path):
    d = ina2xx(tmp_path)
    probe = HwmonProbe.open(str(d))
    assert probe.interval_s == 0.002 and probe.mode == "power"
    probe.start()
    time.sleep(0.2)
    w = probe.stop()
    assert w.energy_j == pytest.approx(2.5 * w.seconds, rel=1e-6) and w.samples >= 10
    assert w.mean_power_w == pytest.approx(2.5)


def test_hwmon_by_name_and_current_times_voltage(tmp_path):
    ina2xx(tmp_path, 0, name="cpu_thermal")
    ina2xx(tmp_path, 1, power_uw=3_000_000, name="ina219", with_power=False)
    probe = HwmonProbe.open("ina219", tmp_path)
    assert probe.mode == "current x voltage" and probe.read_w() == pytest.approx(3.0)
    with pytest.raises(EdgecheckError, match="no hwmon device named 'ina226'.*cpu_thermal, ina219"):
        HwmonProbe.open("ina226", tmp_path)
    assert open_probe("auto", hwmon_root=tmp_path).path.name == "hwmon0"


def test_hwmon_bad_input(tmp_path):
    with pytest.raises(EdgecheckError, match="does not exist"):
        HwmonProbe.open(str(tmp_path / "hwmon9"))
    d = ina2xx(tmp_path)
    (d / "power1_input").write_text("lots\n")
    with pytest.raises(EdgecheckError, match="power1_input: expected a number, found 'lots'"):
        HwmonProbe.open(str(d))
    (d / "power1_input").unlink()
    (d / "curr1_input").unlink()
    with pytest.raises(EdgecheckError, match="neither power1_input nor curr1_input"):
        HwmonProbe.open(str(d))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_hwmon_permission_denied_names_the_fix(tmp_path):
    d = ina2xx(tmp_path)
    (d / "power1_input").chmod(0)
    with pytest.raises(EdgecheckError, match="power1_input: permission denied; make it readable"):
        HwmonProbe.open(str(d))


def test_sensor_disappearing_mid_window_fails_that_window(tmp_path):
    d = ina2xx(tmp_path)
    probe = HwmonProbe.open(str(d))
    probe.start()
    time.sleep(0.02)
    (d / "power1_input").unlink()
    time.sleep(0.02)
    with pytest.raises(EdgecheckError, match="disappeared"):
        probe.stop()


def powercap(root, energy_uj, max_uj):
    z = root / "intel-rapl:0"
    z.mkdir(parents=True)
    (z / "name").write_text("package-0\n")
    (z / "energy_uj").write_text(f"{energy_uj}\n")
    (z / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return z


def test_rapl_wraps(tmp_path):
    z = powercap(tmp_path, 262_143_000_000, 262_143_328_850)
    probe = RaplProbe.open(tmp_path)
    probe.start()
    (z / "energy_uj").write_text("1000000\n")  # wrapped past max_energy_range_uj
    w = probe.stop()
    assert w.energy_j == pytest.approx((328_850 + 1 + 1_000_000) / 1e6)
    assert w.samples is None  # a hardware counter: no power samples of ours to count
    assert wrap_delta(10, 30, 100) == 20 and wrap_delta(90, 10, 100) == 21
    assert "host CPU package only" in probe.describe()["sensor"]
    with pytest.raises(EdgecheckError, match="RAPL exists only on x86"):
        RaplProbe.open(tmp_path / "none")


def test_integration_of_a_known_trace_within_0_1_percent():
    t = np.linspace(0, 10, 10001)
    p = 2.0 + np.sin(t)  # energy over [1, 7] = 12 + cos(1) - cos(7)
    e, n = integrate(t, p, 1.0, 7.0)
    assert e == pytest.approx(12 + np.cos(1) - np.cos(7), rel=1e-3) and n > 5000
    with pytest.raises(ValueError, match="not the window"):
        integrate(t, p, 9.0, 12.0)


def write_trace(path, windows, idle_w, active_w, rate_hz=200, offset=0.0, volts=False):
    """A meter log stepping to active_w inside the windows and idle_w outside them."""
    start, end = windows[0][0] - 5, windows[-1][1] + 5
    t = np.arange(start, end, 1 / rate_hz)
    p = np.full(t.shape, idle_w)
    for t0, t1 in windows:
        p[(t >= t0) & (t < t1)] = active_w
    with open(path, "w") as f:
        f.write("timestamp,volts,amps\n" if volts else "timestamp,watts\n")
        for ti, pi in zip(t - offset, p):
            f.write(f"{ti:.6f},5.0,{pi / 5:.6f}\n" if volts else f"{ti:.6f},{pi:.6f}\n")


def test_trace_alignment_with_clock_offset(tmp_path):
    f = tmp_path / "meter.csv"
    write_trace(f, [(1000.0, 1002.0)], 3.0, 4.5, offset=37.5, volts=True)  # the meter's clock is 37.5 s behind
    assert TraceProbe(f, offset_s=37.5).energy(1000.0, 1002.0)[0] == pytest.approx(9.0, rel=0.01)
    with pytest.raises(EdgecheckError, match="offset \\+0 s.*not the window"):
        TraceProbe(f).energy(1000.0, 1002.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("when,watts\n1,2\n")
    with pytest.raises(EdgecheckError, match="no timestamp column"):
        read_trace(bad)
    bad.write_text("timestamp,watts\n2,2\n1,2\n")
    with pytest.raises(EdgecheckError, match="must increase"):
        read_trace(bad)


class FakeJoulescope:
    """The joulescope Device interface the probe uses: open, statistics_callback_register, and
    periodic statistics dicts with accumulators.energy.value in joules, on another thread."""

    def __init__(self, watts):
        self.watts, self.cb, self._stop = watts, None, threading.Event()

    def open(self):
        threading.Thread(target=self._run, daemon=True).start()

    def statistics_callback_register(self, cb):
        self.cb = cb

    def _run(self):
        t0 = time.time()
        while not self._stop.is_set():
            if self.cb:
                self.cb({"time": {"range": [t0, time.time()]},
                         "accumulators": {"energy": {"value": self.watts * (time.time() - t0), "units": "J"},
                                          "charge": {"value": 0.0, "units": "C"}}})
            time.sleep(0.01)


def test_joulescope_probe_with_the_package_interface():
    fake = FakeJoulescope(1.5)
    probe = JoulescopeProbe.open(scan=lambda config: fake)
    time.sleep(0.05)
    probe.start()
    time.sleep(0.3)
    w = probe.stop()
    fake._stop.set()
    assert w.energy_j == pytest.approx(1.5 * w.seconds, rel=0.15) and w.samples is None


def test_joulescope_without_its_package_says_what_to_install():
    try:
        import joulescope  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the joulescope package is installed here")
    with pytest.raises(EdgecheckError, match=r"--energy-probe joulescope: install the joulescope package"):
        open_probe("joulescope")


def test_constant_2_5_watts_per_inference(smoke_artifacts, tmp_path):
    """Done-when: on a fake hwmon device reporting 2.5 W, energy per inference = 2.5 W x time per inference."""
    d = ina2xx(tmp_path / "hwmon")
    results = tmp_path / "r.json"
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "cpu", "--results", str(results),
                      "--energy-probe", f"hwmon:{d}", "--energy-window", "0.3", "--energy-windows", "3",
                      "--idle-seconds", "0.2", *FAST, *NO_REPORT)
    assert proc.returncode == 0, proc.stdout[-3000:]
    for e in load(results)["entries"]:
        en = e["energy"]
        per_inv = [(w["t1"] - w["t0"]) / w["invokes"] for w in en["windows"]]
        assert en["total_j"] == pytest.approx(2.5 * np.median(per_inv), rel=0.05)
        assert en["idle"]["power_w"] == pytest.approx(2.5) and abs(en["dynamic_j"]) < 0.05 * en["total_j"]
        assert en["provenance"].startswith("measured: hwmon probe, ina260")
        assert all(w["samples"] >= 10 and w["mean_power_w"] == pytest.approx(2.5) for w in en["windows"])


def test_trace_probe_dynamic_energy_within_2_percent(smoke_artifacts, tmp_path):
    """Done-when: a meter trace stepping between known levels inside and outside the windows gives the
    known dynamic energy per inference, filled after the run from the recorded windows."""
    trace = tmp_path / "meter.csv"
    results = tmp_path / "r.json"
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "cpu", "--results", str(results),
                      "--energy-probe", f"trace:{trace}", "--energy-window", "0.3", "--energy-windows", "3",
                      "--idle-seconds", "0.2", *FAST, *NO_REPORT)
    # no log yet: said on the terminal, the energy fails (exit 1) and stays pending, never guessed
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert f"energy failed for 3 of 3 entries: trace {trace}: file not found" in proc.stdout
    assert f"edgecheck energy-from-trace {results} {trace}" in proc.stdout
    data = load(results)
    assert all(e["energy"]["pending"] and "file not found" in e["energy"]["error"] for e in data["entries"])
    windows = sorted((w["t0"], w["t1"]) for e in data["entries"] for w in e["energy"]["windows"])
    write_trace(trace, windows, idle_w=3.0, active_w=4.2, offset=12.0)
    run_edgecheck("energy-from-trace", str(results), str(trace), "--offset", "12")
    for e in load(results)["entries"]:
        en = e["energy"]
        for w in en["windows"]:
            assert w["mean_power_w"] == pytest.approx(4.2, rel=0.01)
        known = np.median([1.2 * (w["t1"] - w["t0"]) / w["invokes"] for w in en["windows"]])
        assert en["dynamic_j"] == pytest.approx(known, rel=0.02)
        assert en["provenance"].startswith("measured: trace probe")


def test_bad_probe_option_keeps_the_last_results(smoke_artifacts, tmp_path):
    results = tmp_path / "r.json"
    results.write_text('{"earlier": "run"}')
    proc = run_pytest(INFERENCE, "--artifacts", str(smoke_artifacts), "--device", "cpu",
                      "--results", str(results), "--energy-probe", "hwmon:/nonexistent/hwmon7", *FAST, *NO_REPORT)
    assert proc.returncode != 0 and "/nonexistent/hwmon7 does not exist" in proc.stdout + proc.stderr
    assert results.read_text() == '{"earlier": "run"}'  # an option error never wipes the previous run's file


def _board_window(t0: float, seconds: float, every_s: float, watts: float, **extra) -> dict:
    """A window as a board's worker sends it: [unix time, watts] samples covering [t0, t0 + seconds]."""
    n = int(round(seconds / every_s))
    return {"t0": t0, "t1": t0 + seconds, "samples": [[t0 + i * every_s, watts] for i in range(n + 1)], **extra}


def test_board_energy_integrates_the_boards_samples():
    from edgecheck.measure.energy import board_energy

    idle = _board_window(100.0, 1.0, 0.01, 2.0, sensor={"probe": "hwmon", "sensor": "ina260"})
    windows = [_board_window(102.0 + i, 0.5, 0.01, 3.0, invokes=100) for i in range(3)]
    e = board_energy(windows, idle, "ssh://board", [])
    assert e.total_j == pytest.approx(3.0 * 0.5 / 100) and e.dynamic_j == pytest.approx(1.0 * 0.5 / 100)
    assert e.provenance == "measured: hwmon probe on the board at ssh://board, ina260"


@pytest.mark.parametrize("short", ["idle", "window"])
def test_board_energy_refuses_a_window_with_too_few_samples(short):
    """The idle power is subtracted from every window, so its window needs as many samples as theirs."""
    from edgecheck.measure.energy import board_energy

    idle = _board_window(100.0, 1.0, 0.2 if short == "idle" else 0.01, 2.0)
    windows = [_board_window(102.0, 0.5, 0.1 if short == "window" else 0.01, 3.0, invokes=100)]
    what, option = {"idle": ("idle", "idle-seconds"), "window": ("energy", "energy-window")}[short]
    with pytest.raises(EdgecheckError, match=f"on the board at ssh://board: {what} window of .* got 4 power samples "
                                             rf"\(< 10\): lengthen it with --{option}"):
        board_energy(windows, idle, "ssh://board", [])


def test_local_idle_window_with_too_few_samples_names_the_option(tmp_path):
    """A sensor updating every 100 ms gives an idle window of 0.2 s about 2 samples: refused, not subtracted."""
    from edgecheck.measure.energy import _idle

    probe = HwmonProbe.open(str(ina2xx(tmp_path, interval_ms=100)))
    with pytest.raises(EdgecheckError, match=r"^idle window of [0-9.]+ s got [0-9] power samples \(< 10\): lengthen it "
                                             "with --idle-seconds$"):
        _idle(probe, 0.2)
    assert _idle(HwmonProbe.open(str(ina2xx(tmp_path / "fast"))), 0.2)["samples"] >= 10
