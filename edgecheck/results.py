"""The results JSON of a run: written atomically after every model, read back for
``--resume``, comparison and reports.

One file per run; each entry is one (model, device) pair with its raw samples,
statistics and provenance. A crash mid-run keeps every finished entry.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EdgecheckError
from .files import atomic_write_json

RESULTS_SCHEMA = "edgecheck.results/1"


def entry_key(entry: dict) -> str:
    """A (model, device configuration) pair: what --resume matches on."""
    return f"{entry['model']['name']}@{entry['model']['sha256'][:12]}|{entry['device']['key']}"


@dataclass
class ResultsFile:
    path: Path
    data: dict = field(default_factory=dict)

    @classmethod
    def start(cls, path: str | Path, header: dict, resume: bool = False) -> "ResultsFile":
        """A new run's file; with ``resume`` the finished entries of an existing file are kept."""
        path = Path(path)
        entries: list[dict] = []
        if resume and path.exists():
            old = load(path)
            entries = [e for e in old["entries"] if e.get("status") == "ok"]
        rf = cls(path, {"schema": RESULTS_SCHEMA, "created_utc": _now(), **header, "entries": entries})
        rf.save()
        return rf

    def done(self, key: str) -> dict | None:
        for e in self.data["entries"]:
            if entry_key(e) == key and e.get("status") == "ok":
                return e
        return None

    def add(self, entry: dict) -> None:
        key = entry_key(entry)
        self.data["entries"] = [e for e in self.data["entries"] if entry_key(e) != key] + [entry]
        self.save()

    def update(self, **fields) -> None:
        self.data.update(fields)
        self.save()

    def save(self) -> None:
        self.data["updated_utc"] = _now()
        atomic_write_json(self.path, self.data)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def load(path: str | Path) -> dict:
    """Read and check a results file; a cut-off or foreign file gets a clear error."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise EdgecheckError(f"{path}: cannot read results file ({e.strerror or e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise EdgecheckError(f"{path}: not valid JSON, perhaps cut off mid-write ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != RESULTS_SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise EdgecheckError(f"{path}: schema is {found!r}, this edgecheck reads {RESULTS_SCHEMA!r}")
    validate(data, str(path))
    return data


SCHEMA_FILE = Path(__file__).with_name("results.schema.json")


def validate(data: dict, where: str) -> None:
    """Check ``data`` against the packaged JSON Schema; the error names the file and the field."""
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
    if err is not None:
        at = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise EdgecheckError(f"{where}: not a valid results file at {at}: {err.message}")


def merge(runs: list[dict], names: list[str]) -> dict:
    """One results file from several runs (boards): entries of later runs replace earlier ones
    for the same (model, device configuration); each run's header is kept under ``merged_from``."""
    if not runs:
        raise EdgecheckError("merge: no results given")
    base = runs[0]
    datasets = {((r.get("artifacts") or {}).get("dataset") or {}).get("sha256") for r in runs}
    if len(datasets) > 1:
        raise EdgecheckError(f"merge: the runs used different datasets ({', '.join(map(str, datasets))})")
    entries: dict[str, dict] = {}
    for r in runs:
        for e in r["entries"]:
            entries[entry_key(e)] = e
    devices = {d["key"]: d for r in runs for d in (r.get("run") or {}).get("devices", [])}
    return {"schema": RESULTS_SCHEMA, "created_utc": _now(), "artifacts": base.get("artifacts"),
            "environment": base.get("environment"),
            "run": {**(base.get("run") or {}), "devices": list(devices.values())},
            "merged_from": [{"file": n, "environment": r.get("environment"), "run": r.get("run")}
                            for n, r in zip(names, runs)],
            "entries": list(entries.values())}
