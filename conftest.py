"""Fixtures shared by the engine's and the plugins' tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent


def shared_data_dir() -> Path:
    """VAEKIT_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get("VAEKIT_DATA") or REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data sets; missing files fail the run under CI=true and skip the test elsewhere."""
    root = shared_data_dir()
    if not (root / "mnist").is_dir():
        message = f"real data sets not found at {root} (set VAEKIT_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(autouse=True)
def _seed_and_threads():
    """Each test starts from the same seed; two threads match the CI machine."""
    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture
def repo() -> Path:
    return REPO
