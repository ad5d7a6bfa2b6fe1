"""Small corpora and models shared by the text plugin's tests (tiny, so the suite stays fast on 2 cores)."""

from __future__ import annotations

from pathlib import Path

from vaekit_text import TextDataConfig, TextModelConfig, plugin

from vaekit.runs import build_model

SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "the market closed higher on friday",
    "stocks fell as investors sold shares",
    "the company said it expects a loss",
    "he said the deal was n't final",
    "the dog sat on the mat",
    "a cat ran in the park",
]


def write_corpus(folder: Path, repeat: int = 4) -> dict[str, Path]:
    """train / val / test .txt files with one sentence per line (blank lines included: they are skipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, sentences in {"train": SENTENCES * repeat, "val": SENTENCES[:4], "test": SENTENCES[4:]}.items():
        paths[split] = folder / f"{split}.txt"
        paths[split].write_text("\n".join(sentences) + "\n\n", encoding="utf-8")
    return paths


def tiny_model_config(arch: str = "rnn", **overrides) -> TextModelConfig:
    sizes = dict(embed_dim=16, hidden_dim=32, latent_dim=4, num_layers=1, num_heads=2, ff_dim=64)
    sizes.update(overrides)
    return TextModelConfig(arch=arch, **sizes)


def build(tmp_path: Path, arch: str = "rnn", data: dict | None = None, **model_overrides):
    """(bundle, model, assets) for the tiny corpus."""
    paths = write_corpus(tmp_path / "corpus")
    cfg = TextDataConfig(train=str(paths["train"]), val=str(paths["val"]), test=str(paths["test"]), max_length=16,
                         **(data or {}))
    assets = tmp_path / "assets"
    bundle = plugin.build_data(cfg, seed=0, assets=assets)
    model = build_model(plugin, tiny_model_config(arch, **model_overrides), bundle.info, assets)
    return bundle, model, assets


def train_tiny_run(folder: Path) -> Path:
    """A run folder trained by `vaekit train` for 2 steps on the tiny corpus (for the CLI verbs)."""
    from vaekit.cli import main

    paths = write_corpus(folder / "corpus")
    recipe = folder / "tiny.yaml"
    recipe.write_text(f"plugin: text\ndata: {{train: {paths['train']}, val: {paths['val']}, test: {paths['test']}, "
                      "max_length: 16}\nmodel: {embed_dim: 16, hidden_dim: 32, latent_dim: 4}\n"
                      "trainer: {max_steps: 2, batch_size: 8, progress: false, samples: 0}\neval: {iw_samples: 2}\n")
    run = folder / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    return run
