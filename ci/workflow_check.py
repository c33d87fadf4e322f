"""Security properties of GitHub Actions workflows that drive self-hosted Coral boards.

GitHub advises against self-hosted runners on public repositories: a fork's pull
request can run code on them. An ``if:`` in the workflow is no protection, since
a pull request runs the workflow file as the fork wrote it. So the rules are:

- No workflow has a ``pull_request_target`` trigger (fork code with the
  repository's secrets).
- A workflow with any job that may run on a self-hosted runner is started only
  by events a fork cannot cause: ``push`` to named (protected) branches,
  ``schedule`` and ``workflow_dispatch``. Its board jobs name a GitHub
  environment (required reviewers, protected branches: set in the repository's
  settings) and have a timeout.
- A job "may run on a self-hosted runner" unless every label it can get is a
  GitHub-hosted one (ubuntu-*, windows-*, macos-*): a ``self-hosted`` or custom
  label, a runner ``group``, a ``${{ matrix.x }}`` whose values include any of
  those, or an expression this check cannot resolve; a job calling a reusable
  workflow of this repository inherits that workflow's jobs.
- Artifacts the boards measure are reused across runs, keyed by their build's inputs: a job that builds
  them (``ci/build-artifacts.sh``) restores them with ``actions/cache`` keyed by the output of a step
  running ``edgecheck build-key``, and builds only on a cache miss (training is not bit-identical
  across runner CPUs, so a rebuild would make every row of a board's baseline a "different model").
- Board jobs install the core (``pip install .``, on a lab host ``'.[farm]'``)
  and run pytest; never ``make`` (setup, bench, test) or another extra: the
  build stack (TensorFlow, librosa) has no place on a board. Scripts of this
  repository a board job runs are read and held to the same rule.

``python ci/workflow_check.py .github/workflows/*.yml`` prints the problems and
exits 1 when there are any.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

SAFE_TRIGGERS = ("push", "schedule", "workflow_dispatch")
_HOSTED = re.compile(r"^(ubuntu|windows|macos)-[A-Za-z0-9.\-]+$")
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_MATRIX = re.compile(r"^matrix\.([A-Za-z_][A-Za-z0-9_\-]*)$")
_BRANCH_GLOB = re.compile(r"[*?\[\]!+]")
_MAKE = re.compile(r"(^|[\s;&|(`])make(\s|$)")
_PIP_INSTALL = re.compile(r"pip3?\s+install\b([^\n;&|]*)")
_EXTRA = re.compile(r"\.\[([^\]]*)\]")
_SCRIPT = re.compile(r"(?:^|[\s;&|(])(?:bash\s+|sh\s+|\./)?(ci/[A-Za-z0-9_.\-/]+\.(?:sh|py))")
_ALLOWED_EXTRAS = {"farm"}


def _load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def _triggers(wf: dict) -> dict:
    """Trigger name -> its configuration (None when it has none)."""
    on = wf.get("on", wf.get(True))  # PyYAML reads the bare key `on` as True
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on or {})


def _label_reason(label) -> str | None:
    """Why a runs-on label may be a self-hosted runner, or None for a GitHub-hosted label."""
    if not isinstance(label, str):
        return f"runs-on {label!r} is not a label"
    if _EXPR.search(label):
        return None  # resolved by the caller
    if label == "self-hosted":
        return "label 'self-hosted'"
    if not _HOSTED.match(label):
        return f"label {label!r} is not a GitHub-hosted runner"
    return None


def _matrix_values(job: dict, key: str) -> list | None:
    """Every value ``matrix.<key>`` can take, or None when the matrix is not literal."""
    matrix = (job.get("strategy") or {}).get("matrix")
    if not isinstance(matrix, dict):
        return None
    values = matrix.get(key)
    if isinstance(values, str):  # an expression (fromJSON(...)): unknown values
        return None
    found = list(values or [])
    for inc in matrix.get("include") or []:
        if isinstance(inc, dict) and key in inc:
            found.append(inc[key])
    return found or None


def _labels_reason(job: dict, runs_on) -> str | None:
    if isinstance(runs_on, dict):
        if runs_on.get("group"):
            return f"runner group {runs_on['group']!r} (groups hold self-hosted runners)"
        runs_on = runs_on.get("labels", [])
    labels = runs_on if isinstance(runs_on, list) else [runs_on]
    for label in labels:
        m = _EXPR.fullmatch(label.strip()) if isinstance(label, str) else None
        if m:
            mm = _MATRIX.match(m.group(1))
            values = _matrix_values(job, mm.group(1)) if mm else None
            if values is None:
                return f"runs-on {label!r} is an expression this check cannot resolve (treated as self-hosted)"
            for v in values:
                why = _labels_reason(job, v)
                if why:
                    return f"runs-on {label!r} can be {v!r}: {why}"
            continue
        if isinstance(label, str) and _EXPR.search(label):
            return f"runs-on {label!r} is an expression this check cannot resolve (treated as self-hosted)"
        why = _label_reason(label)
        if why:
            return why
    return None


def self_hosted(job: dict, root: Path | None = None, seen: frozenset = frozenset()) -> str | None:
    """Why this job may run on a self-hosted runner, or None when it runs on GitHub-hosted runners only."""
    uses = job.get("uses")
    if isinstance(uses, str):  # a reusable workflow: its jobs decide
        if uses.startswith("./") and root is not None and uses not in seen:
            called = root / uses[2:]
            if called.is_file():
                for name, inner in (_load(called).get("jobs") or {}).items():
                    why = self_hosted(inner, root, seen | {uses})
                    if why:
                        return f"it calls {uses}, whose job {name!r} may run on a self-hosted runner ({why})"
                return None
        return f"it calls the reusable workflow {uses!r}, which this check cannot read (treated as self-hosted)"
    if "runs-on" not in job:
        return "it has no runs-on (treated as self-hosted)"
    return _labels_reason(job, job["runs-on"])


def _repo_root(path: Path) -> Path:
    """The repository a workflow file belongs to: the nearest folder above it that holds .github."""
    for parent in path.resolve().parents:
        if (parent / ".github").is_dir():
            return parent
    return path.resolve().parent


def _code(text: str) -> str:
    """Shell text without its comments (a script's own words about make are not a make)."""
    return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in text.splitlines())


def _unquoted(text: str) -> str:
    return re.sub(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'", '""', text)


def _install_problems(text: str, where: str) -> list[str]:
    out = []
    text = _code(text)
    if _MAKE.search(_unquoted(text)):
        out.append(f"{where} runs make (make setup/bench/test install or use the build stack); install the core "
                   "with pip install . and run pytest directly")
    for m in _PIP_INSTALL.finditer(text):
        for extras in _EXTRA.findall(m.group(1)):
            bad = {e.strip() for e in extras.split(",")} - _ALLOWED_EXTRAS
            if bad:
                out.append(f"{where} installs the extra(s) {', '.join(sorted(bad))}: a board gets the core "
                           "(pip install .; a labgrid lab host '.[farm]') and never the build stack")
        if re.search(r"\b(tensorflow|keras|librosa)\b", m.group(1)):
            out.append(f"{where} installs the build stack (TensorFlow, Keras or librosa) on a board")
    return out


def _board_job_problems(name: str, job: dict, root: Path) -> list[str]:
    out = []
    if "timeout-minutes" not in job:
        out.append(f"job {name!r} on a self-hosted runner has no timeout-minutes")
    if not job.get("environment"):
        out.append(f"job {name!r} on a self-hosted runner names no environment: a GitHub environment with "
                   "required reviewers guards workflow_dispatch (and deploys from protected branches only)")
    if "uses" in job:
        return out
    texts = [(f"job {name!r}", str(step.get("run", ""))) for step in job.get("steps") or [] if "run" in step]
    seen = set()
    for _, text in list(texts):
        for script in _SCRIPT.findall(text):
            f = root / script
            if script not in seen and f.is_file():
                seen.add(script)
                texts.append((f"job {name!r} (through {script})", f.read_text()))
    for where, text in texts:
        out += _install_problems(text, where)
    every = "\n".join(_unquoted(_code(t)) for _, t in texts)  # what runs, not what a message says
    if not _PIP_INSTALL.search(every):
        out.append(f"job {name!r} on a self-hosted runner installs nothing: run pip install . (the core) first")
    if "pytest" not in every:
        out.append(f"job {name!r} on a self-hosted runner never runs pytest")
    return out


def _build_cache_problems(name: str, job: dict) -> list[str]:
    """A job that builds the boards' artifacts restores them from a cache keyed by ``edgecheck build-key``."""
    steps = [s for s in job.get("steps") or [] if isinstance(s, dict)]
    builds = [s for s in steps if "ci/build-artifacts.sh" in str(s.get("run") or "")]
    if not builds:
        return []
    keyed = {str(s.get("id")) for s in steps if s.get("id") and "build-key" in str(s.get("run") or "")}
    caches = [s for s in steps if str(s.get("uses") or "").startswith("actions/cache@")
              and any(f"steps.{k}.outputs" in str((s.get("with") or {}).get("key") or "") for k in keyed)]
    if not caches:
        return [f"job {name!r} builds the boards' artifacts without reusing them: restore them with actions/cache "
                "keyed by the output of a step that runs `edgecheck build-key` (a rebuild on another runner CPU "
                "changes the bytes, and every baseline row becomes a different model)"]
    ids = {str(c.get("id")) for c in caches if c.get("id")}
    unguarded = [s for s in builds if not any(f"steps.{i}.outputs.cache-hit" in str(s.get("if") or "") for i in ids)]
    if unguarded:
        return [f"job {name!r} rebuilds the artifacts even when the cache has them: guard the build step with "
                "if: steps.<cache id>.outputs.cache-hit != 'true'"]
    return []


def problems(path: str | Path) -> list[str]:
    """Every rule this workflow file breaks (an empty list when it keeps them all)."""
    path = Path(path)
    wf = _load(path)
    root = _repo_root(path)
    out = []
    triggers = _triggers(wf)
    if "pull_request_target" in triggers:
        out.append("pull_request_target runs fork code with the repository's secrets")
    jobs = wf.get("jobs") or {}
    board = {name: why for name, job in jobs.items() if (why := self_hosted(job, root))}
    if not board:
        return out
    names = ", ".join(f"{n!r} ({why})" for n, why in board.items())
    for trigger in triggers:
        if trigger == "pull_request":
            out.append(f"trigger pull_request: a fork's pull request runs this workflow file as the fork wrote it, so "
                       f"no if: protects its jobs on self-hosted runners: {names}; board jobs belong in a workflow "
                       "started only by push to protected branches, schedule and workflow_dispatch")
        elif trigger not in SAFE_TRIGGERS and trigger != "pull_request_target":
            out.append(f"trigger {trigger}: a workflow with jobs on self-hosted runners ({names}) may be started only "
                       f"by {', '.join(SAFE_TRIGGERS)}")
    push = triggers.get("push", False)
    if push is not False:
        push = push or {}
        branches = push.get("branches") if isinstance(push, dict) else None
        if not branches:
            out.append("trigger push without branches: a push to any branch (by anyone with write access) would run "
                       "the board jobs; name the protected branches")
        else:
            wild = [b for b in branches if not isinstance(b, str) or _BRANCH_GLOB.search(b)]
            if wild:
                out.append(f"trigger push: branch patterns {wild} can match unprotected branches; name them")
        for key in ("branches-ignore", "tags", "tags-ignore"):
            if isinstance(push, dict) and key in push:
                out.append(f"trigger push: {key} lets more than the protected branches start the board jobs")
    for name in board:
        out += _board_job_problems(name, jobs[name], root)
    for name, job in jobs.items():
        if isinstance(job, dict):
            out += _build_cache_problems(name, job)
    return out


def main(argv: list[str]) -> int:
    bad = 0
    for path in argv or [str(p) for p in sorted(Path(".github/workflows").glob("*.y*ml"))]:
        for p in problems(path):
            print(f"{path}: {p}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
