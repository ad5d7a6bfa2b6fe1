"""The example plugins' own test modules, loaded by path so the main suite runs their conformance classes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_tests(example: str, test_file: str) -> ModuleType:
    """examples/EXAMPLE/tests/TEST_FILE as a module named after the example (it may share a test file's name)."""
    name = example.replace("-", "_") + "_conformance"
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / example / "tests" / test_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
