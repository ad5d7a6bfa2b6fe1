"""Every benchmark script runs end to end under --smoke (a few steps, tiny subsets) and writes its result files.

Each script runs as a user runs it (python benchmarks/NAME.py --smoke, one torch thread) with --out and --work-dir
in a temporary folder, two scripts at a time (the CI machine has 2 cores), all of them once for the module; its
result files must follow benchmarks/results_table.py's schema (tests/test_results.py's check), and the
committed benchmarks/results/ must be left as it was. The figures of a smoke run mean nothing, so none is checked.
Scripts that train on real data read VAEKIT_DATA (the checkout's sibling shared/data when unset).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_results import check_schema

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"

# script: the result files its --smoke run writes
SCRIPTS = {
    "memory_page_faults.py": ["memory_page_faults"],
    "trainer_overhead.py": ["trainer_overhead"],
    "image_mnist.py": ["mnist_throughput", "mnist_budget_nll"],
    "image_mnist_latents.py": ["mnist_latents"],
    "mnist_sample_quality.py": ["mnist_sample_quality"],
    "shapes_disentanglement.py": ["shapes_disentanglement"],
    "shapes_main_job.py": ["shapes"],
    "image_cifar10.py": ["cifar10", "cifar10_superres", "mnist_cvae", "cifar10_cvae", "image_folder", "cifar10_speed"],
    "text_ptb.py": ["text_ptb"],
    "text_yelp.py": ["yelp_sentiment"],
    "speech_fsdd.py": ["fsdd", "fsdd_cvae"],
    "speech_strings.py": ["fsdd_strings"],
    "augmentation.py": ["augmentation_mnist", "augmentation_cifar10", "augmentation_fsdd"],
    "speech_enhancement.py": ["speech_enhancement", "speech_enhancement_strings", "speech_enhancement_newcomer"],
    "semi_supervised.py": ["semi_supervised_mnist"],
    "semi_supervised_fsdd.py": ["semi_supervised_fsdd"],
    "semi_supervised_yelp.py": ["semi_supervised_yelp"],
}
# Modules the scripts import, and a script with its own --smoke and --record flags.
NOT_SCRIPTS = {"common.py", "pythae_nets.py", "results_table.py", "image_cifar10_samples.py"}


def committed_results() -> dict[str, str | None]:
    """sha256 of each file under benchmarks/results/ that a smoke run would write if it wrote there (None: none)."""
    paths = [BENCHMARKS / "results" / f"{name}.json" for names in SCRIPTS.values() for name in names]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None for p in paths}


def test_every_benchmark_script_has_a_smoke_run():
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - NOT_SCRIPTS
    assert scripts == set(SCRIPTS)


def smoke_run(script: str, folder: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.setdefault("VAEKIT_DATA", str(ROOT.parent / "shared" / "data"))
    return subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke", "--out", str(folder / "results"),
                           "--work-dir", str(folder / "work")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory) -> dict:
    """Every script's --smoke run: {script: (its folder, the finished process)}, and the committed results'
    digests before and after."""
    before = committed_results()
    folders = {script: tmp_path_factory.mktemp(script.removesuffix(".py")) for script in SCRIPTS}
    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(SCRIPTS, pool.map(lambda s: smoke_run(s, folders[s]), SCRIPTS), strict=True))
    return {"runs": {s: (folders[s], done[s]) for s in SCRIPTS}, "before": before, "after": committed_results()}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_smoke_run_writes_its_result_files(script, smoke_runs):
    folder, done = smoke_runs["runs"][script]
    assert done.returncode == 0, done.stderr[-3000:]
    out, work = folder / "results", folder / "work"
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(SCRIPTS[script])
    for name in SCRIPTS[script]:
        result = json.loads((out / f"{name}.json").read_text())
        check_schema(name, result)
        assert "--smoke" in result["command"]
        assert (work / f"{name}.details.json").is_file()
    json.loads(done.stdout.strip().splitlines()[-1])  # the last line printed is the figures' JSON


@pytest.mark.slow
def test_smoke_runs_leave_the_committed_results_alone(smoke_runs):
    assert smoke_runs["after"] == smoke_runs["before"]
