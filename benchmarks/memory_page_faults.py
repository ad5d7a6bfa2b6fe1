"""Minor page faults of a step that allocates three 20 MB tensors, with and without keep_freed_memory.

    python benchmarks/memory_page_faults.py --rounds 5       # benchmarks/results/memory_page_faults.json
    python benchmarks/memory_page_faults.py --smoke          # one pair, written under a temporary folder

Each measurement is a fresh process (mallopt is process-wide): 20 steps after one warm-up step. The
counts depend on transparent huge pages, the kernel's reclaim and other processes, so they are figures
to report (median of the rounds, plain / kept side by side, and each side's fewest and most), never a
test assertion.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from common import add_common_flags, work_folder, write_result

STEPS = """
import resource, sys, torch
from vaekit.training.memory import keep_freed_memory
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
    args = add_common_flags(parser).parse_args()
    if args.smoke:
        args.rounds = 1
    plain, kept = [], []
    for _ in range(args.rounds):
        plain.append(page_faults("plain"))
        kept.append(page_faults("keep"))
    figures = {"plain_faults_min": min(plain), "plain_faults_max": max(plain), "kept_faults_min": min(kept),
               "kept_faults_max": max(kept), "median_plain": statistics.median(plain),
               "median_kept": statistics.median(kept),
               "ratio": statistics.median(plain) / max(1, statistics.median(kept)), "plain": plain, "kept": kept}
    with work_folder(args):
        write_result(args, "memory_page_faults", "Minor page faults of 20 steps that allocate three 20 MB tensors, "
                     "with and without keep_freed_memory", figures,
                     notes=f"{args.rounds} fresh-process pairs; counts depend on transparent huge pages and the "
                           "kernel's reclaim")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
