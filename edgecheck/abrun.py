"""A sequential A/B session end to end, for ``edgecheck ab`` and ``pytest --ab BASE``: the measuring loop
(measure/ab.py) judged after each look by the judge's ``Sequence`` (judge/ab_stats.py), and a BASE given as a
git ref built into an artifacts folder first. Glue above the stages: measure and judge never import each other.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edgecheck.errors import EdgecheckError, one_line


def ab_session(pairs, device, ctx, cap: int, specs=(), max_seconds: float | None = None,
               scales: dict[str, dict[str, float]] | None = None, first: int | None = None):
    """One sequential A/B session: the measuring loop (measure/ab.py) judged by ab_stats' ``Sequence`` after each
    look. ``scales``: named scenarios of B's medians scaled as the statistics see them (the soak judges one real
    session's measurements under several jointly, measuring further while any is open); "" is the session as
    measured. Returns (the measurements, {scenario: Sequence})."""
    from edgecheck.judge import ab_stats
    from edgecheck.judge.compare import Thresholds
    from edgecheck.measure import ab

    th = Thresholds.from_baseline({}, list(specs))
    names = [p[0].name for p in pairs]
    plan = ab_stats.schedule(first or ab_stats.FIRST, cap)
    seqs = {label: ab_stats.Sequence(names, {n: th.for_model(n, "latency") for n in names}, th.alpha,
                                     ab_stats.LOOKS, th.unstable_cv, th.latency, scale)
            for label, scale in {"": {}, **(scales or {})}.items()}

    def judge(slots: dict, n: int, last: bool) -> list[str]:
        data = {m: ab_stats.ModelSlots(**v) for m, v in slots.items() if v["slots"]}
        need: list[str] = []
        for seq in seqs.values():
            if not seq.done:
                seq.look(data, n, last)
            need += [m for m in seq.to_measure() if m not in need]
        return [] if last else need

    got = ab.sequential(pairs, device, ctx, plan, judge, max_seconds)
    from edgecheck.measure.runtime import refuse_mismatch

    refuse_mismatch(got.base, got.head, "ab")  # one job shares one runtime; sides from different jobs may not
    for seq in seqs.values():
        seq.finish()
    return got, seqs


def resolve_base(value: str, cwd: str | Path = ".") -> tuple[str, str]:
    """``--ab BASE``: ("dir", folder) for an artifacts folder, ("ref", commit sha) for a git ref of the repository
    at ``cwd``; a usage error naming the option otherwise (checked at configure time, before anything runs)."""
    path = Path(value)
    if path.is_dir():
        if not (path / "manifest.json").is_file():
            raise EdgecheckError(f"--ab {one_line(value)[:80]}: a folder without manifest.json is not an artifacts "
                                 "folder (build one with `python -m edgecheck build --out DIR`)")
        return "dir", str(path)
    try:
        got = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{value}^{{commit}}"], cwd=cwd,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise EdgecheckError(f"--ab {one_line(value)[:80]}: not a folder, and git could not be asked: {e}") from None
    if got.returncode != 0 or not got.stdout.strip():
        raise EdgecheckError(f"--ab {one_line(value)[:80]}: neither an artifacts folder nor a git commit of the "
                             f"repository at {Path(cwd).resolve()}")
    return "ref", got.stdout.strip()


def build_ref(sha: str, grid: str, out_root: str | Path, *, dataset: str | None = None,
              build_cache: str | None = None, say=print, cwd: str | Path = ".") -> Path:
    """Build commit ``sha``'s artifacts of ``grid`` with its own code (a temporary ``git worktree``, removed
    after), into ``out_root/ab-base-<sha12>-<grid>``, reused when it is there; the shared build cache makes an
    unchanged model a cache hit."""
    out = Path(out_root).resolve() / f"ab-base-{sha[:12]}-{grid}"
    if (out / "manifest.json").is_file():
        return out
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True,
                         check=True).stdout.strip()
    tree = out.with_name(out.name + ".worktree")
    subprocess.run(["git", "-C", top, "worktree", "remove", "--force", str(tree)], capture_output=True)
    subprocess.run(["git", "-C", top, "worktree", "add", "--detach", str(tree), sha], capture_output=True,
                   check=True)
    try:
        cmd = [sys.executable, "-m", "edgecheck", "build", "--grid", grid, "--out", str(out)]
        cmd += ["--dataset", dataset] if dataset else []
        cmd += ["--build-cache", build_cache] if build_cache else []
        say(f"edgecheck: --ab: building {sha[:12]}'s artifacts in a temporary worktree: {' '.join(cmd[2:])}")
        env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL",
                                                                                              "3")}
        got = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        if got.returncode != 0:
            raise EdgecheckError(f"--ab: building {sha[:12]} failed (exit {got.returncode}): "
                                 f"{one_line(got.stderr.strip().splitlines()[-1] if got.stderr.strip() else '')}")
    finally:
        subprocess.run(["git", "-C", top, "worktree", "remove", "--force", str(tree)], capture_output=True)
    return out


def run(base: str | Path, head: str | Path, *, cap: int, rounds: int, specs=(), max_seconds=None,
        base_label: str, head_label: str, progress=None, device: str | None = None, what: str = "--ab: "):
    """BASE's and HEAD's models (artifacts folders or .tflite files) measured as ``edgecheck ab`` measures them,
    on ``device`` (default: this host's CPU); returns the RunComparison (its ``ab`` record holds the looks and the
    run-level test), the line of the run-level test, and the measurements (``got.base``, ``got.head``)."""
    from edgecheck.judge import ab_stats
    from edgecheck.measure import ab
    from edgecheck.measure.devices import select
    from edgecheck.measure.kinds.cpu import KIND as HOST_CPU
    from edgecheck.measure.recorder import MeasureContext, TimingOptions

    pairs = ab.pair(ab.models_of(base, "BASE"), ab.models_of(head, "HEAD"))
    device = device or HOST_CPU.name
    sel = select([device])
    if not sel.devices:
        raise EdgecheckError(f"{what}{device}: {next(iter(sel.skipped.values()), 'not available here')}")
    with MeasureContext(TimingOptions(processes=cap, rounds=rounds, min_processes=cap), progress=progress) as ctx:
        got, seqs = ab_session(pairs, sel.devices[0], ctx, cap, specs, max_seconds)
    result = ab_stats.ab_comparison(got.base, got.head, specs, seqs[""], got.looks, got.stopped,
                                    base_label=base_label, head_label=head_label)
    return result, ab_stats.run_line(result.ab, seqs[""]), got
