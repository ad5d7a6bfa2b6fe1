"""Semi-supervised VAEs (objective.kind m2): M2's bounds against their definition, the seeded per-class draw of
labels, the one-line refusals, and train + eval + classify on real image files (MNIST digits as a folder)."""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import json
import math
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vaekit import DataBundle, RecipeError, build_recipe_data, get_plugin, load_recipe
from vaekit.cli import main
from vaekit.config.semi_supervised import (
    SemiSupervisedConfig,
    check_labels,
    labelled_indices,
    semi_supervised_bundle,
)
from vaekit.core.distributions import LOGVAR_MIN
from vaekit.model.semi_supervised import m2_model
from vaekit.objectives.semi_supervised import M2, unlabelled_bound

MNIST = Path(os.environ.get("VAEKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "mnist"


def near_deterministic_m2(num_classes=3, code_dim=4, latent_dim=2, seed=0):
    """A small M2 over codes whose q(z|x, y) has the smallest variance: z is its mean, so L(x, y) is known exactly."""
    torch.manual_seed(seed)
    model = m2_model(num_classes, latent_dim, 8, code_dim=code_dim)
    last = model.encoder.head[-1]
    with torch.no_grad():
        last.weight[latent_dim:] = 0.0
        last.bias[latent_dim:] = LOGVAR_MIN
    return model


def exact_bound(model, x, y: int) -> torch.Tensor:
    """L(x, y) = log p(x|z = mean, y) - KL(N(mean, ~0) || N(0, I)) - log K, written out by hand: [B] nats."""
    labels = torch.full((x.shape[0],), y)
    q = model.posterior(x, labels)
    var = math.exp(LOGVAR_MIN)
    kl = 0.5 * (q.mean**2 + var - 1.0 - LOGVAR_MIN).sum(-1)
    return model.log_likelihood(x, q.mean, labels) - kl - math.log(model.num_classes)


def test_the_unlabelled_bound_is_the_explicit_sum_over_classes_plus_the_entropy():
    model = near_deterministic_m2()
    x = torch.randn(5, 4)
    q = F.softmax(model.class_logits(model.features(x)), -1)
    bounds = torch.stack([exact_bound(model, x, y) for y in range(3)], -1)  # [B, K]
    expected = (q * bounds).sum(-1) - (q * q.log()).sum(-1)
    got, _, _ = unlabelled_bound(model, x)
    assert torch.allclose(got, expected, atol=1e-4)
    assert not torch.allclose(got, bounds.max(-1).values, atol=1e-2)  # not simply the best class


def test_the_m2_loss_weighs_labelled_examples_by_their_bound_and_alpha_times_the_class_loss():
    model = near_deterministic_m2()
    x, c = torch.randn(6, 4), torch.tensor([0, 2, -1, 1, -1, -1])
    alpha = 3.0
    terms = M2(alpha)(model, x, c)
    logits = model.class_logits(model.features(x))
    labelled = [-exact_bound(model, x[i:i + 1], int(c[i]))[0]
                + alpha * F.cross_entropy(logits[i:i + 1], c[i:i + 1]) for i in (0, 1, 3)]
    unlabelled = -unlabelled_bound(model, x[[2, 4, 5]])[0]
    assert terms.loss.item() == pytest.approx((sum(labelled) + unlabelled.sum()).item() / 6, abs=1e-3)
    assert terms.extra["labelled"] == 3


def test_labels_are_drawn_per_class_with_the_seed():
    labels = torch.arange(5).repeat_interleave(20)[torch.randperm(100, generator=torch.Generator().manual_seed(1))]
    chosen = labelled_indices(labels, 10, 5, seed=3, names=[])
    assert chosen == sorted(chosen) and len(set(chosen)) == 10
    assert torch.bincount(labels[chosen], minlength=5).tolist() == [2] * 5
    assert chosen == labelled_indices(labels, 10, 5, seed=3, names=[])
    assert chosen != labelled_indices(labels, 10, 5, seed=4, names=[])
    with_none = torch.cat([labels, torch.full((7,), -1)])
    assert labelled_indices(with_none, None, 5, seed=0, names=[]) == list(range(100))  # every labelled one


@pytest.mark.parametrize(("labels", "labelled", "message"), [
    ({"train": [0, 0, 1, 1, 1]}, 6, "semi_supervised.labelled: 6 asks 3 labelled examples of each class, but class "
                                    "'zero' has 2 in the training split; lower it to at most 4"),
    ({"train": [0, 1, 1]}, 3, "semi_supervised.labelled: 3 labelled examples do not split evenly over the 2 classes; "
                              "give a multiple of 2"),
    ({"train": [-1, -1, -1]}, None, "objective.kind m2: none of the 3 training examples has a label; give labels "
                                    "(an image folder's class subfolders, a metadata.csv label column)"),
    ({"train": [0, 1, -1], "test": [0, 5]}, None, "objective.kind m2: the test split labels 1 example(s) with class "
                                                  "5, which the data's classes does not have (2 classes: zero, one)"),
])
def test_bad_labels_are_one_line_each(labels, labelled, message):
    names = ["zero", "one"]
    with pytest.raises(RecipeError) as error:
        splits = {name: torch.tensor(values) for name, values in labels.items()}
        check_labels(splits, names)
        labelled_indices(splits["train"], labelled, 2, 0, names)
    assert str(error.value) == message


def test_a_class_no_training_example_has_is_refused():
    bundle = DataBundle(train=[{"x": torch.zeros(2), "label": torch.tensor(i)} for i in (0, 0, 2)],
                        val=None, test=None, info={"class_names": ["a", "b", "c"]})
    with pytest.raises(RecipeError, match="class 'b' has no labelled training example"):
        semi_supervised_bundle(bundle, SemiSupervisedConfig(), seed=0)


def test_labelled_examples_are_repeated_to_their_share_and_the_rest_lose_their_label():
    train = [{"x": torch.full((2,), float(i)), "label": torch.tensor(i % 2)} for i in range(40)]
    bundle = DataBundle(train=train, val=train[:6], test=None, info={})
    data = semi_supervised_bundle(bundle, SemiSupervisedConfig(labelled=4, labelled_share=0.5), seed=0)
    classes = torch.stack([data.train[i]["c"] for i in range(len(data.train))])
    assert (classes == -1).sum() == 36 and (classes >= 0).sum() == 36  # 4 labelled, each 9 times
    assert data.info["semi_supervised"]["num_classes"] == 2 and len(data.val) == 6
    assert all(int(data.val[i]["c"]) == int(data.val[i]["label"]) for i in range(6))


def digit_folder(root: Path, per_class: int, unlabelled: int, classes=(0, 1, 2)) -> list[Path]:
    """MNIST test digits as PNG files: root/<digit>/ for per_class of each class, root/unlabelled/ for more."""
    images = np.frombuffer(gzip.open(MNIST / "t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
    images = images.reshape(-1, 28, 28)
    labels = np.frombuffer(gzip.open(MNIST / "t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    written, counts = [], dict.fromkeys(classes, 0)
    (root / "unlabelled").mkdir(parents=True)
    for i, label in enumerate(labels[:2000]):
        if label not in counts:
            continue
        if counts[label] < per_class:
            folder = root / str(label)
        elif counts[label] < per_class + unlabelled // len(classes):
            folder = root / "unlabelled"
        else:
            continue
        counts[label] += 1
        folder.mkdir(exist_ok=True)
        path = folder / f"{i:05d}.png"
        Image.fromarray(images[i]).save(path)
        written.append(path)
    return written


TINY = ["data.name=folder", "data.val_fraction=0.2", "data.binarize=none", "model.architecture=conv",
        "model.latent_dim=8", "model.width=8", "model.hidden=32", "model.likelihood=bernoulli",
        "objective.kind=m2", "objective.alpha=5", "semi_supervised.latent_dim=4", "semi_supervised.hidden=32",
        "trainer.max_steps=20", "trainer.batch_size=16", "trainer.eval_every=20", "trainer.eval_batches=0",
        "trainer.samples=0", "trainer.threads=1", "trainer.progress=false", "eval.iw_samples=0",
        "latent.sampler=prior", "latent.sampler_components=10", "trainer.keep_best=false", "trainer.max_minutes=null"]


@pytest.mark.slow
def test_m2_and_m1_m2_train_evaluate_and_classify_a_folder_with_unlabelled_images(tmp_path, capsys):
    files = digit_folder(tmp_path / "digits", per_class=12, unlabelled=60)
    recipe = str(Path(__file__).resolve().parents[1] / "recipes" / "image" / "folder.yaml")
    root = f"data.root={tmp_path / 'digits'}"
    assert main(["train", recipe, root, *TINY, "--out", str(tmp_path / "m2")]) == 0
    assert main(["eval", str(tmp_path / "m2")]) == 0
    result = json.loads((tmp_path / "m2" / "eval-test.json").read_text())
    assert 0.0 <= result["class_error"] <= 100.0 and result["n_examples"] > 0  # only labelled test images count
    capsys.readouterr()
    inputs = [str(files[0]), str(files[-1])]
    assert main(["classify", str(tmp_path / "m2"), *inputs]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == inputs
    assert all(line.split("\t")[1] in ("0", "1", "2") and 0 < float(line.split("\t")[2]) <= 1 for line in lines)

    m1 = [arg for arg in TINY if not arg.startswith(("objective.", "semi_supervised."))]
    assert main(["train", recipe, root, *m1, "--out", str(tmp_path / "m1")]) == 0
    assert main(["train", recipe, root, *TINY, "semi_supervised.labelled=3",
                 f"semi_supervised.codes_from={tmp_path / 'm1'}", "--out", str(tmp_path / "m1m2")]) == 0
    capsys.readouterr()
    assert main(["classify", str(tmp_path / "m1m2"), inputs[0]]) == 0
    assert capsys.readouterr().out.startswith(inputs[0] + "\t")
    assert main(["train", recipe, root, *TINY, "semi_supervised.labelled=60", "--out", str(tmp_path / "big")]) == 2
    assert "asks 20 labelled examples of each class, but class '0' has" in capsys.readouterr().err
    assert main(["classify", str(tmp_path / "m1"), inputs[0]]) == 2
    assert "not a semi-supervised run" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "m2"), "-n", "2"]) == 2
    assert "a semi-supervised (objective.kind m2) run; `vaekit sample` works on a VAE run" in capsys.readouterr().err
    if importlib.util.find_spec("gradio") is not None:
        with socket.socket() as probe:  # a free port: the run is refused after the port is checked
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        assert main(["demo", str(tmp_path / "m2"), "--port", str(port)]) == 2
        assert "a semi-supervised (objective.kind m2) run; `vaekit demo` works on a VAE run" in capsys.readouterr().err


def test_a_speech_folder_whose_metadata_leaves_labels_empty_gives_unlabelled_clips(tmp_path):
    recordings = MNIST.parent / "fsdd" / "recordings"
    rows = ["file,label,speaker"]
    for digit in (0, 1):
        for take in range(12):
            name = f"{digit}_jackson_{take}.wav"
            shutil.copyfile(recordings / name, tmp_path / name)
            rows.append(f"{name},{digit if take < 4 else ''},jackson")  # 4 labelled clips per digit, 8 without
    (tmp_path / "metadata.csv").write_text("\n".join(rows) + "\n")
    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "speech" / "folder.yaml",
                         [f"data.root={tmp_path}", f"data.metadata={tmp_path / 'metadata.csv'}", "objective.kind=m2",
                          "semi_supervised.labelled=2", "trainer.samples=0", "data.val_fraction=0.2",
                          "data.test_fraction=0.2"])
    data = build_recipe_data(get_plugin("speech"), recipe, tmp_path / "assets")
    classes = [int(data.train[i]["c"]) for i in range(len(data.train))]
    labels = [int(data.train[i]["label"]) for i in range(len(data.train))]
    assert sorted(set(classes)) == [-1, 0, 1] and classes.count(0) == classes.count(1)
    assert -1 in labels  # clips with an empty label in metadata.csv are unlabelled, whatever the draw
    assert data.info["semi_supervised"]["class_names"] == ["0", "1"]
    with pytest.raises(RecipeError, match="asks 5 labelled examples of each class"):
        more = dataclasses.replace(recipe, semi_supervised=dataclasses.replace(recipe.semi_supervised, labelled=10))
        build_recipe_data(get_plugin("speech"), more, tmp_path / "assets")
