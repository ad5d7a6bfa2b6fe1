"""The conformance kit on the example third-party plugin, installed as a user would (the points_plugin fixture)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vaekit-points"

spec = importlib.util.spec_from_file_location("vaekit_points_conformance", EXAMPLE / "tests" / "test_conformance.py")
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)
TestPointsConformance = example.TestPointsConformance


@pytest.fixture(scope="class", autouse=True)
def installed(points_plugin):
    """examples/vaekit-points pip-installed before the kit looks for its entry point."""
    return points_plugin
