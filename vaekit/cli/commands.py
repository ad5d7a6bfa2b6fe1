"""The command line: vaekit train | eval | sample | reconstruct | interpolate | plugins (+ plugin verbs).

    vaekit train recipes/image/shapes.yaml trainer.max_steps=300
    vaekit eval runs/shapes --iw-samples 1000
    vaekit sample runs/shapes -n 64
    vaekit plugins

Verbs that take a RUN (a run folder, one of its checkpoints or a save_pretrained folder) also take
the options of that run's plugin: `vaekit sample RUN --help` lists them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

import torch

from .. import _startup
from .._version import __version__
from ..config.reading import RecipeError
from ..config.recipe import load_recipe
from ..evaluation.disentanglement import disentanglement
from ..evaluation.encode import encode_files, encode_split
from ..evaluation.evaluate import evaluate
from ..evaluation.samplers import use_recipe_sampler
from ..io.checkpoint import CheckpointError, read_json, read_newest
from ..io.messages import one_line as cut_to_one_line
from ..io.safe_writes import atomic_write_text, describe
from ..plugin import PluginError, get_plugin, list_plugins, plugin_status, plugins_with_verb, report_skipped
from ..runs import build_recipe_data, load, run_recipe
from ..training.memory import keep_freed_memory
from ..training.stop_signals import STOP_SIGNALS, Interrupted, keep_swallowed_stops, raise_swallowed_stop
from ..training.trainer import train
from .engine_verbs import ENGINE_VERBS, engine_verb
from .parsers import MAX_ERROR, RUN_VERBS, Parser, at_least, run_parser, train_parser

EXPECTED_ERRORS = (RecipeError, PluginError, CheckpointError, ValueError, OSError, RuntimeError)


def _plugin_name_of(run: str) -> str:
    def plugin_name(folder: Path) -> str:
        config = read_json(folder / "config.json")
        if "plugin" not in config:
            raise CheckpointError(f"{folder / 'config.json'}: missing key 'plugin'")
        return config["plugin"]

    return read_newest(run, plugin_name)  # a run that trains may prune the checkpoint it lists first


def _first_positional(args: list[str]) -> str | None:
    return next((a for a in args if not a.startswith("-")), None)


# -- verbs -----------------------------------------------------------------------------------------

def cmd_train(argv: list[str]) -> int:
    args = train_parser().parse_intermixed_args(argv)
    overrides = list(args.overrides) + ([f"trainer.device={args.device}"] if args.device else [])
    recipe = load_recipe(args.recipe, overrides)
    run_dir = args.out or Path("runs") / (recipe.name or Path(args.recipe).stem)
    try:
        blocking = next((p for p in (run_dir, *run_dir.parents) if p.exists() and not p.is_dir()), None)
    except OSError as exc:  # a name longer than the file system allows, say
        raise ValueError(f"--out {run_dir}: {describe(exc)}; expected a run folder (new or existing)") from None
    if blocking is not None:
        raise ValueError(f"--out {run_dir}: {blocking} is a file; expected a run folder (new or existing)")

    def stop_while_setting_up(signum, frame):  # the trainer's own handler takes over once its loop starts
        quiet = int(os.environ.get("RANK", "0")) != 0
        raise Interrupted("" if quiet else f"vaekit: stopped by {signal.Signals(signum).name} while setting up "
                          f"the run; nothing was trained", signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            if signum != signal.SIGINT:  # SIGINT already raises KeyboardInterrupt ("vaekit: interrupted")
                previous[signum] = signal.signal(signum, stop_while_setting_up)
    try:
        summary = train(recipe, run_dir, resume=args.resume)
    except Interrupted:
        # The run stopped on a signal and its checkpoint is written: one that comes now changes nothing.
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
        previous = {}
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run folder: {run_dir}")
        _print_summary(summary)
    return 0


def cmd_eval(args, model, plugin) -> int:
    from torch.utils.data import DataLoader

    recipe = run_recipe(args.run, args.overrides)
    split = args.split or recipe.eval.split
    k = recipe.eval.iw_samples if args.iw_samples is None else args.iw_samples
    data = build_recipe_data(plugin, recipe, Path(model.config["assets_dir"]))
    report_skipped(data, None)
    dataset = {"test": data.test, "val": data.val, "train": data.train}[split]
    if dataset is None:
        raise ValueError(f"--split {split}: the plugin has no {split} split for this recipe")
    limit = args.max_examples or recipe.eval.max_examples
    if limit:
        dataset = torch.utils.data.Subset(dataset, range(min(limit, len(dataset))))
    loader = DataLoader(dataset, batch_size=args.batch_size or recipe.eval.batch_size, shuffle=False,
                        collate_fn=data.collate)
    options = _plugin_options(args, recipe)  # before the long part, so a bad value stops it at once
    summary = evaluate(model, loader, iw_samples=k, progress=True, description=f"eval {split} (k={k})",
                       refine_steps=args.refine_steps)
    if not hasattr(model, "class_logits"):  # M2 (its class_error is in the summary) wraps the plugin's networks
        summary.update(plugin.eval_metrics(model, loader, summary, **options))
        summary.update(disentanglement(model, dataset, data.collate))  # {} unless the data set knows its factors
    summary.update({"split": split, "iw_samples": k, "refine_steps": args.refine_steps,
                    "model": str(Path(model.config["assets_dir"]).parent)})  # the weights loaded: latest or best
    output = args.output or Path(args.run) / f"eval-{split}.json"
    atomic_write_text(output, json.dumps(summary, indent=2))  # never through a link planted in the run
    _print_summary(summary)
    print(f"written: {output}")
    return 0


def _plugin_options(args, recipe=None) -> dict:
    """The plugin's flags; the recipe's eval.options (names checked when it was read) stand in for flags left at
    their default."""
    actions = getattr(args, "_plugin_actions", {})
    options = {dest: getattr(args, dest) for dest in actions}
    for key, value in (recipe.eval.options if recipe is not None else {}).items():
        action = actions.get(key)
        if action is None:  # a plugin flag that shares an engine flag's name: the engine's own eval keys set it
            raise RecipeError(f"{recipe.source}: eval.options.{key}: not a plugin flag of `vaekit eval` here")
        if options[key] != action.default:
            continue  # given on the command line
        try:
            options[key] = action.type(value) if action.type is not None and value is not None else value
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise RecipeError(f"{recipe.source}: eval.options.{key}: {exc}") from None
    return options


def _out_dir(args, verb: str) -> Path:
    return args.out_dir or Path(args.run) / "outputs" / verb


def _condition(args, model, plugin):
    text = getattr(args, "condition", None)
    return None if text is None else plugin.parse_condition(text, model).to(model.device)


def cmd_artifacts(verb: str, args, model, plugin) -> list[Path]:
    options = _plugin_options(args)
    if verb == "sample":
        record = use_recipe_sampler(model, plugin, args.sampler, args.components, args.fit_examples)
        if record is not None:
            print(f"sampler: {record}", file=sys.stderr)
        return plugin.sample(model, args.num, _condition(args, model, plugin), _out_dir(args, verb),
                             temperature=args.temperature, **options)
    if verb == "reconstruct":
        return plugin.reconstruct(model, args.inputs, _condition(args, model, plugin), _out_dir(args, verb),
                                  **options)
    if verb == "traverse":
        return plugin.traverse(model, _out_dir(args, verb), input=args.input, dims=args.dims, span=args.span,
                               steps=args.steps, **options)
    return plugin.interpolate(model, args.a, args.b, _out_dir(args, verb), steps=args.steps, method=args.method,
                              **options)


def cmd_encode(args, model, plugin) -> list[Path]:
    out = args.output or Path(args.run) / "outputs" / "encode" / "codes.npy"
    if bool(args.inputs) == bool(args.split):
        raise ValueError("vaekit encode: give input files (or sentences) or --split, not both and not neither")
    if args.inputs:
        return encode_files(plugin, model, list(args.inputs), out)
    from torch.utils.data import DataLoader

    recipe = run_recipe(args.run)
    data = build_recipe_data(plugin, recipe, Path(model.config["assets_dir"]))
    dataset = {"test": data.test, "val": data.val, "train": data.train}[args.split]
    if dataset is None:
        raise ValueError(f"--split {args.split}: the plugin has no {args.split} split for this recipe")
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False, collate_fn=data.collate)
    return encode_split(model, loader, out, args.split)


def cmd_plugins(argv: list[str]) -> int:
    Parser(prog="vaekit plugins", description="List installed plugins and whether they load."
                            ).parse_args(argv)
    entries = list_plugins()
    if not entries:
        print("no plugins installed (pip install -e plugins/image, or a vaekit plugin package)")
        return 0
    rows = [(e.name, e.distribution, e.version, plugin_status(e)) for e in entries]
    widths = [max(len(r[i]) for r in rows + [("name", "distribution", "version", "status")]) for i in range(3)]
    print(f"{'name':<{widths[0]}}  {'distribution':<{widths[1]}}  {'version':<{widths[2]}}  status")
    for name, distribution, version, status in rows:
        print(f"{name:<{widths[0]}}  {distribution:<{widths[1]}}  {version:<{widths[2]}}  {status}")
    return 0


def _print_summary(summary: dict) -> None:
    for key, value in summary.items():
        if key == "kl_per_dim":
            continue
        print(f"  {key:<16} {value:.4f}" if isinstance(value, float) else f"  {key:<16} {value}")


def _verb_plugin(verb: str, run: str | None, argv: list[str]):
    """The plugin whose options a verb takes: the RUN's; for a plugin verb's --help without a RUN, its owner's."""
    wants_help = bool({"-h", "--help"} & set(argv))
    if run is not None and (Path(run).exists() or not wants_help):
        return get_plugin(_plugin_name_of(run))
    if verb in RUN_VERBS:
        return None
    owners = plugins_with_verb(verb)
    if len(owners) > 1:
        raise PluginError(f"{verb}: added by several plugins ({', '.join(p.name for p in owners)}); "
                          f"give a RUN: vaekit {verb} RUN --help")
    return owners[0] if owners else None


def cmd_run_verb(verb: str, argv: list[str], plugin=None) -> int:
    run = _first_positional(argv)
    plugin = plugin or _verb_plugin(verb, run, argv)
    extra = plugin.commands() if plugin is not None else {}
    if verb in RUN_VERBS:
        parser = run_parser(verb, plugin)
    else:
        add_arguments, run_verb = extra[verb]
        parser = Parser(prog=f"vaekit {verb}", description=(run_verb.__doc__ or "").strip()
                                         or f"{verb}: a verb of the {plugin.name} plugin")
        parser.add_argument("run", help="run folder, checkpoint folder or save_pretrained folder")
        parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps")
        parser.add_argument("--seed", type=at_least(0), default=0, help="random seed (default 0)")
        add_arguments(parser)
    args = parser.parse_intermixed_args(argv) if verb == "eval" else parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model, plugin = load(args.run, device=args.device)
    if verb == "eval":
        return cmd_eval(args, model, plugin)
    if hasattr(model, "class_logits"):  # the plugin's verbs read its own networks, which M2 wraps in its own
        raise PluginError(f"{args.run}: a semi-supervised (objective.kind m2) run; `vaekit {verb}` works on a VAE "
                          "run: use `vaekit classify` or `vaekit eval` on this one")
    if verb == "encode":
        files = cmd_encode(args, model, plugin)
    elif verb in RUN_VERBS:
        files = cmd_artifacts(verb, args, model, plugin)
    else:
        files = extra[verb][1](model, plugin, args)
    for path in files or []:
        print(path)
    return 0


def one_line(exc: BaseException) -> str:
    """An exception's message as one error line of at most MAX_ERROR characters; a file system error (a read-only
    file system, a name too long) as the path and the reason."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return cut_to_one_line(f"{exc.filename}: {describe(exc)}", MAX_ERROR)
    return cut_to_one_line(exc, MAX_ERROR)


USAGE = """usage: vaekit VERB ...

verbs:
  train RECIPE [KEY=VALUE ...] [--out DIR] [--resume]   train a recipe into runs/<name>
  eval RUN [--iw-samples K] [--split test]              likelihood numbers of a trained model
  sample RUN -n N [--condition C] [--temperature T]    samples from the prior (--sampler gmm: a fitted mixture)
  reconstruct RUN INPUT... [--condition C]            encode and decode inputs
  interpolate RUN A B [--steps N] [--method slerp]     walk the latent space between two inputs
  traverse RUN [--input X] [--dims 0,1]                what each latent unit changes
  encode RUN INPUT... [--split test] [-o codes.npy]    posterior means as .npy + a 2-D map by label
  plugins                                              installed modality plugins
{engine_verbs}  VERB RUN ...                                         extra verbs a run's plugin provides

`vaekit VERB --help` describes each verb (a plugin's verbs too, with no RUN); `python -m vaekit` works the same.
""".format(engine_verbs="".join(f"  {v.synopsis:<53}{v.summary}\n" for v in ENGINE_VERBS.values()))


def _run_verb(verb: str, rest: list[str]) -> int:
    """Dispatch one verb (train, plugins, a run verb or a plugin's own); returns the exit status."""
    keep_freed_memory()
    if verb == "train":
        return cmd_train(rest)
    if verb == "plugins":
        return cmd_plugins(rest)
    if verb in RUN_VERBS:
        return cmd_run_verb(verb, rest)
    if (run_engine_verb := engine_verb(verb)) is not None:
        return run_engine_verb(rest)
    run = _first_positional(rest)
    if run is not None and Path(run).exists():
        plugin = get_plugin(_plugin_name_of(run))
        if verb in plugin.commands():
            return cmd_run_verb(verb, rest, plugin)
        raise PluginError(f"unknown verb {verb!r}; plugin {plugin.name!r} adds: "
                          f"{', '.join(plugin.commands()) or 'none'}")
    owners = plugins_with_verb(verb) if not verb.startswith("-") else []
    if owners:  # a plugin verb: its help needs no RUN; a missing RUN is the loader's one-line error
        return cmd_run_verb(verb, rest, owners[0] if len(owners) == 1 else None)
    print(USAGE, file=sys.stderr)
    print(f"vaekit: error: unknown verb {verb!r}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of `vaekit` and `python -m vaekit`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():  # start-up is over (see vaekit/_startup.py)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is _startup.quit_quietly:
                signal.signal(getattr(signal, name), _startup.raise_stopped)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"vaekit {__version__}")
        return 0
    verb, rest = argv[0], argv[1:]
    try:  # from here a stop signal is one line, whenever it lands (it once landed inside keep_freed_memory)
        with keep_swallowed_stops():  # even inside a __del__, where Python would print a traceback
            status = _run_verb(verb, rest)
            raise_swallowed_stop()
            return status
    except EXPECTED_ERRORS as exc:
        if os.environ.get("VAEKIT_DEBUG"):
            raise
        print(f"vaekit: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # the trainer's Interrupted carries its own line (and may be silent)
        message = str(exc) if exc.args else "vaekit: interrupted"
        if message:
            print(message, file=sys.stderr)
        return getattr(exc, "exit_code", 130)


if __name__ == "__main__":
    sys.exit(main())
