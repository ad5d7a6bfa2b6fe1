"""Result files: every figure the README, the docs and the recipe headers quote, with the command that measured it.

    python benchmarks/results_table.py            # rewrite docs/benchmarks.md and the generated blocks of
                                                  # README.md and docs/recipes.md from benchmarks/results/
    python benchmarks/results_table.py --check    # exit 1 when any of them is out of date

A result file is ``benchmarks/results/NAME.json``, one JSON object:

- ``title``: what was measured, in one line;
- ``command``: the command(s) that produced the figures, run from the repository root;
- ``commit``: the git commit the figures were measured at (``"unknown"`` when it is not known);
- ``device``: the machine (CPU cores and threads, or the GPU);
- ``date``: ``YYYY-MM-DD``;
- ``recipe`` and ``recipe_sha256``: the recipe the command trains and :func:`recipe_sha256` of its text at
  ``commit`` (both ``null`` for a benchmark without a recipe);
- ``metrics``: ``{name: number}``, the figures as measured;
- ``headline`` (optional): the metric names the README's table shows (default: the first three);
- ``notes`` (optional): the conditions a reader needs to read the figures (which test examples, which k, ...).

A benchmark script writes one with :func:`record_result`. ``tests/test_results.py`` checks every file against this
schema, that every recipe's header names a result file and quotes its figures, and that the generated pages are
up to date.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import yaml

from vaekit.io.safe_writes import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FIELDS = ("title", "command", "commit", "device", "date", "recipe", "recipe_sha256", "metrics")
OPTIONAL = ("headline", "notes")
MODALITIES = ("image", "text", "speech")


def recipe_sha256(text: str) -> str:
    """sha256 of a recipe's keys and values (comments and layout aside; ``${VAEKIT_DATA}`` left unexpanded)."""
    data = yaml.safe_load(text)
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _device() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
        threads = torch.get_num_threads()
    except ImportError:
        threads = None
    import os

    return f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {threads} torch threads"


def record_result(name: str, title: str, command: str, metrics: dict[str, float], *, recipe: str | None = None,
                  device: str | None = None, notes: str | None = None, headline: list[str] | None = None) -> Path:
    """Write benchmarks/results/NAME.json for figures just measured at the working tree's commit."""
    commit = _git("rev-parse", "HEAD") or "unknown"
    if commit != "unknown" and _git("status", "--porcelain", "--untracked-files=no"):
        commit += "-dirty"
    result = {
        "title": title,
        "command": command,
        "commit": commit,
        "device": device or _device(),
        "date": _dt.datetime.now(_dt.timezone.utc).date().isoformat(),
        "recipe": recipe,
        "recipe_sha256": recipe_sha256((ROOT / recipe).read_text()) if recipe else None,
        "metrics": {key: float(value) for key, value in metrics.items()},
    }
    if headline:
        result["headline"] = headline
    if notes:
        result["notes"] = notes
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    atomic_write_text(path, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return path


def load_results() -> dict[str, dict]:
    """Every result file, by name (the file's stem), in name order."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))}


def fmt(value: float) -> str:
    """A figure as its file holds it (no rounding: the page says what the file says)."""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 100:
        return f"{int(value):,}"
    return repr(value) if isinstance(value, float) else str(value)


def headline(result: dict) -> list[str]:
    return result.get("headline") or list(result["metrics"])[:3]


def _group(result: dict) -> str:
    recipe = result.get("recipe") or ""
    for modality in MODALITIES:
        if recipe.startswith(f"recipes/{modality}/"):
            return modality
    return "engine"


def readme_table(results: dict[str, dict]) -> str:
    """README's figures: one row per recipe result."""
    lines = ["| recipe | what it reaches | result file |", "|---|---|---|"]
    for name, result in sorted(results.items(), key=lambda item: item[1].get("recipe") or ""):
        if not result.get("recipe"):
            continue
        figures = ", ".join(f"{key} {fmt(result['metrics'][key])}" for key in headline(result))
        lines.append(f"| `{result['recipe']}` | {figures} | [{name}.json](benchmarks/results/{name}.json) |")
    return "\n".join(lines) + "\n"


def recipes_table(results: dict[str, dict]) -> str:
    """docs/recipes.md's list: every recipe, what its header says it trains, and its result file."""
    lines = ["| recipe | what it trains | result file |", "|---|---|---|"]
    for path in sorted((ROOT / "recipes").glob("*/*.yaml")):
        header = recipe_header(path.read_text())
        what = []
        for line in header:
            if line.startswith(("vaekit ", "python ", "Reaches", "VAEKIT_DATA")):
                break
            what.append(line)
        what = " ".join(what).replace("|", "\\|")
        result = re.search(r"benchmarks/results/([\w.-]+)\.json", "\n".join(header))
        link = f"[`{result.group(1)}`](benchmarks.md#{result.group(1)})" if result else "none"
        lines.append(f"| `{path.relative_to(ROOT)}` | {what} | {link} |")
    return "\n".join(lines) + "\n"


def benchmarks_page(results: dict[str, dict]) -> str:
    """docs/benchmarks.md, whole."""
    out = [
        "# Benchmarks",
        "",
        "<!-- generated by `python benchmarks/results_table.py` from benchmarks/results/*.json: do not edit -->",
        "",
        "Every figure in this site, the README and the recipe headers comes from a result file under",
        "`benchmarks/results/`, which holds the command that produced it, the git commit and the device it ran on,",
        "the date, and the recipe with a hash of its keys and values. Budgets are short (CPU-minutes on a shared",
        "2-core machine, or a few GPU-minutes), so read a figure with its command. To measure again, run the",
        "command; a benchmark script records a new file with `record_result` (`benchmarks/results_table.py`),",
        "then `python benchmarks/results_table.py` rewrites this page.",
        "",
    ]
    groups: dict[str, list[str]] = {}
    for name, result in results.items():
        groups.setdefault(_group(result), []).append(name)
    for group in (*MODALITIES, "engine"):
        if group not in groups:
            continue
        out += [f"## {group.capitalize() if group != 'engine' else 'Engine and comparisons'}", ""]
        out += ["| result | what | headline figures |", "|---|---|---|"]
        for name in groups[group]:
            result = results[name]
            figures = ", ".join(f"{key} {fmt(result['metrics'][key])}" for key in headline(result))
            out.append(f"| [{name}](#{name}) | {result['title'].replace('|', chr(92) + '|')} | {figures} |")
        out.append("")
        for name in groups[group]:
            result = results[name]
            out += [f"### {name}", "", result["title"] + ("" if result["title"].endswith(".") else "."), ""]
            if result.get("notes"):
                out += [result["notes"], ""]
            out += ["```bash", result["command"], "```", ""]
            meta = [f"device: {result['device']}", f"date: {result['date']}", f"commit: `{result['commit'][:12]}`"]
            if result.get("recipe"):
                meta.append(f"recipe: `{result['recipe']}` (sha256 `{result['recipe_sha256'][:12]}`)")
            out += ["; ".join(meta), "", "| metric | value |", "|---|---|"]
            out += [f"| `{key}` | {fmt(value)} |" for key, value in result["metrics"].items()]
            out += ["", f"File: `benchmarks/results/{name}.json`", ""]
    return "\n".join(out).rstrip() + "\n"


def recipe_header(text: str) -> list[str]:
    """The comment lines a recipe starts with, without their '#'."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return lines


def replace_block(text: str, name: str, body: str) -> str:
    """Put BODY between <!-- NAME --> and <!-- /NAME --> in TEXT."""
    pattern = re.compile(rf"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"no <!-- {name} --> block")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def generated() -> dict[Path, str]:
    """What each generated file should hold."""
    results = load_results()
    readme, recipes = ROOT / "README.md", ROOT / "docs" / "recipes.md"
    return {
        ROOT / "docs" / "benchmarks.md": benchmarks_page(results),
        readme: replace_block(readme.read_text(), "results", readme_table(results)),
        recipes: replace_block(recipes.read_text(), "recipes", recipes_table(results)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated().items():
        if not path.exists() or path.read_text() != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                atomic_write_text(path, text)
    if args.check and stale:
        print("out of date (run python benchmarks/results_table.py): " + ", ".join(map(str, stale)))
        return 1
    if not args.check:
        print("wrote " + (", ".join(map(str, stale)) or "nothing (all up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
