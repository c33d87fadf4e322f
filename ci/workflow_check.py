"""Security properties of a GitHub Actions workflow that drives self-hosted Coral boards.

GitHub advises against self-hosted runners for public repositories because a
fork's pull request can run code on them. A workflow passes when no job that
runs on a self-hosted runner can be started by a pull request, it has no
``pull_request_target`` trigger, and every self-hosted job has a timeout.
"""
from __future__ import annotations

from pathlib import Path


def _triggers(wf: dict) -> set[str]:
    on = wf.get("on", wf.get(True))  # PyYAML reads the bare key `on` as True
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return set(on)
    return set(on or {})


def _self_hosted(job: dict) -> bool:
    runs_on = job.get("runs-on")
    labels = runs_on if isinstance(runs_on, list) else [runs_on]
    if isinstance(runs_on, dict):
        labels = list(runs_on.get("labels", [])) + [runs_on.get("group", "")]
    return any(isinstance(x, str) and x == "self-hosted" for x in labels)


def _blocks_pull_requests(job: dict, jobs: dict, seen: set | None = None) -> bool:
    cond = str(job.get("if", "")).replace(" ", "")
    if "github.event_name!='pull_request'" in cond or "github.event_name!=\"pull_request\"" in cond:
        return True
    if "github.event.pull_request.head.repo.full_name==github.repository" in cond:
        return True
    seen = seen or set()
    needs = job.get("needs", [])
    for n in [needs] if isinstance(needs, str) else needs:  # skipped needs skip the job too (without always())
        if n in jobs and n not in seen and "always()" not in cond:
            seen.add(n)
            if _blocks_pull_requests(jobs[n], jobs, seen):
                return True
    return False


def problems(path: str | Path) -> list[str]:
    import yaml

    wf = yaml.safe_load(Path(path).read_text())
    out = []
    triggers = _triggers(wf)
    if "pull_request_target" in triggers:
        out.append("pull_request_target runs fork code with the repository's secrets")
    jobs = wf.get("jobs") or {}
    for name, job in jobs.items():
        if not _self_hosted(job):
            continue
        if "pull_request" in triggers and not _blocks_pull_requests(job, jobs):
            out.append(f"job {name!r} runs on a self-hosted runner and a pull request (from a fork) can start it")
        if "timeout-minutes" not in job:
            out.append(f"job {name!r} on a self-hosted runner has no timeout-minutes")
    return out
