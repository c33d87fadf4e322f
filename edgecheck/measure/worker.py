"""The measurement worker: times models in fresh processes, on this machine or on a board.

Standalone on purpose: it runs under Python 3.7 and newer with only numpy and an
interpreter package (ai_edge_litert, tflite_runtime or Google's pycoral), so a
Coral Dev Board on Mendel Linux (Python 3.7, tflite_runtime 2.5) can run it. It
imports edgecheck nothing, so it carries its own few lines of timing code. Do
not use syntax newer than Python 3.7 here.

Process-level statistics, pyperf-style: the worker imports the interpreter once,
then forks ``processes`` fresh children one after another. Each child measures
every model in its own shuffled order, keeping a model's rounds together and
warming up after every switch (an Edge TPU re-uploads its cached parameters
when the model changes). A model's latency then varies between processes as it
does between runs (page placement, allocation, frequency), and the comparison
can count that variance. One more fresh child per model loads and runs only
that model: its peak resident memory, load time, first invoke and predictions
on the test windows. Everything runs on the board itself: no ssh per process.

It reads one JSON job on stdin and writes one JSON line per result as soon as
it has it, so a crash loses only the model being measured::

    {"protocol": 3, "device": KIND, "accelerator": "edgetpu"|null, "cpu_part": ["0xd03", "Arm Cortex-A53"]|null,
     "threads": 1, "tpu_device": null,
     "timer": "time.perf_counter", "processes": 8, "rounds": 5, "warmup_rounds": 1,
     "round_seconds": 0.01, "calibration_seconds": 0.005, "seed": 0, "memory": true,
     "adaptive": {"max_extra_processes": 8, "target_ci": 0.03, "budget_fraction": 0.5, "min_processes": 6},
     "models": [{"name": "1x32", "path": ".../model.tflite", "inputs": ".../features.npz"}]}

Lines: {"kind": "start", "name", "process"} (a process begins a model: the host knows which model a
hung worker was on), {"kind": "timing", "name", "process", "position", "samples", "iterations",
"short_rounds", "throttle"}, {"kind": "model", "name", "load_seconds", "first_invoke_seconds",
"peak_rss_bytes", "baseline_rss_bytes", "predictions"}, {"kind": "error", "name", "process", "error"},
{"kind": "fatal", "error"} and last {"kind": "done", "host", "interpreter", "processes"}.

Guards (``guards``): before and after each model's timing in a process, the worker reads the Edge TPU's
temperature and first trip point (/sys/class/apex/apex_N/temp and trip_point0_temp, millidegrees C; 85 C when
the driver publishes no trip point) and each core's cpufreq (scaling_cur_freq, scaling_max_freq,
scaling_governor). A model measured hot or throttled ("throttle" says why) is timed once more in a fresh
process under the same process number; that line carries "repeated" (why) and "unstable" (why it is still not
to be trusted, or null) and replaces the first. The "done" line's host says which readings this host does not
publish ("guards_skipped") and which libedgetpu package dpkg has installed ("libedgetpu": std or max).

Energy on the board itself: with ``"energy": {"probe": "hwmon:ina260" | "hwmon:/sys/class/hwmon/hwmon2" |
"auto", "idle_seconds", "window_seconds", "windows"}`` the worker opens that power sensor on the board
(the ina2xx hwmon driver's files) before anything else, measures idle power
({"kind": "idle", "t0", "t1", "samples": [[unix time, watts], ...], "sensor"}), and after the timing, in
one more fresh process per model, ``windows`` windows of back-to-back invokes
({"kind": "energy", "name", "windows": [{"t0", "t1", "invokes", "samples"}]}): the same protocol as a
local run; the host integrates the samples.

On an Edge TPU, Google's pycoral (``pycoral.utils.edgetpu.make_interpreter``) is used first when it is
installed, so pycoral's own pairing of libedgetpu and TFLite runs the model.

Instruction counts (``"count": {"tool": "callgrind", "invokes": N, "cache_sim": false}``): after the
timing, one more child runs this same script under Valgrind (``--count-child``), loads every model and runs
its invoke loop: two warm-up invokes, then two blocks of N invokes. Callgrind collects only inside the
interpreter's ``Invoke`` (``--toggle-collect``) and dumps its counters whenever the child calls
``reset_all_variables`` (``--dump-before``), which it does between the blocks: each block's dump holds
exactly N invokes, so start-up, loading and the first invoke are never counted, and the two blocks check
each other. Lines: {"kind": "count", "name", "instructions": [block 1, block 2], "invokes", "ll_misses":
[...]|null, "tool", "valgrind", "seconds"} or {"kind": "count", "name", "error"}; without Valgrind one
{"kind": "count_unavailable", "reason"}. Valgrind emulates no AVX-512, so XNNPACK takes the kernels
Valgrind allows (AVX2 or older on x86-64): the counts are of that kernel path.
"""
import json
import math
import os
import platform
import random
import re
import resource
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

FREQ_DROP = 0.95  # a core's frequency below this share of its value before a model marks the model unstable
APEX_TRIP_MC = 85000  # google/gasket-driver apex_driver.c DEFAULT_TRIP_POINT0_TEMP: the TPU's first clock step-down


def _interpreter_module():
    for name in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        try:
            module = __import__(name, fromlist=["Interpreter"])
            return name, module
        except ImportError:
            continue
    raise RuntimeError("no TFLite interpreter: install ai-edge-litert or tflite-runtime")


def _pycoral():
    """Google's pycoral.utils.edgetpu when it is installed (never PyPI's unrelated 'pycoral'), else None."""
    try:
        from pycoral.utils import edgetpu
    except Exception:  # noqa: BLE001 - absent, or a package of that name without this module
        return None
    return edgetpu if hasattr(edgetpu, "make_interpreter") and hasattr(edgetpu, "list_edge_tpus") else None


def _delegate(module, device):
    lib = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}.get(
        platform.system(), "libedgetpu.so.1")
    return module.load_delegate(lib, {"device": device} if device else {})


def _has_cpu_part(part):
    """True when /proc/cpuinfo lists CPU part ``part`` (e.g. 0xd03, the Cortex-A53)."""
    try:
        with open("/proc/cpuinfo") as f:
            parts = [line.split(":", 1)[1].strip().lower() for line in f if line.lower().startswith("cpu part")]
        return part.lower() in parts
    except OSError:
        return False


def _edgetpu(job):
    """The job runs its models on the Edge TPU (through pycoral or the libedgetpu delegate)."""
    return job.get("accelerator") == "edgetpu"


def _usable_cores():
    """The cores this process may run on (its affinity where the OS says, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


LIBEDGETPU_PACKAGES = ("libedgetpu1-std", "libedgetpu1-max", "libedgetpu1-legacy-std", "libedgetpu1-legacy-max")


def libedgetpu_from_status(text):
    """The libedgetpu package installed, from the text of dpkg's status file: {"package", "flavour" (std or max:
    the USB clock it runs the Edge TPU at), "version"}, or None. Coral's std and max packages ship the same
    library file name and conflict with each other, so the package database is what tells them apart."""
    found = []
    for para in text.split("\n\n"):
        fields = {}
        for line in para.splitlines():
            key, sep, value = line.partition(":")
            if sep and not line.startswith((" ", "\t")):
                fields[key.strip()] = value.strip()
        status = fields.get("Status", "").split()
        if fields.get("Package") in LIBEDGETPU_PACKAGES and status[-1:] == ["installed"]:
            found.append({"package": fields["Package"], "flavour": fields["Package"].rsplit("-", 1)[1],
                          "version": fields.get("Version")})
    if len(found) > 1:  # dpkg refuses this (the packages conflict); if a forced install did it, say so
        return {"package": "+".join(f["package"] for f in found), "flavour": "+".join(f["flavour"] for f in found),
                "version": None}
    return found[0] if found else None


def libedgetpu_installed(root="/"):
    """The libedgetpu package dpkg has installed under ``root`` (``libedgetpu_from_status``), or None."""
    text = _read(os.path.join(root, "var/lib/dpkg/status"), cap=1 << 26)  # Debian's package database
    return libedgetpu_from_status(text) if text else None


def _host(root="/"):
    info = {"node": platform.node(), "machine": platform.machine(), "python": platform.python_version(),
            "guards_skipped": guards(root)["skipped"]}
    lib = libedgetpu_installed(root)
    if lib:
        info["libedgetpu"] = lib
    try:
        with open("/proc/device-tree/model", "rb") as f:
            info["board"] = f.read().decode("utf-8", "replace").strip("\x00\n ")
    except OSError:
        pass
    return info


def _timer(name):
    """The clock pytest-benchmark is configured with (``--benchmark-timer``), e.g. time.perf_counter."""
    module, _, attr = (name or "time.perf_counter").rpartition(".")
    return getattr(__import__(module, fromlist=[attr]), attr)


def _read(path, cap=65536):
    """A small kernel file's text (sysfs, hwmon, procfs), or None: only a regular file (a FIFO never blocks), at
    most ``cap`` bytes, strict UTF-8 (the same rules as edgecheck's own reader, kept here: this script imports
    nothing of edgecheck)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            data = os.read(fd, cap + 1)
        finally:
            os.close(fd)
        return None if len(data) > cap else data.decode("utf-8").strip("\x00\n ")
    except (OSError, UnicodeDecodeError):
        return None


def _tripped(root):
    """Thermal zones at or above one of their passive, hot or critical trip points."""
    base = os.path.join(root, "sys/class/thermal")
    hot = []
    for zone in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if not zone.startswith("thermal_zone"):
            continue
        temp = _read(os.path.join(base, zone, "temp"))
        if not temp or not temp.lstrip("-").isdigit():
            continue
        i = 0
        while True:
            kind = _read(os.path.join(base, zone, "trip_point_%d_type" % i))
            if kind is None:
                break
            limit = _read(os.path.join(base, zone, "trip_point_%d_temp" % i))
            if kind in ("passive", "hot", "critical") and limit and limit.lstrip("-").isdigit() \
                    and int(temp) >= int(limit) > 0:
                hot.append("%s %s (%s >= %s)" % (zone, kind, temp, limit))
            i += 1
    return hot


def _number(text):
    return int(text) if text and text.lstrip("-").isdigit() and len(text) <= 12 else None


def guards(root):
    """One reading of what slows a board down behind the timing's back: each Edge TPU's temperature and its
    first throttle trip point (the gasket driver's apex class: ``temp`` and ``trip_point0_temp`` in millidegrees
    C), and each core's cpufreq (``scaling_cur_freq`` and ``scaling_max_freq`` in kHz, ``scaling_governor``).
    What this host does not publish is listed under "skipped" with the reason, never guessed."""
    out = {"tpus": {}, "cpus": {}, "skipped": []}
    apex = os.path.join(root, "sys/class/apex")
    names = sorted(d for d in os.listdir(apex) if d.startswith("apex_")) if os.path.isdir(apex) else []
    if not names:
        out["skipped"].append("Edge TPU temperature: no %s/apex_* (no PCIe Edge TPU under the apex driver; a USB "
                              "Accelerator publishes no temperature)" % apex)
    for name in names:
        temp = _number(_read(os.path.join(apex, name, "temp")))
        if temp is None:
            out["skipped"].append("%s temperature: %s unreadable or absent" % (name, os.path.join(apex, name, "temp")))
            continue
        trip = _number(_read(os.path.join(apex, name, "trip_point0_temp")))
        out["tpus"][name] = {"temp": temp, "trip": trip if trip and trip > 0 else APEX_TRIP_MC,
                             "trip_from": "trip_point0_temp" if trip and trip > 0 else "the driver's default 85 C"}
    base = os.path.join(root, "sys/devices/system/cpu")
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        if re.match(r"cpu[0-9]+$", name):  # sysfs's per-core folders: cpu0, cpu1, ...
            folder = os.path.join(base, name, "cpufreq")
            cur, top = _number(_read(os.path.join(folder, "scaling_cur_freq"))), \
                _number(_read(os.path.join(folder, "scaling_max_freq")))
            gov = _read(os.path.join(folder, "scaling_governor"))
            if cur is not None or gov:
                out["cpus"][name] = {"cur": cur, "max": top, "governor": gov}
    if not out["cpus"]:
        out["skipped"].append("CPU frequency and governor: no %s/cpu*/cpufreq (no cpufreq driver: a VM, or a "
                              "kernel without it)" % base)
    return out


def _guarded(before, after):
    """Why a process measured between two ``guards`` readings cannot be trusted: the Edge TPU at or above its first
    trip point (the driver steps its clock down there), a core's governor changed, its policy's max frequency
    lowered (thermal capping), or under the performance governor a core below its max; empty when none."""
    why = []
    for name, a in sorted(after["tpus"].items()):
        b = before["tpus"].get(name) or a
        hot = max(a["temp"], b["temp"])
        if hot >= a["trip"]:
            why.append("%s at %.1f C, at or above its first throttle trip point %.1f C (%s)"
                       % (name, hot / 1000.0, a["trip"] / 1000.0, a["trip_from"]))
    for name, a in sorted(after["cpus"].items(), key=lambda kv: int(kv[0][3:])):
        b = before["cpus"].get(name)
        if b is None:
            continue
        if b["governor"] != a["governor"]:
            why.append("%s governor changed from %s to %s during the process" % (name, b["governor"], a["governor"]))
        if b["max"] and a["max"] and a["max"] < b["max"]:
            why.append("%s max frequency lowered from %d to %d MHz during the process"
                       % (name, b["max"] // 1000, a["max"] // 1000))
        elif a["governor"] == "performance" and a["cur"] and a["max"] and a["cur"] < FREQ_DROP * a["max"]:
            why.append("%s at %d MHz under the performance governor, below its max %d MHz"
                       % (name, a["cur"] // 1000, a["max"] // 1000))
    return why


def _throttle(before, after, tripped, guarded=()):
    """Why this model's timing cannot be trusted (a core slowed down between two ``guards`` readings, a thermal
    trip, a guard), or None."""
    why = []
    for name, a in sorted(after["cpus"].items(), key=lambda kv: int(kv[0][3:])):
        b = (before["cpus"].get(name) or {}).get("cur")
        if b and a["cur"] is not None and a["cur"] < FREQ_DROP * b:
            why.append("%s frequency dropped from %d to %d MHz" % (name, b // 1000, a["cur"] // 1000))
    why += ["thermal trip: " + t for t in tripped]
    why += list(guarded)
    return "; ".join(why) or None


def _fault_injection(job, model):
    """Tests: EDGECHECK_WORKER_ABORT_AFTER=N aborts the process that loads the job's model number N;
    EDGECHECK_WORKER_HANG=NAME makes the process that loads model NAME hang (as a wedged board does) for
    EDGECHECK_WORKER_HANG_SECONDS (120), its pid appended to EDGECHECK_WORKER_HANG_PIDFILE if set."""
    n = int(os.environ.get("EDGECHECK_WORKER_ABORT_AFTER", "-1"))
    if n >= 0 and [m["name"] for m in job["models"]].index(model["name"]) == n:
        sys.stdout.flush()
        os.abort()
    if os.environ.get("EDGECHECK_WORKER_HANG") == model["name"]:
        pidfile = os.environ.get("EDGECHECK_WORKER_HANG_PIDFILE")
        if pidfile:
            with open(pidfile, "a") as f:
                f.write("%d\n" % os.getpid())
        time.sleep(float(os.environ.get("EDGECHECK_WORKER_HANG_SECONDS", "120")))


def _test_windows(np, path, cache=None):
    """The test windows of an inputs file; with ``cache`` (a dict), read once per process and file: a timing
    process sets every model's input from the same file (reading it per model cost more than timing a small
    model)."""
    if cache is not None and path in cache:
        return cache[path]
    with np.load(path) as z:
        windows = z["F_test"]
    if cache is not None:
        cache[path] = windows
    return windows


class Runner:
    """One model in one process: an allocated interpreter with its input set."""

    def __init__(self, job, model, module, np, windows=None):
        _fault_injection(job, model)
        t0 = time.perf_counter()
        pycoral = _pycoral() if _edgetpu(job) else None
        if pycoral is not None:  # pycoral's own libedgetpu/TFLite pairing, with its device selector
            self.interp = pycoral.make_interpreter(model["path"], device=job.get("tpu_device"))
        else:
            delegates = [_delegate(module, job.get("tpu_device"))] if _edgetpu(job) else None
            kw = {}
            if os.environ.get("EDGECHECK_WORKER_NO_XNNPACK") and hasattr(module, "OpResolverType"):
                # soak and tests: the builtin kernels without XNNPACK, a real change of what the CPU executes
                kw["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            self.interp = module.Interpreter(model_path=model["path"], num_threads=int(job["threads"]),
                                             experimental_delegates=delegates, **kw)
        self.interp.allocate_tensors()
        self.load_seconds = time.perf_counter() - t0
        self.np = np
        self.detail = self.interp.get_input_details()[0]
        self.inputs = None
        if model.get("inputs"):
            self.inputs = _test_windows(np, model["inputs"], windows)
            self.set_input(self.inputs[0])
            self.input = "first test window"
        else:
            self.interp.set_tensor(self.detail["index"], np.zeros(self.detail["shape"], self.detail["dtype"]))
            self.input = "zeros (no test data for this model)"
        t0 = time.perf_counter()
        self.interp.invoke()
        self.first_invoke_seconds = time.perf_counter() - t0

    def _quantized(self, rows):
        """``rows`` (float windows) as the input tensor's type: elementwise, so a block of rows gives each row
        exactly the values it gets alone."""
        np, d = self.np, self.detail
        x = np.asarray(rows, np.float32)
        scale, zero = d.get("quantization", (0.0, 0))
        if np.issubdtype(d["dtype"], np.integer) and scale:
            info = np.iinfo(d["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        return x.astype(d["dtype"])

    def set_input(self, row):
        d = self.detail
        self.interp.set_tensor(d["index"], self._quantized(row).reshape(d["shape"]))

    def predictions(self):
        """The predicted class of every test window, one invoke each; the windows are quantized together
        first (the same values as one by one, without numpy's per-call overhead on every window)."""
        d, interp = self.detail, self.interp
        out = interp.get_output_details()[0]["index"]
        index, shape = d["index"], tuple(d["shape"])
        rows = self._quantized(self.inputs)
        rows = rows.reshape((rows.shape[0],) + shape)
        preds = []
        for x in rows:
            interp.set_tensor(index, x)
            interp.invoke()
            preds.append(int(interp.get_tensor(out).argmax()))
        self.set_input(self.inputs[0])
        return preds


def _per_call(invoke, timer, budget):
    """Seconds per call: the fastest of three bursts, so a burst slowed by load sets too many calls, never
    too few (a round that comes out short is measured again below)."""
    best = None
    for _ in range(3):
        n, t0 = 0, timer()
        while True:
            invoke()
            n += 1
            dt = timer() - t0
            if dt >= budget / 3 or n >= 10000:
                break
        best = dt / n if best is None else min(best, dt / n)
    return best


def time_rounds(invoke, job, timer, n=None):
    """(seconds per invoke of each round, invokes per round, rounds measured again because they came out
    shorter than half the target). The bound method is called with no argument unpacking. ``n``: the invokes per
    round an earlier process of this job calibrated for the model (pyperf's workers likewise take the loops its
    first one calibrated): no calibration burst then, about 5 ms a model in every later process."""
    target = float(job["round_seconds"])
    if not n:
        n = max(1, int(math.ceil(target / _per_call(invoke, timer, float(job["calibration_seconds"])))))
    loop = range(n)
    for _ in range(int(job["warmup_rounds"])):
        for _ in loop:
            invoke()
    samples, short = [], 0
    while len(samples) < int(job["rounds"]):
        start = timer()
        for _ in loop:
            invoke()
        dt = timer() - start
        if dt < 0.5 * target and short < 5 * int(job["rounds"]):
            short += 1  # the calibration under-estimated the speed: more invokes per round, and again
            n = max(n + 1, int(math.ceil(target / (dt / n))))
            loop = range(n)
            continue
        samples.append(dt / n)
    return samples, n, short


def _emit(fd, obj):
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def _timing_child(job, models, process, module, np, root, repeated, fd):
    """A fresh process measuring ``models`` in order; one line per model. ``repeated``: {name: why} for a
    process measured again because its first attempt was hot or throttled (a second one is unstable)."""
    timer = _timer(job.get("timer"))
    windows = {}  # inputs file -> its test windows, read once in this process
    for position, model in enumerate(models):
        _emit(fd, {"kind": "start", "name": model["name"], "process": process})
        try:
            tripped_before, g0 = _tripped(root), guards(root)  # one cpufreq reading serves both checks
            runner = Runner(job, model, module, np, windows)
            samples, n, short = time_rounds(runner.interp.invoke, job, timer, model.get("iterations"))
            tripped, g1 = _tripped(root), guards(root)
            throttle = _throttle(g0, g1, sorted(set(tripped_before) | set(tripped)), _guarded(g0, g1))
            again = repeated.get(model["name"])
            _emit(fd, dict({"kind": "timing", "name": model["name"], "process": process, "position": position,
                            "samples": samples, "iterations": n, "short_rounds": short,
                            "load_seconds": runner.load_seconds,
                            "first_invoke_seconds": runner.first_invoke_seconds, "throttle": throttle},
                           **({"repeated": again, "unstable": throttle} if again else {})))
            del runner
        except Exception as e:  # noqa: BLE001 - one model's failure is reported, the others go on
            _emit(fd, {"kind": "error", "name": model["name"], "process": process,
                       "error": "{}: {}".format(type(e).__name__, e)})


def _memory_child(job, model, module, np, fd):
    """A fresh process that loads and runs only ``model``: its own peak memory (before the test windows are
    read), its load time and first invoke, then its predictions on the test windows."""
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    _emit(fd, {"kind": "start", "name": model["name"], "process": "memory"})
    try:
        runner = Runner(job, dict(model, inputs=None), module, np)  # zeros in: the model's memory alone
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        preds = None
        if model.get("inputs"):
            with np.load(model["inputs"]) as z:
                runner.inputs = z["F_test"]
            preds = runner.predictions()
        _emit(fd, {"kind": "model", "name": model["name"], "load_seconds": runner.load_seconds,
                   "first_invoke_seconds": runner.first_invoke_seconds,
                   "input": "first test window" if preds is not None else runner.input,
                   "peak_rss_bytes": peak, "baseline_rss_bytes": base, "predictions": preds})
    except Exception as e:  # noqa: BLE001
        _emit(fd, {"kind": "error", "name": model["name"], "process": "memory",
                   "error": "{}: {}".format(type(e).__name__, e)})


def _death(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            import signal

            return "killed by " + signal.Signals(sig).name
        except ValueError:
            return "killed by signal %d" % sig
    return "exited with status %d" % os.WEXITSTATUS(status)


class _Child(object):
    """A forked child running ``target(*args, fd)``: its lines as they arrive, and what its end means. A child
    that dies mid-model becomes an error line for that model (``first``: the model it starts with)."""

    def __init__(self, target, args, out, first, process):
        self.out, self.first, self.process = out, first, process
        self.lines, self.started, self.buf = [], None, b""
        r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child
            os.close(r)
            code = 0
            try:
                target(*args, w)
            except BaseException:  # noqa: BLE001
                code = 3
            finally:
                os._exit(code)
        os.close(w)
        self.fd = r

    def feed(self, chunk):
        """Take bytes read from the child; forward each whole line."""
        self.buf += chunk
        while b"\n" in self.buf:
            raw, self.buf = self.buf.split(b"\n", 1)
            msg = json.loads(raw.decode())
            if msg["kind"] == "start":
                self.started = msg
                self.out(msg)
                continue
            self.started = None
            self.lines.append(msg)
            self.out(msg)

    def end(self):
        """After the pipe closed: reap the child; a death mid-model (or before its first line) is said."""
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        if self.started is not None or (not self.lines and status != 0):
            msg = {"kind": "error", "name": self.started["name"] if self.started else self.first,
                   "process": self.process,
                   "error": "the measuring process %s while measuring this model" % _death(status)}
            self.lines.append(msg)
            self.out(msg)
        return self.lines


def run_child(target, args, out, first, process):
    """Fork a fresh process running ``target(*args, fd)``; forward its lines to ``out`` and return them."""
    return run_children([(target, args, first, process)], out, 1)[0]


def run_children(tasks, out, lanes):
    """``tasks`` ((target, args, first, process) each) in fresh processes, at most ``lanes`` at once (more than
    one only for work that times nothing but itself: memory and predictions); lines are forwarded whole, as each
    arrives. Returns each task's lines, in the tasks' order."""
    tasks, running, children = list(tasks), {}, []
    while tasks or running:
        while tasks and len(running) < lanes:
            target, args, first, process = tasks.pop(0)
            child = _Child(target, args, out, first, process)
            running[child.fd] = child
            children.append(child)
        ready, _, _ = select.select(list(running), [], [])
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if chunk:
                running[fd].feed(chunk)
            else:
                running.pop(fd).end()
    return [c.lines for c in children]


def _ci_width(medians):
    """Relative width of the interval of the median of process medians (order statistics, about 95 %)."""
    v = sorted(medians)
    n = len(v)
    if n < 4:
        return float("inf")
    half = 1.96 * math.sqrt(n) / 2
    lo, hi = max(0, int(math.floor(n / 2 - half)) - 1), min(n - 1, int(math.ceil(n / 2 + half)))
    mid = v[n // 2]
    return (v[hi] - v[lo]) / (2 * mid) if mid > 0 else float("inf")


def _worth_more(medians, target, left):
    """A model's interval is wider than ``target`` and ``left`` more processes could bring it within: its width
    scaled by sqrt(n / (n + left)), as an interval of the median narrows. Extra processes go to models that can
    reach the target, not to models whose processes differ too much for the extras the cap allows: those got
    every extra and still ended wider (README, Speed)."""
    width = _ci_width(medians)
    return target < width and width * math.sqrt(len(medians) / float(len(medians) + left)) <= target


class Hwmon(object):
    """A power sensor of this board through Linux hwmon (the ina2xx driver: power1_input in microwatts, or
    curr1_input in mA x in1_input in mV), read at the sensor's own update_interval (ms)."""

    def __init__(self, spec, root):
        base = os.path.join(root, "sys/class/hwmon")
        folders = sorted(os.path.join(base, d) for d in (os.listdir(base) if os.path.isdir(base) else [])
                         if d.startswith("hwmon"))
        if spec == "auto":
            found = [d for d in folders if self._mode(d)]
            if not found:
                raise RuntimeError("energy probe auto: no hwmon device with power1_input or curr1_input under "
                                   + base)
            path = found[0]
        elif spec.startswith("/"):
            path = spec
        else:
            found = [d for d in folders if _read(os.path.join(d, "name")) == spec]
            if not found:
                names = sorted(_read(os.path.join(d, "name")) or os.path.basename(d) for d in folders)
                raise RuntimeError("energy probe hwmon:%s: no hwmon device named %r under %s on this board "
                                   "(found: %s)" % (spec, spec, base, ", ".join(names) or "none"))
            path = found[0]
        self.mode = self._mode(path)
        if self.mode is None:
            raise RuntimeError("energy probe hwmon:%s: %s has neither power1_input nor curr1_input and in1_input"
                               % (spec, path))
        self.path, self.name = path, _read(os.path.join(path, "name")) or os.path.basename(path)
        interval = _read(os.path.join(path, "update_interval"))
        ok = interval and interval.isdigit() and len(interval) <= 6  # at most 999999 ms
        self.interval = max(int(interval) / 1000.0, 0.001) if ok else 0.01
        self.read_w()  # readable now, or a clear error before anything is measured

    @staticmethod
    def _mode(path):
        if os.path.exists(os.path.join(path, "power1_input")):
            return "power"
        if os.path.exists(os.path.join(path, "curr1_input")) and os.path.exists(os.path.join(path, "in1_input")):
            return "current x voltage"
        return None

    def _number(self, name):
        text = _read(os.path.join(self.path, name))
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise RuntimeError("cannot read a number from %s/%s (%r)" % (self.path, name, text)) from None
        if not math.isfinite(value):
            raise RuntimeError("%s/%s holds %r, not a finite number" % (self.path, name, text))
        return value

    def read_w(self):
        if self.mode == "power":
            return self._number("power1_input") / 1e6
        return self._number("curr1_input") / 1e3 * self._number("in1_input") / 1e3

    def describe(self):
        return {"probe": "hwmon", "sensor": "%s (%s)" % (self.name, self.path), "reading": self.mode,
                "sampling_interval_s": self.interval}

    def window(self, seconds, invoke=None, per_check=1):
        """Power samples over ``seconds``: idle (``invoke`` None) or back-to-back invokes, as the local probe
        samples them: the first sample opens the window, one more after it closes covers its end."""
        samples, failed, stop = [(time.time(), self.read_w())], [], threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    samples.append((time.time(), self.read_w()))
                except RuntimeError as e:
                    failed.append(str(e))
                    return
                stop.wait(self.interval)

        thread = threading.Thread(target=sample)
        thread.daemon = True
        thread.start()
        n, start = 0, time.perf_counter()
        if invoke is None:
            time.sleep(seconds)
        else:
            loop = range(per_check)
            while time.perf_counter() - start < seconds:
                for _ in loop:
                    invoke()
                n += per_check
        t1 = time.time()
        stop.set()
        thread.join()
        if failed:
            raise RuntimeError("energy window failed: " + failed[0])
        samples.append((time.time(), self.read_w()))
        return {"t0": samples[0][0], "t1": t1, "invokes": n, "samples": samples}


def _energy_child(job, model, module, np, sensor, median, fd):
    """A fresh process that runs ``model`` back to back through the energy windows."""
    _emit(fd, {"kind": "start", "name": model["name"], "process": "energy"})
    try:
        runner = Runner(job, model, module, np)
        opts = job["energy"]
        per_check = max(1, int(round(0.005 / max(median or 1e-3, 1e-7))))
        windows = [sensor.window(float(opts["window_seconds"]), runner.interp.invoke, per_check)
                   for _ in range(int(opts["windows"]))]
        _emit(fd, {"kind": "energy", "name": model["name"], "windows": windows})
    except Exception as e:  # noqa: BLE001
        _emit(fd, {"kind": "error", "name": model["name"], "process": "energy",
                   "error": "{}: {}".format(type(e).__name__, e)})


def sweep(job, module, np, out, sensor=None):
    """The whole job: timing processes (shuffled orders), adaptive extra processes for models whose
    process-level interval is still too wide, then one memory process per model."""
    root = job.get("sysfs_root") or "/"
    models = job["models"]
    medians = {m["name"]: [] for m in models}
    rng = random.Random(int(job.get("seed", 0)))
    t0 = time.perf_counter()

    loops = {}  # model -> invokes per round, calibrated by the first process that timed it

    def run_process(process, todo, repeated=None):
        """One process's models; those measured hot or throttled run once more in a fresh process (the same
        process number: its line replaces the first), and are marked unstable if that one is too."""
        todo = [dict(m, iterations=loops[m["name"]]) if m["name"] in loops else m for m in todo]
        timed, first = {}, list(todo)
        while todo:  # a process that dies mid-model loses that model; a fresh one measures the rest
            lines = run_child(_timing_child, (job, todo, process, module, np, root, repeated or {}), out,
                              todo[0]["name"], process)
            done = {m["name"] for m in lines}
            timed.update((m["name"], m) for m in lines if m["kind"] == "timing")
            todo = [m for m in todo if m["name"] not in done]
        again = {n: m["throttle"] for n, m in timed.items() if m.get("throttle")}
        if again and repeated is None:
            timed.update(run_process(process, [m for m in first if m["name"] in again], again))
        if repeated is None:
            for name, m in timed.items():
                medians[name].append(sorted(m["samples"])[len(m["samples"]) // 2])
                loops.setdefault(name, m["iterations"])
        return timed

    # A/B jobs: models carry a group, and processes alternate between the groups (A, B, B, A, ...), so drift
    # and the machine's state reach both alike
    groups = sorted({m.get("group") or "" for m in models})
    processes = int(job["processes"]) * len(groups)
    adaptive = job.get("adaptive") or {}
    target = float(adaptive.get("target_ci", 0.03))
    # Stop once decided (a fixed-width sequential rule): from min_processes on, a model whose interval of the
    # median across processes is within target_ci leaves the later processes. The rule looks at the interval's
    # width only, never at where it lies, so it cannot steer a comparison or a claim one way.
    least = int(adaptive.get("min_processes", job["processes"]))

    def decided(m):
        got = medians[m["name"]]
        return len(got) >= least and _ci_width(got) <= target

    def group_of(p):
        # two groups in slots of two processes, ordered A,B then B,A (ABBA): a trend across the job, or a cost of
        # coming second in a slot (median +0.3 %, -2.1 % to +2.3 % over 20 default runs), cancels over two slots
        return groups[(p + p // 2) % 2] if len(groups) == 2 else groups[p % len(groups)]

    ran = 0
    for p in range(processes):
        order = [m for m in models if (m.get("group") or "") == group_of(p) and not decided(m)]
        if not order and not any(not decided(m) for m in models):
            break
        rng.shuffle(order)
        if order:
            run_process(p, order)
        ran = p + 1
    processes = ran
    spent = time.perf_counter() - t0
    extra, budget = 0, spent * float(adaptive.get("budget_fraction", 0))
    most = int(adaptive.get("max_extra_processes", 0)) * len(groups)
    t1 = time.perf_counter()
    while extra < most and time.perf_counter() - t1 < budget:
        left = max(1, (most - extra) // len(groups))  # extra processes each model may still get
        wide = [m for m in models if medians[m["name"]] and _worth_more(medians[m["name"]], target, left)]
        if not wide:
            break
        mine = [m for m in wide if (m.get("group") or "") == groups[extra % len(groups)]]
        if mine:
            rng.shuffle(mine)
            run_process(processes + extra, mine)
        extra += 1
    if job.get("memory", True):
        # memory processes time nothing but their own load and first invoke: on a CPU two run at once (the test
        # windows' predictions are most of their time); an Edge TPU is opened by one process at a time
        lanes = 1 if _edgetpu(job) else max(1, min(2, _usable_cores()))
        run_children([(_memory_child, (job, m, module, np), m["name"], "memory") for m in models], out, lanes)
    if sensor is not None:
        for m in models:
            got = sorted(medians[m["name"]])
            if got:  # a model no process could time gets no energy either
                run_child(_energy_child, (job, m, module, np, sensor, got[len(got) // 2]), out, m["name"],
                          "energy")
    return processes + extra


# ----------------------------------------------------------------------------
# Instruction counts under Valgrind
# ----------------------------------------------------------------------------

COUNT_TOGGLE = "tflite::interpreter_wrapper::InterpreterWrapper::Invoke*"  # collect inside Invoke only
COUNT_DUMP = "tflite::interpreter_wrapper::InterpreterWrapper::ResetVariableTensors*"  # a dump per call
COUNT_WARMUP = 2
COUNT_BLOCKS = 2
KERNEL_PATH = ("the kernels Valgrind allows: Valgrind emulates no AVX-512, so on x86-64 XNNPACK selects its AVX2 or "
               "older kernels, which may differ from production's path")


def _valgrind_version(valgrind):
    try:
        out = subprocess.run([valgrind, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return None, "cannot run %s --version: %s" % (valgrind, e)
    text = out.stdout.decode(errors="replace").strip()
    return (text or None), (None if text else "valgrind --version printed nothing")


def count_child(job, module, np):
    """Under Valgrind: every model's invoke loop, blocks separated by ``reset_all_variables`` (each call makes
    callgrind dump its counters). Prints one JSON line per model naming its dumps (1-based, in call order)."""
    n = int(job["count"]["invokes"])
    dumps = 0
    for model in job["models"]:
        try:
            runner = Runner(job, model, module, np)  # loads, sets the input, invokes once
            for _ in range(COUNT_WARMUP - 1):
                runner.interp.invoke()
            mine = []
            for _ in range(COUNT_BLOCKS + 1):
                dumps += 1  # dumped on entry, before anything that could fail
                runner.interp.reset_all_variables()
                mine.append(dumps)
                if len(mine) <= COUNT_BLOCKS:
                    for _ in range(n):
                        runner.interp.invoke()
            print(json.dumps({"name": model["name"], "dumps": mine[1:]}))  # dump k holds block k-1's invokes
            del runner
        except Exception as e:  # noqa: BLE001 - one model's failure is reported, the others go on
            print(json.dumps({"name": model["name"], "error": "{}: {}".format(type(e).__name__, e)}))
        sys.stdout.flush()


def _dump_counts(path):
    """{event: count} of one callgrind dump (its ``events:`` and ``summary:`` lines)."""
    events, summary = None, None
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):
                summary = [int(x) for x in line.split()[1:]]
    if events is None or summary is None:
        raise RuntimeError("callgrind dump %s has no events or summary line" % path)
    summary += [0] * (len(events) - len(summary))  # callgrind leaves trailing zero counts out
    return dict(zip(events, summary))


def count_instructions(job, out):
    """Every model's instructions per invoke, counted by callgrind in one child process (see the docstring)."""
    spec = job["count"]
    valgrind = spec.get("valgrind") or shutil.which("valgrind")
    if not valgrind:
        out({"kind": "count_unavailable", "reason": "valgrind is not installed on this host (no valgrind on PATH; "
                                                    "Debian: apt-get install valgrind)"})
        return
    version, why = _valgrind_version(valgrind)
    if version is None:
        out({"kind": "count_unavailable", "reason": why})
        return
    n = int(spec["invokes"])
    tmp = tempfile.mkdtemp(prefix="edgecheck-count-")
    try:
        cmd = [valgrind, "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=" + COUNT_TOGGLE,
               "--dump-before=" + COUNT_DUMP, "--cache-sim=" + ("yes" if spec.get("cache_sim") else "no"),
               "--callgrind-out-file=" + os.path.join(tmp, "cg.out"), sys.executable, os.path.abspath(__file__),
               "--count-child"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, input=json.dumps(job).encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=float(spec.get("timeout_seconds", 3600)))
        seconds = time.perf_counter() - t0
        said = {}
        for raw in proc.stdout.decode(errors="replace").splitlines():
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if isinstance(msg, dict) and "name" in msg:
                said[msg["name"]] = msg
        tail = " | ".join(proc.stderr.decode(errors="replace").strip().splitlines()[-3:])
        for model in job["models"]:
            msg = said.get(model["name"])
            if msg is None:
                out({"kind": "count", "name": model["name"],
                     "error": "the counting process under Valgrind exited with status %s before this model (%s)"
                              % (proc.returncode, tail)})
                continue
            if "error" in msg:
                out({"kind": "count", "name": model["name"], "error": msg["error"]})
                continue
            try:
                blocks = [_dump_counts(os.path.join(tmp, "cg.out.%d" % k)) for k in msg["dumps"]]
            except (OSError, RuntimeError, ValueError) as e:
                out({"kind": "count", "name": model["name"], "error": "cannot read callgrind's dump: %s" % e})
                continue
            ll = None
            if spec.get("cache_sim"):
                ll = [b.get("ILmr", 0) + b.get("DLmr", 0) + b.get("DLmw", 0) for b in blocks]
            out({"kind": "count", "name": model["name"], "instructions": [b["Ir"] for b in blocks], "invokes": n,
                 "warmup_invokes": COUNT_WARMUP, "ll_misses": ll, "tool": "callgrind", "valgrind": version,
                 "cache_sim": bool(spec.get("cache_sim")), "collect": COUNT_TOGGLE, "kernel_path": KERNEL_PATH,
                 "xnnpack": not os.environ.get("EDGECHECK_WORKER_NO_XNNPACK"), "seconds": seconds})
    except (OSError, subprocess.SubprocessError) as e:
        for model in job["models"]:
            out({"kind": "count", "name": model["name"], "error": "counting under Valgrind failed: %s" % e})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    job = json.load(sys.stdin)
    if "--count-child" in sys.argv[1:]:  # under Valgrind: only the invoke loops
        module_name, module = _interpreter_module()
        import numpy as np

        count_child(job, module, np)
        return 0

    def out(msg):
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()

    if job.get("cpu_part") and not _has_cpu_part(job["cpu_part"][0]):
        part, name = job["cpu_part"]
        out({"kind": "fatal", "error": "this host's CPU is not an %s (no CPU part %s in /proc/cpuinfo)" % (name, part)})
        return 3
    try:
        module_name, module = _interpreter_module()
        import numpy as np
    except (RuntimeError, ImportError) as e:
        out({"kind": "fatal", "error": str(e)})
        return 3
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no thread pools in a parent that forks
    sensor = None
    if job.get("energy"):
        spec = job["energy"]["probe"]
        try:  # the board's own sensor, opened before anything runs; idle power first, as local runs do
            sensor = Hwmon(spec[len("hwmon:"):] if spec.startswith("hwmon:") else spec, job.get("sysfs_root") or "/")
            idle = sensor.window(float(job["energy"]["idle_seconds"]))
        except (RuntimeError, OSError) as e:
            out({"kind": "fatal", "error": str(e)})
            return 3
        out(dict(idle, kind="idle", sensor=sensor.describe()))
    processes = sweep(job, module, np, out, sensor)
    if job.get("count") and not _edgetpu(job):
        count_instructions(job, out)
    if _edgetpu(job) and _pycoral() is not None:
        module_name = "pycoral.utils.edgetpu"
    out({"kind": "done", "host": _host(job.get("sysfs_root") or "/"), "interpreter": module_name,
         "processes": processes})
    return 0


if __name__ == "__main__":
    sys.exit(main())
