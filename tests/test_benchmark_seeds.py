"""Result files of several seeds (benchmarks/common.py write_result with per_seed): each run of a seed adds its
figures, named NAME_seedN, to the file of the same command; another command starts the file again."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from test_results import check_schema

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import common  # noqa: E402  (benchmarks/ is no package: the scripts import it by name, as this test does)

RECIPE = "recipes/speech/fsdd.yaml"
FIGURES = {"recon_digit_relative": ("digit_acc_recon_relative", 100, 1), "nll_per_frame": ("nll_per_frame", 1, 2)}


def write(tmp_path: Path, monkeypatch, seed: int, recon: float, *extra: str) -> dict:
    """One seed's run of a script writing the result file `fsdd` into tmp_path/out; the file's contents."""
    out, work = tmp_path / "out", tmp_path / f"work{seed}"
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / "speech_fsdd.py"), "--recipes", "fsdd", "--out", str(out),
                                      "--work-dir", str(work), "--seed", str(seed), *extra])
    args = argparse.Namespace(out=out, work_dir=work, seed=seed, smoke=False)
    work.mkdir(exist_ok=True)
    figures = {"digit_acc_recon_relative": recon, "nll_per_frame": 8.4567, "curve": [1.0, 2.0]}
    common.write_result(args, "fsdd", "fsdd for 2,300 steps", figures, recipe=RECIPE, per_seed=True,
                        metrics=common.chosen_figures(figures, FIGURES), headline=["recon_digit_relative"])
    result = json.loads((out / "fsdd.json").read_text())
    check_schema("fsdd", result)
    return result


def test_seeds_of_one_command_share_a_result_file(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch, 0, 0.9834)
    result = write(tmp_path, monkeypatch, 1, 0.95)
    assert result["metrics"] == {"recon_digit_relative_seed0": 98.3, "recon_digit_relative_seed1": 95.0,
                                 "nll_per_frame_seed0": 8.46, "nll_per_frame_seed1": 8.46}
    assert result["command"] == "python benchmarks/speech_fsdd.py --recipes fsdd --seed 0   # and --seed 1"
    assert result["title"] == "fsdd for 2,300 steps (seeds 0 and 1)"
    assert result["headline"] == ["recon_digit_relative_seed0"]
    again = write(tmp_path, monkeypatch, 0, 0.5)  # a seed run again replaces its own figures only
    assert again["metrics"]["recon_digit_relative_seed0"] == pytest.approx(50.0)
    assert again["metrics"]["recon_digit_relative_seed1"] == pytest.approx(95.0)


def test_another_command_starts_the_file_again(tmp_path, monkeypatch):
    write(tmp_path, monkeypatch, 0, 0.9834)
    result = write(tmp_path, monkeypatch, 1, 0.95, "trainer.lr=0.001")
    assert result["metrics"] == {"recon_digit_relative_seed1": 95.0, "nll_per_frame_seed1": 8.46}
    assert result["command"].endswith("--recipes fsdd trainer.lr=0.001 --seed 1")
    assert result["title"] == "fsdd for 2,300 steps (seed 1)"


def test_chosen_figures_skip_missing_and_non_finite():
    figures = {"digit_acc_recon_relative": float("nan"), "nll_per_frame": 3.14159}
    assert common.chosen_figures(figures, {**FIGURES, "lsd_db": ("lsd_db", 1, 2)}) == {"nll_per_frame": 3.14}
