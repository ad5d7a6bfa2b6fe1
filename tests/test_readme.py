"""The README's promises: its engine example runs as written, and .ci/run uses its install and test commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def fenced_block(name: str) -> str:
    """The code inside <!-- name --> ... <!-- /name --> in the README."""
    section = re.search(rf"<!-- {name} -->\n```\w*\n(.*?)```\n<!-- /{name} -->", README.read_text(), re.S)
    assert section, f"README has no <!-- {name} --> block"
    return section.group(1)


def test_engine_example_runs_as_written(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(fenced_block("engine-example"))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    elbo, nll = (float(v) for v in re.findall(r"-?\d+\.\d+", result.stdout))
    # 784 independent Bernoulli(0.3) pixels carry 784 * H(0.3) = 479.3 nats: a model fitted to 256 such
    # images lands near that (a little below from memorising, a little above from the ELBO's gap).
    assert 440 < nll < 520 and 440 < -elbo < 530


def test_ci_runs_the_readme_commands():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "install" in ci and "test" in ci and "README.md" in ci
    assert fenced_block("install").strip().startswith("python3 -m venv")
    assert "pytest" in fenced_block("test")
