"""Beam search: the sentence it finds against an exhaustive search, greedy at size 1, rows independent of the batch,
and the CLI / eval options."""

from __future__ import annotations

import itertools

import pytest
import torch
from text_fixtures import build, train_tiny_run
from vaekit_text.decoding import beam_search

from vaekit.cli import main

PAD, BOS, EOS, WORDS = 0, 1, 2, (3, 4, 5)


def markov_step(tables: torch.Tensor, rows_per_example: int):
    """A step function whose next-token logits depend on the example and the previous token only: tables [B, V, V].
    Its state is each row's example, so a wrong reorder (rows taken from another example) changes the answer."""
    def step(inputs, example):
        if example is None:
            example = torch.arange(len(inputs)) // rows_per_example
        return tables[example, inputs], example
    return step


def best_by_enumeration(table: torch.Tensor, max_length: int, length_penalty: float) -> list[int]:
    """Every sentence of real words then <eos> (forced in the last slot), scored as beam_search ranks them."""
    log_p = torch.log_softmax(table, -1)
    best, best_rank = None, float("-inf")
    for n in range(max_length):
        for words in itertools.product(WORDS, repeat=n):
            tokens = [*words, EOS]
            score = sum(float(log_p[prev, tok]) for prev, tok in zip([BOS, *tokens[:-1]], tokens, strict=True))
            rank = score / len(tokens) ** length_penalty
            if rank > best_rank:
                best, best_rank = tokens, rank
    return best


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_wide_beam_finds_the_most_probable_sentence(length_penalty):
    torch.manual_seed(0)
    batch, vocab, max_length, size = 3, 6, 4, 64  # 64 beams hold every partial sentence: the search is exhaustive
    tables = 2 * torch.randn(batch, vocab, vocab)
    out = beam_search(markov_step(tables, size), lambda example, rows: example[rows],
                      torch.full((batch,), BOS), max_length, EOS, PAD, BOS, size, length_penalty)
    for b in range(batch):
        n = int(out["lengths"][b])
        assert out["tokens"][b, :n].tolist() == best_by_enumeration(tables[b], max_length, length_penalty)
        assert (out["tokens"][b, n:] == PAD).all()


def test_greedy_can_miss_what_the_beam_finds():
    """A first word that looks best but leads nowhere likely: greedy takes it, a beam of 2 does not."""
    table = torch.full((6, 6), -20.0)
    table[BOS, 3], table[BOS, 4] = 0.0, -0.3                       # 'a' a little likelier than 'b' first
    table[3, 3], table[3, 4], table[3, 5], table[3, EOS] = 0.0, 0.0, 0.0, 0.0  # after 'a': four ways, a quarter each
    table[4, EOS] = 0.0                                            # after 'b': <eos> for sure
    tables = table.unsqueeze(0)
    greedy = beam_search(markov_step(tables, 1), lambda e, rows: e[rows], torch.tensor([BOS]), 3, EOS, PAD, BOS, 1)
    beam = beam_search(markov_step(tables, 2), lambda e, rows: e[rows], torch.tensor([BOS]), 3, EOS, PAD, BOS, 2)
    assert greedy["tokens"][0, 0] == 3 and beam["tokens"][0].tolist()[:2] == [4, EOS]


def test_finished_short_sentences_do_not_crowd_out_a_better_long_one():
    """Ranked by nats per token, 'a b <eos>' (-0.64) beats 'a <eos>' (-0.90) and '<eos>' (-1.0); ranked by the sum
    while searching, the two short ones would fill a beam of 2 at the second step and end the search."""
    probs = torch.zeros(6, 6)
    probs[:, EOS] = 1.0                                         # rows never reached: anything
    probs[BOS, [EOS, 3, 5]] = torch.tensor([0.368, 0.333, 0.299])
    probs[3, [EOS, 4, 5]] = torch.tensor([0.5, 0.45, 0.05])     # after 'a'
    probs[4, [EOS, 5]] = torch.tensor([0.99, 0.01])             # after 'b'
    probs[5] = torch.tensor([0.0, 0.0, 0.25, 0.25, 0.25, 0.25])  # after 'c': nowhere likely
    tables = probs.log().unsqueeze(0)
    out = beam_search(markov_step(tables, 2), lambda e, rows: e[rows], torch.tensor([BOS]), 4, EOS, PAD, BOS, 2)
    assert out["tokens"][0].tolist()[:3] == [3, 4, EOS] == best_by_enumeration(tables[0], 4, 1.0)


@pytest.mark.parametrize("arch, options", [("rnn", {}), ("transformer", {}), ("rnn", {"latent_slots": 2})])
def test_beam_of_one_is_greedy_and_rows_do_not_depend_on_the_batch(tmp_path, arch, options):
    _, model, _ = build(tmp_path, arch=arch, **options)
    # float64: a batch of 4 and a batch of 1 may take different matmul kernels, whose last-bit differences must not
    # flip a near-tie between an untrained model's beams on some CPU
    model.eval().double()
    torch.manual_seed(1)
    z = 3 * torch.randn(4, 4, dtype=torch.float64)
    greedy = model.decode(z, None, max_length=12)
    one = model.decode(z, None, max_length=12, strategy="beam", beam_size=1)
    assert torch.equal(one["tokens"], greedy["tokens"]) and torch.equal(one["lengths"], greedy["lengths"])
    together = model.decode(z, None, max_length=12, strategy="beam", beam_size=3)
    for i in range(len(z)):
        alone = model.decode(z[i:i + 1], None, max_length=12, strategy="beam", beam_size=3)
        n = int(alone["lengths"][0])
        assert int(together["lengths"][i]) == n
        assert torch.equal(together["tokens"][i, :n], alone["tokens"][0, :n])


def test_beam_options_on_the_command_line(tmp_path, capsys):
    run = train_tiny_run(tmp_path)
    out = tmp_path / "recon"
    assert main(["reconstruct", str(run), "the cat sat on the mat", "a dog ran", "--strategy", "beam",
                 "--beam-size", "3", "--no-print", "--out", str(out)]) == 0
    written = (out / "reconstructions.txt").read_text().splitlines()
    assert sum(line.startswith("reconstruction:") for line in written) == 2
    capsys.readouterr()
    assert main(["reconstruct", str(run), "the cat sat", "--beam-size", "3", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "vaekit: error: --beam-size: only with --strategy beam"
    assert main(["sample", str(run), "--strategy", "beam", "--beam-size", "0", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "vaekit: error: --beam-size: expected at least 1, got 0"
    assert main(["eval", str(run), "--iw-samples", "2", "--recon-beam-size", "2"]) == 0
    printed = capsys.readouterr().out
    assert "recon_bleu4_beam" in printed and "recon_token_accuracy_beam" in printed


def test_a_recipe_sets_the_plugins_eval_options_and_a_flag_overrides_it(tmp_path, capsys):
    import json

    import yaml

    run = train_tiny_run(tmp_path)
    recipe_file = run / "recipe.yaml"
    recipe = yaml.safe_load(recipe_file.read_text())
    recipe["eval"]["options"] = {"recon_beam_size": 2}
    recipe_file.write_text(yaml.safe_dump(recipe))
    assert main(["eval", str(run)]) == 0
    assert json.loads((run / "eval-test.json").read_text())["recon_beam_size"] == 2
    assert main(["eval", str(run), "--recon-beam-size", "3"]) == 0  # the flag wins
    assert json.loads((run / "eval-test.json").read_text())["recon_beam_size"] == 3
    capsys.readouterr()
    assert main(["eval", str(run), "eval.options.recon_beam_sise=2"]) == 2
    assert capsys.readouterr().err.strip() == (f"vaekit: error: {recipe_file}: eval.options.recon_beam_sise: not a "
                                               "`vaekit eval` option of plugin 'text'; did you mean 'recon_beam_size'?")
    assert main(["eval", str(run), "eval.options.recon_beam_size=five"]) == 2
    assert "eval.options.recon_beam_size: invalid literal" in capsys.readouterr().err
