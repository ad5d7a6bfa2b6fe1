"""The condition adversary (latent.condition_adversary): reversed gradients, masks, and a code freed of its label."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vaekit import VAE, ConditionEmbedding, DiagonalGaussian
from vaekit.cli import main
from vaekit.model.latent import LatentConfig, apply_latent_config
from vaekit.objectives.adversary import ConditionAdversary
from vaekit.objectives.elbo import ELBO


def test_the_adversary_learns_while_the_code_gets_the_reversed_gradient():
    torch.manual_seed(0)
    adversary = ConditionAdversary((4,), [3], weight=1.0)
    z, c = torch.randn(8, 4, requires_grad=True), torch.randint(0, 3, (8,))
    adversary(z, c).sum().backward()
    reversed_grad = z.grad.clone()
    plain = torch.nn.functional.cross_entropy(adversary.net(z), c, reduction="sum")
    (grad,) = torch.autograd.grad(plain, z)
    assert torch.allclose(reversed_grad, -grad, atol=1e-6)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adversary.parameters())


def test_padding_and_label_columns_of_a_sequence_latent():
    torch.manual_seed(0)
    adversary = ConditionAdversary((None, 3), [2, 5], weight=1.0)
    z, c = torch.randn(2, 4, 3), torch.tensor([[1, 4], [0, 2]])
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    nats = adversary(z, c, mask)
    padded = adversary(torch.cat([z, 100 * torch.randn(2, 3, 3)], 1), c,
                       torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], 1))
    assert torch.allclose(nats, padded)  # what lies past the end never counts
    with torch.no_grad():  # uniform guesses: log 2 + log 5 nats at each of the 3 and 2 valid steps
        adversary.net[-1].weight.zero_()
        adversary.net[-1].bias.zero_()
    assert torch.allclose(adversary(z, c, mask), torch.tensor([3.0, 2.0]) * (math.log(2) + math.log(5)))
    spatial = ConditionAdversary((3, 2, 2), [2], weight=1.0)  # channels are the units at every pixel
    assert spatial(torch.randn(5, 3, 2, 2), torch.zeros(5, dtype=torch.long)).shape == (5,)


class LinearEncoder(nn.Module):
    """q(z|x, c) = N(w . x, 0.01): starts as z = u + s, the content u plus the label's offset s."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, 1.0]))
        self.embedding = ConditionEmbedding(3, 2)

    def forward(self, x, c=None):
        mean = (x * self.w).sum(-1, keepdim=True)
        return DiagonalGaussian(mean, torch.full_like(mean, math.log(0.01)))


class LinearDecoder(nn.Module):
    """p(x|z, c) = N(A z + b_c, I): the label's offset can come from c alone."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(1, 2)
        self.offsets = nn.Embedding(3, 2)

    def log_prob(self, x, z, c=None):
        mean = self.a(z) + self.offsets(c)
        return torch.distributions.Normal(mean, 1.0).log_prob(x).sum(-1)


def label_read_from_code(model, x, c) -> float:
    """Accuracy of the best nearest-class-mean reader of the label from the posterior mean (chance: 1/3)."""
    with torch.no_grad():
        code = model.posterior(x, c).mean[:, 0]
    means = torch.stack([code[c == k].mean() for k in range(3)])
    return float(((code[:, None] - means).abs().argmin(1) == c).float().mean())


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_the_adversary_takes_the_label_out_of_the_code_and_the_decoder_takes_it_from_c(weight):
    # x = (u, s_c): content u ~ N(0, 1), the label's offset s_c in {-3, 0, 3}. With beta = 0 nothing else
    # pushes s out of z = w . x: the decoder can undo it with c. Only the adversary makes z = u alone.
    torch.manual_seed(0)
    c = torch.randint(0, 3, (600,))
    x = torch.stack([torch.randn(600), 3.0 * (c.float() - 1)], 1)
    model = apply_latent_config(VAE(LinearEncoder(), LinearDecoder(), 1), LatentConfig(condition_adversary=weight))
    assert (getattr(model, "condition_adversary", None) is not None) == (weight > 0)
    assert label_read_from_code(model, x, c) > 0.8  # z = u + s: the label is in the code
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    objective = ELBO(0.0)
    for step in range(400):
        optimizer.zero_grad()
        terms = objective(model, x, c, step)
        terms.loss.backward()
        optimizer.step()
    assert ("adversary_ce" in terms.extra) == (weight > 0)
    read = label_read_from_code(model, x, c)
    if weight:
        assert read < 0.5 and abs(model.encoder.w[1]) < 0.1 * abs(model.encoder.w[0])
        assert terms.extra["adversary_ce"] > 0.9 * math.log(3)  # it can do no better than chance
    else:
        assert read > 0.8
    assert -terms.log_likelihood.mean() < 2 * 0.5 * math.log(2 * math.pi) + 1.2  # reconstructions stay good


def test_a_model_without_a_label_condition_is_refused_in_one_line(points_recipe, tmp_path, capsys):
    assert main(["train", str(points_recipe), "latent.condition_adversary=1.0", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "latent.condition_adversary: needs a model conditioned on labels" in err and len(err.splitlines()) == 1
    assert main(["train", str(points_recipe), "latent.condition_adversary=-1", "--out", str(tmp_path / "s")]) == 2
    assert "condition_adversary: expected a weight >= 0" in capsys.readouterr().err
