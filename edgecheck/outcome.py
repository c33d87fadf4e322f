"""The three outcomes every check has, and their reasons: one vocabulary everywhere.

| outcome      | reasons                                        | in pytest                 | exit status |
|--------------|------------------------------------------------|---------------------------|-------------|
| pass         | -                                              | passed                    | 0           |
| fail         | contradicted, regression, missing              | failed                    | 1           |
| inconclusive | not-testable, unstable, too-close-to-call      | skipped: "inconclusive: " | 0 (counted) |

A red run means something real: a claim contradicted by conclusive evidence, a
regression, or a measurement that went missing. Noise, a grid that cannot test
a claim, or a host the twins do not fit give "inconclusive", and every
inconclusive outcome names the statistic, its value and the limit it was held
against. The terminal, the results JSON, ``edgecheck claims``, ``compare`` and
the HTML report all read this one object.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
CONTRADICTED, REGRESSION, MISSING = "contradicted", "regression", "missing"
NOT_TESTABLE, UNSTABLE, TOO_CLOSE = "not-testable", "unstable", "too-close-to-call"
REASONS = {PASS: (None,), FAIL: (CONTRADICTED, REGRESSION, MISSING), INCONCLUSIVE: (NOT_TESTABLE, UNSTABLE, TOO_CLOSE)}


def fmt_value(v) -> str:
    """A statistic's value as people read it: 3 significant digits, intervals as [lo, hi]."""
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.3g}"
    return str(v)


@dataclass(frozen=True)
class Outcome:
    """The outcome of one check; refuses combinations the table above does not allow."""

    status: str
    reason: str | None = None
    statistic: str | None = None
    value: object = None
    limit: object = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.status not in REASONS:
            raise ValueError(f"outcome status must be pass, fail or inconclusive, got {self.status!r}")
        if self.reason not in REASONS[self.status]:
            raise ValueError(f"a {self.status} outcome cannot have reason {self.reason!r}")
        if self.status == INCONCLUSIVE and not self.statistic:
            raise ValueError("an inconclusive outcome names the statistic, its value and the limit")

    @classmethod
    def passed(cls, detail: str = "", statistic: str | None = None, value=None, limit=None) -> Outcome:
        return cls(PASS, None, statistic, value, limit, detail)

    @classmethod
    def failed(cls, reason: str, detail: str = "", statistic: str | None = None, value=None, limit=None) -> Outcome:
        return cls(FAIL, reason, statistic, value, limit, detail)

    @classmethod
    def inconclusive(cls, reason: str, statistic: str, value, limit, detail: str = "") -> Outcome:
        return cls(INCONCLUSIVE, reason, statistic, value, limit, detail)

    @property
    def measured_text(self) -> str:
        """``<statistic> = <value>, limit <limit>``."""
        if not self.statistic:
            return ""
        return f"{self.statistic} = {fmt_value(self.value)}, limit {fmt_value(self.limit)}"

    @property
    def summary(self) -> str:
        """One line: ``inconclusive: not-testable: largest MACs = 2.29e+05, limit 1e+06 (needs ...)``."""
        head = self.status if self.reason is None else f"{self.status}: {self.reason}"
        parts = [head] + ([self.measured_text] if self.measured_text else [])
        text = ": ".join(parts)
        return f"{text} ({self.detail})" if self.detail else text

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_json(cls, data: dict) -> Outcome:
        return cls(**{k: data.get(k) for k in ("status", "reason", "statistic", "value", "limit")},
                   detail=data.get("detail", ""))


def exit_status(outcomes: list[Outcome]) -> int:
    """1 when any outcome failed, else 0 (inconclusive outcomes are counted, never failed)."""
    return 1 if any(o.status == FAIL for o in outcomes) else 0


def counts(outcomes: list[Outcome]) -> dict[str, int]:
    out = {PASS: 0, FAIL: 0, INCONCLUSIVE: 0}
    for o in outcomes:
        out[o.status] += 1
    return out
