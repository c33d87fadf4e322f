"""The two platforms the paper compares, and which device of a run plays each role.

A role is filled by its measured device when the run has one, else by its twin.
"""
from __future__ import annotations

from edgecheck.results import Row

TPU_ROLE = ("tpu", "tpu-sim")  # measured first
A53_ROLE = ("a53", "a53-sim")


def role_rows(rows: list[Row], names: tuple[str, ...]) -> tuple[str | None, list[Row]]:
    """The rows of the first device of a role present in the run (measured before simulated), by MACs."""
    for n in names:
        sel = [r for r in rows if r.device == n]
        if sel:
            return n, sorted(sel, key=lambda r: (r.macs, r.model))
    return None, []
