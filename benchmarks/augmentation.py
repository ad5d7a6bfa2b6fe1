"""Augmentation: does a CVAE's output help a small classifier that has 1% of the training labels? MNIST, CIFAR-10, FSDD.

    python benchmarks/augmentation.py                        # MNIST, CIFAR-10 and FSDD, seeds 0,1,2 (CPU)
    python benchmarks/augmentation.py --data mnist --seeds 0 # one data set, one seed
    python benchmarks/augmentation.py --smoke                # a few steps on tiny subsets: checks the script

For each data set and seed: N labelled training examples per class (1% of the training labels, drawn per class with
the seed) are written as a class-folder data set; the data set's CVAE recipe, made small, trains on them alone (a
label CVAE has no use for unlabelled examples); `vaekit sample RUN --per-class K --format folder` writes K generated
examples per class; then one small classifier is trained three times from the same initialisation for the same
number of steps (ARMS): on the N real examples per class alone, on them pooled with the K generated ones, and on
batches half real and half generated; each is scored on the whole test split. gain (pooled) and gain_half are the
accuracy minus the real-only one, in percentage points; the result file gives their mean and spread (sample standard
deviation) over the seeds, and whether a mean gain is beyond two spreads. One result file per data set:
augmentation_mnist.json, augmentation_cifar10.json, augmentation_fsdd.json. A --work-dir that already holds a seed's
finished CVAE and its samples reuses them (only the classifiers train again), and a seed's finished figures
(SEED-FOLDER/result.json, for the same settings): seeds may run as separate processes (--seed N) into one --work-dir,
then one run over all of them writes the result file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch
from common import (
    QUIET,
    add_common_flags,
    budget,
    data_dir,
    device_name,
    load_recipe,
    load_trained,
    log,
    train_and_load,
    work_folder,
    write_result,
)
from torch.nn import functional as F


@dataclass
class Setting:
    """One data set's benchmark: the CVAE recipe and its small-model overrides, N, K and the step budgets."""

    recipe: str
    overrides: list[str]
    labelled_per_class: int  # N: 1% of the training labels
    generated_per_class: int  # K
    cvae_steps: int
    classifier_steps: int
    smoke: dict = field(default_factory=dict)


SETTINGS = {
    # MNIST: 60,000 training labels, 1% = 60 per digit.
    "mnist": Setting("recipes/image/mnist_cvae.yaml",
                     ["data.name=folder", "data.size=28", "data.channels=1",
                      "trainer.batch_size=64", "trainer.lr=0.001"],
                     labelled_per_class=60, generated_per_class=300, cvae_steps=600, classifier_steps=600),
    # CIFAR-10 here: 20,000 training images, 1% = 20 per class.
    "cifar10": Setting("recipes/image/cifar10_cvae.yaml",
                       ["data.size=32", "data.channels=3", "model.width=16",
                        "model.latent_dim=32", "trainer.batch_size=32", "trainer.max_minutes=null"],
                       labelled_per_class=20, generated_per_class=100, cvae_steps=800, classifier_steps=300),
    # FSDD: 2,700 training clips (indices 5-49), 1% = 3 per digit; conditioned on the digit alone.
    "fsdd": Setting("recipes/speech/fsdd_cvae.yaml",
                    ["data.val_fraction=0.01", "data.condition_on=[label]", "model.channels=[32,64,64]",
                     "model.hidden=128", "model.condition_dim=32", "trainer.batch_size=16",
                     "data.griffin_lim_iters=32"],
                    labelled_per_class=3, generated_per_class=30, cvae_steps=800, classifier_steps=400),
}
SMOKE = {"labelled_per_class": 2, "generated_per_class": 2, "cvae_steps": 2, "classifier_steps": 3}
SMOKE_BATCH = ["trainer.batch_size=4"]
SMOKE_TEST_EXAMPLES = 40  # per data set under --smoke
TINY_MODELS = {"mnist": ["model.width=8", "model.hidden=32"], "cifar10": ["model.width=8"],
               "fsdd": ["model.channels=[8,8,8]", "model.hidden=16", "data.n_mels=32", "data.n_fft=256",
                        "data.griffin_lim_iters=2"]}


# ---------------------------------------------------------------- the labelled examples, as class folders


def per_class_draw(labels: list[int], per_class: int, seed: int) -> list[int]:
    """Indices of `per_class` examples of every class, drawn with the seed (in increasing order)."""
    rng = random.Random(seed)
    chosen = []
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        chosen += rng.sample(members, min(per_class, len(members)))
    return sorted(chosen)


def mnist_folder(out: Path, per_class: int, seed: int, test_examples: int | None):
    """N MNIST training digits per class as out/train/<digit>/*.png (test/: 2 per class, for the folder layout);
    (real train images uint8 [N*10, 1, 28, 28], labels, test images, test labels, class names)."""
    from vaekit_image.images import save_png
    from vaekit_image.mnist import MNIST_FILES, read_idx

    root = data_dir() / "mnist"
    arrays = {key: torch.from_numpy(read_idx(root / name).copy()) for key, name in MNIST_FILES.items()}
    images, labels = arrays["train_images"][:, None], arrays["train_labels"].long()
    chosen = per_class_draw(labels.tolist(), per_class, seed)
    for i in chosen:
        save_png(images[i], out / "train" / str(int(labels[i])) / f"{i:05d}.png")
    for i in per_class_draw(labels.tolist(), 2, seed + 1_000):  # the CVAE run's own test split, unused here
        save_png(images[i], out / "test" / str(int(labels[i])) / f"{i:05d}.png")
    test_images, test_labels = arrays["test_images"][:, None], arrays["test_labels"].long()
    if test_examples is not None:
        test_images, test_labels = test_images[:test_examples], test_labels[:test_examples]
    return images[chosen], labels[chosen], test_images, test_labels, [str(d) for d in range(10)]


def cifar10_folder(out: Path, per_class: int, seed: int, test_examples: int | None):
    """N CIFAR-10 training images per class copied to out/train/<class>/ (test/: 2 per class); as mnist_folder."""
    from vaekit_image.folders import list_image_files
    from vaekit_image.images import load_image

    root = data_dir() / "cifar10"
    files, labels, names = list_image_files(root / "train")
    chosen = per_class_draw(labels, per_class, seed)
    for split, picked in (("train", chosen), ("test", per_class_draw(labels, 2, seed + 1_000))):
        for i in picked:
            target = out / split / names[labels[i]] / files[i].name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files[i], target)
    test_files, test_labels, test_names = list_image_files(root / "test")
    assert test_names == names, "cifar10: test/ and train/ name different classes"
    if test_examples is not None:  # a spread of classes, not the first class's files
        keep = per_class_draw(test_labels, -(-test_examples // len(names)), 0)
        test_files, test_labels = [test_files[i] for i in keep], [test_labels[i] for i in keep]
    train = torch.stack([load_image(files[i], 32, 3) for i in chosen])
    test = torch.stack([load_image(path, 32, 3) for path in test_files])
    return train, torch.tensor([labels[i] for i in chosen]), test, torch.tensor(test_labels), names


def fsdd_folder(out: Path, per_class: int, seed: int, test_examples: int | None) -> None:
    """N FSDD training clips per digit (indices 6-49, any speaker), every test clip (indices 0-4) and one clip of
    index 5 copied to out/: the CVAE run validates on the lowest training index, that one clip."""
    from vaekit_speech.data_config import FSDD_NAME

    recordings = sorted((data_dir() / "fsdd" / "recordings").glob("*.wav"))
    parsed = [(path, FSDD_NAME.match(path.stem)) for path in recordings]
    test = [path for path, m in parsed if int(m.group(3)) < 5]
    pool = [(path, int(m.group(1))) for path, m in parsed if int(m.group(3)) >= 6]
    chosen = [pool[i][0] for i in per_class_draw([digit for _, digit in pool], per_class, seed)]
    chosen.append(random.Random(seed).choice([path for path, m in parsed if int(m.group(3)) == 5]))
    if test_examples is not None:
        test = test[::max(1, len(test) // test_examples)][:test_examples]
    out.mkdir(parents=True, exist_ok=True)
    for path in chosen + test:
        shutil.copyfile(path, out / path.name)


# ---------------------------------------------------------------- generated examples, read back from the files


def sample_folder(run: Path, per_class: int, out: Path) -> None:
    """`vaekit sample RUN --per-class K --format folder -o OUT` (its list of written files kept off stdout)."""
    from vaekit.cli import main as vaekit

    with contextlib.redirect_stdout(io.StringIO()):
        rc = vaekit(["sample", str(run), "--per-class", str(per_class), "--format", "folder", "-o", str(out)])
    if rc != 0:
        raise SystemExit(f"vaekit sample {run} failed (rc {rc})")


def read_image_folder(folder: Path, names: list[str], size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images, labels) of out/<class>/*.png, labelled by the class folder's place in names."""
    from vaekit_image.images import load_image

    images, labels = [], []
    for path in sorted(folder.glob("*/*.png")):
        images.append(load_image(path, size, channels))
        labels.append(names.index(path.parent.name))
    return torch.stack(images), torch.tensor(labels)


def read_wav_folder(model, folder: Path) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(normalised log-mels [n_mels, T], labels) of out/<digit>/*.wav, read as the model reads any input file."""
    from vaekit_speech.inputs import encode_inputs

    labels_of = model.config["info"]["labels"]
    mels, labels = [], []
    for path in sorted(folder.glob("*/*.wav")):
        batch = encode_inputs(model, [str(path)])
        mels.append(batch["mel"][0, :, : int(batch["mask"][0].sum())].cpu())
        labels.append(labels_of.index(path.parent.name))
    return mels, torch.tensor(labels)


# ---------------------------------------------------------------- the classifier, trained twice


def image_classifier(channels: int, classes: int):
    from vaekit_image.metrics import SmallClassifier

    return SmallClassifier(channels, 32 if channels == 3 else 28, classes)


def image_inputs(examples: list[torch.Tensor]) -> tuple[torch.Tensor]:
    return (torch.stack(examples).float() / 255,)


def mel_classifier(n_mels: int, classes: int):
    from vaekit_speech.metrics import MelClassifier

    return MelClassifier(n_mels, classes)


def mel_inputs(examples: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    from vaekit_speech.data import pad_mels

    batch = pad_mels(examples)
    return batch["mel"], batch["mask"]


ARMS = {  # how a training batch is drawn: from the real examples alone, or with the generated ones
    "real": "the N real examples per class alone",
    "augmented": "real and generated examples pooled, each drawn alike",
    "augmented_half": "half of every batch real, half generated",
}


def draw(arm: str, real: int, generated: int, batch_size: int, generator: torch.Generator) -> list[int]:
    """Indices of one batch into real + generated examples (generated ones from index `real` on)."""
    def some(count: int, low: int, high: int) -> list[int]:
        return (low + torch.randint(high - low, (count,), generator=generator)).tolist()

    if arm == "real":
        return some(min(batch_size, real), 0, real)
    if arm == "augmented":
        return some(batch_size, 0, real + generated)
    return some(batch_size // 2, 0, real) + some(batch_size - batch_size // 2, real, real + generated)


def train_and_score(make, inputs, arm: str, examples: list, labels: torch.Tensor, real: int, test: list,
                    test_labels: torch.Tensor, steps: int, seed: int, batch_size: int = 64) -> float:
    """Test accuracy (%) of make() after `steps` Adam steps on batches drawn as `arm` says from examples (the first
    `real` of them real, the rest generated)."""
    torch.manual_seed(seed)  # the same initialisation with and without generated examples
    classifier = make()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    classifier.train()
    for _ in range(steps):
        idx = draw(arm, real, len(examples) - real, batch_size, generator)
        loss = F.cross_entropy(classifier(*inputs([examples[i] for i in idx])), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    classifier.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(test), 500):
            logits = classifier(*inputs(test[start:start + 500]))
            correct += (logits.argmax(-1) == test_labels[start:start + 500]).sum().item()
    return 100.0 * correct / len(test)


# ---------------------------------------------------------------- one seed of one data set


def run_seed(name: str, setting: Setting, seed: int, work: Path, args) -> dict:
    """Train the CVAE on N per class, sample K per class, train the classifier with and without them."""
    from vaekit.runs import build_recipe_data

    folder = work / f"{name}-{seed}"
    settings = {**setting.__dict__, "arms": list(ARMS), "smoke": args.smoke}
    if (folder / "result.json").is_file():  # this seed finished in this --work-dir with these settings
        done = json.loads((folder / "result.json").read_text())
        if done["settings"] == settings:
            log(f"{name} seed {seed}: {json.dumps(done['result'])} (from {folder / 'result.json'})")
            return done["result"]
    test_examples = SMOKE_TEST_EXAMPLES if args.smoke else None
    n, k = setting.labelled_per_class, setting.generated_per_class
    # Steps, not the recipe's epochs, end the run: an epoch of N examples per class is a few steps.
    overrides = [*setting.overrides, f"seed={seed}", *budget(setting.cvae_steps), "trainer.epochs=1000000", *QUIET,
                 f"trainer.checkpoint_every={setting.cvae_steps}", f"trainer.device={args.device}", "trainer.threads=1"]
    if args.smoke:
        overrides += [*TINY_MODELS[name], *SMOKE_BATCH]
    if name == "fsdd":
        fsdd_folder(folder / "recordings", n, seed, test_examples)
        rec = load_recipe(setting.recipe, [*overrides, f"data.root={folder / 'recordings'}"])
    else:
        make_folder = mnist_folder if name == "mnist" else cifar10_folder
        real, real_labels, test, test_labels, names = make_folder(folder / "labelled", n, seed, test_examples)
        # One labelled image is the CVAE run's validation split (a run needs one); the classifier has all of them.
        rec = load_recipe(setting.recipe, [*overrides, f"data.root={folder / 'labelled'}",
                                           f"data.val_fraction={1 / len(real)}"])
    log(f"{name} seed {seed}: CVAE on {n} labelled examples per class, {setting.cvae_steps} steps")
    if (folder / "cvae" / "checkpoints" / f"step-{setting.cvae_steps}").is_dir():  # finished in this --work-dir
        model, plugin, minutes, _ = load_trained(folder / "cvae", args.device)
    else:
        model, plugin, minutes, _ = train_and_load(rec, folder / "cvae", args.device)
    classes = len(model.config["info"]["labels"] if name == "fsdd" else names)
    if len([p for p in (folder / "generated").glob("*/*") if p.is_file()]) != k * classes:
        sample_folder(folder / "cvae", k, folder / "generated")
    if name == "fsdd":
        data = build_recipe_data(plugin, rec, Path(model.config["assets_dir"]))
        real = [data.train[i]["x"]["mel"] for i in range(len(data.train))]
        real_labels = torch.stack([data.train[i]["label"] for i in range(len(data.train))])
        test = [data.test[i]["x"]["mel"] for i in range(len(data.test))]
        test_labels = torch.stack([data.test[i]["label"] for i in range(len(data.test))])
        generated, generated_labels = read_wav_folder(model, folder / "generated")
        info = model.config["info"]
        make, inputs = (lambda: mel_classifier(info["n_mels"], len(info["labels"]))), mel_inputs
    else:
        channels = real.shape[1]
        generated, generated_labels = read_image_folder(folder / "generated", names, real.shape[-1], channels)
        real, test, generated = list(real), list(test), list(generated)
        make, inputs = (lambda: image_classifier(channels, len(names))), image_inputs
    examples, labels = real + generated, torch.cat([real_labels, generated_labels])
    result = {"seed": seed}
    for arm in ARMS:
        result[f"accuracy_{arm}"] = train_and_score(make, inputs, arm, examples, labels, len(real), test, test_labels,
                                                    setting.classifier_steps, seed)
    result.update(gain=result["accuracy_augmented"] - result["accuracy_real"],
                  gain_half=result["accuracy_augmented_half"] - result["accuracy_real"], labelled=len(real),
                  generated=len(generated), test_examples=len(test),
                  cvae_minutes=None if minutes is None else round(minutes, 2))
    log(f"{name} seed {seed}: {json.dumps(result)}")
    (folder / "result.json").write_text(json.dumps({"settings": settings, "result": result}, indent=1) + "\n")
    return result


def summarise(runs: list[dict]) -> dict:
    """Mean and spread (sample std over seeds) of each accuracy and of the gain, in percentage points."""
    out = {}
    for key in [*(f"accuracy_{arm}" for arm in ARMS), "gain", "gain_half"]:
        values = [r[key] for r in runs]
        out[key] = statistics.mean(values)
        out[f"{key}_spread"] = statistics.stdev(values) if len(values) > 1 else 0.0
    for key in ("gain", "gain_half"):
        out[f"{key}_beyond_two_spreads"] = len(runs) > 1 and out[key] > 2 * out[f"{key}_spread"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=",".join(SETTINGS), help="data sets, comma-separated: mnist, cifar10, fsdd")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--device", default="cpu")
    args = add_common_flags(p).parse_args()
    if args.seed is not None:
        args.seeds = str(args.seed)
    if args.smoke:
        args.seeds = args.seeds.split(",")[0]
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    with work_folder(args) as work:
        for name in args.data.split(","):
            setting = SETTINGS[name]
            if args.smoke:
                setting = Setting(**{**setting.__dict__, **SMOKE})
            runs = [run_seed(name, setting, seed, work, args) for seed in seeds]
            figures = {**summarise(runs), "labelled_per_class": setting.labelled_per_class,
                       "generated_per_class": setting.generated_per_class, "cvae_steps": setting.cvae_steps,
                       "classifier_steps": setting.classifier_steps, "seeds": len(runs), "runs": runs,
                       "device": device_name(args.device)}
            figures.update({f"{key}_seed{r['seed']}": r[key] for r in runs for key in ("gain", "gain_half")})
            write_result(args, f"augmentation_{name}",
                         f"Augmentation, {name}: test accuracy (%) of one small classifier on 1% of the training "
                         f"labels ({setting.labelled_per_class} per class), without and with "
                         f"{setting.generated_per_class} CVAE samples per class, the same steps",
                         figures, device=device_name(args.device),
                         headline=["gain", "gain_spread", "gain_half", "gain_half_spread", "accuracy_real"],
                         notes=f"seeds {args.seeds}; gain and accuracies in %, spread: the sample standard deviation "
                               f"over seeds; the CVAE: {setting.recipe} made small (see the script), "
                               f"{setting.cvae_steps} steps on the labelled examples alone")
            print(json.dumps({name: figures}), flush=True)


if __name__ == "__main__":
    main()
