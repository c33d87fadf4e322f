"""One pytest session of edgecheck: the artifacts, the devices, the recorder, and the end of the run.

The pytest plugin's hooks are a few lines each and hand off to this object (as
pytest-benchmark's hooks hand off to its ``BenchmarkSession``). Nothing heavy
happens until a collected test asks for a model: plain unit tests pay nothing.
The build runs in a separate process; this process never imports TensorFlow.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edgecheck import artifacts as art
from edgecheck.config import DEFAULTS
from edgecheck.environment import measuring_environment
from edgecheck.errors import EdgecheckError, one_line
from edgecheck.measure.devices import Device, Selection, SelectOptions, select
from edgecheck.measure.recorder import EnergyOptions, Recorder, TimingOptions, start_recorder
from edgecheck.options import SessionConfig
from edgecheck.results import MEASURED, model_key

if TYPE_CHECKING:
    from edgecheck.judge.compare import RunComparison


def build_failure(code: int, dataset: str, cmd: list[str]) -> str:
    """The build child's failure as one line naming the dataset: an exit status, or the signal that killed it (a
    crash inside TensorFlow or numpy on this data, such as SIGSEGV, is this build's failure, not the session's)."""
    import signal

    if code < 0:
        try:
            how = f"crashed with {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"failed (exit {code})"
    return one_line(f"the build of dataset {dataset} {how}; command: {' '.join(cmd)}")[:2000]


@dataclass
class EdgecheckSession:
    """Everything one pytest session knows about edgecheck: built lazily, once.

    ``config`` holds every option, read once, and the files they name, loaded and checked at configure time;
    ``write_line`` prints to the terminal; ``run_child`` runs a command with pytest's output capture suspended."""

    config: SessionConfig
    write_line: Callable[[str], None] = print
    run_child: Callable[[list, dict], int] = lambda cmd, env: subprocess.run(cmd, env=env).returncode
    models: list[art.ModelEntry] = field(default_factory=list)
    artifacts: art.Artifacts | None = None
    selection: Selection | None = None
    recorder: Recorder | None = None
    error: str | None = None
    error_raised: bool = False  # the error ended the session as pytest's usage error (one line, exit 4)
    prepared: bool = False
    claims: dict = field(default_factory=dict)  # claim id -> ClaimResult, as the claim tests evaluate them
    comparison: RunComparison | None = None  # the baseline comparison (judge.compare)
    report_path: str | None = None
    report_error: str | None = None
    results_error: str | None = None  # the results file could not be written (a full disk)
    energy_errors: list[str] = field(default_factory=list)  # energy the meter's log could not fill
    comparison_error: str | None = None
    ab: tuple | None = None  # --ab: (RunComparison, its run-level line, where it was written) or None
    ab_error: str | None = None
    not_runnable: list[dict] = field(default_factory=list)  # (model, device) pairs the device refuses, with why
    missing_error: str | None = None  # a device asked for by name (--device) is absent: the run fails
    farm: object = None  # measure.farm.FarmClient: the labgrid places this session holds

    # -- preparing ---------------------------------------------------------
    def prepare(self) -> None:
        if self.prepared:
            return
        self.prepared = True
        try:
            self._prepare()
        except EdgecheckError as e:
            self.error = str(e)

    def _prepare(self) -> None:
        cfg = self.config
        real_data = None
        if cfg.model:
            logs = cfg.compiler_logs
            self.models = [art.user_model(p, logs.get(p)) for p in cfg.model]
            seen: dict[str, int] = {}
            for m in self.models:  # two files with one stem (a/model.tflite, b/model.tflite) get distinct names
                seen[m.name] = seen.get(m.name, 0) + 1
                if seen[m.name] > 1:
                    m.name = f"{m.name}-{seen[m.name]}"
        else:
            root = Path(cfg.artifacts) if cfg.artifacts else self._build(cfg.dataset)
            self.artifacts = art.load(root)
            self.models = self.artifacts.models
            if self.artifacts.synthetic:
                real_data = self._real_data()
        # the devices after the build: farm boards are locked only once there is something to measure
        self.selection = select(cfg.device, SelectOptions(
            cpu_threads=cfg.cpu_threads, a53_threads=cfg.a53_threads, tpu_selector=cfg.tpu_device,
            tpu_link=cfg.tpu_link, tpu_host=cfg.tpu_host, tpu_clock_mhz=cfg.tpu_clock, constants=cfg.constants,
            remote_python=cfg.remote_python, ssh_options=tuple(cfg.ssh_option)), farm=self._lease)
        self._preflight()
        # every option is checked before the results file is started, so a typo never wipes the last run's file
        from edgecheck.measure.probes import open_probe, runs_on_board

        spec = cfg.energy_probe
        here = any(d.kind == MEASURED and not d.remote for d in self.selection.devices)
        probe = open_probe(spec, cfg.trace_offset) if here or not runs_on_board(spec) else None
        energy = None if spec in (None, "", "none") else EnergyOptions(
            probe, cfg.energy_window, cfg.energy_windows, cfg.idle_seconds, spec=spec, constants=cfg.constants)
        header = {
            "run": {"argv": sys.argv, "devices_requested": list(cfg.device or ["auto"]),
                    "devices": [d.to_dict() for d in self.selection.devices],
                    "devices_skipped": self.selection.skipped, "devices_absent": self.selection.absent,
                    "devices_missing": self.selection.missing,
                    "grid": cfg.grid, "dataset": cfg.dataset},
            "environment": measuring_environment(),
            "artifacts": self.artifacts.header() if self.artifacts else
            {"models": [str(m.tflite) for m in self.models], "origin": "user"},
        }
        header["run"]["sweep"] = "models" if cfg.model else "grid"
        if real_data:
            header["real_data"] = real_data
        # with a baseline every model runs all its processes: the comparison's rank test needs them for its power
        timing = TimingOptions(processes=cfg.processes, rounds=cfg.rounds, round_seconds=cfg.round_time,
                               count_instructions=cfg.count_instructions,
                               min_processes=cfg.processes if cfg.baseline else DEFAULTS.min_processes)
        self.recorder = start_recorder(cfg.results, header, timing, energy, resume=cfg.resume,
                                       progress=self.write_line, timer_name=cfg.benchmark_timer,
                                       idle_timeout_s=cfg.worker_timeout,
                                       models={model_key(m.name, m.sha256) for m in self.models})

    def _lease(self, spec: str):
        """The board of a ``tpu@labgrid:...`` device: reserved, locked and connected (one labgrid client)."""
        from edgecheck.measure.farm import FarmClient, FarmOptions, coordinator_address

        if self.farm is None:
            cfg = self.config
            self.farm = FarmClient(FarmOptions(
                coordinator=coordinator_address(cfg.lg_coordinator), ssh_key=cfg.lg_ssh_key,
                ssh_options=tuple(cfg.ssh_option), python=cfg.remote_python, power_cycle=cfg.lg_power_cycle,
                wait_s=cfg.lg_wait, boot_s=cfg.lg_boot_timeout), say=self.write_line)
        return self.farm.lease(spec)

    def release_boards(self) -> None:
        """Unlock every labgrid place of this session (idempotent): at its end, on an interrupt, on an error."""
        if self.recorder is not None:
            self.recorder.ctx.close()  # the boards' private folders first, while the connections are up
        if self.farm is not None:
            self.farm.close()

    def _preflight(self) -> None:
        """Each device's own check before anything is measured (an Edge TPU's delegate loaded in a child process,
        since a delegate can abort its process): a device that fails it is skipped with the reason."""
        for dev in list(self.selection.devices):
            why = dev.impl.preflight(dev, self.models)
            if why:
                self.selection.devices.remove(dev)
                self.selection.skipped[dev.name] = why
                if dev.name in (self.config.device and _requested(self.config.device) or ()):
                    self.selection.missing[dev.name] = why

    def _real_data(self) -> dict:
        """The sweep's dataset is synthetic: the same grid built on real sensor data (``--real-data``), whose
        accuracy judges C1. Only its build's accuracy is used; nothing more is measured."""
        cfg = self.config
        dataset = cfg.real_data
        if dataset == "none":
            return {"skipped": "--real-data none"}
        if cfg.artifacts:
            return {"skipped": "prebuilt --artifacts: no build here (C1 is informational on their synthetic data)"}
        try:
            real = art.load(self._build(dataset))
        except EdgecheckError as e:
            return {"skipped": f"the real-data build failed: {e}"}
        return {"dataset": real.manifest["dataset"]["name"], "source": real.manifest["dataset"].get("source"),
                "manifest_sha256": real.manifest_sha256,
                "architectures": {m.name: m.metrics for m in real.models}}

    def _build(self, dataset: str) -> Path:
        """Build (or reuse) the grid's artifacts in a child process that may import TensorFlow."""
        cfg = self.config
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{cfg.grid}-{Path(dataset).name}")
        out = Path(cfg.build_dir) / safe
        cmd = [sys.executable, "-m", "edgecheck", "build", "--grid", cfg.grid, "--dataset", dataset,
               "--out", str(out), "--build-executor", cfg.build_executor]
        if cfg.channels_last and dataset == cfg.dataset:  # the user's .npz, not --real-data
            cmd.append("--channels-last")
        cmd += ["--jobs", str(cfg.jobs)] if cfg.jobs else []
        cmd += ["--build-cache", cfg.build_cache] if cfg.build_cache else []
        # TensorFlow's C++ log: 3 hides its harmless "NodeDef mentions attribute" errors; Python errors still show
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        self.write_line(f"edgecheck: building or reusing artifacts: {' '.join(cmd[2:])}")
        code = self.run_child(cmd, env)
        if code != 0:
            raise EdgecheckError(build_failure(code, dataset, cmd))
        return out

    # -- what the suite runs -----------------------------------------------
    def pairs(self) -> list[tuple[art.ModelEntry, str, str, str | None]]:
        """(model, device label, test id, skip reason) for every benchmark of the sweep."""
        out = []
        self.not_runnable = []
        for model in self.models:
            for dev in self.selection.devices:
                reason = dev.cannot_run(model)
                out.append((model, dev.label, f"{model.name}-{dev.label}", f"{dev.name}: {reason}" if reason else None))
                if reason:  # its row stays in the table, with the reason instead of figures
                    self.not_runnable.append({"model": model.name, "device": dev.label, "kind": dev.kind,
                                              "reason": reason})
            for name, reason in self.selection.skipped.items():
                out.append((model, name, f"{model.name}-{name}", f"{name}: {reason}"))
        return out

    def model_named(self, name: str) -> art.ModelEntry:
        return next(m for m in self.models if m.name == name)

    def device_labelled(self, label: str) -> Device | None:
        """The device with this label, or None for a requested device that does not run here."""
        return next((d for d in self.selection.devices if d.label == label), None)

    def estimate_line(self, measured_pairs: int, devices: list[str], device_keys: int, total: int) -> list[str]:
        """What the sweep will cost, said up front: a long run should not be a silent one."""
        lines = []
        t = self.recorder.timing
        energy = self.recorder.energy
        # each process: load, calibrate, warm up and time; then the model's own process (accuracy windows) and
        # pytest-benchmark's rounds in this process
        per_model = (t.processes * ((t.rounds + t.warmup_rounds) * t.round_seconds + 0.01) + 0.2
                     + t.in_process_rounds * t.round_seconds)
        if energy is not None:
            per_model += energy.windows * energy.window_seconds
            probe = energy.probe
            if probe is None:
                what = f"{energy.spec}, opened by the worker on each board"
            elif probe == "model":
                what = "model: the twins' power model x measured latency (estimated)"
            else:
                what = ", ".join(f"{k} {v}" for k, v in probe.describe().items() if v is not None)
            lines.append(f"edgecheck: energy probe: {what}")
        estimate = measured_pairs * per_model + device_keys * (energy.idle_seconds if energy else 0)
        lines.append(f"edgecheck: {total} benchmarks, {measured_pairs} measured"
                     + (f" on {', '.join(devices)}, about {estimate:.0f} s" if measured_pairs else "")
                     + f"; {total - measured_pairs} simulated (instant)")
        return lines

    def local_device(self, name: str) -> tuple[Device | None, str]:
        """The measured local device ``name`` for the interpreter fixtures, or why there is none."""
        dev = next((d for d in self.selection.devices if d.name == name and d.kind == MEASURED and not d.remote),
                   None)
        reason = self.selection.skipped.get(name) or self.selection.absent.get(name) or "not selected (--device)"
        return dev, reason

    def plan(self, pairs: list[tuple[art.ModelEntry, Device]]) -> None:
        """The (model, device) pairs this session will measure (after -k and the like): each device's worker
        sweep covers exactly these."""
        plan: dict[str, list[art.ModelEntry]] = {}
        for model, device in pairs:
            if device.kind == MEASURED and model.key not in {m.key for m in plan.get(device.key, [])} \
                    and self.recorder.already_done(model, device) is None:
                plan.setdefault(device.key, []).append(model)
                self.recorder.ctx.devices[device.key] = device
        self.recorder.ctx.plan = plan

    def claim(self, claim_id: str):
        """That claim evaluated over this run's results so far (all devices); kept for the results file."""
        from edgecheck.judge.claims import evaluate

        thresholds = self.config.thresholds
        results = self.recorder.results
        found = {c.id: c for c in evaluate(results.run, thresholds, with_chart=claim_id == "C6",
                                           on_model_list=self.config.claims is not None)}
        if claim_id not in found:
            raise EdgecheckError(f"unknown claim {claim_id!r}")
        self.claims[claim_id] = found[claim_id]
        results.update(claims=[c.to_dict() for c in sorted(self.claims.values(), key=lambda c: c.id)])
        return found[claim_id]

    # -- the end of the run --------------------------------------------------
    def finish(self, exitstatus: int) -> bool:
        """Trace energy, baseline save and comparison, the report. Returns True when the run must fail.

        Nothing here ends in a traceback: a results file that cannot be written (a full disk) or a meter's
        log that cannot fill the energy windows is said in the summary and fails the run, and every entry
        written before it stays in the results file or its journal."""
        results = self.recorder.results
        failed = False
        self.release_boards()  # nothing more is measured: close the workers, free the boards, then write
        try:
            # evidence for the rule that the measuring process never imports TensorFlow
            results.update(measuring_process={"tensorflow_imported": "tensorflow" in sys.modules,
                                              "pytest_exit_status": int(exitstatus)})
            if results.entries:
                self._twin_form()
                if self.not_runnable:
                    results.update(not_runnable=self.not_runnable)
            failed = self._trace_energy() or failed
            if results.entries:
                results.compact()
        except EdgecheckError as e:
            self.results_error = (f"{e}; every entry measured before it is kept in {results.journal} or "
                                  f"{results.path} (continue with --resume once the problem is fixed)")
            failed = True
        finally:
            results.close()
        if self.config.save_baseline and results.entries:  # an empty baseline would compare nothing later
            from edgecheck.results import save

            try:
                save(results.run, self.config.save_baseline)
            except EdgecheckError as e:
                self.results_error = f"--save-baseline: {e}"
                failed = True
        if self.config.baseline:
            from edgecheck.judge.compare import compare_runs

            try:
                # the baseline was loaded and checked at configure time
                self.comparison = compare_runs(self.config.baseline_run, results.run, self.config.compare_threshold,
                                               force=self.config.force_baseline,
                                               allow_missing=self.config.allow_missing,
                                               baseline_source=str(self.config.baseline),
                                               run_label=str(results.path))
            except EdgecheckError as e:
                self.comparison_error = str(e)
                return True
            failed = self.comparison.has_regression or failed
            if results.entries:  # the record (edgecheck.comparison/3) into the results file itself, not a journal
                try:
                    results.update(comparison=self.comparison.to_json())
                    results.compact()
                except EdgecheckError as e:
                    self.results_error = f"the comparison was not written to {results.path}: {e}"
                    failed = True
        if self.config.ab_base is not None:
            failed = self._ab(results.path) or failed
        self._write_report()
        return self._missing_devices() or failed

    def _ab(self, results_path) -> bool:
        """``--ab BASE``: BASE (a folder, or a git ref built first) against this session's artifacts, measured as
        ``edgecheck ab`` measures; the record beside the results file. True when it fails the session."""
        from edgecheck.abrun import build_ref, run

        kind, value = self.config.ab_base
        if self.artifacts is None:
            self.ab_error = "--ab: this session measured no artifacts folder (HEAD), so there is nothing to compare"
            return True
        try:
            base = value if kind == "dir" else build_ref(
                value, self.config.grid, self.config.build_dir, dataset=self.config.dataset,
                build_cache=self.config.build_cache, say=self.write_line)
            result, line, _ = run(base, self.artifacts.root, cap=self.config.ab_processes, rounds=self.config.rounds,
                               max_seconds=self.config.ab_max_seconds,
                               specs=self.config.compare_threshold, base_label=str(self.config.ab),
                               head_label=str(self.artifacts.root), progress=self.write_line)
            out = Path(str(results_path)).with_suffix(".ab-comparison.json")
            result.save(out)
        except EdgecheckError as e:
            self.ab_error = str(e)
            return True
        self.ab = (result, line, out)
        return result.has_regression

    def _missing_devices(self) -> bool:
        """A device asked for by name (``--device tpu``) and absent fails the run as missing, with the reason,
        unless --allow-missing: a Coral runner whose accelerator fell off the bus must not go green. The default
        set (auto) only discovers what is there."""
        missing = self.selection.missing if self.selection is not None else {}
        if not missing:
            return False
        what = "; ".join(f"{name}: {why}" for name, why in sorted(missing.items()))
        if self.config.allow_missing:
            self.missing_error = f"requested and absent, allowed by --allow-missing: {what}"
            return False
        self.missing_error = (f"missing: requested with --device and absent: {what} (--allow-missing runs without "
                              "it)")
        return True

    def _trace_energy(self) -> bool:
        """The meter's log integrated over every pending window (``trace:`` probe). An entry it cannot fill
        (no log, wrong columns, NaN, a window it does not cover) keeps its windows pending, with the reason,
        and its energy fails: said in the summary, and the run fails."""
        energy = self.recorder.energy
        results = self.recorder.results
        if energy is None or not getattr(energy.probe, "integrates_later", False) or not results.entries:
            return False
        from edgecheck.measure.energy import fill_from_trace

        pending = [e for e in results.entries if e.energy is not None and e.energy.pending]
        try:
            fill_from_trace(results.run, energy.probe, strict=False)
        except EdgecheckError as e:  # the log cannot be read at all: every pending entry's energy failed
            for entry in pending:
                entry.energy.error = str(e)
        failed = [e for e in pending if e.energy.error]
        if failed:
            reasons = sorted({e.energy.error for e in failed})
            self.energy_errors = [f"energy failed for {len(failed)} of {len(results.entries)} entries: "
                                  + "; ".join(reasons),
                                  f"their windows are kept: once the meter's log is right, fill them with "
                                  f"edgecheck energy-from-trace {results.path} {energy.probe.path} "
                                  f"--offset {energy.probe.offset_s:g}"]
            results.update(energy_errors=self.energy_errors[:1])
        return bool(failed)

    def _write_report(self) -> None:
        target = self.config.report
        results = self.recorder.results
        if target == "none" or not results.entries:
            return
        from edgecheck.files import atomic_write_text
        from edgecheck.judge.report import html_report

        path = target or str(Path(results.path).with_suffix(".html"))
        try:
            atomic_write_text(path, html_report([(str(results.path), results.run)], self.comparison))
            self.report_path = path
        except (EdgecheckError, ImportError) as e:
            self.report_error = f"no HTML report: {e}"

    def summary(self, verbosity: int = 0) -> list[tuple[str, str | None, list[str]]]:
        """The end-of-run text before pytest's inconclusive footer: (section title or None, colour or None, lines).
        The full results table at the default verbosity and with -v; with -q a line saying where it is, so the
        summary fits a screen."""
        out: list[tuple[str | None, str | None, list[str]]] = []
        if self.recorder is None:
            if self.error and not self.error_raised:
                out.append((None, "red", [f"edgecheck: {self.error}"]))
            return out
        from edgecheck.judge.tables import results_table

        run = self.recorder.results.run
        if not run.entries:
            pass  # said once, at the end (closing): nothing measured
        elif verbosity >= 0:
            out.append(("edgecheck results", None, results_table(run)))
        else:
            from edgecheck.results import rows

            rs = rows(run, failed=True)
            where = " and ".join(p for p in (str(self.recorder.results.path), self.report_path) if p)
            unstable = sum(1 for r in rs if r.unstable)
            out.append(("edgecheck results", None, [
                f"{len(rs)} results ({len({r.model for r in rs})} models x {len({r.device_label for r in rs})} "
                f"devices): the full table is in {where}; -v prints it"
                + (f" ({unstable} figure(s) too noisy to decide on)" if unstable else "")]))
        if self.claims:
            from edgecheck.judge.claims import table

            out.append(("edgecheck claims", None, table(sorted(self.claims.values(), key=lambda c: c.id))))
        forms = run.header.get("twin_form") or {}
        if forms:
            from edgecheck.twins.calibrate import form_summary

            out.append(("edgecheck twin form", None, [form_summary(d, f) for d, f in sorted(forms.items())]))
        if self.comparison is not None or self.comparison_error:
            if self.comparison_error:
                out.append(("edgecheck baseline comparison", "red", [f"edgecheck: {self.comparison_error}"]))
            else:
                out.append(("edgecheck baseline comparison", None, self.comparison.table(only_changes=True)))
                out.append((None, "red" if self.comparison.has_regression else None,
                            [self.comparison.summary_line()]))
        if self.ab is not None or self.ab_error:
            if self.ab_error:
                out.append(("edgecheck A/B (--ab)", "red", [f"edgecheck: {self.ab_error}"]))
            else:
                got, line, path = self.ab
                out.append(("edgecheck A/B (--ab)", None, got.table()))
                out.append((None, "red" if got.has_regression else None,
                            [line, got.summary_line(), f"written: {path}"]))
        if self.energy_errors:
            out.append(("edgecheck energy", "red", [f"edgecheck: {line}" for line in self.energy_errors]))
        if self.missing_error:
            out.append((None, "yellow" if self.config.allow_missing else "red", [f"edgecheck: {self.missing_error}"]))
        if self.results_error:
            out.append((None, "red", [f"edgecheck: {self.results_error}"]))
        return out

    def closing(self) -> list[tuple[str | None, str | None, list[str]]]:
        """The last words of the run, after the inconclusive footer: the answer (which platform wins, where they
        cross, what is too close to call), worded as the report's, then the files this run wrote. A run that
        measured nothing says so, with what to try, and names no file it did not write."""
        out: list[tuple[str | None, str | None, list[str]]] = []
        if self.recorder is None:
            return out
        run = self.recorder.results.run
        if not run.entries:
            out.append(("edgecheck: nothing measured", "red", self.nothing_measured()))
            return out
        from edgecheck.judge.answer import answer_lines, platform_findings
        from edgecheck.judge.claims import cache_bytes

        findings = platform_findings(run, cache_bytes(self.config.thresholds))
        out.append(("edgecheck answer", None, answer_lines(findings)))
        tail = [f"results: {self.recorder.results.path}"]
        if self.report_path:
            tail.append(f"report: {self.report_path}")
        if self.config.save_baseline and not self.results_error:
            tail.append(f"baseline saved: {self.config.save_baseline} (compare a later run with --baseline "
                        f"{self.config.save_baseline})")
        out.append((None, None, tail))
        if self.report_error:
            out.append((None, "yellow", [f"edgecheck: {self.report_error}"]))
        if "tensorflow" in sys.modules:
            out.append((None, "red", ["edgecheck: WARNING: TensorFlow was imported in the measuring process"]))
        return out

    def nothing_measured(self) -> list[str]:
        """Why a run has no result, and what to try: a device asked for and absent names its twin."""
        from edgecheck.measure.devices import registry

        sel = self.selection
        lines = ["no model was measured or simulated: no results file or report was written by this run"]
        missing = {**(sel.absent if sel else {}), **(sel.skipped if sel else {})}
        kinds = registry()
        for name, why in missing.items():
            kind = kinds.get(name.split("@")[0])
            twin = kind.twin if kind is not None else None
            lines.append(f"{name}: {why}" + (f"; to simulate it instead: --device {twin}" if twin else ""))
        if sel is not None and not sel.devices and not missing:
            lines.append("no device was selected (--device)")
        return lines

    def abandon(self) -> None:
        """The session ends without finishing (a usage error): release the boards and the results file untouched."""
        self.release_boards()
        if self.recorder is not None:
            self.recorder.results.close()

    def _twin_form(self) -> None:
        """How well the twins' kind of model fits this run's measured CPUs (fitted on the small models, scored
        on the large ones): a report with its figure, never a gate of the run. The kinds with a cache geometry
        (``DeviceKind.cache_geometry``) are fitted."""
        from edgecheck.twins.calibrate import TWIN_FORM_LIMIT_PCT, cpu_points, fit_cpu_form

        run = self.recorder.results.run
        kinds = {d.name: d.impl for d in self.selection.devices if d.kind == MEASURED}
        forms = {}
        for name, impl in kinds.items():
            if not any(e.device.name == name and e.kind == MEASURED and e.ok for e in run.entries):
                continue
            try:
                l2 = impl.cache_geometry(self.config.constants)
                if l2 is None:
                    continue
                fit = fit_cpu_form(cpu_points([run], name), l2)
                forms[name] = {"measured_on": name, "limit_pct": TWIN_FORM_LIMIT_PCT, "informational": True, **fit}
            except EdgecheckError as e:
                forms[name] = {"measured_on": name, "not_fitted": str(e)}
        if forms:
            self.recorder.results.update(twin_form=forms)

    @property
    def default_results(self) -> str:
        return DEFAULTS.results


def _requested(values: tuple[str, ...]) -> list[str]:
    """The device names a --device list asks for by name (auto excluded)."""
    from edgecheck.measure.devices import AUTO, parse_device_option

    return [n for n in parse_device_option(list(values)) if n != AUTO]
