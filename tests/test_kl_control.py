"""The KL set-point (ControlVAE): the controller's arithmetic, KL settling near the target, and exact resume."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from vaekit import DiagonalGaussian, Gaussian
from vaekit.cli import main
from vaekit.io.checkpoint import checkpoints, load_training_state
from vaekit.objectives.kl_control import ControlledELBO, KLController


def test_controller_moves_beta_against_the_error_and_stays_in_bounds():
    c = KLController(target=10.0, kp=0.01, ki=0.001, beta_min=0.0, beta_max=1.0)
    # KL above target: error -5 -> P = 0.01 / (1 + e^-5), I = +0.005
    assert c.update(15.0) == pytest.approx(0.01 / (1 + torch.e ** -5) + 0.005)
    second = c.update(15.0)
    assert second == pytest.approx(0.01 / (1 + torch.e ** -5) + 0.010)  # the integral keeps rising
    for _ in range(10_000):
        c.update(1e6)
    assert c.beta == 1.0 and c.integral <= 1.0  # clipped at beta_max; anti-windup stops the integral
    for _ in range(10):
        c.update(0.0)
    assert c.beta < 1.0, "the integral must come back at once, not unwind a wound-up excess"
    state = c.state_dict()
    d = KLController(target=10.0, kp=0.01, ki=0.001)
    d.load_state_dict(json.loads(json.dumps(state)))
    assert d.update(3.0) == c.update(3.0)


class LinearVAE(nn.Module):
    """x in R^8 from z in R^4 through linear maps; with this noise level β = 1 keeps about 5.3 nats of KL."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = nn.Linear(8, 8), nn.Linear(4, 8)
        self.likelihood = Gaussian(scale=0.5)

    def posterior(self, x, c=None):
        return DiagonalGaussian(*self.encoder(x).chunk(2, dim=-1))

    def prior(self, c=None, batch_size=1):
        return DiagonalGaussian.standard((batch_size, 4))

    def log_likelihood(self, x, z, c=None):
        return self.likelihood.log_prob(self.decoder(z), x)


def train_linear_vae(objective: ControlledELBO, steps: int = 1500) -> tuple[Tensor, list[float]]:
    """Train LinearVAE on 4 linear factors: each unit's KL on the whole data afterwards [4] and each batch's mean
    KL along the way, nats."""
    torch.manual_seed(0)
    x = torch.randn(512, 4) @ torch.randn(4, 8)  # 4 latent factors
    model = LinearVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    kls = []
    for _ in range(steps):
        terms = objective(model, x[torch.randint(0, 512, (128,))])
        optimizer.zero_grad()
        terms.loss.backward()
        optimizer.step()
        kls.append(terms.kl.mean().item())
    with torch.no_grad():
        return model.posterior(x).kl_per_unit().mean(0), kls


@pytest.mark.parametrize("target", [3.0, 8.0])
def test_kl_settles_near_the_target(target):
    """Above β = 1's KL the controller lowers β below 1; below it, raises β above 1 (a ceiling of 5 allows it)."""
    objective = ControlledELBO(KLController(target, kp=0.01, ki=0.005, beta_max=5.0))
    _, kls = train_linear_vae(objective)
    settled = sum(kls[-300:]) / 300
    assert abs(settled - target) < 0.1 * target, f"KL {settled:.2f} nats, target {target}"
    assert (objective.controller.beta > 1.0) == (target < 5.3)


def test_free_bits_under_the_set_point_keep_every_unit_in_use():
    """Held at 3 nats, the set-point alone lets one of the four units collapse; with free bits (0.3 nats per unit)
    the controller still holds the total while no unit is pushed below the threshold (the text recipe's AU)."""
    alone, _ = train_linear_vae(ControlledELBO(KLController(3.0, kp=0.01, ki=0.005, beta_max=5.0)))
    with_free_bits, _ = train_linear_vae(ControlledELBO(KLController(3.0, kp=0.01, ki=0.005, beta_max=5.0),
                                                        free_bits=0.3))
    assert alone.min() < 0.01 and abs(alone.sum() - 3.0) < 0.3
    assert with_free_bits.min() > 0.2 and abs(with_free_bits.sum() - 3.0) < 0.3


def test_resume_continues_the_controller_exactly(points_recipe, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    overrides = ["objective.kl_target=1.5", "objective.kl_control.ki=0.01", "trainer.lr_schedule=constant",
                 "trainer.checkpoint_every=30", "trainer.eval_every=1000", "trainer.samples=0"]
    assert main(["train", str(points_recipe), "--out", str(straight), *overrides, "trainer.max_steps=60"]) == 0
    assert main(["train", str(points_recipe), "--out", str(resumed), *overrides, "trainer.max_steps=30"]) == 0
    first = load_training_state(checkpoints(resumed)[-1])["objective"]
    assert first["beta"] != 1.0 and first["integral"] != 0.0, "the controller state must be in the checkpoint"
    assert main(["train", str(points_recipe), "--out", str(resumed), "--resume", *overrides,
                 "trainer.max_steps=60"]) == 0
    a, b = (load_file(str(checkpoints(run)[-1] / "model.safetensors")) for run in (straight, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_training_state(checkpoints(straight)[-1])["objective"] == \
        load_training_state(checkpoints(resumed)[-1])["objective"]


def test_recipe_errors_name_the_key(points_recipe, capsys):
    assert main(["train", str(points_recipe), "objective.kind=iwae", "objective.kl_target=5"]) == 2
    assert "objective: kl_target: a KL set-point steers the ELBO's beta; kind is 'iwae'" in capsys.readouterr().err
    assert main(["train", str(points_recipe), "objective.kl_target=-1"]) == 2
    assert "kl_target: expected nats >= 0, got -1.0" in capsys.readouterr().err


@pytest.mark.parametrize("recipe, overrides", [
    ("speech/tones.yaml", ["model.channels=[8,16,32]", "model.hidden=16", "data.n_tones=32", "data.n_mels=32",
                           "data.n_fft=256", "trainer.batch_size=8", "trainer.samples=0"]),  # a [B, T', D] latent
    ("image/mnist.yaml", ["subset.train=64", "trainer.batch_size=8", "latent.posterior=iaf"]),
    ("image/mnist.yaml", ["subset.train=64", "trainer.batch_size=8", "latent.prior=vamp",
                          "latent.components=4"]),
], ids=["sequence-latent", "iaf-posterior", "vampprior"])
def test_the_set_point_steers_every_latent_family(recipe, overrides, repo, data_dir, tmp_path, monkeypatch):
    # The controller reads the same KL the ELBO uses: closed form over valid steps, or Monte Carlo for a flow
    # posterior or a mixture prior (no per-unit split there), never a prior of another shape.
    monkeypatch.setenv("VAEKIT_DATA", str(data_dir))
    run = tmp_path / "run"
    assert main(["train", str(repo / "recipes" / recipe), *overrides, "objective.kl_target=0.1", "trainer.max_steps=3",
                 "trainer.log_every=1", "trainer.eval_every=3", "trainer.progress=false", "--out", str(run)]) == 0
    train = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if r["split"] == "train"]
    assert len(train) == 3 and all(math.isfinite(r["kl"]) for r in train)  # a Monte Carlo KL may dip below 0
    assert all(0 < r["beta"] <= 1 for r in train)  # the KLs were above the target: the controller raised β
