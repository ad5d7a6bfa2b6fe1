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
    """Each test starts from the same seed on one thread.

    The test models are tiny: a second intra-op thread adds nothing, and on a busy 2-core machine two
    OpenMP threads per process spin against each other (measured 30x slower for small LSTMs and convs).
    """
    previous = torch.get_num_threads()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def repo() -> Path:
    return REPO
