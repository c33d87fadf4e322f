"""How much of a model's weights a cache keeps between inferences.

A dense network at batch 1 reads every weight once per inference, in the same
order every time: a cyclic sweep. A set-associative cache that is physically
indexed sees the buffer's pages land on page colours (sets) at random, so the
sweep does not fall off a cliff at exactly the cache size: the colours that
draw more pages than the cache has ways thrash and miss on every inference,
the others hit. ``miss_fraction`` is that expectation. It is what turns "L2 when
the weights fit, memory otherwise" into a curve that real caches follow, and it
needs only the cache's geometry, which Linux publishes in sysfs.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from edgecheck.errors import EdgecheckError
from edgecheck.sysfs import read_text, read_whole_number

SYSFS_CPU = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class CacheGeometry:
    size_bytes: int
    ways: int
    page_bytes: int = 4096
    level: int = 2
    source: str = ""

    @property
    def page_colours(self) -> int:
        """Distinct sets a page can map to: one way's bytes over the page size (at least 1)."""
        return max(1, self.size_bytes // self.ways // self.page_bytes)

    def to_dict(self) -> dict:
        return {**asdict(self), "page_colours": self.page_colours}


def _size(text: str, path: Path) -> int:
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    digits = text[:-1] if mult > 1 else text
    if not digits.isdigit():
        raise EdgecheckError(f"{path}: expected a cache size like '1024K', got {text!r}")
    return int(digits) * mult


def read_cache(level: int = 2, cpu: int = 0, root: Path = SYSFS_CPU) -> CacheGeometry:
    """The unified or data cache of ``level`` that ``cpu`` uses, from sysfs (cache/index*/)."""
    base = Path(root) / f"cpu{cpu}" / "cache"
    if not base.is_dir():
        raise EdgecheckError(f"{base}: no cache information (not Linux, or sysfs not mounted)")

    def read(index: Path, name: str) -> str:
        text = read_text(index / name)
        if text is None:
            raise EdgecheckError(f"{index / name}: missing; cannot read the L{level} cache geometry")
        return text

    def number(index: Path, name: str) -> int:
        read(index, name)  # a missing file says which geometry it was needed for
        return read_whole_number(index / name)

    for index in sorted(base.glob("index*")):
        if number(index, "level") != level or read(index, "type") == "Instruction":
            continue
        size = _size(read(index, "size"), index / "size")
        ways = number(index, "ways_of_associativity")
        if ways <= 0:  # 0 means fully associative in sysfs
            ways = max(1, size // 64)
        return CacheGeometry(size, ways, os.sysconf("SC_PAGE_SIZE"), level, str(index))
    raise EdgecheckError(f"{base}: cpu{cpu} has no level-{level} data cache")


def miss_fraction(nbytes: float, g: CacheGeometry) -> float:
    """Expected fraction of a cyclically swept ``nbytes`` buffer that misses the cache.

    A page misses when its colour holds more pages than the cache has ways;
    for one page that is P(Binomial(pages - 1, 1 / colours) >= ways)."""
    pages = math.ceil(max(0.0, nbytes) / g.page_bytes)
    if pages <= g.ways:
        return 0.0
    n, p = pages - 1, 1.0 / g.page_colours
    if p >= 1.0:
        return 1.0  # one colour: every page competes for the same sets
    # P(X < ways) by the recurrence of binomial terms, in logs to survive large n
    log_term = n * math.log1p(-p)
    ratio = math.log(p) - math.log1p(-p)
    below = 0.0
    for k in range(g.ways):
        below += math.exp(log_term)
        log_term += math.log(n - k) - math.log(k + 1) + ratio  # n >= ways > k
    return min(1.0, max(0.0, 1.0 - below))
