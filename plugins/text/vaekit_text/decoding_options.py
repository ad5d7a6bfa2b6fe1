"""The decoding options of the text verbs: their CLI arguments and the check of the values given."""

from __future__ import annotations

from .decoding import BEAM_SIZE, LENGTH_PENALTY


def decoding_arguments(parser) -> None:
    parser.add_argument("--strategy", choices=["greedy", "sample", "beam"], default="greedy",
                        help="next-token choice: greedy (argmax), sample, or beam search (default: greedy)")
    parser.add_argument("--beam-size", dest="beam_size", type=int, default=None,
                        help=f"partial sentences --strategy beam keeps (default {BEAM_SIZE})")
    parser.add_argument("--length-penalty", dest="length_penalty", type=float, default=None,
                        help="--strategy beam ranks sentences by log p / length ** this (default "
                             f"{LENGTH_PENALTY:g}: nats per token; 0: the whole sentence's log p)")
    # The sampling options default to None, not to their values, so that one given beside another strategy
    # (which would ignore it) can be told from one left alone
    parser.add_argument("--token-temperature", dest="token_temperature", type=float, default=None,
                        help="softmax temperature of --strategy sample (default 1); the engine's --temperature "
                             "scales the latents' spread, as in every plugin")
    parser.add_argument("--top-k", dest="top_k", type=int, default=None,
                        help="--strategy sample draws among the k best tokens (default 0: all)")
    parser.add_argument("--top-p", dest="top_p", type=float, default=None,
                        help="--strategy sample's nucleus mass (default 1: off)")
    parser.add_argument("--max-length", dest="max_length", type=int, default=None,
                        help="most tokens per sentence (default: the recipe's data.max_length)")


def decoding_options(options: dict) -> dict:
    """The decoding options that were given, checked (a bad value names its CLI option); --token-temperature is
    decoding's temperature."""
    chosen = {key: options[key] for key in ("strategy", "token_temperature", "top_k", "top_p", "max_length",
                                            "beam_size", "length_penalty") if options.get(key) is not None}
    checks = {"strategy": (lambda v: v in ("greedy", "sample", "beam"), "--strategy: expected greedy, sample or beam"),
              "token_temperature": (lambda v: v > 0, "--token-temperature: expected a number > 0"),
              "top_k": (lambda v: v >= 0, "--top-k: expected 0 (off) or more"),
              "top_p": (lambda v: 0 < v <= 1, "--top-p: expected a probability in (0, 1]"),
              "max_length": (lambda v: v >= 1, "--max-length: expected at least 1 token"),
              "beam_size": (lambda v: v >= 1, "--beam-size: expected at least 1"),
              "length_penalty": (lambda v: v >= 0, "--length-penalty: expected a number >= 0")}
    for key, value in chosen.items():
        ok, message = checks[key]
        if not ok(value):
            raise ValueError(f"{message}, got {value!r}")
    for keys, strategy in ((("beam_size", "length_penalty"), "beam"),
                           (("token_temperature", "top_k", "top_p"), "sample")):
        for key in keys:
            if key in chosen and chosen.get("strategy", "greedy") != strategy:
                raise ValueError(f"--{key.replace('_', '-')}: only with --strategy {strategy}")
    if "token_temperature" in chosen:
        chosen["temperature"] = chosen.pop("token_temperature")
    return chosen
