"""A full disk and a read-only file system, for real: a small tmpfs mounted in a private mount namespace.

`unshare --map-root-user --mount` gives the test a mount namespace of its own, where it may mount a tmpfs of a
few MiB (and remount it read-only) without being root; the test is skipped where user namespaces are disabled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from vaekit.cli import main


def env() -> dict:
    environment = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    environment.pop("VAEKIT_DEBUG", None)
    return environment


def in_namespace(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run a bash script in a private mount namespace (as root there); skip the test where that is not allowed."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--map-root-user", "--mount", "true"],
                                                          capture_output=True).returncode != 0:
        pytest.skip("no private mount namespace here (unshare --map-root-user --mount fails)")
    return subprocess.run(["unshare", "--map-root-user", "--mount", "bash", "-c", script, "bash", *args],
                          capture_output=True, text=True, env=env(), timeout=300)


def test_a_full_disk_while_tensorboard_opens_its_event_file_is_one_line_and_leaves_nothing(points_recipe, tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    result = in_namespace("""
        mount -t tmpfs -o size=3m tmpfs "$1" || exit 77
        free=$(df -B1 --output=avail "$1" | tail -1)
        page=$(getconf PAGESIZE)
        head -c $((free - 2 * page)) /dev/zero > "$1/fill"  # two pages left: the lock and the recipe fit, no more
        "$3" -m vaekit train "$2" --out "$1/run" trainer.max_steps=20
        echo "rc=$?"
        ls -A "$1"
        """, str(mount), str(points_recipe), sys.executable)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["rc=2", "fill"]  # one line, and no run folder left behind
    assert result.stderr == (f"vaekit: error: {mount / 'run' / 'events.out.tfevents.*'}: no space left on device; no "
                             f"checkpoint was written, so there is nothing to resume: fix this, then train again\n")


def test_encode_on_a_read_only_file_system_is_one_line(points_recipe, tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    result = in_namespace("""
        mount -t tmpfs -o size=20m tmpfs "$1" || exit 77
        "$3" -m vaekit train "$2" --out "$1/run" trainer.max_steps=20 > /dev/null 2>&1 || exit 78
        mount -o remount,ro "$1" || exit 79
        "$3" -m vaekit encode "$1/run" --split test
        echo "rc=$?"
        """, str(mount), str(points_recipe), sys.executable)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["rc=2"]
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.startswith(f"vaekit: error: {mount / 'run' / 'outputs'}")
    assert "Read-only file system" in result.stderr


def test_an_out_name_too_long_for_the_file_system_is_one_line(points_recipe, tmp_path, capsys):
    out = tmp_path / ("a" * 300)
    assert main(["train", str(points_recipe), "--out", str(out), "trainer.max_steps=5"]) == 2
    assert capsys.readouterr().err == (f"vaekit: error: --out {out}: File name too long; expected a run folder (new "
                                       f"or existing)\n")
