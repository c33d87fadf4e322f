"""The runtime a measurement ran on, as its results record it, and the refusal to compare two that differ.

Both sides of a comparison must run the same libedgetpu build (std or max: "max" runs a USB Edge TPU at twice
the clock) and the same interpreter, or the comparison measures the runtime instead of the models. Where the
check belongs: on the two runs being compared, from what each recorded, because that is the only place both
sides' runtimes are known. ``edgecheck ab`` checks its two sides after measuring (one worker job shares one
runtime, so this fires only when the sides were measured by different jobs or hosts, e.g. a package upgrade
between the jobs of a long A/B); ``edgecheck compare`` checks a run against its baseline (a baseline saved with
libedgetpu1-max and a run with -std). The build's own toolchain (TensorFlow, the Edge TPU compiler) is not a
runtime: a pull request may change it, and the build key already tells such builds apart.
"""
from __future__ import annotations

from pathlib import Path

from edgecheck.errors import EdgecheckError
from edgecheck.measure.worker import libedgetpu_from_status
from edgecheck.results import Run, load, load_history

__all__ = ["libedgetpu_from_status", "runtime_of", "mismatch", "refuse_mismatch", "refuse_libedgetpu_mismatch"]

RUNTIME_PACKAGES = ("ai-edge-litert", "tflite-runtime", "pycoral")  # the interpreters a run's header records


def _lib(rec: dict | None) -> str | None:
    """'max 16.0' from the worker's record (flavour) or the tpu kind's (variant), both read from dpkg's status."""
    if not rec:
        return None
    flavour = rec.get("flavour") or rec.get("variant")
    if not flavour:
        return None
    return f"{flavour} {rec.get('version') or '(version not recorded)'}"


def runtime_of(run: Run, everything: bool = True) -> dict[str, str]:
    """What ran ``run``'s measurements, as it recorded them: libedgetpu's flavour and version per device (the
    tpu kind's metadata, or the worker's host record from the board's dpkg status); with ``everything``, the
    interpreter per device and the interpreter packages and edgecheck version of the run's header too. A fact a
    run did not record is left out, never guessed."""
    facts: dict[str, str] = {}
    for d in run.devices:
        meta = d.get("metadata") or {}
        if (lib := _lib(meta.get("runtime"))) is not None:
            facts[f"libedgetpu on {d['name']}"] = lib
        interp = meta.get("interpreter")
        if everything and isinstance(interp, dict) and interp.get("distribution"):
            facts[f"interpreter on {d['name']}"] = f"{interp['distribution']} {interp.get('version')}"
    for e in run.entries:
        if e.kind != "measured":
            continue
        worker = e.worker or {}
        if (lib := _lib((worker.get("host") or {}).get("libedgetpu"))) is not None:
            facts.setdefault(f"libedgetpu on {e.device.name}", lib)
        if everything and worker.get("interpreter"):
            facts.setdefault(f"interpreter on {e.device.name}", str(worker["interpreter"]))
    if everything:
        versions = (run.header.get("environment") or {}).get("versions") or {}
        for name in ("edgecheck", *RUNTIME_PACKAGES):
            if versions.get(name):
                facts[name] = str(versions[name])
    return facts


def mismatch(base: Run, head: Run, labels: tuple[str, str] = ("BASE", "HEAD"), everything: bool = True) -> str | None:
    """The first runtime fact both runs recorded with different values, as one phrase, or None."""
    a, b = runtime_of(base, everything), runtime_of(head, everything)
    for key in sorted(set(a) & set(b), key=lambda k: (not k.startswith("libedgetpu"), k)):
        if a[key] != b[key]:
            return f"{key} differs: {labels[0]} {a[key]}, {labels[1]} {b[key]}"
    return None


def refuse_mismatch(base: Run, head: Run, what: str, labels: tuple[str, str] = ("BASE", "HEAD"),
                    everything: bool = True) -> None:
    """A one-line usage error (exit 2) when the two runs ran different runtimes."""
    why = mismatch(base, head, labels, everything)
    if why:
        raise EdgecheckError(f"{what}: refused, both sides must run the same runtime: {why}")


def refuse_libedgetpu_mismatch(baseline: str | Path, run: str | Path) -> None:
    """``edgecheck compare``: a baseline (its newest run) and a run recorded with different libedgetpu builds are
    refused. Only libedgetpu: a baseline saved by an older edgecheck or interpreter is still a baseline (the
    comparison's fingerprint refuses a device's changed interpreter). Files that do not load are left to the
    comparison, which names what is wrong with them."""
    try:
        base, now = load_history(baseline)[-1], load(run)
    except (EdgecheckError, OSError):
        return
    refuse_mismatch(base, now, "compare (use --force to compare anyway)", ("baseline", "run"), everything=False)
