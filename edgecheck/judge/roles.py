"""The two platforms the paper compares, and which device of a run plays each role.

A device's kind declares its role (``device.role`` in the results). A role is filled by its measured device
when the run has one, else by its twin. This module is the claims' role table: the role ids, and the roles
of the built-in kinds for results files written before devices recorded their role.
"""
from __future__ import annotations

from edgecheck.results import Row

TPU = "tpu"  # the Edge TPU's role
A53 = "a53"  # the Cortex-A53's role
ROLES = (TPU, A53)
# results written before the device record said its role (edgecheck.results/2 files of round 2)
LEGACY_ROLES = {"tpu": TPU, "tpu-sim": TPU, "a53": A53, "a53-sim": A53}
# the twin that answers for each platform when no run covers a model (``edgecheck recommend``)
TWIN_OF_ROLE = {TPU: "tpu-sim", A53: "a53-sim"}
# the measured kind that settles what a platform's twin leaves open (``judge.decide``)
MEASURED_OF_ROLE = {TPU: "tpu", A53: "a53"}


def role_of_device(device: str) -> str | None:
    """The role of a device named as a chart cell names it (a remote board's tpu@dev-a is its kind's)."""
    return LEGACY_ROLES.get(device.split("@")[0])


def role_of(r: Row) -> str | None:
    """The role a row's device plays: its kind's, or the built-in table's for older files."""
    return r.role if r.role is not None else LEGACY_ROLES.get(r.device)


def role_device(rows: list[Row], role: str) -> str | None:
    """The device that plays ``role`` in a run: a measured one first, else a simulated one (by name)."""
    names = sorted({(r.kind != "measured", r.device) for r in rows if role_of(r) == role})
    return names[0][1] if names else None


def role_rows(rows: list[Row], role: str) -> tuple[str | None, list[Row]]:
    """The rows of the device that plays ``role`` in the run (measured before simulated), by MACs."""
    n = role_device(rows, role)
    if n is None:
        return None, []
    return n, sorted([r for r in rows if r.device == n], key=lambda r: (r.macs, r.model))


def interval(r: Row, attr: str) -> tuple[float, float]:
    """(low, high) of a row's latency or energy: its interval where it has one (measured: across processes or
    windows; simulated: the twin's band), else the value itself (exact)."""
    v = getattr(r, attr)
    ci = r.latency_ci if attr == "latency_s" else r.energy_ci if attr == "energy_j" else None
    if ci is None:
        return v, v
    return min(ci[0], v), max(ci[1], v)


def ratio_interval(a: Row, b: Row, attr: str) -> tuple[float, float]:
    """(low, high) of a's figure over b's. Two rows of one twin share its constants: their bands move together,
    so the ends are paired (low with low, high with high); otherwise the intervals are independent."""
    va, vb = getattr(a, attr), getattr(b, attr)
    (alo, ahi), (blo, bhi) = interval(a, attr), interval(b, attr)
    if a.twin_band and b.twin_band and a.device == b.device:
        ratios = (alo / blo, va / vb, ahi / bhi)
        return min(ratios), max(ratios)
    return alo / bhi, ahi / blo


TOO_CLOSE_TO_CALL = "too close"


def winner(candidates: dict[str, Row], attr: str) -> str:
    """The device whose figure is lowest beyond doubt: its interval lies below every other's. With exact
    figures the lowest wins; when the intervals of the lowest two overlap it is too close to call."""
    ranked = sorted(candidates, key=lambda d: getattr(candidates[d], attr))
    best = ranked[0]
    if len(ranked) == 1:
        return best
    lo_hi = {d: interval(candidates[d], attr) for d in ranked}
    if all(lo_hi[best][1] < lo_hi[d][0] for d in ranked[1:]):
        return best
    if all(lo_hi[d][0] == lo_hi[d][1] for d in ranked):
        return best  # exact figures: equal values go to the first-ranked
    return TOO_CLOSE_TO_CALL
