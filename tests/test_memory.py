"""keep_freed_memory: blocks up to 32 MiB come from the heap and are reused, not mapped and unmapped each step.

What it guarantees is glibc's bookkeeping, which a fresh process shows deterministically: where a 20 MB
block lives (the [heap] mapping or a private mmap) and whether the address is handed out again after a
free. How many page faults that saves depends on the kernel and the machine's load; that figure is measured
in benchmarks/memory_page_faults.py, not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vaekit.training.memory import MMAP_THRESHOLD_MAX, keep_freed_memory

# In a fresh process: allocate a 20 MB tensor, free it, allocate again; report where each lived.
ALLOCATIONS = """
import ctypes, ctypes.util, json, sys
import torch  # loaded first, as in a vaekit command: its own start-up allocations are done before the test
from vaekit.training.memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def heap():  # (start, end) of the [heap] mapping; reading the file mallocs, so only after the allocations below
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            return tuple(int(x, 16) for x in line.split()[0].split("-"))
    return 0, 0
SIZE = 20_000_000  # a step's block, below the 32 MiB threshold (torch's CPU allocator calls glibc the same way)
first = libc.malloc(SIZE)
libc.free(first)
second = libc.malloc(SIZE)  # right after the free: the freed block is the one to reuse
start, end = heap()
libc.free(second)
start_after, end_after = heap()
print(json.dumps({"applied": applied, "first_in_heap": start <= first < end, "reused": second == first,
                  "heap_kept_bytes": end_after - start_after}))
"""


def allocations(mode: str) -> dict:
    """Where two successive 20 MB tensors lived in a fresh process (mallopt is process-wide)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's own tunables stay default
    env.pop("GLIBC_TUNABLES", None)
    out = subprocess.run([sys.executable, "-c", ALLOCATIONS, mode], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout)


needs_glibc = pytest.mark.skipif(not keep_freed_memory(), reason="needs glibc's mallopt (Linux)")


@needs_glibc
def test_kept_blocks_come_from_the_heap_and_are_reused():
    kept = allocations("keep")
    assert kept["applied"] is True
    assert kept["first_in_heap"], "a 20 MB block should come from the heap once the mmap threshold is 32 MiB"
    assert kept["reused"], "the next 20 MB block should reuse the freed one"
    assert kept["heap_kept_bytes"] >= 20_000_000, "freed blocks should stay in the heap, not be trimmed"


@needs_glibc
def test_without_it_glibc_maps_such_a_block_separately():
    # glibc's default mmap threshold is 128 KiB: the first 20 MB block of a fresh process is its own mapping,
    # returned to the OS on free; that is the cost keep_freed_memory removes.
    plain = allocations("plain")
    assert plain["applied"] is False and not plain["first_in_heap"]


def test_threshold_is_the_largest_glibc_accepts():
    assert MMAP_THRESHOLD_MAX == 32 * 1024 * 1024  # HEAP_MAX/2 on 64-bit: mallopt refuses anything larger
