"""Minor page faults of a step that allocates three 20 MB tensors, with and without keep_freed_memory.

    python benchmarks/memory_page_faults.py --rounds 5

Each measurement is a fresh process (mallopt is process-wide): 20 steps after one warm-up step. The
counts depend on transparent huge pages, the kernel's reclaim and other processes, so they are figures
to report (median of the rounds, plain / kept side by side), never a test assertion.
Measured: benchmarks/results/memory_page_faults.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

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
    """Minor page faults of 20 steps in a fresh process."""
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh-process pairs, alternated")
    args = parser.parse_args()
    plain, kept = [], []
    for _ in range(args.rounds):
        plain.append(page_faults("plain"))
        kept.append(page_faults("keep"))
    print(json.dumps({"plain": plain, "kept": kept, "median_plain": statistics.median(plain),
                      "median_kept": statistics.median(kept),
                      "ratio": statistics.median(plain) / max(1, statistics.median(kept))}))


if __name__ == "__main__":
    main()
