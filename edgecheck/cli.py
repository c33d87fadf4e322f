"""The ``edgecheck`` command: one class per subcommand (as asv's commands).

Errors from bad input print as one line naming the file or option, exit 2.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from pathlib import Path

from edgecheck.config import DEFAULTS, nonnegative_int, positive_float, positive_int, positive_up_to, threshold_spec
from edgecheck.errors import EdgecheckError, one_line
from edgecheck.options import OPTIONS, check_dataset, device_name


def print_json(obj, what: str) -> None:
    """Strict JSON on stdout (never a bare NaN or Infinity, which no JSON parser accepts); a non-finite number in
    ``obj`` is one error naming ``what``."""
    from edgecheck.files import strict_json

    try:
        text = strict_json(obj, indent=2)
    except EdgecheckError:
        raise EdgecheckError(f"{what}: holds a number that is not finite (NaN or infinity); nothing printed") from None
    print(text)


def distinct(reads: dict, writes: dict) -> None:
    """Every command that writes calls this first, before it reads or measures anything: no written path is a
    path it reads, or a FIFO, a device or a read-only file (``files.check_distinct``; a usage error, exit 2)."""
    from edgecheck.files import check_distinct

    check_distinct(reads, writes)


class Command:
    """A subcommand: its name and help, its arguments, and what it does (returns the exit status)."""

    name = ""
    help = ""

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        pass

    @classmethod
    def run(cls, args: argparse.Namespace) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


def add_build_inputs(p: argparse.ArgumentParser) -> None:
    """The options that are inputs of a build, once for ``build`` and ``build-key``."""
    OPTIONS["grid"].add(p.add_argument)
    OPTIONS["dataset"].add(p.add_argument)
    OPTIONS["channels_last"].add(p.add_argument)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--n-fft", type=positive_int, default=None, help="STFT frame length (default 64, shorter for "
                                                                    "short windows)")
    p.add_argument("--hop", type=positive_int, default=None, help="STFT hop (default n_fft/2)")
    p.add_argument("--epochs", type=positive_int, default=None, help="training epoch cap (default 12)")
    p.add_argument("--widen", type=positive_up_to(100, " %", "percentage"), default=0.0, metavar="PCT",
                   help="build a variant: every model keeps its architecture name but its first hidden layer is "
                        "widened so its MACs per inference grow by about PCT %% (up to 100; soaks, A/B checks)")


class Build(Command):
    name, help = "build", "build int8 .tflite artifacts for a grid of architectures (needs the build extra)"

    @classmethod
    def add_arguments(cls, p):
        add_build_inputs(p)
        p.add_argument("--out", required=True, help="artifacts directory (content-addressed; reused when inputs match)")
        p.add_argument("--verbose", action="store_true", help="show the converter's own output")
        for name in ("jobs", "build_executor", "build_cache"):
            OPTIONS[name].add(p.add_argument)

    @classmethod
    def run(cls, args):
        check_dataset(args.dataset, channels_last=args.channels_last)  # as pytest checks it, before TensorFlow loads
        from edgecheck.build.cache import cache_root
        from edgecheck.build.pipeline import BuildOptions, build
        from edgecheck.build.pool import cores
        from edgecheck.build.train import TrainConfig

        tc = TrainConfig(max_epochs=args.epochs, seed=args.seed) if args.epochs else TrainConfig(seed=args.seed)
        build(BuildOptions(grid=args.grid, dataset=args.dataset, channels_last=args.channels_last,
                           out=Path(args.out), seed=args.seed,
                           n_fft=args.n_fft, hop=args.hop, train=tc, verbose=args.verbose,
                           jobs=args.jobs or cores(), executor=args.build_executor,
                           cache=cache_root(args.build_cache), widen=args.widen))
        return 0


class BuildKey(Command):
    name, help = "build-key", "print the key of a build's inputs (code, pinned versions, grid, dataset, options)"

    @classmethod
    def add_arguments(cls, p):
        add_build_inputs(p)  # the build's own inputs, so the key covers every one of them
        p.add_argument("--root", default=str(Path(__file__).resolve().parent.parent),
                       help="the edgecheck checkout whose build files are hashed (default: this one)")
        p.add_argument("--json", action="store_true", help="print every input with its hash, not only the key")

    @classmethod
    def run(cls, args):
        from edgecheck.buildkey import build_inputs, build_key

        inputs = build_inputs(Path(args.root), args.grid, args.dataset, args.seed, args.n_fft, args.hop, args.epochs,
                              args.channels_last, widen=args.widen)
        print(json.dumps({"key": build_key(inputs), "inputs": inputs}, indent=2) if args.json else build_key(inputs))
        return 0


class Inspect(Command):
    name, help = "inspect", ("a .tflite's size, operators, input and output, quantization, and whether the Edge TPU "
                             "runs it")

    @classmethod
    def add_arguments(cls, p):
        p.add_argument("model", help="a .tflite file")
        p.add_argument("--json", action="store_true",
                       help="print every field as JSON (default: a short summary for people)")

    @classmethod
    def run(cls, args):
        from edgecheck.modelfile import read_model
        from edgecheck.twins.model import UNVERIFIED_PER_CHANNEL, tpu_refusal

        info = read_model(args.model)
        refusal = None if info.compiled_for_edgetpu else tpu_refusal(info)
        notes = [UNVERIFIED_PER_CHANNEL] if any(d.weight_quantization == "per-channel" for d in info.dense_layers) \
            else []
        summary = {**info.summary(), "edgetpu_refusal": refusal, "notes": notes}
        if args.json:
            print_json(summary, args.model)
        else:
            print("\n".join(info.text(refusal, notes)))
        return 0


class ParseCompilerLog(Command):
    name, help = "parse-compiler-log", "print an edgetpu_compiler log as JSON, one entry per model"

    @classmethod
    def add_arguments(cls, p):
        p.add_argument("log")

    @classmethod
    def run(cls, args):
        from edgecheck.compilerlog import parse
        from edgecheck.files import read_text

        path = Path(args.log)
        text = read_text(path, f"{path}", "compiler log")
        log = parse(text, source=str(path))
        for w in log.warnings:
            print(f"edgecheck: warning: {w}", file=sys.stderr)
        print_json(log.to_dict(), args.log)
        return 0


class Calibrate(Command):
    name, help = "calibrate", "fit a twin's constants to measured results and print the fit's error"

    @classmethod
    def add_arguments(cls, p):
        from edgecheck.measure.devices import registry

        p.add_argument("--device", required=True, choices=[n for n, k in registry().items() if k.calibration],
                       help="a measured kind whose figures the twins are fitted to: the host's (its form) or a "
                            "board's (a twin's constants)")
        p.add_argument("results", nargs="*", help="results JSON files (cpu: measured here if none are given)")
        OPTIONS["grid"].add(p.add_argument, context="the cpu sweep's, when no results are given")
        OPTIONS["artifacts"].add(p.add_argument, context="the cpu sweep's (default: build or reuse the grid)")
        OPTIONS["twin_constants"].add(p.add_argument, "--constants", context="the base constants the fit starts from")
        OPTIONS["tpu_host"].add(p.add_argument, context="tpu: the class of the board's host whose part of the invoke "
                                                        "overhead the fit sets (default: the Dev Board on PCIe)")
        p.add_argument("--published", action="store_true",
                       help="tpu: fit the constants and their band on the published points shipped with edgecheck and "
                            "report how the band holds up leaving each source out (no results needed)")
        p.add_argument("-o", "--out", default=None,
                       help="where to write the fitted constants (default fixtures/twins/<device>-fitted.json) "
                            "or the cpu fit report (default .edgecheck/calibrate/cpu-form.json)")

    @classmethod
    def run(cls, args):
        from edgecheck import results as res
        from edgecheck.files import atomic_write_json
        from edgecheck.measure.devices import kind
        from edgecheck.twins.calibrate import TWIN_FORM_LIMIT_PCT, cpu_points, fit_board, fit_cpu_form
        from edgecheck.twins.model import load_constants
        from edgecheck.twins.tpufit import PUBLISHED_FOR

        paths = list(args.results)
        how = kind(args.device).calibration
        default_out = ".edgecheck/calibrate/cpu-form.json" if how == "host-form" else \
            f"fixtures/twins/{args.device}-fitted.json"
        distinct({"RESULTS": paths, "--constants": args.constants}, {"-o": args.out or default_out})
        if args.published:
            if args.device != PUBLISHED_FOR or paths:
                raise EdgecheckError(f"calibrate --published: only with --device {PUBLISHED_FOR} and no results files")
            return cls._published()
        if not paths:
            if how != "host-form":
                raise EdgecheckError(f"calibrate --device {args.device}: give RESULTS.json files measured on a "
                                     "Coral board" + (" (or --published for the public points)"
                                                      if args.device == PUBLISHED_FOR else ""))
            paths = [str(cls._measure_cpu_sweep(args))]
        runs = [res.load(p) for p in paths]
        if how == "host-form":
            from edgecheck.environment import measuring_environment
            from edgecheck.twins.cache import read_cache

            report = fit_cpu_form(cpu_points(runs, args.device), read_cache(level=2))
            l2 = report["cache"]
            print(f"L2 cache: {l2['size_bytes'] >> 10} KiB, {l2['ways']}-way, {l2['page_colours']} page colours "
                  f"({l2['source']})")
            for h in report["held_out"]:
                print(f"{h['model']:>8}  measured {h['measured_s'] * 1e6:9.1f} us  predicted "
                      f"{h['predicted_s'] * 1e6:9.1f} us  {h['error_pct']:+6.1f} %")
            print(f"fitted: invoke {report['invoke_overhead_s'] * 1e6:.2f} us, "
                  f"per operator {report['op_overhead_s'] * 1e6:.3f} us, "
                  f"weights from L2 {report['l2_rate_Bps'] / 1e9:.1f} GB/s (compute included: one MAC per weight "
                  f"byte), from beyond L2 {report['memory_rate_Bps'] / 1e9:.1f} GB/s")
            held = report["held_out_mdape_pct"]
            worst = max(report["held_out"], key=lambda h: abs(h["error_pct"]))
            print(f"held-out median absolute percentage error: {held:.1f} % (worst: {worst['model']} "
                  f"{worst['error_pct']:+.1f} %) "
                  f"(fitted on {len(report['fitted_on'])} models of <= 1 M parameters; train "
                  f"{report['train_mdape_pct']:.1f} %; measured on this host's cpu)")
            print(f"the twins aim for <= {TWIN_FORM_LIMIT_PCT:g} %: "
                  + ("within it" if held <= TWIN_FORM_LIMIT_PCT else "over it: the twins' form does not describe "
                     "this host well; treat their figures as a rough guide"))
            out = args.out or default_out
            atomic_write_json(out, {"schema": "edgecheck.cpu-form-fit/2", "results": paths,
                                    "environment": measuring_environment(), **report})
            print(f"wrote {out}")
            return 0
        constants, report = fit_board(runs, paths, load_constants(args.constants), args.device, args.tpu_host)
        if "held_out" in report:
            held = report.pop("held_out")
            print(json.dumps(report, indent=2))
            for line in cls._band_lines(held, "leave one model out"):
                print(line)
            report["held_out"] = held
        else:
            print(json.dumps(report, indent=2))
        out = args.out or default_out
        atomic_write_json(out, constants)
        print(f"wrote {out}: use it with --twin-constants {out}")
        return 0

    @staticmethod
    def _band_lines(report: dict, how: str) -> list[str]:
        """Per regime: points inside the band, its median half-width and how it holds up on unseen points."""
        lines = [f"{'regime':<9} {'points':>6} {'inside band':>11} {'median half-width':>17} "
                 f"{'held-out coverage':>17} {'held-out median error':>21}"]
        for regime, r in report["regimes"].items():
            cov = "-" if r["held_out_coverage"] is None else f"{r['held_out_coverage']:.0%}"
            err = "-" if r["held_out_median_abs_error_pct"] is None else f"{r['held_out_median_abs_error_pct']:.0f} %"
            lines.append(f"{regime:<9} {r['points']:>6} {r['inside_band_share']:>11.0%} "
                         f"{r['median_half_width_pct']:>15.0f} % {cov:>17} {err:>21}")
        lines.append(f"held out: {how}; the band aims for >= 80 % held-out coverage and a median half-width of at "
                     "most 35 % (cached) and 20 % (streamed)")
        return lines

    @classmethod
    def _published(cls) -> int:
        """The Edge TPU twin fitted on the published points: its constants, band and held-out figures."""
        from edgecheck.twins.model import load_constants
        from edgecheck.twins.tpufit import band_report, envelope_table, published_data

        data = published_data()
        report = band_report()
        print(f"sources used: {', '.join(report['sources'])}; listed, not used: "
              + "; ".join(f"{k} ({v['why']})" for k, v in data["sources"].items() if v.get("used") is not True))
        c = load_constants()
        print("the streamed form's constants (the cached regime's overhead, host parts and compute rate are the "
              "envelope's: constants.json tpu.links, tpu.hosts, tpu.cached; its band below):")
        for name, e in report["constants"].items():
            if "band_margin" in name:
                print(f"  {name:<26} {e['value']:.4g}  ({e['basis']})")
                continue
            print(f"  {name:<26} {e['value']:.4g}  [{e['low']:.4g}, {e['high']:.4g}]  ({e['basis'][:90]})")
        print("the form's own band, on the points of the sources it was fitted to:")
        for line in cls._band_lines(report, "leave one source out (everything refitted without it)"):
            print(line)
        print("the band as the twin uses it: each regime's envelope across sources and hosts, no --tpu-host given, "
              "each source scored by the band built without it (envelope_report)")
        for line in envelope_table():
            print(f"  {line}")
        print(f"packaged constants: {c.path} (sha256 {c.sha256[:12]}); tests/test_twins.py checks they are this fit")
        return 0

    @classmethod
    def _measure_cpu_sweep(cls, args) -> Path:
        """Measure the grid on this host's cpu (no pytest needed): prebuilt artifacts, or build them first."""
        import subprocess
        import tempfile

        from edgecheck import artifacts as art
        from edgecheck.environment import measuring_environment
        from edgecheck.measure.devices import select
        from edgecheck.measure.recorder import TimingOptions, start_recorder

        root = Path(args.artifacts) if args.artifacts else Path(DEFAULTS.build_dir) / f"{args.grid}-{DEFAULTS.dataset}"
        if not args.artifacts:
            cmd = [sys.executable, "-m", "edgecheck", "build", "--grid", args.grid, "--out", str(root)]
            print(f"calibrate: building or reusing artifacts: {' '.join(cmd[2:])}", file=sys.stderr)
            if subprocess.run(cmd).returncode != 0:
                raise EdgecheckError(f"calibrate: the build failed; command: {' '.join(cmd)}")
        artifacts = art.load(root)
        device = next(iter(select([args.device]).devices), None)
        if device is None:
            raise EdgecheckError("calibrate --device cpu: this host's CPU is a Cortex-A53; measure it with "
                                 "pytest benchmarks --device a53 and calibrate --device a53 RESULTS.json")
        out = Path(tempfile.mkdtemp(prefix="edgecheck-calibrate-")) / "results.json"
        header = {"run": {"devices": [device.to_dict()], "grid": args.grid}, "environment": measuring_environment(),
                  "artifacts": artifacts.header()}
        with start_recorder(out, header, TimingOptions(), plan={device.key: artifacts.models},
                            progress=lambda line: print(line, file=sys.stderr)) as recorder:
            print(f"calibrate: measuring {len(artifacts.models)} models on cpu", file=sys.stderr)
            for model in artifacts.models:
                recorder.measure(model, device)
            recorder.results.compact()
        return out


class Compare(Command):
    name, help = "compare", "compare a run with a baseline; exit 1 on a regression"

    @classmethod
    def add_arguments(cls, p):
        p.add_argument("baseline", help="a results file, or a folder of earlier runs' results (the newest is the "
                                        "baseline; their spread measures this machine's drift)")
        p.add_argument("run")
        OPTIONS["force_baseline"].add(p.add_argument, "--force")
        p.add_argument("--by-name", action="store_true",
                       help="match models by architecture name, not by file: two builds of the same grid (a pull "
                            "request's and main's, or a --widen variant) compared as the same architectures")
        OPTIONS["compare_threshold"].add(p.add_argument, "--threshold")
        for metric, what in (("latency", "relative (default 0.05)"), ("energy", "relative (default 0.05)"),
                             ("accuracy", "absolute (default 0.01)")):
            p.add_argument(f"--{metric}-threshold", dest="threshold", action="append",
                           type=lambda v, m=metric: threshold_spec(f"{m}={v}"), help=f"{what}; short for "
                                                                                     f"--threshold {metric}=X")
        OPTIONS["allow_missing"].add(p.add_argument)
        p.add_argument("--all", action="store_true", help="show unchanged rows too")
        p.add_argument("--json", default=None, help="write the comparison as JSON")

    @classmethod
    def run(cls, args):
        from edgecheck.judge.compare import compare_runs

        distinct({"BASELINE": args.baseline, "RUN": args.run}, {"--json": args.json})
        if not args.force:  # a baseline run on libedgetpu1-max and a run on -std compare the USB clock, not models
            from edgecheck.measure.runtime import refuse_libedgetpu_mismatch

            refuse_libedgetpu_mismatch(args.baseline, args.run)
        result = compare_runs(args.baseline, args.run, args.threshold, force=args.force,
                              allow_missing=args.allow_missing, by_name=args.by_name)
        for line in result.table(only_changes=not args.all):
            print(line)
        print(result.summary_line())
        if args.json:
            result.save(args.json)
        return 1 if result.has_regression else 0


class Ab(Command):
    name, help = "ab", "measure two model sets interleaved on one machine (A/B) and compare; exit 1 on a regression"

    @classmethod
    def add_arguments(cls, p):
        p.add_argument("base", help="artifacts folder or .tflite of the base (e.g. main)")
        p.add_argument("head", help="artifacts folder or .tflite of the change")
        p.add_argument("--device", default=None, type=device_name,
                       help="a measured device: a kind of `edgecheck devices` (cpu, a53, tpu) or KIND@ssh://user@board "
                            "(default: this host's CPU)")
        OPTIONS["ab_processes"].add(p.add_argument, "--processes")
        OPTIONS["ab_max_seconds"].add(p.add_argument, "--max-seconds")
        OPTIONS["rounds"].add(p.add_argument)
        OPTIONS["compare_threshold"].add(p.add_argument, "--threshold")
        p.add_argument("-o", "--out", default=None, help="folder for base.json, head.json and comparison.json")

    @classmethod
    def run(cls, args):
        from edgecheck import results as res
        from edgecheck.abrun import run

        if args.out:
            distinct({"BASE": [p for p in (args.base, args.head) if Path(p).is_file()]},
                     {"-o": [Path(args.out) / n for n in ("base.json", "head.json", "comparison.json")]})
        result, run_line, got = run(args.base, args.head, cap=args.processes, rounds=args.rounds,
                                    specs=args.threshold, max_seconds=args.max_seconds, base_label=args.base,
                                    head_label=args.head, progress=lambda s: print(s, file=sys.stderr),
                                    device=args.device, what="--device ")
        for line in result.table(only_changes=False):
            print(line)
        print(run_line)
        print(result.summary_line())
        if args.out:
            out = Path(args.out)
            res.save(got.base, out / "base.json")
            res.save(got.head, out / "head.json")
            result.save(out / "comparison.json")
            print(f"wrote {out}/base.json, head.json and comparison.json")
        return 1 if result.has_regression else 0


class Claims(Command):
    name, help = "claims", "evaluate the paper's claims on a saved run; writes Markdown and JSON"

    @classmethod
    def add_arguments(cls, p):
        p.add_argument("run")
        OPTIONS["claims"].add(p.add_argument)
        p.add_argument("-o", "--out", default=None, help="output stem (default: the run's path without .json)")

    @classmethod
    def run(cls, args):
        from edgecheck import results as res
        from edgecheck.files import atomic_write_json, atomic_write_text
        from edgecheck.judge.claims import evaluate, load_thresholds, markdown, table

        stem = Path(args.out) if args.out else Path(args.run).with_suffix("")
        distinct({"RUN": args.run, "--claims": args.claims}, {"-o": [f"{stem}.claims.md", f"{stem}.claims.json"]})
        claims = evaluate(res.load(args.run), load_thresholds(args.claims))
        for line in table(claims):
            print(line)
        atomic_write_text(f"{stem}.claims.md", markdown(claims))
        atomic_write_json(f"{stem}.claims.json", {"schema": "edgecheck.claims-result/1", "run": args.run,
                                                  "claims": [c.to_dict() for c in claims]})
        print(f"wrote {stem}.claims.md and {stem}.claims.json")
        return 1 if any(c.holds is False for c in claims) else 0


class Merge(Command):
    name, help = "merge", "merge results of several runs or boards into one file"

    @classmethod
    def add_arguments(cls, p):
        p.add_argument("runs", nargs="+")
        p.add_argument("-o", "--out", required=True)

    @classmethod
    def run(cls, args):
        from edgecheck import results as res

        distinct({"RUNS": args.runs}, {"-o": args.out})
        merged = res.merge([res.load(p) for p in args.runs], args.runs)
        res.save(merged, args.out)
        print(f"wrote {args.out}: {len(merged.entries)} entries from {len(args.runs)} runs")
        return 0


class EnergyFromTrace(Command):
    name, help = "energy-from-trace", "fill a run's pending energy windows from a meter's CSV log"

    @classmethod
    def add_arguments(cls, p):
        p.add_argument("run")
        p.add_argument("trace")
        OPTIONS["trace_offset"].add(p.add_argument, "--offset")
        p.add_argument("-o", "--out", default=None, help="write here instead of updating RUN in place")

    @classmethod
    def run(cls, args):
        from edgecheck import results as res
        from edgecheck.files import same_file
        from edgecheck.measure.energy import fill_from_trace
        from edgecheck.measure.probes import TraceProbe

        in_place = not args.out or same_file(args.out, args.run)  # -o RUN is the default: RUN updated in place
        distinct({"TRACE": args.trace, **({} if in_place else {"RUN": args.run})},
                 {"RUN (updated in place)" if in_place else "-o": args.out or args.run})
        run = res.load(args.run)
        n = fill_from_trace(run, TraceProbe(Path(args.trace), args.offset))
        if n == 0 and not args.out:
            print(f"no entry of {args.run} has pending energy windows; nothing written")
            return 0
        res.save(run, args.out or args.run)
        print(f"filled energy of {n} entries from {args.trace}; wrote {args.out or args.run}")
        return 0


class Report(Command):
    name, help = "report", "write one self-contained HTML report of one or more runs"

    @classmethod
    def add_arguments(cls, p):
        p.add_argument("runs", nargs="+")
        p.add_argument("-o", "--out", default=None, help="HTML path (default: the first run's path with .html)")
        p.add_argument("--baseline", default=None, help="add a comparison with this baseline")
        p.add_argument("--budget-ms", type=positive_float, default=None,
                       help="add a chart of the fastest model under this latency")
        p.add_argument("--rate", type=positive_float, default=DEFAULTS.battery_rate_hz,
                       help="inferences per second the battery view details first, beside 1, 10 and 100 "
                            "(default 10; the page changes rates and capacity)")

    @classmethod
    def run(cls, args):
        from edgecheck import results as res
        from edgecheck.files import atomic_write_text
        from edgecheck.judge.compare import compare_runs
        from edgecheck.judge.report import html_report

        out = args.out or str(Path(args.runs[0]).with_suffix(".html"))
        distinct({"RUNS": args.runs, "--baseline": args.baseline}, {"-o": out})
        runs = [(p, res.load(p)) for p in args.runs]
        comparison = compare_runs(args.baseline, runs[0][1], force=True, run_label=args.runs[0]) \
            if args.baseline else None
        budget = args.budget_ms / 1e3 if args.budget_ms else None
        atomic_write_text(out, html_report(runs, comparison, budget, args.rate))
        print(f"wrote {out}")
        return 0


class Chart(Command):
    name, help = "chart", "the decision chart of a run: PNG, SVG, and its rules as text and JSON"

    @classmethod
    def add_arguments(cls, p):
        p.add_argument("run")
        p.add_argument("--metric", default="energy", choices=["energy", "latency"])
        p.add_argument("--budget-ms", type=positive_float, default=None,
                       help="only devices within this latency can win")
        p.add_argument("-o", "--out", default=".", help="output folder (default: here)")

    @classmethod
    def run(cls, args):
        from edgecheck import results as res
        from edgecheck.files import atomic_write_bytes, atomic_write_json, atomic_write_text
        from edgecheck.judge.chart import build_chart
        from edgecheck.judge.figures import chart_figure

        out = Path(args.out)
        stem = f"decision-chart-{args.metric}" + (f"-under-{args.budget_ms:g}ms" if args.budget_ms else "")
        distinct({"RUN": args.run}, {"-o": [out / f"{stem}.{ext}" for ext in ("png", "svg", "rules.txt", "json")]})
        chart = build_chart(res.load(args.run), args.metric, args.budget_ms / 1e3 if args.budget_ms else None)
        png, svg = chart_figure(chart)
        atomic_write_bytes(out / f"{stem}.png", png)
        atomic_write_text(out / f"{stem}.svg", svg)
        atomic_write_text(out / f"{stem}.rules.txt", chart.rules_text + "\n")
        atomic_write_json(out / f"{stem}.json", {"schema": "edgecheck.decision-chart/1", "run": args.run,
                                                 **chart.to_dict()})
        print(chart.rules_text)
        agreement = "-" if chart.loo_agreement is None else f"{chart.loo_agreement:.0%}"
        print(f"{chart.provenance}; leave-one-architecture-out agreement {agreement}; wrote "
              f"{out}/{stem}.{{png,svg,rules.txt,json}}")
        return 0


class Recommend(Command):
    name, help = "recommend", "which platform for this .tflite, with measured or predicted figures"

    @classmethod
    def add_arguments(cls, p):
        p.add_argument("model", help="a .tflite file (any feed-forward model, not only ones edgecheck built)")
        p.add_argument("--metric", default="energy", choices=["energy", "latency"],
                       help="what to minimise: energy per inference or latency per inference (default energy)")
        p.add_argument("--results", default=None, metavar="PATH",
                       help="a results JSON whose measurements are used when they measured this very model (same "
                            "sha256) on both platforms (default: none, the twins predict)")
        OPTIONS["tpu_link"].add(p.add_argument)
        p.add_argument("--json", action="store_true",
                       help="print the answer as JSON with every figure, band and breakdown (default: a short "
                            "summary for people)")

    @classmethod
    def run(cls, args):
        from edgecheck.judge.recommend import recommend, recommend_text

        out = recommend(args.model, args.metric, args.results, args.tpu_link)
        if args.json:
            print_json(out, args.model)
        else:
            print("\n".join(recommend_text(out)))
        return 0


class Devices(Command):
    name, help = "devices", "list the devices found on this machine"

    @classmethod
    def run(cls, args):
        from edgecheck.build.compile import find_compiler
        from edgecheck.environment import cpufreq
        from edgecheck.measure.devices import measured_kinds, select
        from edgecheck.measure.edgetpu import find_edge_tpus, runtime_info
        from edgecheck.measure.probes import HWMON_ROOT, POWERCAP_ROOT, hwmon_devices

        sel = select(measured_kinds())
        freq = cpufreq()
        tpus = find_edge_tpus()
        problems = [t.note for t in tpus if t.note]
        if freq.get("governor") not in (None, "performance"):
            problems.append(f"CPU governor is {freq['governor']!r}: latencies vary with frequency; "
                            "for stable numbers set it to 'performance'")
        sensors = [{"probe": f"hwmon:{d.path}", "name": d.name, "readable": d.readable}
                   for d in hwmon_devices(HWMON_ROOT)]
        rapl = POWERCAP_ROOT / "intel-rapl:0" / "energy_uj"
        if rapl.exists():
            sensors.append({"probe": "rapl", "name": "x86 package (host only)", "readable": os.access(rapl, os.R_OK)})
        out = {"found": [d.to_dict() for d in sel.devices], "not_found": sel.skipped,
               "edge_tpus": [t.to_dict() for t in tpus], "edgetpu_runtime": runtime_info(),
               "edgetpu_compiler": find_compiler(), "cpu_frequency": freq, "power_sensors": sensors,
               "tpu_twin_hosts": tpu_twin_hosts(), "problems": problems}
        print(json.dumps(out, indent=2, default=str))
        return 0


def tpu_twin_hosts() -> dict:
    """The hosts tpu-sim knows (--tpu-host): each one's name and the host part of its invoke overhead, with
    where it comes from; and which this machine is, when it is one of them."""
    import platform

    from edgecheck.twins.model import load_constants
    from edgecheck.twins.sections import TPU

    c = load_constants()
    hosts = {h: {"name": n.get("name", h), "overhead_ms": [round(x * 1e3, 4) for x in
                                                            c.range(TPU, "hosts", h, "overhead_s")],
                 "kind": n["overhead_s"]["kind"]} for h, n in c.data[TPU]["hosts"].items()}
    this = "x86-64" if platform.machine() in ("x86_64", "AMD64") else None
    return {"this_machine": this, "default": "none: the band spans every host", "hosts": hosts}


class Farm(Command):
    name, help = "farm", "a labgrid farm of boards: its places and their locks (needs the farm extra)"

    @classmethod
    def add_arguments(cls, p):
        sub = p.add_subparsers(dest="farm_command", required=True)
        for name, help_ in (("places", "every place: its tags, who holds it, and whether that process still runs"),
                            ("unlock", "free the locks of edgecheck runs of this host that are gone (after a "
                                       "SIGKILL); with --kick, the named places whoever holds them")):
            sp = sub.add_parser(name, help=help_)
            OPTIONS["lg_coordinator"].add(sp.add_argument)
            if name == "unlock":
                sp.add_argument("place", nargs="*", help="only these places (default: every place)")
                sp.add_argument("--kick", action="store_true",
                                help="release the named places even when their holder runs (or is on another "
                                     "host): labgrid has no authentication, so only do this for a holder you know "
                                     "is gone")

    @classmethod
    def run(cls, args):
        from edgecheck.measure.farm import FarmClient, FarmOptions, coordinator_address, owner_alive

        say = functools.partial(print, file=sys.stderr)
        if not logging.getLogger().handlers:  # labgrid logs to the root logger; our one-line errors say it all
            logging.getLogger().addHandler(logging.NullHandler())
        client = FarmClient(FarmOptions(coordinator=coordinator_address(args.lg_coordinator)), say=say)
        try:
            places = client.places()
            if args.farm_command == "places":
                for name, p in sorted(places.items()):
                    alive = owner_alive(p.acquired, client.host)
                    state = "free" if not p.acquired else f"held by {p.acquired}" + (
                        "" if alive is None else " (running)" if alive else " (gone: edgecheck farm unlock frees it)")
                    tags = " ".join(f"{k}={v}" for k, v in sorted(p.tags.items()))
                    print(f"{name}  {tags or '-'}  {state}")
                return 0
            wanted = set(args.place) if args.place else None
            unknown = sorted((wanted or set()) - set(places))
            if unknown:
                raise EdgecheckError(f"farm unlock: no place named {', '.join(unknown)} at "
                                     f"{client.options.coordinator}")
            freed = client.reap_stale(wanted)
            left = 0
            for name in sorted(wanted or places):
                p = client.places()[name]
                if not p.acquired:
                    continue
                if args.kick and wanted:
                    owner, token = p.acquired, p.reservation  # before the coordinator's update replaces them
                    client.release(name, owner)
                    if token:
                        client.cancel(token)
                    print(f"kicked {owner} off place {name}")
                    freed.append(name)
                    continue
                alive = owner_alive(p.acquired, client.host)
                why = "its process still runs" if alive else "its holder is not an edgecheck run of this host"
                print(f"{name}: held by {p.acquired}; left locked ({why}; --kick {name} releases it anyway)")
                left += 1
            if not freed and not left:
                print("no place is locked")
            for name in freed:
                print(f"unlocked {name}")
            return 1 if left and wanted else 0
        finally:
            client.close()


COMMANDS: list[type[Command]] = [Build, BuildKey, Inspect, ParseCompilerLog, Calibrate, Compare, Ab, Claims, Merge,
                                 EnergyFromTrace, Report, Chart, Recommend, Devices, Farm]


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line that names the option (exit 2), as every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="edgecheck", description="Edge TPU vs CPU: which chip, at what cost?")
    sub = p.add_subparsers(dest="command", required=True)
    for cmd in COMMANDS:
        cp = sub.add_parser(cmd.name, help=cmd.help)
        cmd.add_arguments(cp)
        cp.set_defaults(func=cmd.run)
    args = p.parse_args(argv)
    for name, value in vars(args).items():  # no file name or option holds a NUL: the OS would refuse it later
        if any("\0" in v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)):
            p.error(f"argument {name}: contains a NUL character")
    try:
        return args.func(args)
    except EdgecheckError as e:
        print(f"edgecheck: error: {one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # a file the user named cannot be read or written (a directory, no space, no permission)
        where = f"{e.filename}: " if e.filename else ""
        print(f"edgecheck: error: {one_line(f'{where}{e.strerror or e}')}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


