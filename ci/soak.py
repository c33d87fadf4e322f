#!/usr/bin/env python3
"""Opt-in soak checks: how often does edgecheck's verdict hold up under repetition and load?

Not part of `make test` (they take an hour); run by hand or on a schedule:

  python ci/soak.py verdicts --runs 10 --busy         fresh clones: `make bench` and `make bench ARGS="--grid smoke"`
                                                     must exit 0; a baseline 25 % faster and the TPU link overheads
                                                     x1000 must exit 1 naming the regression / C5; optionally with
                                                     another process keeping one core busy
  python ci/soak.py runs --runs 20 --out DIR [--busy]  repeated default runs of the whole suite (host cpu + twins,
                                                     the artifacts built once): exit codes, decided and
                                                     inconclusive checks, times; kept for `compare`
  python ci/soak.py ab --base A [--head H] --sessions 20 [--plain-seconds S]
                                                     real `edgecheck ab` sessions: identical sides, and the same
                                                     measurements judged with B x1.10 everywhere and on one model;
                                                     or a real HEAD
  python ci/soak.py ab-rules DIR                      pairing's effect and the A/B rules on `runs`' interleaved data
  python ci/soak.py interleaved DIR                   within each run, its even processes against its odd ones
                                                     (an A/B pair of identical code, as `edgecheck ab` measures)
  python ci/soak.py compare DIR                       every ordered pair of those runs compared as baseline and
                                                     run: unchanged, +10 % and +5 % everywhere, +10 % on one model
                                                     (slowdowns made by scaling one run's samples and process
                                                     medians, as the statistics see them)
  python ci/soak.py history DIR [--history 5]         wall clock against a history: each run of DIR from the 6th
                                                     on against the 5 before it (their spread is the drift):
                                                     unchanged and +25 % everywhere; prints the measured drift
  python ci/soak.py instructions --out DIR [--sessions 10] [--widen 3] [-- --artifacts A]
                                                     the instruction-count gate in separate sessions of the
                                                     default grid (--count-instructions), plus one with XNNPACK
                                                     off and one of a variant built with `edgecheck build
                                                     --widen 3` (first hidden layer widened: MACs +3 %, same
                                                     architecture names, compared by name): unchanged pairs
                                                     must not fail, both changes must be caught in every pair;
                                                     prints the counts' spread and cost

Results print as text and are written as JSON next to the runs.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def busy_core(enabled: bool):
    """`yes > /dev/null`: another process keeping one core busy."""
    proc = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if enabled else None
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided upper bound of a binomial proportion (exact, by bisection on the binomial tail)."""
    if k >= n:
        return 1.0
    alpha = 1 - confidence

    def tail(p):  # P(X <= k | p)
        return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))

    lo, hi = k / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if tail(mid) > alpha else (lo, mid)
    return hi


def _summary_counts(stdout: str) -> dict:
    m = re.search(r"=+ (.*) in ([0-9.]+)s", stdout)
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", m.group(1))} if m else {}
    counts["inconclusive"] = len(re.findall(r"^  \S+: inconclusive:", stdout, re.M))
    return counts


def _run_make(clone: Path, make_args: list[str], busy: bool) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.time()
    with busy_core(busy):
        proc = subprocess.run(["make", "bench", *make_args], cwd=clone, capture_output=True, text=True)
    # make exits 2 whenever its recipe fails; the verdict is pytest's own status ("make: *** [...] Error N")
    failed = re.search(r"make: \*\*\* \[.*\] Error (\d+)", proc.stderr)
    if failed:
        proc.returncode = int(failed.group(1))
    return proc, round(time.time() - t0, 1)


def _x1000_constants(clone: Path) -> Path:
    """The twins' constants with every TPU link's per-invoke overhead x1000: no crossover can exist."""
    data = json.loads((clone / "edgecheck" / "twins" / "constants.json").read_text())
    for link in data["tpu"]["links"].values():
        for end in ("value", "low", "high"):  # the band is built from the range: scale it with the value
            link["overhead_s"][end] *= 1000
    path = clone / "x1000-constants.json"
    path.write_text(json.dumps(data))
    return path


def verdicts(args) -> int:
    """Fresh clones under load: the default and smoke runs must exit 0; a contradicted claim and a regression
    must exit 1 and name themselves."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(args.runs):
        clone = out / f"clone-{i}"
        subprocess.run(["rm", "-rf", str(clone)])
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        cases = [("default", [], 0, None), ("smoke", ["ARGS=--grid smoke"], 0, None)]
        for label, make_args, want, finding in cases:
            proc, seconds = _run_make(clone, make_args, args.busy)
            row = {"run": i, "case": label, "exit": proc.returncode, "want": want, "seconds": seconds,
                   **_summary_counts(proc.stdout)}
            rows.append(row)
            (out / f"run-{i}-{label}.log").write_text(proc.stdout[-20000:] + proc.stderr[-5000:])
            print(json.dumps(row), flush=True)
            if label == "default" and proc.returncode == 0:
                from_run = clone / ".edgecheck" / "results" / "latest.json"
                fast = _scaled(json.loads(from_run.read_text()), 0.75)
                (clone / "fast-baseline.json").write_text(json.dumps(fast))
                cases.append(("baseline 25 % faster", ["ARGS=--baseline fast-baseline.json"], 1,
                              r"regression"))
                cases.append(("tpu overheads x1000", [f"ARGS=--twin-constants {_x1000_constants(clone)}"], 1,
                              r"C5 .*(does not hold|contradicted)"))
            if finding:
                row["named"] = bool(re.search(finding, proc.stdout))
    (out / "verdicts.json").write_text(json.dumps(rows, indent=1))
    for label in ("default", "smoke", "baseline 25 % faster", "tpu overheads x1000"):
        mine = [r for r in rows if r["case"] == label]
        if not mine:
            continue
        ok = sum(r["exit"] == r["want"] and r.get("named", True) for r in mine)
        decided = sum(r.get("passed", 0) + r.get("failed", 0) for r in mine)
        undecided = sum(r["inconclusive"] for r in mine)
        named = " naming the finding" if mine[0]["want"] else ""
        print(f"{label}: {ok}/{len(mine)} runs exit {mine[0]['want']}{named}; "
              f"checks decided {decided}, inconclusive {undecided}; "
              f"times {min(r['seconds'] for r in mine):.0f}-{max(r['seconds'] for r in mine):.0f} s")
    return 0 if all(r["exit"] == r["want"] and r.get("named", True) for r in rows) else 1


def runs(args) -> int:
    """Repeated default runs of the whole suite (the artifacts built once): kept for `compare`, and counted."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    py = args.python or str(REPO / ".venv" / "bin" / "python")
    rows = []
    for i in range(args.runs):
        results = out / f"run-{i:02d}.json"
        t0 = time.time()
        with busy_core(args.busy):
            proc = subprocess.run([py, "-m", "pytest", "-p", "no:cacheprovider", "benchmarks", "--results",
                                   str(results), "--report", "none", *args.pytest_args], cwd=REPO,
                                  capture_output=True, text=True)
        row = {"run": i, "exit": proc.returncode, "seconds": round(time.time() - t0, 1),
               **_summary_counts(proc.stdout)}
        rows.append(row)
        (out / f"run-{i:02d}.log").write_text(proc.stdout[-20000:])
        print(json.dumps(row), flush=True)
    (out / "runs.json").write_text(json.dumps(rows, indent=1))
    secs = sorted(r["seconds"] for r in rows)
    print(f"{sum(r['exit'] == 0 for r in rows)}/{len(rows)} runs exit 0; checks decided "
          f"{sum(r.get('passed', 0) + r.get('failed', 0) for r in rows)}, inconclusive "
          f"{sum(r['inconclusive'] for r in rows)}; seconds median {secs[len(secs) // 2]:.0f} "
          f"(range {secs[0]:.0f}-{secs[-1]:.0f})")
    return 0


def _scaled(run: dict, factor, only: str | None = None) -> dict:
    """A run whose cpu latencies are ``factor`` times slower (every model, or ``only`` one)."""
    from edgecheck.stats import summarize

    out = copy.deepcopy(run)
    for e in out["entries"]:
        if e["device"]["name"] != "cpu" or (only and e["model"]["name"] != only):
            continue
        lat = e["latency"]
        lat["samples"] = [s * factor for s in lat["samples"]]
        lat["stats"] = summarize(lat["samples"])
        for p in lat.get("processes", []):
            p["median"] *= factor
        if lat.get("ci95"):
            lat["ci95"] = [v * factor for v in lat["ci95"]]
        if "process_median" in lat:
            lat["process_median"] *= factor
    return out


def _score(pairs: list[tuple[dict, dict]], models: list[str], ab: bool = False) -> dict:
    """Every (baseline, run) pair compared as it is, then with the run slowed down: the soak's figures. ``ab``:
    both sides are halves of one session (no drift between them), compared as ``edgecheck ab`` compares."""
    import functools

    from edgecheck.judge.compare import AB, REGRESSION
    from edgecheck.judge.compare import compare_runs as _compare_runs

    compare_runs = functools.partial(_compare_runs, kind=AB) if ab else _compare_runs

    tally = {"pairs": len(pairs), "unchanged_runs_failed": 0, "slow10_runs_caught": 0, "slow5_runs_caught": 0,
             "slow10_rows": 0, "slow10_rows_flagged": 0, "one_model_runs": 0, "one_model_caught": 0,
             "unchanged_rows": 0, "unchanged_rows_inconclusive": 0, "slow25_runs_caught": 0}
    for n, (base, now) in enumerate(pairs):
        got = compare_runs(base, now, force=True)
        tally["unchanged_runs_failed"] += got.has_regression
        lat = [r for r in got.rows if r.metric == "latency"]
        tally["unchanged_rows"] += len(lat)
        tally["unchanged_rows_inconclusive"] += sum(r.outcome.status == "inconclusive" for r in lat)
        for factor, key in ((1.10, "slow10"), (1.05, "slow5"), (1.25, "slow25")):
            got = compare_runs(base, _scaled(now, factor), force=True)
            tally[f"{key}_runs_caught"] += got.has_regression
            if key == "slow10":
                lat = [r for r in got.rows if r.metric == "latency"]
                tally["slow10_rows"] += len(lat)
                tally["slow10_rows_flagged"] += sum(r.verdict == REGRESSION for r in lat)
        model = models[n % len(models)]  # each model in turn
        got = compare_runs(base, _scaled(now, 1.10, only=model), force=True)
        tally["one_model_runs"] += 1
        tally["one_model_caught"] += any(r.verdict == REGRESSION and r.model == model for r in got.rows)
    p = max(1, tally["pairs"])
    return {
        **tally,
        "unchanged_runs_failing": tally["unchanged_runs_failed"] / p,
        "unchanged_runs_failing_upper95": clopper_pearson_upper(tally["unchanged_runs_failed"], p),
        "slow10_runs_caught_share": tally["slow10_runs_caught"] / p,
        "slow5_runs_caught_share": tally["slow5_runs_caught"] / p,
        "slow25_runs_caught_share": tally["slow25_runs_caught"] / p,
        "slow10_rows_flagged_share": tally["slow10_rows_flagged"] / max(1, tally["slow10_rows"]),
        "one_model_caught_share": tally["one_model_caught"] / max(1, tally["one_model_runs"]),
        "unchanged_rows_inconclusive_share": tally["unchanged_rows_inconclusive"] / max(1, tally["unchanged_rows"]),
    }


def _print_score(report: dict, what: str) -> None:
    p = report["pairs"]
    print(f"{what}: {p} comparisons (baseline, run):")
    print(f"  unchanged runs that fail: {report['unchanged_runs_failed']}/{p} = {report['unchanged_runs_failing']:.1%} "
          f"(95 % upper bound {report['unchanged_runs_failing_upper95']:.1%}); "
          f"unchanged comparisons inconclusive: {report['unchanged_rows_inconclusive_share']:.0%}")
    print(f"  +10 % everywhere caught: {report['slow10_runs_caught_share']:.0%} of runs, "
          f"{report['slow10_rows_flagged_share']:.0%} of comparisons flagged")
    print(f"  +5 % everywhere caught: {report['slow5_runs_caught_share']:.0%} of runs; "
          f"+25 %: {report['slow25_runs_caught_share']:.0%}")
    print(f"  +10 % on one model alone caught: {report['one_model_caught_share']:.0%} of runs")


def _load_runs(folder: str) -> tuple[list[dict], list[str]]:
    sys.path.insert(0, str(REPO))
    from edgecheck.results import load

    data = [load(p).to_json() for p in sorted(Path(folder).glob("run-*.json"))]
    models = sorted({e["model"]["name"] for e in data[0]["entries"] if e["device"]["name"] == "cpu"})
    return data, models


def compare_sessions(args) -> int:
    """Separate sessions: every ordered pair of the runs, one as the baseline, the other as the run."""
    data, models = _load_runs(args.dir)
    pairs = [(data[i], data[j]) for i, j in itertools.permutations(range(len(data)), 2)]
    report = {**_score(pairs, models), "runs": len(data)}
    (Path(args.dir) / "compare-soak.json").write_text(json.dumps(report, indent=1))
    _print_score(report, f"{len(data)} runs, every ordered pair of separate sessions")
    return 0


def _half(run: dict, parity: int) -> dict:
    """The run as if only its even (or odd) processes had measured it: processes alternate in time, so the two
    halves of one session are an A/B pair of identical code, as `edgecheck ab` measures them."""
    from edgecheck.stats import robust_cv, summarize

    out = copy.deepcopy(run)
    for e in out["entries"]:
        lat = e.get("latency") or {}
        procs = lat.get("processes") or []
        if e["device"]["name"] != "cpu" or len(procs) < 4:
            continue
        per = len(lat["samples"]) // len(procs)
        keep = [i for i in range(len(procs)) if i % 2 == parity]
        lat["processes"] = [procs[i] for i in keep]
        lat["samples"] = [s for i in keep for s in lat["samples"][i * per:(i + 1) * per]]
        lat["stats"] = summarize(lat["samples"])
        medians = [p["median"] for p in lat["processes"]]
        lat["process_median"] = float(statistics.median(medians))
        lat["process_cv"] = robust_cv(medians)
        lat["rounds"] = len(lat["samples"])
    return out


def _slots(run: dict) -> dict:
    """A run's cpu process medians as A/B slots: processes 2k (A) and 2k+1 (B) measured next to each other in
    time, as `edgecheck ab` alternates its sides. {model: {k: (a, b)}}."""
    out: dict = {}
    for e in run["entries"]:
        lat = e.get("latency") or {}
        if e["device"]["name"] != "cpu" or not lat.get("processes"):
            continue
        by = {p["process"]: p["median"] for p in lat["processes"] if p.get("process") is not None}
        # relative to the model's level in this run: pooling slots of several runs then adds no run-to-run drift
        # to a side's spread (a slot's log ratio is unchanged)
        level = statistics.median(by.values())
        out[e["model"]["name"]] = {k // 2: (by[k] / level, by[k + 1] / level) for k in by if k % 2 == 0 and k + 1 in by}
    return out


def _pairing_widths(data: list[dict]) -> dict:
    """Pairing's effect on real data: per (run, model) with at least 4 slots, the 95 % interval's width of the
    paired t on slot log ratios against Welch's unpaired t on the same process medians."""
    from edgecheck.judge.ab_stats import ModelSlots, paired_t, welch

    ratios = []
    for run in data:
        for _name, slots in _slots(run).items():
            if len(slots) < 4:
                continue
            ks = sorted(slots)
            m = ModelSlots(ks, [slots[k][0] for k in ks], [slots[k][1] for k in ks])
            p, u = paired_t(m.log_ratios()), welch(np.log(m.a), np.log(m.b))
            if u.hi > u.lo:
                ratios.append((p.hi - p.lo) / (u.hi - u.lo))
    ratios.sort()
    return {"pairs": len(ratios), "width_ratio_median": ratios[len(ratios) // 2] if ratios else None,
            "width_ratio_q25": ratios[len(ratios) // 4] if ratios else None,
            "width_ratio_q75": ratios[3 * len(ratios) // 4] if ratios else None,
            "narrower_share": sum(r < 1 for r in ratios) / max(1, len(ratios))}


def _simulate_rules(data: list[dict], sessions: int, seed: int = 0, cap: int = 20, only=()) -> dict:
    """The decision rules on sessions resampled from the real interleaved slots (every run's processes 2k vs
    2k+1, identical code): each session draws ``cap`` slots with replacement from all runs' slots (a model
    missing from a drawn slot takes one of its own at random) and is looked at as `edgecheck ab` looks (the
    ab_stats schedule). Scenarios as the statistics see them: null, B x1.10 everywhere, B x1.10 on one model
    (each model in turn; counted as quiet when the session itself measured its process CV at most 10 %)."""
    from edgecheck.judge.ab_stats import FIRST, LOOKS, ModelSlots, Sequence, schedule
    from edgecheck.stats import holm, p_greater, robust_cv

    per_run = [_slots(r) for r in data]
    models = sorted(set.intersection(*[set(s) for s in per_run]))
    pool = {m: [(i, k) for i, s in enumerate(per_run) for k in s[m]] for m in models}
    every = sorted({x for m in models for x in pool[m]})
    cvs = {m: robust_cv([v for i, s in enumerate(per_run) for k, ab in s[m].items() for v in ab]) for m in models}
    quiet = [m for m in models if cvs[m] <= 0.10]
    rng = np.random.default_rng(seed)
    looks = schedule(FIRST, cap, LOOKS)

    def draw(n):
        """``n`` slots without replacement while the pools last (then with): a slot at an odd position of the
        session swaps its two processes, as `edgecheck ab` orders its slots A,B then B,A (ABBA)."""
        ids = [every[j] for j in rng.permutation(len(every))[:n]]
        out = {}
        for m in models:
            own = set(pool[m])
            got = [g for g in ids if g in own]
            rest = [x for x in (pool[m][j] for j in rng.permutation(len(pool[m]))) if x not in set(got)]
            while len(got) < n:
                got.append(rest.pop() if rest else pool[m][rng.integers(0, len(pool[m]))])
            rng.shuffle(got)
            out[m] = [per_run[i][m][k][::-1] if j % 2 else per_run[i][m][k] for j, (i, k) in enumerate(got)]
        return out

    def sequential(slots, scale, rule, paired, test="rank", first=FIRST, looks=LOOKS, run_share=0.5):
        seq = Sequence(models, dict.fromkeys(models, 0.05), 0.05, looks, 0.10, 0.05, scale, rule, paired, test,
                       run_share)
        plan = schedule(first, cap, looks)
        for j, n in enumerate(plan):
            need = seq.to_measure()
            if not need:
                break
            data_n = {m: ModelSlots(list(range(n)), [a for a, _ in slots[m][:n]], [b for _, b in slots[m][:n]])
                      for m in models}
            seq.look(data_n, n, j == len(plan) - 1)
        return seq

    def today(slots, scale, n=10):
        """The rule before: unpaired Mann-Whitney/Hodges-Lehmann, one look at 10 processes a side, Holm at alpha
        0.05 on 'ratio <= 1.05', a model with process CV over 10 % unstable; no run-level test."""
        names, ps, noisy = [], [], []
        for m in models:
            a = np.log([x for x, _ in slots[m][:n]])
            b = np.log([y * scale.get(m, 1.0) for _, y in slots[m][:n]])
            names.append(m)
            ps.append(p_greater(a, b, math.log1p(0.05)))
            noisy.append(max(robust_cv(np.exp(a)), robust_cv(np.exp(b))) > 0.10)
        rej = holm(ps, 0.05)
        return {m for m, r, z in zip(names, rej, noisy) if r and not z}

    rules = {"before (unpaired MW, interval > 1.05, 10/side)": None,
             "interval > 1.05, paired t, looks 6/13/20": ("interval", True, "t", 6, 3, 0.5),
             "ratio > 1 + estimate >= 1.05, unpaired Welch, looks 6/13/20": ("estimate", False, "t", 6, 3, 0.5),
             "ratio > 1 + estimate >= 1.05, paired t, looks 6/13/20": ("estimate", True, "t", 6, 3, 0.5),
             "interval > 1.05, paired signed-rank, looks 8/14/20": ("interval", True, "rank", 8, 3, 0.5),
             "ratio > 1 + estimate >= 1.05, unpaired rank-sum, looks 8/14/20": ("estimate", False, "rank", 8, 3, 0.5),
             "ratio > 1 + estimate >= 1.05, paired signed-rank, looks 8/14/20":
                 ("estimate", True, "rank", 8, 3, 0.5),
             "ratio > 1 + estimate >= 1.05, paired signed-rank, looks 8/20, run level 1/5 of alpha (shipped)":
                 ("estimate", True, "rank", 8, 2, 0.2)}
    if only:
        rules = {k: v for k, v in rules.items() if any(o in k for o in only)}
    report = {"sessions": sessions, "models": len(models), "quiet_models": len(quiet), "looks": looks,
              "runs": len(data), "rules": {}}
    for label, how in rules.items():
        rng = np.random.default_rng(seed)  # every rule judges the same sessions
        t = {"null_red": 0, "all10_caught_run": 0, "all10_caught_any": 0, "one10_caught": 0, "one10_runs": 0,
             "one10_noisy_red": 0, "one10_noisy_runs": 0, "slots_used": []}
        for s in range(sessions):
            slots = draw(cap)
            one = models[s % len(models)]
            for scen, scale in (("null", {}), ("all10", dict.fromkeys(models, 1.1)), ("one10", {one: 1.10})):
                if how is None:
                    red = today(slots, scale)
                    run_red, is_red = False, bool(red)
                    cv_one = max(robust_cv([a for a, _ in slots[one][:10]]), robust_cv([b for _, b in slots[one][:10]]))
                else:
                    seq = sequential(slots, scale, *how)
                    red = {m for m, v in seq.verdict.items() if v == "regression"}
                    run_red, is_red = seq.run == "regression", seq.red
                    t["slots_used"].append(seq.taken[-1])
                    cv_one = seq.noisy.get(one, 0.0)
                if scen == "null":
                    t["null_red"] += is_red
                elif scen == "all10":
                    t["all10_caught_run"] += run_red
                    t["all10_caught_any"] += is_red
                elif cv_one <= 0.10:  # quiet as this session measured it (the rule's own gate)
                    t["one10_runs"] += 1
                    t["one10_caught"] += one in red
                else:
                    t["one10_noisy_runs"] += 1
                    t["one10_noisy_red"] += one in red
        used = sorted(t.pop("slots_used")) or [10]
        t["processes_per_side_median"] = used[len(used) // 2]
        t["null_red_upper95"] = clopper_pearson_upper(t["null_red"], sessions)
        report["rules"][label] = t
    return report


def ab_rules(args) -> int:
    """Pairing's effect and the decision rules, measured on the real interleaved runs of DIR (`runs`)."""
    data, _ = _load_runs(args.dir)
    widths = _pairing_widths(data)
    sim = _simulate_rules(data, args.sessions, args.seed, only=args.only or ())
    report = {"pairing": widths, "rules": sim}
    (Path(args.dir) / "ab-rules.json").write_text(json.dumps(report, indent=1))
    print(f"{len(data)} runs: pairing (paired t on slot log ratios vs Welch on the same process medians, "
          f"{widths['pairs']} (run, model) with >= 4 slots): 95 % interval width x{widths['width_ratio_median']:.2f} "
          f"median (quartiles x{widths['width_ratio_q25']:.2f}-x{widths['width_ratio_q75']:.2f}), narrower in "
          f"{widths['narrower_share']:.0%}")
    n = sim["sessions"]
    print(f"rules on {n} resampled sessions ({sim['models']} models, {sim['quiet_models']} with process CV <= 10 %; "
          f"looks at {sim['looks']} processes a side):")
    for label, t in sim["rules"].items():
        print(f"  {label}: null red {t['null_red']}/{n} (upper95 {t['null_red_upper95']:.1%}); +10 % all caught "
              f"by run level {t['all10_caught_run']}/{n}, by any {t['all10_caught_any']}/{n}; +10 % one model, "
              f"CV <= 10 % {t['one10_caught']}/{t['one10_runs']}; noisier red {t['one10_noisy_red']}/"
              f"{t['one10_noisy_runs']}; processes/side median {t['processes_per_side_median']}")
    return 0


def ab_soak(args) -> int:
    """Real `edgecheck ab` sessions on this machine (the same code as the command: abrun.ab_session). The null is
    BASE's artifacts on both sides; each session's own measurements are also judged with B's process medians
    x1.10 everywhere and x1.10 on one model (each model in turn), as the statistics see them, all scenarios
    jointly: the session measures further while any scenario is open, so every scenario sees the looks it
    needs. ``--head DIR``: a real HEAD (e.g. the ~10 %-more-work variant), judged as it is."""
    sys.path.insert(0, str(REPO))
    from edgecheck.abrun import ab_session
    from edgecheck.judge.ab_stats import UNSTABLE
    from edgecheck.measure import ab
    from edgecheck.measure.devices import select
    from edgecheck.measure.recorder import MeasureContext, TimingOptions
    from edgecheck.stats import robust_cv

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = ab.pair(ab.models_of(args.base, "BASE"), ab.models_of(args.head or args.base, "HEAD"))
    if args.models:
        keep = set(args.models.split(","))
        pairs = [p for p in pairs if p[0].name in keep]
    names = [p[0].name for p in pairs]
    device = select(["cpu"]).devices[0]
    rows = []
    for i in range(args.sessions):
        one = names[i % len(names)]
        scales = {} if args.head else {"all10": dict.fromkeys(names, 1.1), "one10": {one: 1.10}}
        t0 = time.time()
        with MeasureContext(TimingOptions(processes=args.processes, rounds=args.rounds),
                            progress=lambda s: print(s, file=sys.stderr)) as ctx:
            got, seqs = ab_session(pairs, device, ctx, args.processes, (), args.max_seconds, scales)
        secs = round(time.time() - t0, 1)
        cv = {n: max(robust_cv([p.median for p in e.latency.processes]) for e in (a, b))
              for n, a, b in ((a.model.name, a, b) for a, b in zip(got.base.ok_entries(), got.head.ok_entries()))}
        row = {"session": i, "seconds": secs, "processes_per_side": [lk.processes for lk in got.looks],
               "stopped": got.stopped, "real": {"red": seqs[""].red, "run": seqs[""].run,
                                                "verdicts": seqs[""].verdict}}
        if not args.head:
            row["all10_run_caught"] = seqs["all10"].run == "regression"
            row["one10"] = {"model": one, "cv": cv.get(one), "verdict": seqs["one10"].verdict[one],
                            "red_elsewhere": [m for m, v in seqs["one10"].verdict.items()
                                              if v == "regression" and m != one]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    n = len(rows)
    secs = sorted(r["seconds"] for r in rows)
    report = {"sessions": n, "rows": rows, "head": args.head, "base": args.base}
    print(f"{n} real edgecheck ab sessions of {len(names)} models on this cpu (cap {args.processes} a side"
          f"{f', {args.max_seconds:g} s' if args.max_seconds else ''}):")
    if args.head:
        red = sum(r["real"]["red"] for r in rows)
        print(f"  BASE {args.base} vs HEAD {args.head}: red {red}/{n}; run level caught "
              f"{sum(r['real']['run'] == 'regression' for r in rows)}/{n}")
    else:
        null_red = sum(r["real"]["red"] for r in rows)
        upper = clopper_pearson_upper(null_red, n)
        quiet = [r for r in rows if r["one10"]["cv"] is not None and r["one10"]["cv"] <= 0.10]
        noisy = [r for r in rows if r not in quiet]
        report.update(null_red=null_red, null_red_upper95=upper,
                      all10_caught=sum(r["all10_run_caught"] for r in rows),
                      one10_quiet_caught=sum(r["one10"]["verdict"] == "regression" for r in quiet),
                      one10_quiet=len(quiet),
                      one10_noisy_red=sum(r["one10"]["verdict"] == "regression" for r in noisy),
                      one10_noisy_unstable=sum(r["one10"]["verdict"] == UNSTABLE for r in noisy),
                      one10_noisy=len(noisy))
        print(f"  identical sides red: {null_red}/{n} (wanted at most 1 in 20, goal 0; 95 % Clopper-Pearson upper "
              f"bound {upper:.1%})")
        print(f"  +10 % everywhere caught by the run level: {report['all10_caught']}/{n} (wanted >= 95 %)")
        print(f"  +10 % on one model (process CV <= 10 %) caught: {report['one10_quiet_caught']}/{len(quiet)} "
              f"(wanted >= 80 %); noisier models red {report['one10_noisy_red']}/{len(noisy)} (wanted 0), "
              f"unstable {report['one10_noisy_unstable']}")
    plain = f" = {secs[len(secs) // 2] / args.plain_seconds:.1f}x one plain run ({args.plain_seconds:g} s)" \
        if args.plain_seconds else ""
    print(f"  session seconds: median {secs[len(secs) // 2]:.0f}{plain} (range {secs[0]:.0f}-{secs[-1]:.0f}; "
          "wanted <= 3x)")
    (out / "ab-soak.json").write_text(json.dumps(report, indent=1))
    return 0


def interleaved(args) -> int:
    """Within each session, its even processes against its odd ones: what an A/B run sees (drift between
    sessions cancels)."""
    data, models = _load_runs(args.dir)
    pairs = [(_half(r, 0), _half(r, 1)) for r in data]
    report = {**_score(pairs, models, ab=True), "runs": len(data)}
    (Path(args.dir) / "interleaved-soak.json").write_text(json.dumps(report, indent=1))
    _print_score(report, f"{len(data)} sessions, even processes against odd (A/B within a session)")
    return 0


def history(args) -> int:
    """Wall clock against a history: each session from the (k+1)-th on compared with the k sessions before it
    (their spread is the measured drift), as it is and slowed +25 % everywhere. Run on a quiet machine: the
    figures are the machine's."""
    from edgecheck.judge.compare import compare_runs

    data, models = _load_runs(args.dir)
    k = args.history
    if len(data) < k + 1:
        print(f"need at least {k + 1} runs in {args.dir}, found {len(data)}")
        return 2
    tally = {"sessions": 0, "unchanged_failed": 0, "slow25_caught": 0, "slow10_caught": 0}
    sds, shifts = [], []
    for i in range(k, len(data)):
        hist, now = data[i - k:i], data[i]
        got = compare_runs(hist, now, force=True)
        d = got.drift["devices"]["cpu"]
        sds.append(d["sd_pct"])
        shifts.append(d["run_shift_pct"])
        tally["sessions"] += 1
        tally["unchanged_failed"] += got.has_regression
        tally["slow25_caught"] += compare_runs(hist, _scaled(now, 1.25), force=True).has_regression
        tally["slow10_caught"] += compare_runs(hist, _scaled(now, 1.10), force=True).has_regression
    n = tally["sessions"]
    report = {**tally, "history": k, "drift_sd_pct": sds, "run_shift_pct": shifts,
              "unchanged_failing": tally["unchanged_failed"] / n,
              "unchanged_failing_upper95": clopper_pearson_upper(tally["unchanged_failed"], n),
              "slow25_caught_share": tally["slow25_caught"] / n, "slow10_caught_share": tally["slow10_caught"] / n}
    (Path(args.dir) / "history-soak.json").write_text(json.dumps(report, indent=1))
    print(f"{n} sessions, each against the {k} before it (wall clock with history):")
    print(f"  measured drift (sd of the whole-run shift over {k} runs): median {statistics.median(sds):.1f} % "
          f"(range {min(sds):.1f}-{max(sds):.1f} %); this session's shift {min(shifts):+.1f} % to {max(shifts):+.1f} %")
    print(f"  unchanged sessions that fail: {tally['unchanged_failed']}/{n} = {report['unchanged_failing']:.1%} "
          f"(95 % upper bound {report['unchanged_failing_upper95']:.1%}; wanted <= 5 %)")
    print(f"  +25 % everywhere caught: {report['slow25_caught_share']:.0%} (wanted >= 95 %); "
          f"+10 %: {report['slow10_caught_share']:.0%}")
    return 0


def instructions(args) -> int:
    """The instruction-count gate in real separate pytest sessions: ``--sessions`` default-grid sessions with
    --count-instructions, then ``--changed`` more with XNNPACK off (the same model files: a real change of what
    the CPU executes). Every ordered pair of unchanged sessions must compare with no instruction regression;
    every (unchanged baseline, XNNPACK-off run) pair must be caught. With ``--widen PCT`` (default 3, 0 for
    none), ``--changed`` more sessions measure a variant of the grid built with ``edgecheck build --widen PCT``
    (every model's first hidden layer widened so its MACs grow by about PCT %, same architecture names): each
    (unchanged, variant) pair, compared by architecture name, must be caught too."""
    from edgecheck.judge.compare import REGRESSION, compare_runs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    py = args.python or sys.executable
    plan = [("same", i) for i in range(args.sessions)] + [("noxnnpack", i) for i in range(args.changed)]
    variant = Path(args.variant_artifacts) if args.variant_artifacts else out / f"widened-{args.widen:g}-artifacts"
    if args.widen:
        plan += [("widened", i) for i in range(args.changed)]
        if not (variant / "manifest.json").exists():  # the real build pipeline, trained and quantized as ever
            t0 = time.time()
            subprocess.run([py, "-m", "edgecheck", "build", "--grid", args.grid, "--dataset", args.dataset,
                            "--widen", f"{args.widen:g}", "--out", str(variant)], cwd=REPO, check=True)
            print(json.dumps({"variant": str(variant), "widen": args.widen, "build_seconds": round(time.time() - t0)}),
                  flush=True)
    for kind, i in plan:
        results = out / f"{kind}-{i:02d}.json"
        if results.exists() and not args.again:
            continue
        env = {**os.environ, **({"EDGECHECK_WORKER_NO_XNNPACK": "1"} if kind == "noxnnpack" else {})}
        extra = list(args.pytest_args)
        if kind == "widened":  # the variant in place of whatever artifacts the unchanged sessions measure
            extra = [a for k, a in enumerate(extra) if a != "--artifacts" and (k == 0 or extra[k - 1] != "--artifacts")
                     and not a.startswith("--artifacts=")] + ["--artifacts", str(variant)]
        t0 = time.time()
        proc = subprocess.run([py, "-m", "pytest", "-p", "no:cacheprovider", "benchmarks/test_inference.py",
                               "--device", "cpu", "--count-instructions", "--results", str(results), "--report",
                               "none", "--processes", "2", "--rounds", "2", *extra], cwd=REPO,
                              capture_output=True, text=True, env=env)
        (out / f"{kind}-{i:02d}.log").write_text(proc.stdout[-20000:] + proc.stderr[-5000:])
        print(json.dumps({"session": f"{kind}-{i:02d}", "exit": proc.returncode,
                          "seconds": round(time.time() - t0, 1)}), flush=True)
    sys.path.insert(0, str(REPO))
    from edgecheck.results import load

    same = [load(p) for p in sorted(out.glob("same-*.json"))]
    off = [load(p) for p in sorted(out.glob("noxnnpack-*.json"))]
    wide = [load(p) for p in sorted(out.glob("widened-*.json"))] if args.widen else []
    counts: dict[str, list[float]] = {}
    cost = []
    for r in same:
        for e in r.entries:
            if e.instructions is not None and e.instructions.per_invoke:
                counts.setdefault(e.model.name, []).append(e.instructions.per_invoke)
        secs = {e.instructions.seconds for e in r.entries if e.instructions is not None and e.instructions.seconds}
        cost += sorted(secs)
    spread = max((max(v) - min(v)) / min(v) for v in counts.values())

    def inst_rows(got):
        return [row for row in got.rows if row.metric == "instructions"]

    pairs = list(itertools.permutations(range(len(same)), 2))
    failed = sum(any(row.outcome.status == "fail" for row in inst_rows(compare_runs(same[i], same[j], force=True)))
                 for i, j in pairs)
    decided = sum(len(inst_rows(compare_runs(same[i], same[j], force=True))) for i, j in pairs[:1])
    def caught_in(changed, by_name):
        """(pairs with a regression row, rows flagged, rows, each model's count ratio over the pairs)."""
        caught, flagged, total, ratios = 0, 0, 0, {}
        for b in same:
            for r in changed:
                rows = inst_rows(compare_runs(b, r, force=True, by_name=by_name))
                caught += any(row.verdict == REGRESSION for row in rows)
                flagged += sum(row.verdict == REGRESSION for row in rows)
                total += len(rows)
                for row in rows:
                    if row.ratio:
                        ratios.setdefault(row.model, []).append(row.ratio)
        return caught, flagged, total, ratios

    caught, rows_flagged, rows_all, _ = caught_in(off, False)
    w_caught, w_flagged, w_rows, w_ratios = caught_in(wide, True)
    report = {"sessions": len(same), "changed_sessions": len(off), "unchanged_pairs": len(pairs),
              "unchanged_pairs_failed": failed, "instruction_rows_per_pair": decided,
              "largest_relative_spread_across_sessions": spread, "models": len(counts),
              "changed_pairs": len(same) * len(off), "changed_pairs_caught": caught,
              "changed_rows_flagged": rows_flagged, "changed_rows": rows_all, "count_seconds": cost,
              "widened": {"percent": args.widen, "artifacts": str(variant), "sessions": len(wide),
                          "pairs": len(same) * len(wide), "pairs_caught": w_caught, "rows_flagged": w_flagged,
                          "rows": w_rows, "count_ratio_by_model": {m: [min(v), max(v)] for m, v in w_ratios.items()}}
              if args.widen else None}
    (out / "instructions-soak.json").write_text(json.dumps(report, indent=1))
    print(f"instruction counts: {len(same)} sessions of {len(counts)} models; largest spread of a model's count "
          f"across sessions {spread:.4%}")
    print(f"  unchanged ordered pairs that fail: {failed}/{len(pairs)} (wanted 0)")
    print(f"  XNNPACK off caught: {caught}/{len(same) * len(off)} pairs; {rows_flagged}/{rows_all} rows a "
          "regression")
    if args.widen:
        growth = sorted(r for v in w_ratios.values() for r in v)
        print(f"  +{args.widen:g} % MACs variant caught: {w_caught}/{len(same) * len(wide)} pairs; "
              f"{w_flagged}/{w_rows} rows a regression"
              + (f"; count ratios {growth[0]:.4f}-{growth[-1]:.4f}" if growth else ""))
    if cost:
        print(f"  counting cost per session (every model): median {statistics.median(cost):.0f} s "
              f"(range {min(cost):.0f}-{max(cost):.0f} s)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verdicts")
    v.add_argument("--runs", type=int, default=10)
    v.add_argument("--busy", action="store_true", help="keep one core busy (yes > /dev/null)")
    v.add_argument("--out", default="/tmp/edgecheck-soak-verdicts")
    v.add_argument("--keep", action="store_true", help="keep each clone's .venv")
    v.set_defaults(func=verdicts)
    r = sub.add_parser("runs")
    r.add_argument("--runs", type=int, default=20)
    r.add_argument("--busy", action="store_true")
    r.add_argument("--out", required=True)
    r.add_argument("--python", default=None)
    r.add_argument("pytest_args", nargs="*")
    r.set_defaults(func=runs)
    c = sub.add_parser("compare")
    c.add_argument("dir")
    c.set_defaults(func=compare_sessions)
    i = sub.add_parser("interleaved")
    i.add_argument("dir")
    i.set_defaults(func=interleaved)
    ab_ = sub.add_parser("ab", help="real edgecheck ab sessions: null, +10 %% all, +10 %% one model; or --head DIR")
    ab_.add_argument("--base", default=str(REPO / ".edgecheck" / "artifacts"), help="BASE artifacts folder")
    ab_.add_argument("--head", default=None, help="a real HEAD artifacts folder (default: BASE on both sides)")
    ab_.add_argument("--sessions", type=int, default=20)
    ab_.add_argument("--processes", type=int, default=20, help="the cap per side")
    ab_.add_argument("--rounds", type=int, default=5)
    ab_.add_argument("--max-seconds", type=float, default=None)
    ab_.add_argument("--models", default=None, help="comma-separated subset of the models (a quick check)")
    ab_.add_argument("--plain-seconds", type=float, default=None, help="one plain run's seconds, for the ratio")
    ab_.add_argument("--out", default="/tmp/edgecheck-soak-ab")
    ab_.set_defaults(func=ab_soak)
    ar = sub.add_parser("ab-rules", help="pairing's effect and the A/B decision rules on the real runs of DIR")
    ar.add_argument("dir")
    ar.add_argument("--sessions", type=int, default=200)
    ar.add_argument("--seed", type=int, default=0)
    ar.add_argument("--only", action="append", help="rules whose label contains this (repeatable)")
    ar.set_defaults(func=ab_rules)
    h = sub.add_parser("history")
    h.add_argument("dir", help="a folder of run-*.json from `runs`")
    h.add_argument("--history", type=int, default=5)
    h.set_defaults(func=history)
    n = sub.add_parser("instructions")
    n.add_argument("--sessions", type=int, default=10)
    n.add_argument("--changed", type=int, default=1, help="sessions with XNNPACK off, and of the widened variant")
    n.add_argument("--widen", type=float, default=3.0, help="the variant's MACs growth in %% (0: no variant)")
    n.add_argument("--variant-artifacts", default=None, help="the variant, built already (edgecheck build --widen)")
    n.add_argument("--grid", default="default", help="the grid the variant is built from (the sessions' grid)")
    n.add_argument("--dataset", default="collar")
    n.add_argument("--out", required=True)
    n.add_argument("--python", default=None)
    n.add_argument("--again", action="store_true", help="measure sessions whose results exist again")
    n.add_argument("pytest_args", nargs="*")
    n.set_defaults(func=instructions)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
