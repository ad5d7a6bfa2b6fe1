"""The conformance kit on the example third-party plugin, installed as a user would (the points_plugin fixture)."""

from __future__ import annotations

import pytest
from helpers_examples import example_tests

TestPointsConformance = example_tests("vaekit-points", "test_conformance.py").TestPointsConformance


@pytest.fixture(scope="class", autouse=True)
def installed(points_plugin):
    """examples/vaekit-points pip-installed before the kit looks for its entry point."""
    return points_plugin
