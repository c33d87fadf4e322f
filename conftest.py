"""Root conftest: makes a source checkout work even before ``pip install -e .``.

Installed, edgecheck's plugin is loaded through its pytest11 entry point;
from a bare checkout it is loaded from here instead (never both).
"""
import importlib.metadata


def _plugin_installed() -> bool:
    return any(ep.value.startswith("edgecheck.plugin") for ep in importlib.metadata.entry_points(group="pytest11"))


# pytester drives the plugin in its own tests (tests/test_plugin.py); it adds only the fixture
pytest_plugins = ["pytester"] + ([] if _plugin_installed() else ["edgecheck.plugin"])
