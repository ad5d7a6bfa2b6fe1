"""PTB: the LSTM sentence VAE (cyclical KL annealing + free bits) beside an LSTM language model, same run and budget.

Both models share one decoder design (the LM is the same network with z fixed at 0 and q(z|x) = p(z),
so its KL is exactly 0 and its "IW NLL" with k = 1 is its exact NLL). They see the same batches in the
same order for the same number of steps; then both are evaluated on the same PTB test sentences:
NLL per sentence (importance sampled, k = --iw-samples, He et al. 2019), perplexity per word with <eos>,
KL, mutual information, active units, and training speed in tokens/s.

    python benchmarks/text_ptb.py --steps 3000 --eval-examples 300 --iw-samples 500 --out text_ptb.json

Anchors (Bowman et al. 2016, full training): LM 100 nats / PPL 116; VAE 101 nats, KL 2, PPL 119.

Measured on the shared 2-core CPU machine (1 thread, 2026-11-25), all 3,761 PTB test sentences; the VAE's NLL
with k = 100 importance samples, the LM's exact. The IW estimate's expectation only falls as k grows (Burda et
al. 2015), so k = 500 would put the VAE lower still:

    OMP_NUM_THREADS=1 python benchmarks/text_ptb.py --steps 7500 --max-minutes 80 --cycles 4 --embed-dim 256 \
        --hidden-dim 256 --latent-dim 32 --free-bits 0.125 --dropout 0.2 --eval-examples 0 --iw-samples 100
              NLL      PPL     KL     MI   AU    tok/s
    lm     107.55    135.2   0.00  -0.08    0     2363
    vae    107.47    134.8   4.26   2.53   32     1552
    VAE - LM NLL: -0.08 nats (VAE -ELBO 108.91)

The 80-minute limit stopped both models at step 6,349 of 7,500 (4.8 epochs; 48 CPU-minutes VAE, 32 LM; the
other core was training MNIST), inside the last annealing cycle (beta 0.72). The VAE's IW evaluation took
25 minutes. An earlier run of the same command with --eval-examples 600 --iw-samples 500 reached all 7,500
steps: VAE 108.42 vs LM 108.58 nats on the first 600 test sentences, KL 4.0, 32 active units.

So the VAE is at or below its LM on the whole test set with KL 4.3 nats and 32 active units. Both are far from
Bowman's numbers: under 5 epochs of a 256-unit model, not a converged 512-unit one. The LM's MI is the batch
estimator's noise: its q(z|x) is N(0, I).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
from safetensors.torch import save_model
from torch.utils.data import DataLoader, Subset
from vaekit_text import TextDataConfig, TextModelConfig, plugin

import vaekit
from vaekit.batch import to_device
from vaekit.checkpoint import build_model
from vaekit.evaluate import evaluate
from vaekit.trainer import lr_factor


def parse_args() -> argparse.Namespace:
    data = Path(os.environ.get("VAEKIT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "ptb"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=data, help=f"folder with ptb.train/valid/test.txt (default {data})")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps per model")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate; cosine decay to 0.1x over --steps")
    p.add_argument("--embed-dim", type=int, default=256)
    p.add_argument("--hidden-dim", type=int, default=256)
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--dropout", type=float, default=0.0, help="dropout on embeddings and decoder outputs (both models)")
    p.add_argument("--word-dropout", type=float, default=0.0, help="decoder word dropout (both models)")
    p.add_argument("--free-bits", type=float, default=0.125, help="VAE free bits, nats per latent dimension")
    p.add_argument("--cycles", type=int, default=4, help="cyclical KL annealing cycles over the run (Fu et al.)")
    p.add_argument("--iw-samples", type=int, default=500, help="importance samples per test sentence (VAE)")
    p.add_argument("--eval-examples", type=int, default=300, help="test sentences for the NLL (0: all 3,761)")
    p.add_argument("--max-minutes", type=float, default=60.0, help="stop training earlier after this wall time")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for training")
    p.add_argument("--eval-threads", type=int, default=0, help="CPU threads for the evaluation (0: --threads)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("text_ptb.json"), help="results as JSON")
    return p.parse_args()


def train_side_by_side(models: dict, loader, steps: int, lr: float, max_minutes: float) -> dict:
    """Step every model on the same batch in turn (AdamW, cosine decay, clipping) so load changes hit both alike.

    Stops after `steps` steps, or earlier once max_minutes of wall time have passed; returns per model
    its seconds of compute, tokens/s and the last logged training losses.
    """
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=lr) for name, (m, _) in models.items()}
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lambda s: lr_factor(s, 0, steps, "cosine", 0.1))
                  for o in optimizers.values()]
    stats = {name: {"train_seconds": 0.0, "train_tokens": 0} for name in models}
    step, deadline = 0, time.perf_counter() + 60 * max_minutes
    while step < steps and time.perf_counter() < deadline:
        for batch in loader:
            for name, (model, objective) in models.items():
                model.train()
                begin = time.perf_counter()
                x = to_device(batch["x"], model.device)
                terms = model(x, objective=objective, step=step)
                optimizers[name].zero_grad(set_to_none=True)
                terms.loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizers[name].step()
                stats[name]["train_seconds"] += time.perf_counter() - begin
                stats[name]["train_tokens"] += int(x["lengths"].sum())
                if (step + 1) % 50 == 0:
                    stats[name].update({f"train_{k}": v for k, v in terms.scalars().items()})
                    rate = stats[name]["train_tokens"] / stats[name]["train_seconds"]
                    print(f"[{name}] step {step + 1}/{steps}  rec {terms.scalars()['rec']:.2f}  "
                          f"kl {terms.scalars()['kl']:.2f}  beta {terms.beta:.2f}  {rate:.0f} tokens/s", flush=True)
            for scheduler in schedulers:
                scheduler.step()
            step += 1
            if step == steps or time.perf_counter() >= deadline:
                break
    for s in stats.values():
        s["tokens_per_s"] = s["train_tokens"] / s["train_seconds"]
        s["train_steps"] = step
    return stats


def shortest_first(sentences, indices) -> Subset:
    """The chosen sentences, shortest first: batches of similar length decode (k times for IW) with little padding."""
    return Subset(sentences, sorted(indices, key=lambda i: len(sentences.tokens[i])))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    assets = args.out.with_suffix(".assets")
    data_cfg = TextDataConfig(train=str(args.data / "ptb.train.txt"), test=str(args.data / "ptb.test.txt"),
                              max_length=96)
    data = plugin.build_data(data_cfg, seed=args.seed, assets=assets)
    chosen = range(len(data.test) if not args.eval_examples else min(args.eval_examples, len(data.test)))
    test = shortest_first(data.test, chosen)
    results = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    schedule = vaekit.KLSchedule.cyclical(args.steps, n_cycles=args.cycles, ratio=0.5)
    plan = {"vae": (True, vaekit.ELBO(schedule, free_bits=args.free_bits), args.iw_samples),
            "lm": (False, vaekit.ELBO(0.0), 1)}  # the LM: q = p and z unused, so one importance sample is exact
    models = {}
    for name, (use_latent, objective, _) in plan.items():
        cfg = TextModelConfig(arch="rnn", cell="lstm", embed_dim=args.embed_dim, hidden_dim=args.hidden_dim,
                              latent_dim=args.latent_dim, dropout=args.dropout, word_dropout=args.word_dropout,
                              use_latent=use_latent)
        torch.manual_seed(args.seed)  # the same initial decoder weights for both
        models[name] = (build_model(plugin, cfg, data.info, assets), objective)
    loader = DataLoader(data.train, batch_size=args.batch_size, shuffle=True, collate_fn=data.collate,
                        generator=torch.Generator().manual_seed(args.seed))
    stats = train_side_by_side(models, loader, args.steps, args.lr, args.max_minutes)
    for name, (model, _) in models.items():  # the weights, so a later session can re-evaluate without retraining
        save_model(model, assets / f"{name}.safetensors")
    torch.set_num_threads(args.eval_threads or args.threads)
    for name, (model, _) in models.items():
        k = plan[name][2]
        start = time.perf_counter()
        eval_loader = DataLoader(test, batch_size=50, shuffle=False, collate_fn=data.collate)
        summary = evaluate(model, eval_loader, iw_samples=k)
        summary.update(plugin.eval_metrics(model, eval_loader, summary))
        summary.pop("kl_per_dim", None)
        summary["eval_seconds"] = time.perf_counter() - start
        summary["iw_samples"] = k
        summary["samples"] = plugin.decode_text(model, model.sample(5)) if plan[name][0] else []
        results[name] = {**stats[name], **summary}
        print(json.dumps({name: results[name]}, indent=2), flush=True)
    # All 3,761 test sentences, cheaply: the LM's exact NLL, and the VAE's -ELBO, an upper bound on its NLL.
    full_loader = DataLoader(shortest_first(data.test, range(len(data.test))), batch_size=100, shuffle=False,
                             collate_fn=data.collate)
    for name, (model, _) in models.items():
        full = evaluate(model, full_loader, iw_samples=1)
        full.update(plugin.eval_metrics(model, full_loader, full))
        results[f"{name}_full_test"] = {key: full[key] for key in ("elbo", "nll", "kl", "ppl", "n_examples")}
        print(f"[{name}] full test ({full['n_examples']} sentences): -ELBO {-full['elbo']:.2f} nats, "
              f"KL {full['kl']:.2f}, NLL (k=1) {full['nll']:.2f}, PPL (k=1) {full['ppl']:.1f}", flush=True)
    vae, lm = results["vae"], results["lm"]
    results["vae_minus_lm_nll"] = vae["nll"] - lm["nll"]
    results["vae_over_lm_tokens_per_s"] = vae["tokens_per_s"] / lm["tokens_per_s"]
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\n{'':8}{'NLL':>9}{'PPL':>9}{'KL':>7}{'MI':>7}{'AU':>5}{'tok/s':>9}")
    for name in ("lm", "vae"):
        r = results[name]
        print(f"{name:8}{r['nll']:9.2f}{r['ppl']:9.1f}{r['kl']:7.2f}{r['mi']:7.2f}{r['active_units']:5d}"
              f"{r['tokens_per_s']:9.0f}")
    print(f"VAE - LM NLL: {results['vae_minus_lm_nll']:+.2f} nats; speed ratio VAE/LM "
          f"{results['vae_over_lm_tokens_per_s']:.2f}; test sentences: {vae['n_examples']}; wrote {args.out}")
    if not math.isfinite(vae["nll"]):
        raise SystemExit("the VAE's NLL is not finite")


if __name__ == "__main__":
    main()
