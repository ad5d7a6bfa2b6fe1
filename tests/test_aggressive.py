"""Aggressive inference-network updates (He et al. 2019): the inner loop's stopping rule, who is updated how
often, the phase ending on mutual information, and exact resume through the phase."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from vaekit.cli import main
from vaekit.config.recipe import load_recipe
from vaekit.io.checkpoint import checkpoints
from vaekit.training.aggressive import BLOCK, AggressiveInference
from vaekit.training.trainer import Trainer


class Scripted:
    """An update whose losses are given in advance; counts the batches it was handed."""

    def __init__(self, losses):
        self.losses, self.batches = list(losses), []

    def __call__(self, batch):
        self.batches.append(batch)
        return self.losses[len(self.batches) - 1]


def _bare(max_steps, check_every=10, check_fraction=None):
    """The phase on a stand-in model: only its loop and its checks are under test."""
    return AggressiveInference(_model_with_parts(), max_steps, check_every, check_fraction)


def test_inner_loop_stops_after_the_first_block_whose_loss_did_not_fall():
    # blocks of 15: sums 150, 135, 120, then 121 (a rise): stop after the 4th block, 60 updates
    losses = [10.0] * BLOCK + [9.0] * BLOCK + [8.0] * BLOCK + [8.0] * (BLOCK - 1) + [9.0] + [0.0] * 100
    update = Scripted(losses)
    made = _bare(100).train_encoder(update, "first", lambda i: f"random-{i}")
    assert made == 4 * BLOCK
    assert update.batches[:3] == ["first", "random-1", "random-2"]  # the step's own batch first, as He et al.
    assert len(update.batches) == made


def test_inner_loop_is_capped_at_max_steps():
    falling = Scripted([100.0 - i for i in range(200)])
    assert _bare(40).train_encoder(falling, "first", lambda i: i) == 40 and len(falling.batches) == 40


def test_phase_ends_when_mutual_information_stops_rising():
    p = _bare(100)
    assert p.check(5, 0.05, lambda: pytest.fail("no check before check_every")) is None
    assert p.check(10, 0.1, lambda: 1.0) == {"mi": 1.0, "previous_mi": None, "aggressive": True}
    assert p.check(19, 0.19, lambda: pytest.fail("next check at 20")) is None
    assert p.check(20, 0.2, lambda: 1.5)["aggressive"] is True
    assert p.check(30, 0.3, lambda: 1.5) == {"mi": 1.5, "previous_mi": 1.5, "aggressive": False}
    assert not p.on and p.check(100, 1.0, lambda: pytest.fail("no checks once over")) is None


def test_a_capped_run_checks_every_twentieth_of_it_even_when_an_epoch_is_longer():
    p = _bare(100, check_every=1000, check_fraction=0.05)
    assert p.check(3, 0.04, lambda: pytest.fail("too early")) is None
    assert p.check(4, 0.05, lambda: 1.0)["aggressive"]  # time, not steps, brought the check
    assert p.check(5, 0.09, lambda: pytest.fail("next at 0.10")) is None
    assert p.check(6, 0.11, lambda: 2.0)["aggressive"]
    state = p.state_dict()
    q = _bare(100, check_every=1000, check_fraction=0.05)
    q.load_state_dict(json.loads(json.dumps(state)))
    assert q.check(7, 0.15, lambda: pytest.fail("next at 0.16")) is None
    assert q.check(7, 0.16, lambda: 2.0) == {"mi": 2.0, "previous_mi": 2.0, "aggressive": False}


def _model_with_parts():
    model = torch.nn.Module()
    model.encoder, model.decoder = torch.nn.Linear(2, 4), torch.nn.Linear(2, 2)
    model.prior_net = torch.nn.Linear(1, 1)
    return model


def test_parameters_split_into_encoder_and_the_rest():
    model = _model_with_parts()
    p = AggressiveInference(model, 10, 5, None)
    assert {id(x) for x in p.encoder_params} == {id(x) for x in model.encoder.parameters()}
    assert len(p.decoder_params) == 4  # the decoder's and the prior's weights and biases


def aggressive_overrides(**extra):
    values = {"trainer.aggressive_inference": "true", "trainer.aggressive_max_steps": 30,
              "trainer.aggressive_check_every": 10, "trainer.epochs": 2, "trainer.eval_every": 1000,
              "trainer.checkpoint_every": 10, "trainer.log_every": 1, "trainer.eval_batches": 2, **extra}
    return [f"{k}={v}" for k, v in values.items()]


def test_in_the_phase_the_decoder_steps_once_per_step_and_the_encoder_catches_up(points_recipe, tmp_path):
    recipe = load_recipe(points_recipe, aggressive_overrides(**{"trainer.max_steps": 12}))
    trainer = Trainer(recipe, tmp_path / "run")
    trainer.fit()
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    checks = [r for r in lines if r["split"] == "aggressive"]
    assert [r["step"] for r in checks] == [10] and checks[0]["aggressive"] and checks[0]["mi"] > 0
    inner = [r["encoder_steps"] for r in lines if r["split"] == "train"]
    assert len(inner) == 12 and all(BLOCK <= n <= 30 for n in inner)
    state = trainer.optimizer.state
    encoder_steps = {int(state[p]["step"]) for p in trainer.model.encoder.parameters()}
    decoder_steps = {int(state[p]["step"]) for p in trainer.model.decoder.parameters()}
    assert decoder_steps == {12}, "the decoder takes one update per training step"
    assert encoder_steps == {sum(inner)}, "the encoder takes only the inner loop's updates"


def test_phase_ends_on_mutual_information_then_training_is_plain(points_recipe, tmp_path):
    # 640 points / 32 = 20 steps an epoch, 2 epochs; checks every 4 steps on 2 validation batches
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "--out", str(run),
                 *aggressive_overrides(**{"trainer.aggressive_check_every": 4,
                                          "trainer.aggressive_max_steps": 15})]) == 0
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    checks = [r for r in lines if r["split"] == "aggressive"]
    assert checks, "no mutual-information check was logged"
    ended = [r for r in checks if not r["aggressive"]]
    assert ended, f"the phase never ended in 40 steps: {checks}"
    assert ended[0]["mi"] <= ended[0]["previous_mi"]
    assert all(r["mi"] > r["previous_mi"] for r in checks[1:checks.index(ended[0])])
    after = [r for r in lines if r["split"] == "train" and r["step"] > ended[0]["step"]]
    assert after and all("encoder_steps" not in r for r in after)


@pytest.mark.slow
def test_resume_inside_the_phase_equals_an_uninterrupted_run(points_recipe, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    overrides = aggressive_overrides(**{"trainer.aggressive_check_every": 15, "trainer.keep_last": 10})
    assert main(["train", str(points_recipe), "--out", str(straight), *overrides]) == 0
    shutil.copytree(straight, resumed)
    for later in checkpoints(resumed):  # as if the run had been killed just after step 20's checkpoint
        if int(later.name[5:]) > 20:
            shutil.rmtree(later)
    assert main(["train", str(points_recipe), "--out", str(resumed), "--resume", *overrides]) == 0
    a = load_file(str(checkpoints(straight)[-1] / "model.safetensors"))
    b = load_file(str(checkpoints(resumed)[-1] / "model.safetensors"))
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert (straight / "metrics.jsonl").read_text().count('"aggressive"') > 0


def test_bad_aggressive_settings_are_named(points_recipe, tmp_path, capsys):
    assert main(["train", str(points_recipe), "--out", str(tmp_path / "r"), "trainer.aggressive_max_steps=0"]) == 2
    assert "trainer.aggressive_max_steps" in capsys.readouterr().err
    assert main(["train", str(points_recipe), "--out", str(tmp_path / "f"), "trainer.aggressive_inference=true",
                 "latent.posterior=iaf"]) != 0
    assert "needs a Gaussian posterior; latent.posterior is 'iaf'" in capsys.readouterr().err
