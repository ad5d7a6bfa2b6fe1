r"""PTB: the frontier between how much the sentence latent carries and likelihood, every setting trained by vaekit.

Each setting is a recipe plus overrides, trained by the vaekit trainer with the same data order, step budget and
time limit, then evaluated on the PTB test set: importance-sampled NLL (nats per sentence) beside the language
model's (the same decoder with z unused: setting `lm`), KL, active units, mutual information, reconstruction
BLEU-4 and token accuracy of greedy decodes from the posterior mean, a homotopy check between 20 pairs of test
sentences, decoded greedily and sampled at temperature 1 (intermediate sentences distinct from their neighbours;
fluent: their NLL per word under the LM within 20% of the test set's, either way, since repetitive text scores
*lower* than real sentences; greedy text always does, so fluency is read on the sampled paths), and a degeneracy
check of 50 greedy prior samples (share of words repeating the word before). --reuse scores kept runs again.

One JSON line per setting goes to stdout, a table to stderr, and the figures of every setting to the result file
text_ptb.json (metrics SETTING_NAME; the full records in WORK/text_ptb.details.json). --jobs N trains N settings at
once as separate processes; the homotopy fluency needs the `lm` setting in the same call. `steps` in each line
says whether --max-minutes cut a setting short of --steps.

Settings (SETTINGS): lm; kl5 kl10 kl15 kl16 kl25 kl40 (objective.kl_target, the default recipe's knob:
recipes/text/ptb_lstm.yaml holds 16); ae (recipes/text/ptb_lstm_ae.yaml, the KL held at 200 nats) and ae-plain
(the same network as a plain autoencoder); transformer (recipes/text/ptb_transformer.yaml); and alternatives to
the set-point: cyclical (cyclical annealing + free bits 0.125), fb0.5 (free bits 0.5 nats/dim),
pretrain-fb0.25/0.5/1.0 (Li et al. 2019: half the budget as an autoencoder, then the VAE with free bits λ nats
per unit, its encoder started from the autoencoder's), kl15-mean (mean-pooled encoder, Long et al. 2019),
kl15-bow (bag-of-words loss, Zhao et al. 2017), kl15-aggressive (aggressive inference-network updates, He et al.
2019, trainer.aggressive_inference), kl15-last (the end-state encoder, named), kl15-enc64/128/256 (the encoder's
units per direction), ae-max (the AE-style recipe with a max-pooled encoder), ae-last (the AE-style recipe with
end states and no memory slots), kl16-fb0.05/0.1 (the set-point 16 with free bits of λ nats per unit under it).
Every setting on ptb_lstm.yaml inherits its objective.free_bits (0.1), so kl16 equals kl16-fb0.1; --set
objective.free_bits=0 removes them.

On one CPU core per setting, at the recipes' own length (20 epochs, 26,300 steps) and 256 units:

    OMP_NUM_THREADS=1 python benchmarks/text_ptb.py --settings lm,kl16-fb0.1 --steps 26300 --max-minutes 1000 \
        --eval-examples 500 --iw-samples 200 --refine-steps 100 --jobs 2 --threads 1 --seed 0 \
        --set model.hidden_dim=256                      # benchmarks/results/ptb_lstm.json
    OMP_NUM_THREADS=1 python benchmarks/text_ptb.py --settings ae --steps 26300 --max-minutes 100 \
        --eval-examples 500 --iw-samples 10 --jobs 1 --threads 1 --seed 0 \
        --set model.hidden_dim=256                      # then vaekit eval RUN --iw-samples 0 --recon-beam-size 5:
                                                        # benchmarks/results/ptb_lstm_ae.json

On one GPU (12 processes; about 7-8 minutes: 5 of training, then data loading and evaluation on all 3,761 test
sentences):

    VAEKIT_DATA=... PYTHONUNBUFFERED=1 python benchmarks/text_ptb.py --device cuda --jobs 12 --steps 8000 \
        --max-minutes 5 --eval-examples 0 --iw-samples 100 --work-dir /tmp/text_ptb --out /tmp/text_ptb \
        --settings lm,kl5,kl10,kl15,kl25,kl40,ae,transformer,cyclical,fb0.5,kl15-mean,kl15-bow

    python benchmarks/text_ptb.py --smoke          # lm and kl15, a few steps on a small network: checks the script

Read KL beside active units and MI: with β held near 0 while the KL is under its target, the KL can drift
without carrying anything. At k = 50 the NLL of high-KL settings is a loose bound; --refine-steps fits each
sentence's q(z|x) before importance sampling (nll_amortized keeps the encoder's own estimate).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from common import add_common_flags, seed_override, work_folder, write_result
from torch.utils.data import DataLoader, Subset

ROOT = Path(__file__).resolve().parents[1]
LSTM, AE, TRANSFORMER = (str(ROOT / "recipes" / "text" / f"{n}.yaml")
                         for n in ("ptb_lstm", "ptb_lstm_ae", "ptb_transformer"))

SETTINGS: dict[str, tuple[str, list[str]]] = {
    "lm": (LSTM, ["model.use_latent=false"]),
    **{f"kl{t}": (LSTM, [f"objective.kl_target={t}"]) for t in (5, 10, 15, 16, 25, 40)},
    "ae": (AE, []),
    "ae-plain": (AE, ["objective.kind=ae", "objective.kl_target=null"]),  # no noise, no KL: the code is exact
    "ae-max": (AE, ["model.encoder_pooling=max"]),  # the AE-style recipe, max over every state (Long et al.)
    "ae-last": (AE, ["model.encoder_pooling=last", "model.latent_slots=0"]),  # end states, no memory slots
    "transformer": (TRANSFORMER, []),
    "cyclical": (LSTM, ["objective.kl_target=null", "objective.free_bits=0.125", "model.word_dropout=0.0",
                        "objective.kl_schedule={kind: cyclical, n_cycles: 4, ratio: 0.5}"]),
    "fb0.5": (LSTM, ["objective.kl_target=null", "objective.free_bits=0.5", "objective.kl_schedule.kind=constant"]),
    "kl15-mean": (LSTM, ["objective.kl_target=15", "model.encoder_pooling=mean"]),
    "kl15-last": (LSTM, ["objective.kl_target=15", "model.encoder_pooling=last"]),
    "kl15-bow": (LSTM, ["objective.kl_target=15", "model.bow_weight=1.0"]),
    "kl15-aggressive": (LSTM, ["objective.kl_target=15", "trainer.aggressive_inference=true"]),
    # the set-point with free bits per unit under it: a unit below λ nats costs nothing, so the KL is not gathered
    # into a few units as training goes on
    **{f"kl16-fb{lam}": (LSTM, ["objective.kl_target=16", f"objective.free_bits={lam}"]) for lam in (0.05, 0.1)},
    **{f"kl15-enc{u}": (LSTM, ["objective.kl_target=15", f"model.encoder_hidden_dim={u}"]) for u in (64, 128, 256)},
    **{f"pretrain-fb{lam}": (LSTM, ["objective.kl_target=null", f"objective.free_bits={lam}",
                                    "objective.kl_schedule.kind=constant", "trainer.init_parts=[encoder]"])
       for lam in (0.25, 0.5, 1.0)},
}
# Li et al. 2019: these settings first train the same model as an autoencoder (β = 0) for half the budget, then
# the VAE above, its encoder started from that run's (trainer.init_from), for the other half.
PRETRAIN = {name: ["objective.kl_target=null", "objective.beta=0", "objective.kl_schedule.kind=constant"]
            for name in SETTINGS if name.startswith("pretrain-")}
HOMOTOPY_PAIRS, HOMOTOPY_STEPS = 20, 5


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--settings", default="lm,kl15", help=f"comma-separated, from: {', '.join(SETTINGS)}")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps per setting (cosine LR over them)")
    p.add_argument("--max-minutes", type=float, default=5.0, help="training wall-time limit per setting")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--jobs", type=int, default=1, help="settings trained at once, as separate processes")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    p.add_argument("--train-examples", type=int, default=0,
                   help="N training (and validation) sentences drawn with the seed: subset.train (0: all)")
    p.add_argument("--eval-examples", type=int, default=500, help="test sentences evaluated (0: all 3,761)")
    p.add_argument("--iw-samples", type=int, default=100, help="importance samples per test sentence (VAE)")
    p.add_argument("--refine-steps", type=int, default=0,
                   help="Adam steps refining each test sentence's q(z|x) before importance sampling (VAE; "
                        "vaekit eval --refine-steps): the NLL of the same model, estimated more tightly")
    p.add_argument("--beam-size", type=int, default=0,
                   help="also score reconstructions decoded by beam search of this size (recon_bleu4_beam; 0: off)")
    p.add_argument("--set", dest="extra", nargs="*", default=[], metavar="KEY=VALUE",
                   help="recipe overrides for every setting, e.g. model.hidden_dim=256 (a smaller CPU check)")
    p.add_argument("--reuse", action="store_true",
                   help="a setting whose run folder already holds a checkpoint is evaluated again, not retrained")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run this single setting in this process
    args = add_common_flags(p, work_aliases=("--runs",)).parse_args(argv)
    if args.smoke:
        args.steps, args.max_minutes, args.train_examples, args.eval_examples, args.iw_samples = 3, 0.5, 200, 20, 2
        args.extra = [*args.extra, "model.hidden_dim=32", "model.embed_dim=32"]
    unknown = [s for s in args.settings.split(",") if s not in SETTINGS]
    if unknown:
        p.error(f"--settings: unknown {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    return args


def overrides_for(name: str, args, stage: list[str] | None = None, share: float = 1.0) -> list[str]:
    """The setting's recipe overrides (or those of its pretraining stage) plus the shared budget (share of the
    steps and minutes, device) and quiet reporting."""
    steps, minutes = max(1, round(args.steps * share)), args.max_minutes * share
    extra = [f"trainer.max_steps={steps}", "trainer.epochs=1000", f"trainer.max_minutes={minutes}",
             f"trainer.device={args.device}", f"trainer.threads={args.threads}", "trainer.progress=false",
             "trainer.eval_every=1000000", "trainer.checkpoint_every=1000000", "trainer.samples=0",
             "trainer.eval_batches=10", f"trainer.log_every={min(50, steps)}", *seed_override(args)]
    if args.train_examples:
        extra += [f"subset.train={args.train_examples}", f"subset.val={args.train_examples}"]  # test: --eval-examples
    return (SETTINGS[name][1] if stage is None else stage) + extra + list(args.extra)


@torch.no_grad()
def homotopies(plugin, model, sentences: list[str], strategy: str = "greedy") -> list[list[str]]:
    """Decodes (greedy, or sampled at temperature 1) along (1 - t) z_a + t z_b between posterior means of
    consecutive sentence pairs."""
    paths = []
    for a, b in zip(sentences[0::2], sentences[1::2], strict=False):
        means = model.posterior(plugin.encode_text(model, [a, b])).mean
        t = torch.linspace(0, 1, HOMOTOPY_STEPS + 2, device=model.device).unsqueeze(1)
        paths.append(plugin.decode_latents(model, (1 - t) * means[0] + t * means[1], strategy=strategy))
    return paths


def repeat_fraction(sentences: list[str]) -> float:
    """Share of words equal to the word before them: 'the the the ...' is near 1, fluent text near 0."""
    pairs = [(a, b) for s in sentences for a, b in zip(s.split(), s.split()[1:], strict=False)]
    return sum(a == b for a, b in pairs) / max(1, len(pairs))


def last_train_record(run_dir: Path) -> dict:
    """The run's last "train" line of metrics.jsonl (a run cut before its first line: its last step, no figures)."""
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in log if r["split"] == "train"]
    return train[-1] if train else {"step": max((r.get("step", 0) for r in log), default=0), "beta": None, "kl": None}


def run_one(name: str, args) -> dict:
    """Train one setting with the vaekit trainer, then evaluate it on the test set; returns its JSON record."""
    import vaekit
    from vaekit.config.recipe import load_recipe
    from vaekit.evaluation.evaluate import evaluate
    from vaekit.training.trainer import train

    torch.set_num_threads(args.threads)
    recipe_file, _ = SETTINGS[name]
    run_dir = args.work_dir / name
    started = time.perf_counter()
    reused = args.reuse and (run_dir / "checkpoints").is_dir()
    if reused:
        recipe = load_recipe(run_dir / "recipe.yaml")  # evaluated again as it was trained
    elif name in PRETRAIN:  # half the budget as an autoencoder, then the VAE from its encoder for the other half
        pretrained = args.work_dir / f"{name}-pretrain"
        train(load_recipe(recipe_file, overrides_for(name, args, PRETRAIN[name], 0.5)), pretrained)
        recipe = load_recipe(recipe_file, [*overrides_for(name, args, share=0.5), f"trainer.init_from={pretrained}"])
    else:
        recipe = load_recipe(recipe_file, overrides_for(name, args))
    if not reused:
        train(recipe, run_dir)
    train_seconds = None if reused else round(time.perf_counter() - started, 1)  # reused: see its first record
    last_train = last_train_record(run_dir)
    pretrain_steps = last_train_record(args.work_dir / f"{name}-pretrain")["step"] if name in PRETRAIN else 0
    model, plugin = vaekit.load(run_dir, device=args.device)
    data = vaekit.build_recipe_data(plugin, recipe, Path(model.config["assets_dir"]))
    n_test = len(data.test) if not args.eval_examples else min(args.eval_examples, len(data.test))
    # Shortest first: batches of similar length decode (k times for IW) with little padding.
    test = Subset(data.test, sorted(range(n_test), key=lambda i: len(data.test.tokens[i])))
    loader = DataLoader(test, batch_size=50, shuffle=False, collate_fn=data.collate)
    use_latent = recipe.model.use_latent
    k = args.iw_samples if use_latent else 1  # the LM: q = p and z unused, so one sample is exact
    started = time.perf_counter()
    torch.manual_seed(args.seed or 0)
    summary = evaluate(model, loader, iw_samples=k, refine_steps=args.refine_steps if use_latent else 0)
    summary.update(plugin.eval_metrics(model, loader, summary, recon_examples=n_test if use_latent else 0,
                                       recon_beam_size=args.beam_size if use_latent else 0))
    summary.pop("kl_per_dim", None)
    record = {"setting": name, "recipe": Path(recipe_file).name, "overrides": SETTINGS[name][1],
              "device": args.device, "steps": pretrain_steps + last_train["step"], "pretrain_steps": pretrain_steps,
              "train_seconds": train_seconds,
              "beta_last": last_train["beta"], "train_kl_last": last_train["kl"], "iw_samples": k,
              "refine_steps": args.refine_steps if use_latent else 0, **summary}
    tokenizer = plugin.tokenizer(model)
    sentences = [tokenizer.decode(data.test.tokens[i][:-1].tolist()) for i in range(2 * HOMOTOPY_PAIRS)]
    if use_latent:
        # Greedy decodes are the reconstructions' own, but far more probable than real text (each word is the
        # likeliest), so fluency is also judged on decodes sampled at temperature 1, the model's own distribution.
        for strategy, prefix in (("greedy", "homotopy"), ("sample", "homotopy_sampled")):
            torch.manual_seed(args.seed or 0)
            paths = homotopies(plugin, model, sentences, strategy)
            changes = [a != b for path in paths for a, b in zip(path, path[1:], strict=False)]
            record.update({f"{prefix}_distinct_neighbours": sum(changes) / len(changes),
                           f"{prefix}_distinct_per_path": sum(len(set(p)) for p in paths) / len(paths),
                           f"{prefix}_example": paths[0],
                           f"{prefix}_inner": [s for path in paths for s in path[1:-1]]})
    torch.manual_seed(args.seed or 0)
    samples = plugin.decode_text(model, model.sample(50))
    record.update({"greedy_samples_distinct": len(set(samples)) / len(samples),
                   "greedy_samples_repeat_fraction": repeat_fraction(samples), "samples": samples[:5],
                   "eval_seconds": round(time.perf_counter() - started, 1)})
    return record


@torch.no_grad()
def lm_fluency(lm_run: Path, records: list[dict], device: str) -> None:
    """Add each homotopy's LM NLL per word (<eos> counted) and its ratio to the LM's own test-set NLL per word."""
    import vaekit

    lm, plugin = vaekit.load(lm_run, device=device)
    lm_test = next(r for r in records if r["setting"] == "lm")["nll_per_word"]
    for record in records:
        for prefix in ("homotopy", "homotopy_sampled"):
            inner = record.pop(f"{prefix}_inner", None)
            if not inner:
                continue
            empty = sum(not s.strip() for s in inner)  # a sample may end at once: <eos> alone, no words to score
            record[f"{prefix}_empty"] = empty
            inner = [s for s in inner if s.strip()]
            x = plugin.encode_text(lm, inner)
            nll = -lm.log_likelihood(x, torch.zeros(len(inner), lm.latent_dim, device=lm.device)).sum().item()
            per_word = nll / x["n_words"].sum().item()
            # Within 20% either way: degenerate text ("the <unk> <unk> ...") is *more* likely than real sentences.
            record.update({f"{prefix}_lm_nll_per_word": per_word, f"{prefix}_fluency_ratio": per_word / lm_test,
                           f"{prefix}_fluent": abs(per_word / lm_test - 1) <= 0.2})


def run_settings(args, work: Path, argv) -> list[dict]:
    """Every setting trained and scored in its own process (--jobs at once), the LM fluency and NLL gaps added;
    the figures recorded as the result file text_ptb.json."""
    names = args.settings.split(",")
    busy = [n for n in names if any((work / f / "checkpoints").exists() for f in (n, f"{n}-pretrain"))]
    if busy and not args.reuse:
        raise SystemExit(f"{work}: already holds runs for {', '.join(busy)}; remove them or pass --work-dir")

    def child(name: str) -> dict:
        command = [sys.executable, __file__, "--one", name, *(argv or sys.argv[1:]), "--work-dir", str(work)]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        with open(work / f"{name}.log", "w") as log:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        lines = [line[7:] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode or not lines:  # the log's last line goes into the record: the log may not outlive the run
            last = ((work / f"{name}.log").read_text(errors="replace").strip().splitlines() or [""])[-1]
            return {"setting": name, "error": f"exit {done.returncode}; see {work / (name + '.log')}: {last}"}
        return json.loads(lines[-1])

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        records = list(pool.map(child, names))
    good = [r for r in records if "error" not in r]
    if any(r["setting"] == "lm" for r in good):
        lm_fluency(work / "lm", good, args.device)
        lm_nll = next(r for r in good if r["setting"] == "lm")["nll"]
        for r in good:
            r["nll_minus_lm"] = r["nll"] - lm_nll if r["setting"] != "lm" else 0.0
    for record in records:
        record.pop("homotopy_inner", None)
        record.pop("homotopy_sampled_inner", None)
        print(json.dumps(record), flush=True)
    if good:
        first = good[0]["setting"]
        write_result(args, "text_ptb", f"PTB settings {args.settings} trained by the vaekit trainer with the same "
                     "budget: test NLL beside the LM's, KL, reconstruction and homotopies",
                     {r["setting"]: r for r in good}, headline=[f"{first}_nll", f"{first}_kl", f"{first}_steps"],
                     notes=f"--steps {args.steps}, --max-minutes {args.max_minutes} per setting on {args.device}; "
                           f"k = {args.iw_samples}, {args.eval_examples or 'all'} test sentences")
    return records


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args)), flush=True)
        return
    with work_folder(args) as work:
        records = run_settings(args, work, argv)
    good = [r for r in records if "error" not in r]
    keys = ("nll", "nll_amortized", "nll_minus_lm", "kl", "active_units", "recon_bleu4", "recon_bleu4_beam",
            "recon_token_accuracy", "homotopy_distinct_neighbours", "homotopy_fluency_ratio",
            "homotopy_sampled_fluency_ratio", "greedy_samples_repeat_fraction", "steps")
    print("\n" + f"{'setting':12}" + "".join(f"{k[:12]:>13}" for k in keys), file=sys.stderr)
    for r in good:
        cells = "".join(f"{r[k]:13.3f}" if isinstance(r.get(k), float) else f"{r.get(k, '-')!s:>13}" for k in keys)
        print(f"{r['setting']:12}{cells}", file=sys.stderr)
    if any("error" in r for r in records) or not all(math.isfinite(r.get("nll", math.nan)) for r in good):
        raise SystemExit("some settings failed or gave a non-finite NLL (see their logs)")


if __name__ == "__main__":
    main()
