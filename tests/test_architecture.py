import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecheck.architecture import NAMED_GRIDS, Architecture, format_grid, parse_grid, size_of
from edgecheck.errors import EdgecheckError

archs = st.builds(Architecture, st.integers(1, 6), st.integers(1, 4096), st.sampled_from(["relu", "tanh"]))


@given(archs, st.integers(1, 5000), st.integers(2, 20))
def test_size_formulas(arch, n_in, n_out):
    s = size_of(arch, n_in, n_out)
    w = arch.width
    expected_macs = n_in * w + (arch.layers - 1) * w * w + w * n_out
    assert s.macs == expected_macs
    assert s.params == expected_macs + arch.layers * w + n_out
    assert s.weight_bytes == s.macs
    assert s.bias_bytes == 4 * (arch.layers * w + n_out)
    assert s.layer_sizes[0] == n_in and s.layer_sizes[-1] == n_out and len(s.layer_sizes) == arch.layers + 2


@given(st.lists(archs, min_size=1, max_size=12))
def test_grid_round_trip(items):
    assert parse_grid(format_grid(items)) == sorted(set(items))


@given(st.lists(st.integers(1, 8), min_size=1, max_size=4, unique=True),
       st.lists(st.integers(1, 4096), min_size=1, max_size=6, unique=True))
def test_product_grid(layers, widths):
    spec = f"layers={','.join(map(str, layers))};widths={','.join(map(str, widths))}"
    grid = parse_grid(spec)
    assert len(grid) == len(layers) * len(widths)
    assert {(a.layers, a.width) for a in grid} == {(n, w) for n in layers for w in widths}


def test_named_grids():
    default = parse_grid("default")
    assert len(default) == 24
    assert {a.layers for a in default} == {1, 2, 3, 4}
    assert min(a.width for a in default) == 32 and max(a.width for a in default) == 2048
    # the largest exceed the Edge TPU's ~7.8 MiB of usable on-chip memory, the smallest are tiny
    sizes = [size_of(a, 891, 4).weight_bytes for a in default]
    assert max(sizes) > 7.8 * 2**20 and min(sizes) < 64 * 1024
    assert parse_grid("smoke") and set(NAMED_GRIDS) >= {"default", "smoke"}
    assert parse_grid("layers=1-3;widths=8") == [Architecture(1, 8), Architecture(2, 8), Architecture(3, 8)]


@pytest.mark.parametrize("spec, message", [
    ("", "empty grid"),
    ("huge", "no grid has that name"),
    ("2x", "is not LAYERSxWIDTH"),
    ("0x32", "hidden layers must be"),
    ("1x0", "neurons per layer must be"),
    ("1x32-swish", "unknown activation"),
    ("layers=1-4", "needs both"),
    ("layers=4-1;widths=8", "runs backwards"),
    ("layers=1;widths=a", "must be numbers"),
    ("depth=1;widths=8", "unknown key"),
])
def test_bad_grids(spec, message):
    with pytest.raises(EdgecheckError, match=message):
        parse_grid(spec)


def test_a_widened_variant_keeps_its_name_and_grows_its_macs_by_about_the_percentage():
    """``edgecheck build --widen PCT``: the first hidden layer gets whole neurons enough for about PCT % more
    MACs; the name (what comparisons by name match on) stays, the dict (what keys a build) changes."""
    from edgecheck.architecture import Architecture, size_of

    for arch, pct in ((Architecture(1, 2048), 3), (Architecture(4, 512), 10), (Architecture(2, 64), 3)):
        wide = arch.widened(pct, 891, 4)
        growth = size_of(wide, 891, 4).macs / size_of(arch, 891, 4).macs - 1
        step = (891 + (arch.width if arch.layers > 1 else 4)) / size_of(arch, 891, 4).macs  # one neuron's share
        assert wide.name == arch.name and abs(growth - pct / 100) <= step / 2 + 1e-12
        assert wide.layer_sizes(891, 4) == [891, wide.first_width] + [arch.width] * (arch.layers - 1) + [4]
        assert Architecture.from_dict(wide.to_dict()) == wide and wide.to_dict() != arch.to_dict()
    plain = Architecture(2, 64)
    assert plain.to_dict() == {"layers": 2, "width": 64, "activation": "relu"}  # keys of existing builds unchanged
    assert plain.widened(0, 891, 4) is plain and Architecture(1, 16).widened(1, 891, 4).first_width == 17
