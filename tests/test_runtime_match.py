"""Both sides of a comparison run the same libedgetpu build (std or max) and the same runtime: told apart from
dpkg's status file (the packages ship the same library file name and conflict), refused with one line."""
import pytest
from support import run_edgecheck

from edgecheck.errors import EdgecheckError
from edgecheck.measure.runtime import libedgetpu_from_status, mismatch, refuse_mismatch
from edgecheck.results import save

# Verbatim from this machine's /var/lib/dpkg/status (Debian 12): the paragraph of a package beside libedgetpu's.
LIBUSB = """Package: libusb-1.0-0
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 155
Maintainer: Aurelien Jarno <aurel32@debian.org>
Architecture: amd64
Multi-Arch: same
Source: libusb-1.0
Version: 2:1.0.26-1
Depends: libc6 (>= 2.17), libudev1 (>= 183)
Description: userspace USB programming library
 Library for programming USB applications without the knowledge
 of Linux kernel internals.
 .
 This package contains what you need to run programs that use this
 library.
Homepage: http://www.libusb.info
"""


def libedgetpu(flavour: str, status: str = "install ok installed", version: str = "16.0") -> str:
    """A libedgetpu paragraph as dpkg writes it into its status file: the fields of google-coral/libedgetpu's
    debian/control for that package, with the Status dpkg keeps (no capture from a Coral host is stored here,
    so Installed-Size, which only dpkg knows, is left out)."""
    return f"""Package: libedgetpu1-{flavour}
Status: {status}
Priority: optional
Section: misc
Maintainer: Coral <coral-support@google.com>
Architecture: amd64
Multi-Arch: same
Source: libedgetpu
Version: {version}
Provides: libedgetpu1 (= {version})
Depends: libc6, libgcc1, libstdc++6, libusb-1.0-0
Conflicts: libedgetpu1
Description: Support library for Edge TPU
 Support library ({'max' if flavour == 'max' else 'standard'} speed) for the Edge TPU
"""


def status(*paragraphs: str) -> str:
    return "\n".join(paragraphs)


def test_the_flavour_comes_from_dpkgs_status_file():
    # std removed for max (they conflict): std's udev rule is a conffile, so dpkg keeps it as config-files
    assert libedgetpu_from_status(status(LIBUSB, libedgetpu("std", "deinstall ok config-files"),
                                         libedgetpu("max"))) == {"package": "libedgetpu1-max", "flavour": "max",
                                                                 "version": "16.0"}
    assert libedgetpu_from_status(status(libedgetpu("std", version="15.0"), LIBUSB))["flavour"] == "std"
    assert libedgetpu_from_status(LIBUSB) is None  # no Edge TPU runtime installed
    assert libedgetpu_from_status(status(libedgetpu("max", "deinstall ok config-files"))) is None


def _measured(tmp_path, name: str, dpkg: str | None):
    """A real A/B measurement (LiteRT in the worker's processes) on a host whose dpkg status is ``dpkg``."""
    from support import ab_on_cpu
    from tinytflite import dense_tflite

    root = tmp_path / name
    if dpkg is not None:
        (root / "var" / "lib" / "dpkg").mkdir(parents=True)
        (root / "var" / "lib" / "dpkg" / "status").write_text(dpkg)
    root.mkdir(exist_ok=True)
    a = dense_tflite(tmp_path / "a.tflite", [64, 32, 4])
    got, _ = ab_on_cpu(a, a, root)
    return got.base, got.head


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runtimes")
    return {"max": _measured(tmp, "max", status(LIBUSB, libedgetpu("max"))),
            "std": _measured(tmp, "std", status(libedgetpu("std"), LIBUSB)),
            "none": _measured(tmp, "none", None)}


def test_ab_refuses_sides_measured_on_std_and_on_max(runs):
    base, head = runs["max"][0], runs["std"][1]
    assert base.entries[0].worker["host"]["libedgetpu"] == {"package": "libedgetpu1-max", "flavour": "max",
                                                            "version": "16.0"}
    with pytest.raises(EdgecheckError) as e:
        refuse_mismatch(base, head, "ab")
    assert str(e.value) == ("ab: refused, both sides must run the same runtime: libedgetpu on cpu differs: BASE max "
                            "16.0, HEAD std 16.0")
    assert mismatch(*runs["max"]) is None  # one job, one runtime
    assert mismatch(runs["max"][0], runs["none"][1]) is None  # a side that recorded no libedgetpu is not a mismatch


def test_compare_refuses_a_baseline_on_max_against_a_run_on_std(runs, tmp_path):
    for name in ("max", "std"):
        save(runs[name][0], tmp_path / f"{name}.json")
    save(runs["max"][1], tmp_path / "max2.json")
    proc = run_edgecheck("compare", str(tmp_path / "max.json"), str(tmp_path / "std.json"), check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "edgecheck: error: compare (use --force to compare anyway): refused, both sides must run the same runtime: "
        "libedgetpu on cpu differs: baseline max 16.0, run std 16.0"]
    same = run_edgecheck("compare", str(tmp_path / "max.json"), str(tmp_path / "max2.json"), check=False)
    assert same.returncode in (0, 1) and "refused" not in same.stderr
    forced = run_edgecheck("compare", "--force", str(tmp_path / "max.json"), str(tmp_path / "std.json"), check=False)
    assert forced.returncode in (0, 1) and "refused" not in forced.stderr
