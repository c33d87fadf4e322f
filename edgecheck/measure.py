"""Measuring one model on one device: the object the benchmark tests use.

Timing is pytest-benchmark's (``benchmark.pedantic``): warm-up rounds, then at
least ``rounds`` rounds of ``iterations`` back-to-back invokes each, enough that
the timer's overhead is negligible. The per-round times (seconds per invoke)
are the raw samples kept in the results; every model's entry is written as soon
as it is measured.
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from .artifacts import ModelEntry
from .devices import SIMULATED, Device, peak_rss_bytes
from .environment import cpufreq
from .metrics import agreement, scores
from .results import ResultsFile, entry_key
from .stats import summarize


@dataclass(frozen=True)
class TimingOptions:
    rounds: int = 30  # timed rounds (the raw samples); 30 give the comparison its power (tests/test_compare.py)
    warmup_rounds: int = 2
    round_seconds: float = 0.01  # target duration of one round; sets iterations per round
    accuracy_windows: int = 0  # test windows run on the device for accuracy; 0 = all


@dataclass(frozen=True)
class EnergyOptions:
    probe: object  # a probe from probes.open_probe, or "model"
    window_seconds: float = 2.0
    windows: int = 5
    idle_seconds: float = 2.0


def iterations_for(seconds_per_invoke: float, round_seconds: float) -> int:
    """Invokes per round so one round lasts about ``round_seconds``."""
    if not seconds_per_invoke > 0:
        return 1
    return max(1, int(math.ceil(round_seconds / seconds_per_invoke)))


def _calibrate(invoke, budget: float = 0.005) -> float:
    """Seconds per invoke from back-to-back calls lasting at least ``budget``."""
    n, t0 = 0, time.perf_counter()
    while True:
        invoke()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= budget or n >= 10_000:
            return dt / n


def model_record(model: ModelEntry) -> dict:
    return {"name": model.name, "sha256": model.sha256, "origin": model.origin,
            "arch": model.arch.to_dict() if model.arch else None, "size": model.size, "metrics": model.metrics,
            "compiler": model.compiler}


def simulate(model: ModelEntry, device: Device) -> dict:
    """A twin's prediction for ``model``: one deterministic value, labelled simulated."""
    from .twins import predict_a53, predict_tpu, workload

    c = device.metadata["_constants"]
    w = workload(model.tflite)
    if device.name == "tpu-sim":
        p = predict_tpu(w, c, device.metadata["link"], device.metadata["clock_hz"], model.compiler)
    else:
        p = predict_a53(w, c, device.threads, device.metadata["clock_hz"])
    split = p.breakdown.get("cache_split_from")
    return {
        "latency": {"unit": "s", "statistic": "predicted seconds per invoke (deterministic, one value)",
                    "samples": [p.latency_s], "rounds": 1, "stats": summarize([p.latency_s]), "simulated": True},
        "energy": {"unit": "J", "total_j": p.energy_j, "power_w": p.power_w, "dynamic_j": None,
                   "provenance": f"simulated: {device.name} power model x predicted latency"},
        "twin": {"breakdown": p.breakdown, "constants_sha256": c.sha256, "constants_path": c.path,
                 "compiler_log_used": split == "compiler log"},
    }


@dataclass
class Recorder:
    """Measures (model, device) pairs and appends each to the results file."""

    results: ResultsFile
    timing: TimingOptions
    test_features: tuple[np.ndarray, np.ndarray] | None = None  # standardized float features, labels
    n_classes: int | None = None
    energy: EnergyOptions | None = None
    idle: dict | None = None  # device key -> idle measurement, taken before the device's first model
    clients: dict = field(default_factory=dict)  # device key -> WorkerClient: files go to a board once

    def already_done(self, model: ModelEntry, device: Device) -> dict | None:
        key = entry_key({"model": model_record(model), "device": device.to_dict()})
        return self.results.done(key)

    def measure(self, benchmark, model: ModelEntry, device: Device) -> dict:
        """Time ``model`` on ``device`` with ``benchmark``; record and return the entry.

        A failure is recorded as a failed entry (the error kept) and re-raised, so
        one model's failure never loses what was measured before it."""
        if self.already_done(model, device) is not None:
            import pytest

            pytest.skip(f"already measured in {self.results.path} (--resume)")
        entry = {"model": model_record(model), "device": device.to_dict(), "kind": device.kind,
                 "provenance": device.provenance, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        try:
            if device.kind == SIMULATED:
                entry.update(simulate(model, device))
            elif device.remote:
                entry.update(self._measure_remote(model, device))
            else:
                entry.update(self._measure_local(benchmark, model, device))
            entry["status"] = "ok"
        except BaseException as e:
            entry["status"] = "failed"
            entry["error"] = f"{type(e).__name__}: {e}"
            entry["traceback"] = traceback.format_exc(limit=8)
            self.results.add(entry)
            raise
        self.results.add(entry)
        extra = {"model": model.name, "device": device.name, "kind": device.kind, "provenance": device.provenance,
                 **{k: model.size.get(k) for k in ("params", "macs", "weight_bytes")}}
        for prec in ("float", "int8"):
            for metric, v in model.metrics.get(prec, {}).items():
                extra[f"{prec}_{metric}"] = v
        if "energy" in entry and entry["energy"].get("total_j") is not None:
            extra["energy_per_inference_j"] = entry["energy"]["total_j"]
            extra["energy_provenance"] = entry["energy"]["provenance"]
        if "on_device" in entry:
            extra["device_int8_macro_f1"] = entry["on_device"].get("macro_f1")
            extra["device_agreement_with_build"] = entry["on_device"].get("agreement_with_build")
        benchmark.extra_info.update(extra)
        return entry

    def _measure_remote(self, model: ModelEntry, device: Device) -> dict:
        """Timed by the worker on the remote host; its per-round samples are the raw samples."""
        from .errors import EdgecheckError
        from .remote import WorkerClient

        client = self.clients.setdefault(device.key, WorkerClient(
            device.metadata["_target"], rounds=self.timing.rounds, warmup_rounds=self.timing.warmup_rounds,
            round_seconds=self.timing.round_seconds, threads=device.threads))
        path = model.edgetpu_tflite if device.name == "tpu" else model.tflite
        line = client.measure_many([(model.name, path)])[model.name]
        if not line.get("ok"):
            raise EdgecheckError(f"{model.name} on {device.key}: {line['error']}")
        samples = [float(x) for x in line["samples"]]
        return {
            "load_seconds": line["load_seconds"], "first_invoke_seconds": line["first_invoke_seconds"],
            "input": "zeros (the worker has no test data)",
            "latency": {"unit": "s", "statistic": "seconds per invoke, one sample per round",
                        "iterations_per_round": line["iterations"], "rounds": len(samples),
                        "warmup_rounds": self.timing.warmup_rounds, "samples": samples, "stats": summarize(samples),
                        "timer": f"time.perf_counter on {device.remote} (edgecheck worker)"},
            "worker": {"host": line.get("host"), "interpreter": line.get("interpreter")},
            **({"energy": {"unit": "J", "total_j": None, "dynamic_j": None,
                           "provenance": "none: energy probes read this host's sensors, not a remote board's"}}
               if self.energy is not None else {}),
        }

    def _measure_local(self, benchmark, model: ModelEntry, device: Device) -> dict:
        freq_before = cpufreq().get("frequency_mhz")
        runner = device.open(model)
        if self.test_features is not None and model.origin == "built":
            runner.set_input(self.test_features[0][0])
            input_note = "first test window"
        else:
            runner.set_zero_input()
            input_note = "zeros (no test data for this model)"
        runner.first_invoke()
        per_invoke = _calibrate(runner.invoke)
        iterations = iterations_for(per_invoke, self.timing.round_seconds)
        benchmark.pedantic(runner.invoke, rounds=self.timing.rounds, iterations=iterations,
                           warmup_rounds=self.timing.warmup_rounds)
        out: dict = {
            "load_seconds": runner.load_seconds,
            "first_invoke_seconds": runner.first_invoke_seconds,
            "input": input_note,
        }
        stats = getattr(benchmark, "stats", None)
        if stats is not None and getattr(stats, "stats", None) is not None:
            samples = [float(s) for s in stats.stats.data]
            out["latency"] = {"unit": "s", "statistic": "seconds per invoke, one sample per round",
                              "iterations_per_round": iterations, "rounds": len(samples),
                              "warmup_rounds": self.timing.warmup_rounds, "samples": samples,
                              "stats": summarize(samples), "timer": "time.perf_counter (pytest-benchmark)"}
        else:
            out["latency"] = None  # --benchmark-disable: ran once, nothing timed
        if self.test_features is not None and model.origin == "built":
            F, y = self.test_features
            if self.timing.accuracy_windows:
                F, y = F[: self.timing.accuracy_windows], y[: self.timing.accuracy_windows]
            pred = runner.predict(F)
            on_dev = {**scores(y, pred, self.n_classes or int(y.max()) + 1), "windows": int(y.size)}
            if model.predictions is not None:
                built = np.load(model.predictions)[: y.size]
                on_dev["agreement_with_build"] = agreement(pred, built)
            out["on_device"] = on_dev
        if self.energy is not None:
            out["energy"] = self._energy(runner, device, out["latency"])
        freq_after = cpufreq().get("frequency_mhz")
        out["frequency_mhz"] = {"before": freq_before, "after": freq_after}
        if freq_before and freq_after and freq_after < 0.95 * freq_before:
            import warnings

            warnings.warn(f"{device.name}: CPU frequency dropped from {freq_before:g} to {freq_after:g} MHz while "
                          f"measuring {model.name} (thermal throttling?)", stacklevel=2)
        out["peak_rss_bytes"] = peak_rss_bytes()
        return out


    def _energy(self, runner, device: Device, latency: dict | None) -> dict:
        """Energy per inference on a measured device: idle power first, then R windows of back-to-back invokes."""
        from .errors import EdgecheckError
        from .probes import MIN_SAMPLES

        opts = self.energy
        if opts.probe == "model":
            return model_energy(device, latency)
        self.idle = self.idle or {}
        if device.key not in self.idle:
            self.idle[device.key] = _idle(opts.probe, opts.idle_seconds)
        idle = self.idle[device.key]
        per_check = max(1, int(round(0.005 / max((latency or {}).get("stats", {}).get("median", 1e-3), 1e-7))))
        windows = []
        for _ in range(opts.windows):
            opts.probe.start()
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < opts.window_seconds:
                for _ in range(per_check):
                    runner.invoke()
                n += per_check
            w = opts.probe.stop()
            if not w.pending and w.samples is not None and w.samples < MIN_SAMPLES:
                raise EdgecheckError(f"energy window of {w.seconds:.2f} s got {w.samples} power samples (< {MIN_SAMPLES}): "
                                     "lengthen it with --energy-window")
            windows.append({"t0": w.t0, "t1": w.t1, "invokes": n, "energy_j": w.energy_j, "samples": w.samples,
                            "mean_power_w": w.mean_power_w, "pending": w.pending})
        desc = opts.probe.describe()
        out = {"unit": "J", "statistic": "energy per inference, median over windows", "windows": windows,
               "idle": idle, "probe": desc, "provenance": f"measured: {desc['probe']} probe, {desc['sensor']}"}
        if any(w["pending"] for w in windows) or idle.get("pending"):
            out.update(total_j=None, dynamic_j=None, pending=True,
                       note="integrate the meter's log with: edgecheck energy-from-trace RESULTS.json TRACE.csv")
        else:
            out.update(energy_figures(windows, idle["power_w"]))
        return out


def _idle(probe, seconds: float) -> dict:
    probe.start()
    time.sleep(seconds)
    w = probe.stop()
    return {"t0": w.t0, "t1": w.t1, "energy_j": w.energy_j, "samples": w.samples,
            "power_w": None if w.energy_j is None else w.energy_j / w.seconds, "pending": w.pending}


def energy_figures(windows: list[dict], idle_power_w: float | None) -> dict:
    """Per-inference energy from windows: total and dynamic (minus idle power x time), median and spread."""
    totals = [w["energy_j"] / w["invokes"] for w in windows]
    out = {"total_j": float(np.median(totals)), "spread_j": [float(min(totals)), float(max(totals))],
           "dynamic_j": None}
    if idle_power_w is not None:
        dyn = [(w["energy_j"] - idle_power_w * (w["t1"] - w["t0"])) / w["invokes"] for w in windows]
        out["dynamic_j"] = float(np.median(dyn))
    return out




def model_energy(device: Device, latency: dict | None) -> dict:
    """The twins' power model x measured latency: an estimate, labelled so."""
    from .twins import load_constants, power_model

    if device.name not in ("tpu", "a53") or not latency:
        return {"unit": "J", "total_j": None, "dynamic_j": None,
                "provenance": f"none: the model probe has no power model for {device.name} (host CPUs are out of scope)"}
    c = load_constants()
    idle, active = power_model(c, device.name, device.threads)
    t = latency["stats"]["median"]
    return {"unit": "J", "total_j": (idle + active) * t, "dynamic_j": active * t, "power_w": idle + active,
            "provenance": f"estimated: twin power model ({c.path}, sha256 {c.sha256[:12]}) x measured latency"}
