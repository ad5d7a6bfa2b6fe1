"""keep_freed_memory: freed blocks are reused instead of being faulted back in from the OS each step."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vaekit.memory import keep_freed_memory

# Three 20 MB tensors a step, like a chunk of decoded images: enough to defeat glibc's adaptive thresholds.
STEPS = """
import resource, sys, torch
from vaekit.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step():
    tensors = [torch.ones(5_000_000) for _ in range(3)]
    return sum(float(t[0]) for t in tensors)
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    """Minor page faults of 20 steps in a fresh process (mallopt is process-wide)."""
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not keep_freed_memory(), reason="needs glibc's mallopt (Linux)")
def test_keep_freed_memory_stops_refaulting_each_step():
    plain, kept = page_faults("plain"), page_faults("keep")
    # 60 MB a step is ~15k pages: plain glibc faults them in every step (~300k); kept memory is reused.
    assert plain > 100_000
    assert kept < plain / 10
