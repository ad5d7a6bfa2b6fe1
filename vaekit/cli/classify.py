"""`vaekit classify RUN INPUT...`: the class a semi-supervised run (objective.kind m2) gives each input file.

    vaekit classify runs/mnist_m1m2 three.png seven.png
    three.png	3	0.994

One line per example: the input, the most likely class under q(y|x) and its probability. Inputs are read by the
run's plugin (its load_inputs: image files, audio files, sentences); an input holding several examples (a text
file of sentences) gives a line for each, numbered INPUT#N.
"""

from __future__ import annotations

from ..evaluation.classification import classify_inputs
from ..runs import load
from .parsers import Parser


def main(argv: list[str]) -> int:
    parser = Parser(prog="vaekit classify", description="Print the class a semi-supervised run gives each input.")
    parser.add_argument("run", help="run folder (or checkpoint) trained with objective.kind m2")
    parser.add_argument("inputs", nargs="+", help="input files (or sentences for text)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps")
    args = parser.parse_args(argv)
    model, plugin = load(args.run, args.device)
    for name, label, probability in classify_inputs(model, plugin, args.inputs, args.run):
        print(f"{name}\t{label}\t{probability:.3f}")
    return 0
