"""Cache geometry from sysfs, and the expected misses of a cyclic weight sweep."""
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from edgecheck.errors import EdgecheckError
from edgecheck.twins.cache import SYSFS_CPU, CacheGeometry, miss_fraction, read_cache

# cpu0/cache as Linux lays it out, values copied from an AMD EPYC (Zen 4) host
SYSFS = {
    "index0": {"level": "1\n", "type": "Data\n", "size": "32K\n", "ways_of_associativity": "8\n",
               "coherency_line_size": "64\n", "number_of_sets": "64\n", "shared_cpu_list": "0\n"},
    "index1": {"level": "1\n", "type": "Instruction\n", "size": "32K\n", "ways_of_associativity": "8\n",
               "coherency_line_size": "64\n", "number_of_sets": "64\n", "shared_cpu_list": "0\n"},
    "index2": {"level": "2\n", "type": "Unified\n", "size": "1024K\n", "ways_of_associativity": "8\n",
               "coherency_line_size": "64\n", "number_of_sets": "2048\n", "shared_cpu_list": "0\n"},
    "index3": {"level": "3\n", "type": "Unified\n", "size": "32768K\n", "ways_of_associativity": "16\n",
               "coherency_line_size": "64\n", "number_of_sets": "32768\n", "shared_cpu_list": "0-1\n"},
}


def _sysfs(root: Path, layout: dict) -> Path:
    for index, files in layout.items():
        d = root / "cpu0" / "cache" / index
        d.mkdir(parents=True)
        for name, text in files.items():
            (d / name).write_text(text)
    return root


def test_reads_each_level_from_the_sysfs_layout(tmp_path):
    root = _sysfs(tmp_path, SYSFS)
    l2 = read_cache(2, root=root)
    assert (l2.size_bytes, l2.ways, l2.level) == (1 << 20, 8, 2) and l2.source.endswith("index2")
    assert l2.page_colours == (1 << 20) // 8 // l2.page_bytes
    assert read_cache(3, root=root).size_bytes == 32 << 20
    assert read_cache(1, root=root).source.endswith("index0")  # the data cache, not the instruction cache


def test_bad_sysfs_names_the_file(tmp_path):
    with pytest.raises(EdgecheckError, match="no cache information"):
        read_cache(root=tmp_path)
    bad = {k: dict(v) for k, v in SYSFS.items()}
    bad["index2"]["size"] = "lots\n"
    with pytest.raises(EdgecheckError, match=r"index2/size: expected a cache size"):
        read_cache(2, root=_sysfs(tmp_path / "a", bad))
    del bad["index2"]["ways_of_associativity"]
    bad["index2"]["size"] = "1024K\n"
    with pytest.raises(EdgecheckError, match="ways_of_associativity: missing"):
        read_cache(2, root=_sysfs(tmp_path / "b", bad))
    with pytest.raises(EdgecheckError, match="no level-4 data cache"):
        read_cache(4, root=_sysfs(tmp_path / "c", SYSFS))


@pytest.mark.skipif(not (SYSFS_CPU / "cpu0" / "cache").is_dir(),
                    reason="this machine publishes no cache geometry in sysfs")
def test_reads_this_machines_l2():
    g = read_cache(2)
    assert g.size_bytes >= 64 << 10 and g.ways >= 1 and g.page_colours >= 1


def test_miss_fraction_is_a_monotone_curve_from_zero_to_one():
    g = CacheGeometry(1 << 20, 8)
    sizes = np.linspace(0, 4 << 20, 200)
    m = [miss_fraction(b, g) for b in sizes]
    assert m[0] == 0.0 and miss_fraction(8 * 4096, g) == 0.0  # no colour can hold more pages than there are ways
    assert all(b >= a - 1e-12 for a, b in zip(m, m[1:]))
    assert miss_fraction(g.size_bytes / 2, g) < 0.05 and miss_fraction(2 * g.size_bytes, g) > 0.95
    assert miss_fraction(1e9, g) == pytest.approx(1.0)


def _lru_sweep_misses(n_pages: int, g: CacheGeometry, line: int, rng) -> float:
    """Miss fraction of the second of two cyclic sweeps through an LRU set-associative cache,
    with the buffer's pages placed at random physical addresses."""
    sets_per_colour = g.page_bytes // line
    n_sets = g.size_bytes // g.ways // line
    colours = rng.integers(0, g.page_colours, n_pages)
    cache = [OrderedDict() for _ in range(n_sets)]
    misses = 0
    for sweep in range(2):
        for page, colour in enumerate(colours):
            for offset in range(sets_per_colour):
                s = cache[colour * sets_per_colour + offset]
                tag = (page, offset)
                if tag in s:
                    s.move_to_end(tag)
                    continue
                misses += sweep
                s[tag] = None
                if len(s) > g.ways:
                    s.popitem(last=False)
    return misses / (n_pages * sets_per_colour)


@pytest.mark.parametrize("n_pages", [6, 12, 16, 20, 28])
def test_miss_fraction_matches_an_lru_cache_simulation(n_pages):
    """The closed form against a line-by-line LRU simulation of a small cache (4 colours, 2 ways)."""
    g = CacheGeometry(32 << 10, 2, page_bytes=4096)
    rng = np.random.default_rng(n_pages)
    simulated = np.mean([_lru_sweep_misses(n_pages, g, 256, rng) for _ in range(400)])
    assert simulated == pytest.approx(miss_fraction(n_pages * 4096, g), abs=0.03)
