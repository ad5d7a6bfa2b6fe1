"""The command line's parsers: one-line argparse errors, the engine's options of `vaekit train` and of every
verb that takes a RUN (eval, sample, reconstruct, interpolate, traverse, encode), with the run's plugin's own.

    args = run_parser("sample", plugin).parse_intermixed_args(["runs/mnist", "-n", "64"])

`at_least` is the argparse type plugins use too (vaekit.plugin_api.at_least): one meaning of a count everywhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..evaluation.latent_paths import METHODS
from ..io.messages import one_line as cut_to_one_line
from ..plugin import PluginError

RUN_VERBS = ("eval", "sample", "reconstruct", "interpolate", "traverse", "encode")
MAX_ERROR = 1000  # characters of an error line; recipe errors already quote at most 200 of a value


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the mistake and where to look, not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {cut_to_one_line(message, MAX_ERROR)} (see {self.prog} --help)\n")


def at_least(low: float, kind: type = int):
    """An argparse type: an integer (or with kind=float a finite number) >= low; argparse names the option in its
    one-line error."""
    noun = "an integer" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun} >= {low:g}, got {text[:200]!r}") from None
        if not low <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"expected {noun} >= {low:g}, got {text[:200]}")
        return value
    parse.__name__ = f"{noun.split()[1]} >= {low:g}"
    return parse


def train_parser() -> argparse.ArgumentParser:
    p = Parser(prog="vaekit train", description="Train a recipe into a run folder.")
    p.add_argument("recipe", help="recipe YAML file, e.g. recipes/image/shapes.yaml")
    p.add_argument("overrides", nargs="*", help="recipe overrides KEY=VALUE, e.g. trainer.epochs=20 model.latent_dim=8")
    p.add_argument("--out", type=Path, help="run folder (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue the run folder's last checkpoint exactly")
    p.add_argument("--device", help="override trainer.device: cpu, cuda, cuda:1, mps")
    return p


def run_parser(verb: str, plugin=None) -> argparse.ArgumentParser:
    descriptions = {
        "eval": "ELBO, KL, importance-sampled NLL (nats), active units, MI and the plugin's metrics.",
        "sample": "Draw samples from the prior and write them as files.",
        "reconstruct": "Encode and decode inputs (files or text) and write input beside output.",
        "interpolate": "Decode points along the latent path between two inputs.",
        "traverse": "Move each latent unit over a span around a base point, the others kept, and decode.",
        "encode": "Posterior means of inputs (or a data split) as a .npy array, with a 2-D PCA map by label.",
    }
    p = Parser(prog=f"vaekit {verb}", description=descriptions.get(verb),
                                epilog=None if plugin else f"Plugin options: vaekit {verb} RUN --help")
    p.add_argument("run", help="run folder, checkpoint folder or save_pretrained folder")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps")
    p.add_argument("--seed", type=at_least(0), default=0, help="random seed (default 0)")
    if verb == "eval":
        p.add_argument("--iw-samples", type=at_least(0),
                       help="importance samples per example (default: the recipe's eval; 0 = skip the NLL)")
        p.add_argument("--refine-steps", type=at_least(0), default=0,
                       help="refine each example's q(z|x) by N Adam steps on its ELBO before importance "
                            "sampling: a tighter NLL of the same model, also reported as nll_amortized "
                            "without (default 0: the encoder's q)")
        p.add_argument("--split", choices=["test", "val", "train"], help="data split (default: the recipe's eval)")
        p.add_argument("--batch-size", type=at_least(1), help="examples per batch")
        p.add_argument("--max-examples", type=at_least(1), help="evaluate only the first N examples")
        p.add_argument("--output", type=Path, help="JSON file for the results (default: RUN/eval-SPLIT.json)")
        p.add_argument("overrides", nargs="*", help="recipe overrides KEY=VALUE for the data, e.g. data.root=...")
    elif verb == "encode":
        p.add_argument("inputs", nargs="*", help="input files (or sentences for text); or give --split")
        p.add_argument("--split", choices=["test", "val", "train"], help="encode this split of the run's data")
        p.add_argument("--batch-size", type=int, default=100, help="examples per batch with --split")
        p.add_argument("-o", "--output", type=Path, help="codes file (default: RUN/outputs/encode/codes.npy)")
    else:
        p.add_argument("-o", "--out-dir", type=Path, help=f"output folder (default: RUN/outputs/{verb})")
    if verb == "sample":
        p.add_argument("-n", "--num", type=at_least(1), default=16, help="number of samples (default 16)")
        p.add_argument("--condition", help="condition for a conditional model, e.g. 3 or speaker=jackson")
        p.add_argument("--temperature", type=at_least(0, kind=float), default=1.0,
                       help="scale of the spread of the latents drawn (default 1; 0: the prior's mean, or a "
                            "mixture's component means)")
        p.add_argument("--sampler", choices=["prior", "gmm", "pixelcnn"],
                       help="prior, gmm (a Gaussian mixture fitted to the training set's codes) or pixelcnn (an "
                            "autoregressive prior over a spatial latent's pixels), kept in RUN/samplers/ "
                            "(default: the recipe's latent.sampler, else prior)")
        p.add_argument("--components", type=int,
                       help="gmm, pixelcnn: mixture components (default: latent.sampler_components, else 10)")
        p.add_argument("--fit-examples", type=int,
                       help="gmm: training examples to fit on, 0 = all (default: latent.sampler_examples, else 0)")
    if verb == "reconstruct":
        p.add_argument("inputs", nargs="+", help="input files (or sentences for text)")
        p.add_argument("--condition", help="decode under this condition (e.g. voice conversion)")
    if verb == "interpolate":
        p.add_argument("a", help="first input (file or sentence)")
        p.add_argument("b", help="second input (file or sentence)")
        p.add_argument("--steps", type=at_least(2), default=8,
                       help="points on the latent path, both ends included (default 8)")
        p.add_argument("--method", choices=METHODS, default="linear",
                       help="linear or slerp (spherical) interpolation between the posterior means")
    if verb == "traverse":
        p.add_argument("--input", help="input (file or sentence) whose posterior mean is the base point "
                                       "(default: image, the first test image of the run's data; else the prior mean)")
        p.add_argument("--dims", help="latent units to vary, e.g. 0,1,2 (default: all)")
        p.add_argument("--span", type=at_least(0, kind=float), default=3.0,
                       help="move each unit by -span to +span around the base point's value (default 3)")
        p.add_argument("--steps", type=at_least(2), default=9,
                       help="points along each unit, both ends included (default 9)")
    if plugin is not None:
        before = {a.dest for a in p._actions}
        if verb in RUN_VERBS:
            try:
                plugin.add_arguments(verb, p)
            except argparse.ArgumentError as exc:  # a plugin written before the engine took over an option
                raise PluginError(f"plugin {plugin.name!r}: its `{verb}` options clash with the engine's ({exc}); "
                                  "the engine gives every plugin sample's --temperature, interpolate's --steps "
                                  "and --method, and traverse's --input, --dims, --span and --steps") from None
        p.set_defaults(_plugin_actions={a.dest: a for a in p._actions if a.dest not in before})
    return p
