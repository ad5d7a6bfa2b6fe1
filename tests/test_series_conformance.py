"""The conformance kit on the example time-series plugin, installed as a user would (the series_plugin fixture)."""

from __future__ import annotations

import pytest
from helpers_examples import example_tests

TestSeriesConformance = example_tests("vaekit-series", "test_series_conformance.py").TestSeriesConformance


@pytest.fixture(scope="class", autouse=True)
def installed(series_plugin):
    """examples/vaekit-series pip-installed before the kit looks for its entry point."""
    return series_plugin
