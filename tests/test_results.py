"""Results as data: every result file follows the schema, every recipe's header quotes its result file's figures,
and the pages generated from the result files are up to date (as torchvision checks its weights' metadata)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("results_table", ROOT / "benchmarks" / "results_table.py")
results_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(results_table)

RESULTS = results_table.load_results()
RECIPES = sorted((ROOT / "recipes").glob("*/*.yaml"))
# a number standing on its own: not the 4 of "BLEU-4", the 2 of "x2" or the 16 of "16x16"
NUMBER = re.compile(r"(?<![\w.\-])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w.]\d|\w)")
REFERENCE = re.compile(r"\(([^()]*?)benchmarks/results/([\w.-]+)\.json: ([\w, ]+)\)")


def test_there_are_results_and_recipes():
    assert len(RESULTS) >= 20 and len(RECIPES) >= 19


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_result_file_schema(name):
    check_schema(name, RESULTS[name])


def test_record_result_writes_a_file_of_the_schema(tmp_path, monkeypatch):
    monkeypatch.setattr(results_table, "RESULTS", tmp_path)
    path = results_table.record_result("probe", "a probe", "vaekit train recipes/image/shapes.yaml",
                                       {"val_elbo_nats": -55.8}, recipe="recipes/image/shapes.yaml", device="CPU")
    assert path == tmp_path / "probe.json" and list(results_table.load_results()) == ["probe"]
    result = json.loads(path.read_text())
    check_schema("probe", result)
    assert result["recipe_sha256"] == results_table.recipe_sha256((ROOT / "recipes/image/shapes.yaml").read_text())
    assert result["metrics"] == {"val_elbo_nats": -55.8} and result["date"] and result["commit"]


def check_schema(name: str, result: dict) -> None:
    assert set(results_table.FIELDS) <= set(result), f"{name}.json lacks {set(results_table.FIELDS) - set(result)}"
    assert set(result) <= set(results_table.FIELDS) | set(results_table.OPTIONAL), f"{name}.json: unknown fields"
    for field in ("title", "command", "device"):
        assert isinstance(result[field], str) and result[field].strip(), f"{name}.json: {field} is empty"
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", result["commit"]), f"{name}.json: commit"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", result["date"]), f"{name}.json: date"
    if result["recipe"] is None:
        assert result["recipe_sha256"] is None
    else:
        assert (ROOT / result["recipe"]).is_file(), f"{name}.json: no recipe {result['recipe']}"
        assert re.fullmatch(r"[0-9a-f]{64}", result["recipe_sha256"]), f"{name}.json: recipe_sha256"
    metrics = result["metrics"]
    assert metrics and all(isinstance(v, (int, float)) and math.isfinite(v) for v in metrics.values()), name
    assert set(result.get("headline", [])) <= set(metrics), f"{name}.json: headline names a missing metric"


def test_recipe_hash_ignores_comments_and_layout():
    text = (ROOT / "recipes" / "image" / "shapes.yaml").read_text()
    reflowed = "# another header\n" + text.replace(": ", ":   ")
    assert results_table.recipe_sha256(text) == results_table.recipe_sha256(reflowed)
    assert results_table.recipe_sha256(text) != results_table.recipe_sha256(text.replace("seed: 0", "seed: 1"))


def quoted_figures(text: str) -> list[tuple[float, int]]:
    """The numbers in TEXT, each with its number of decimals."""
    found = []
    for match in NUMBER.finditer(text):
        digits = match.group().replace(",", "")
        found.append((float(digits), len(digits.split(".")[1]) if "." in digits else 0))
    return found


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_recipe_header_quotes_its_result_file(recipe):
    header = results_table.recipe_header(recipe.read_text())
    assert 2 <= len(header) <= 8, f"{recipe.name}: a header of {len(header)} comment lines (at most 8)"
    text = " ".join(header)
    assert "Reaches:" in text, f"{recipe.name}: the header says what it reaches ('Reaches: ...')"
    reaches = text[text.index("Reaches:") + len("Reaches:"):]
    reference = REFERENCE.search(reaches)
    assert reference, f"{recipe.name}: the header names no result file as (benchmarks/results/NAME.json: metric)"
    name, keys = reference.group(2), [key.strip() for key in reference.group(3).split(",")]
    assert name in RESULTS, f"{recipe.name}: benchmarks/results/{name}.json does not exist"
    result = RESULTS[name]
    assert result["recipe"] == str(recipe.relative_to(ROOT)), f"{name}.json is not {recipe.name}'s result"
    figures = quoted_figures(reaches[: reference.start()] + reference.group(1))
    assert len(figures) >= len(keys), f"{recipe.name}: quotes {len(figures)} figures for {len(keys)} metrics"
    for key, (quoted, decimals) in zip(keys, figures[: len(keys)], strict=True):
        assert key in result["metrics"], f"{recipe.name}: {name}.json has no metric {key}"
        value = result["metrics"][key]
        assert abs(quoted - value) <= 0.5 * 10**-decimals + 1e-9, f"{recipe.name}: {key} quoted {quoted}, file {value}"


def test_quoted_figures_skip_names_and_sizes():
    assert quoted_figures("BLEU-4 36.6 on 16x16 images, x2 and 3,761 sentences, ELBO -55.8") == [
        (36.6, 1), (3761.0, 0), (-55.8, 1)]


def test_generated_pages_are_up_to_date():
    stale = [str(path.relative_to(ROOT)) for path, text in results_table.generated().items()
             if not path.exists() or path.read_text() != text]
    assert not stale, f"out of date: {stale}; run python benchmarks/results_table.py"


def test_every_result_is_on_the_benchmarks_page():
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    for name, result in RESULTS.items():
        assert f"### {name}\n" in page and result["command"] in page


HISTORY = re.compile(r"\b(first|second|third|\w+th|\w+-\w+th|\w+st|\w+nd|\w+rd) session\b|\bsession \d+|DESIGN\.md"
                     r"|\bissue \d+|(?<![\w&])#\d+\b|\bround \d+|\bwas the default|\bthe default until", re.I)


def test_no_page_narrates_the_projects_history():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *RECIPES,
             *sorted((ROOT / "plugins").glob("*/README.md")), *sorted((ROOT / "benchmarks").glob("*.py")),
             *sorted((ROOT / "benchmarks").glob("*.sh"))]
    hits = [f"{path.relative_to(ROOT)}: {match.group()}" for path in pages
            for match in HISTORY.finditer(path.read_text())]
    assert not hits, hits
