"""The conformance kit on the example time-series plugin, installed as a user would (the series_plugin fixture)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vaekit-series"

# The example's own test module, loaded by path under a module name of its own (it shares this file's name)
spec = importlib.util.spec_from_file_location("vaekit_series_conformance",
                                              EXAMPLE / "tests" / "test_series_conformance.py")
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)
TestSeriesConformance = example.TestSeriesConformance


@pytest.fixture(scope="class", autouse=True)
def installed(series_plugin):
    """examples/vaekit-series pip-installed before the kit looks for its entry point."""
    return series_plugin
