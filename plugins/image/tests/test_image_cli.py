"""End to end through `vaekit` verbs: train a tiny recipe, then every image artifact and eval."""

from __future__ import annotations

import json
from pathlib import Path

from image_test_helpers import grid_size, png_size, write_png
from safetensors.torch import load_file

from vaekit.cli import main

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "image"
TINY = ["trainer.max_steps=12", "trainer.batch_size=16", "trainer.eval_every=6", "trainer.eval_batches=1",
        "trainer.checkpoint_every=6", "trainer.samples=8", "trainer.progress=false", "trainer.log_every=6",
        "data.num_train=256", "data.num_val=32", "data.num_test=32", "model.width=8", "model.hidden=32",
        "eval.batch_size=16"]



def train(tmp_path: Path, *overrides: str) -> Path:
    run = tmp_path / "run"
    assert main(["train", str(RECIPES / "shapes.yaml"), *TINY, *overrides, "--out", str(run)]) == 0
    return run


def assert_middle_column_is_the_reconstruction(run: Path, grid: Path, rows: int, size: int = 32) -> None:
    """traverse's offset-0 column (the middle of 5) decodes the run's first test image as `reconstruct` does."""
    import numpy as np
    import torch
    from PIL import Image

    from vaekit.config.recipe import load_recipe
    from vaekit.runs import build_recipe_data, load

    model, plugin = load(run)
    data = build_recipe_data(plugin, load_recipe(run / "recipe.yaml"), Path(model.config["assets_dir"]))
    with torch.no_grad():
        expected = model.reconstruct(data.test.pixels(0)[None] if hasattr(data.test, "pixels") else
                                     data.test[0]["x"][None])[0]
    expected = (expected * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()  # as save_image writes it
    pixels = np.asarray(Image.open(grid).convert("L"))
    left = 2 + 2 * (size + 2)
    for row in range(rows):
        top = 2 + row * (size + 2)
        shown = pixels[top:top + size, left:left + size].astype(int)
        assert np.abs(shown - expected[0].astype(int)).max() <= 1


def test_shapes_train_then_every_verb(tmp_path, capsys):
    run = train(tmp_path)
    assert png_size(run / "samples" / "step-12" / "samples.png") == grid_size(3, 3, 32)
    a, b = write_png(tmp_path / "a.png", 32, seed=1), write_png(tmp_path / "b.png", 48, channels=3, seed=2)
    out = tmp_path / "out"
    assert main(["sample", str(run), "-n", "16", "-o", str(out / "s"), "--temperature", "0.5"]) == 0
    assert png_size(out / "s" / "samples.png") == grid_size(4, 4, 32)
    assert main(["reconstruct", str(run), str(a), str(b), "-o", str(out / "r")]) == 0
    assert png_size(out / "r" / "reconstructions.png") == grid_size(2, 2, 32)
    assert main(["interpolate", str(run), str(a), str(b), "--steps", "4", "--method", "slerp",
                 "-o", str(out / "i")]) == 0
    assert png_size(out / "i" / "interpolation.png") == grid_size(6, 1, 32)
    assert main(["traverse", str(run), "--dims", "0,2", "--steps", "5", "-o", str(out / "t")]) == 0
    assert png_size(out / "t" / "traversal.png") == grid_size(5, 2, 32)
    assert "traverse starts from test image 0 of the run's data (class " in capsys.readouterr().err
    assert_middle_column_is_the_reconstruction(run, out / "t" / "traversal.png", rows=2)
    assert main(["inpaint", str(run), str(a), "--box", "8,8,24,24", "-o", str(out / "p")]) == 0
    assert png_size(out / "p" / "inpainted.png") == (32, 32)
    printed = capsys.readouterr().out
    assert str(out / "p" / "inpainted.png") in printed
    assert main(["eval", str(run), "--iw-samples", "4", "--max-examples", "32"]) == 0
    printed = capsys.readouterr().out
    assert "bits_per_dim" in printed and "reconstruction_mse" in printed
    assert main(["inpaint", str(run), str(a)]) == 2  # neither --box nor --mask: a one-line error
    assert "exactly one of --box" in capsys.readouterr().err


def test_cvae_eval_classifier_and_image_folder(tmp_path, capsys):
    run = train(tmp_path, "data.condition=label", "model.conditional_prior=true", "latent.condition_cycle=1.0",
                "latent.sampler=prior")  # a learned p(z|c) is what samples: no mixture fitted without the condition
    assert png_size(run / "samples" / "step-12" / "samples.png") == grid_size(3, 3, 32)  # 3 shapes x 3
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    cycles = [r["cycle_rec"] for r in logged if r["split"] == "train"]
    assert len(cycles) == 2 and all(0 < nats < 1e9 for nats in cycles)  # the reconstruction through a conversion
    assert main(["eval", str(run), "--iw-samples", "2", "--max-examples", "32", "--classifier-examples", "128",
                 "--classifier-samples", "4"]) == 0
    printed, said = capsys.readouterr()
    assert "classifier_accuracy_samples" in printed and "classifier_accuracy_real" in printed
    assert "classifier_frechet" in printed and "classifier_recall" in printed
    assert "classifier_transfer_accuracy" in printed and "classifier_transfer_accuracy_relative" in printed
    real = json.loads((run / "eval-test.json").read_text())["classifier_accuracy_real"]
    # Two Adam steps on 128 shapes: the classifier's accuracy on real images stands beside its scores, and the
    # warning says it is too weak to judge.
    note = [line for line in said.splitlines() if line.startswith("vaekit: note: image classifier (2 epochs")]
    assert len(note) == 1
    assert f"{real:.1%} right on 32 real examples; its scores: classifier_accuracy_samples " in note[0]
    assert "too weak to judge" in said and "--classifier-epochs 10" in said
    cached = sorted(run.glob("image-classifier-*.safetensors"))
    assert len(cached) == 1 and load_file(str(cached[0]))  # cached for the next eval
    assert main(["eval", str(run), "--iw-samples", "2", "--max-examples", "32", "--classifier-examples", "64",
                 "--classifier-samples", "4"]) == 0
    assert len(list(run.glob("image-classifier-*.safetensors"))) == 2  # other examples: a new classifier, not the old
    assert main(["eval", str(run), "--iw-samples", "2", "--max-examples", "32", "--classifier-examples", "64",
                 "--classifier-samples", "4", "--classifier-epochs", "3"]) == 0
    settings = [json.loads(p.read_text()) for p in run.glob("image-classifier-*.json")]
    assert sorted(s["epochs"] for s in settings) == [2, 2, 3]  # the epochs flag trains (and keys) its own classifier
    out = tmp_path / "folder"
    assert main(["sample", str(run), "--per-class", "3", "--format", "folder", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["ellipse", "heart", "square"]
    assert png_size(out / "heart" / "00008.png") == (32, 32)
    assert main(["sample", str(run), "-n", "4", "--condition", "heart", "-o", str(tmp_path / "h")]) == 0
    assert main(["sample", str(run), "--condition", "circle", "-o", str(tmp_path / "c")]) == 2
    assert "expected a class name" in capsys.readouterr().err
    # The verbs that encode take the class the way every plugin does: --condition (decode under), --source (the
    # inputs' own class: class transfer); the former --label / --from-label still work and say the new names.
    a = write_png(tmp_path / "a.png", 32, seed=1)
    assert main(["reconstruct", str(run), str(a), "--source", "square", "--condition", "heart",
                 "-o", str(tmp_path / "t1")]) == 0
    assert main(["reconstruct", str(run), str(a), "--from-label", "square", "--label", "heart",
                 "-o", str(tmp_path / "t2")]) == 0
    grids = [(tmp_path / name / "reconstructions.png").read_bytes() for name in ("t1", "t2")]
    assert grids[0] == grids[1]
    notes = [line for line in capsys.readouterr().err.splitlines() if "is now" in line]
    assert notes == ["vaekit: note: --from-label is now --source, as in every plugin",
                     "vaekit: note: --label is now --condition, as in every plugin"]
    for verb in (["interpolate", str(a), str(a)], ["traverse", "--input", str(a)]):
        assert main([verb[0], str(run), *verb[1:], "--condition", "ellipse", "-o", str(tmp_path / verb[0])]) == 0
        assert main([verb[0], str(run), *verb[1:], "-o", str(tmp_path / verb[0])]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "give --condition (square, ellipse, heart)" in err[0]


def test_superres_verb(tmp_path):
    run = train(tmp_path, "data.condition=lowres", "model.conditional_prior=true", "latent.sampler=prior",
                "model.decoder_output=conv", "model.decoder_pose=false")  # the low-res image stays in place
    small = write_png(tmp_path / "small.png", 8, seed=3)
    assert main(["superres", str(run), str(small), "--samples", "2", "-o", str(tmp_path / "sr")]) == 0
    assert png_size(tmp_path / "sr" / "small_x4.png") == (32, 32)
    assert png_size(tmp_path / "sr" / "superres.png") == grid_size(3, 1, 32)
