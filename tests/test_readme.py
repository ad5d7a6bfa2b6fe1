"""The README's and the docs' promises: the engine example runs as written (and the docs show the same one), the
text example calls what exists, and .ci/run uses the README's install and test commands and builds the docs."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import types
from pathlib import Path

import vaekit

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def fenced_block(name: str, page: Path = README) -> str:
    """The code inside <!-- name --> ... <!-- /name --> in PAGE."""
    section = re.search(rf"<!-- {name} -->\n```\w*\n(.*?)```\n<!-- /{name} -->", page.read_text(), re.S)
    assert section, f"{page.name} has no <!-- {name} --> block"
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


def test_docs_engine_page_shows_the_readme_example():
    assert fenced_block("engine-example", DOCS / "engine.md") == fenced_block("engine-example")


def test_plugin_guide_shows_the_points_conformance_test_whole():
    shown = fenced_block("points-conformance", DOCS / "plugins.md")
    assert shown == (ROOT / "examples" / "vaekit-points" / "tests" / "test_conformance.py").read_text()


def test_plugin_guide_minimal_plugin_imports_plugin_api_and_passes_the_kit(tmp_path, monkeypatch):
    from vaekit.plugin import _registered, register_plugin
    from vaekit.testing import Conformance

    source = fenced_block("moons-plugin", DOCS / "plugins.md")
    modules = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert {m for m in modules if m.split(".")[0] == "vaekit"} == {"vaekit.plugin_api"}
    assert not any(isinstance(node, ast.Import) and any(a.name.startswith("vaekit") for a in node.names)
                   for node in ast.walk(ast.parse(source)))
    module = types.ModuleType("vaekit_moons_guide")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # the dataclasses' annotations resolve through it
    exec(compile(source, "docs/plugins.md", "exec"), module.__dict__)
    assert "moons" not in _registered
    register_plugin(module.plugin)
    try:
        kit = Conformance("moons", {"n_train": 64, "n_val": 16, "n_test": 16}, {"latent_dim": 2, "hidden": 8},
                          tmp_path / "kit", require_entry_point=False)
        (tmp_path / "inputs").mkdir()
        inputs = [tmp_path / "inputs" / "a.csv", tmp_path / "inputs" / "b.csv"]
        inputs[0].write_text("x,y\n0.1,0.2\n")
        inputs[1].write_text("0.5,-0.3\n")
        kit.check_entry_point()
        kit.check_configs()
        kit.check_data()
        kit.check_networks()
        kit.check_elbo_step()
        kit.check_round_trip(tmp_path / "round-trip")
        kit.check_sample(tmp_path / "sample")
        kit.check_verbs(tmp_path / "verbs", [str(path) for path in inputs])
    finally:
        _registered.pop("moons", None)


def test_text_api_example_calls_what_exists():
    from vaekit_text.plugin import TextPlugin

    tree = ast.parse(fenced_block("text-api", DOCS / "applications" / "paraphrase-homotopy.md"))
    called = {(node.value.id, node.attr) for node in ast.walk(tree)
              if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)}
    assert ("text", "encode_sentences") in called and ("vaekit", "load") in called
    for owner, name in called:
        if owner == "vaekit":
            assert hasattr(vaekit, name), f"vaekit.{name} does not exist"
        elif owner == "text":
            assert callable(getattr(TextPlugin, name, None)), f"the text plugin has no {name}"


def test_ci_runs_the_readme_commands_and_builds_the_docs():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "install" in ci and "test" in ci and "README.md" in ci
    assert fenced_block("install").strip().startswith("python3 -m venv")
    assert "pytest" in fenced_block("test")
    assert '".[docs]"' in ci and "mkdocs build --strict" in ci


def test_readme_is_a_guide_and_its_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) <= 160, "README.md: the guide lives in docs/, the README stays short"
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"
