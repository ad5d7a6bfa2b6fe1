"""The condition cycle (latent.condition_cycle): other labels, its value in nats, where its gradient goes, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vaekit import VAE, ConditionEmbedding, DiagonalGaussian
from vaekit.cli import main
from vaekit.model.latent import LatentConfig, apply_latent_config
from vaekit.objectives.cycle import ConditionCycle
from vaekit.objectives.elbo import ELBO


class Encoder(nn.Module):
    """q(z|x, c) = N(W x + e_c, 0.25 I)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Linear(2, 2)
        self.embedding = ConditionEmbedding(4, 2)

    def forward(self, x, c=None):
        mean = self.w(x) + self.embedding(c)
        return DiagonalGaussian(mean, torch.full_like(mean, math.log(0.25)))


class Decoder(nn.Module):
    """p(x|z, c) = N(A z + b_c, I), with the mean as a differentiable data point."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)
        self.offsets = nn.Embedding(4, 2)

    def mean(self, z, c):
        return self.a(z) + self.offsets(c)

    def log_prob(self, x, z, c=None):
        return torch.distributions.Normal(self.mean(z, c), 1.0).log_prob(x).sum(-1)

    def differentiable_mean(self, x, z, c=None):
        return self.mean(z, c)


def cycled_model(weight: float = 1.0) -> VAE:
    torch.manual_seed(0)
    return apply_latent_config(VAE(Encoder(), Decoder(), 2), LatentConfig(condition_cycle=weight))


def test_other_labels_move_every_column_to_each_other_class():
    torch.manual_seed(0)
    cycle = ConditionCycle([3, 5], weight=1.0)
    c = torch.tensor([[0, 4]]).repeat(2000, 1)
    other = cycle.other_labels(c)
    assert other.shape == c.shape and other.dtype == c.dtype
    assert (other != c).all(1).all()  # every column changed, in every row
    assert set(other[:, 0].tolist()) == {1, 2} and set(other[:, 1].tolist()) == {0, 1, 2, 3}
    assert 0.45 < (other[:, 0] == 1).float().mean() < 0.55  # uniform over the other classes
    assert ConditionCycle([4], 1.0).other_labels(torch.tensor([3, 0])).shape == (2,)  # a single column as [B]


def test_the_cycle_is_the_reconstruction_through_a_converted_decode_in_nats():
    model = cycled_model()
    x, c = torch.randn(6, 2), torch.tensor([0, 1, 2, 3, 0, 1])
    z = torch.randn(6, 2)
    torch.manual_seed(1)
    nats = model.condition_cycle(model, x, z, c)
    torch.manual_seed(1)  # the same draws, by hand: c', x' = A z + b_c', z'' ~ q(z | x', c'), -log p(x | z'', c)
    other = model.condition_cycle.other_labels(c)
    converted = model.decoder.a(z) + model.decoder.offsets(other)
    back = model.encoder.w(converted) + model.encoder.embedding(other) + 0.5 * torch.randn(6, 2)
    by_hand = -torch.distributions.Normal(model.decoder.a(back) + model.decoder.offsets(c), 1.0).log_prob(x).sum(-1)
    assert torch.allclose(nats, by_hand, atol=1e-5)


def test_the_gradient_reaches_the_decode_under_the_other_label():
    # The last decode uses each example's own label, so the offset rows of labels no example has are reached
    # only through x' = E[x | z, c']: the converted decode is trained, not just read.
    model = cycled_model()
    x, c = torch.randn(32, 2), torch.zeros(32, dtype=torch.long)
    terms = ELBO(1.0)(model, x, c)
    assert terms.extra["cycle_rec"] > 0
    terms.loss.backward()
    rows = model.decoder.offsets.weight.grad.abs().sum(1)
    assert (rows[1:] > 0).all()  # labels 1-3 appear only as c'
    with torch.no_grad():  # evaluation never runs it
        assert "cycle_rec" not in ELBO(1.0)(model, x, c).extra


def test_the_loss_adds_weight_times_the_cycle():
    x, c = torch.randn(16, 2), torch.randint(0, 4, (16,))
    plain = cycled_model(0.0)
    assert getattr(plain, "condition_cycle", None) is None
    weighted = cycled_model(0.5)
    torch.manual_seed(3)
    terms = ELBO(1.0)(weighted, x, c)
    torch.manual_seed(3)
    base = ELBO(1.0)(plain, x, c)  # the same weights (seeded) and the same first draw
    assert torch.allclose(terms.loss, base.loss + 0.5 * terms.extra["cycle_rec"], atol=1e-4)


def test_a_decoder_without_a_differentiable_mean_or_a_model_without_labels_is_refused(points_recipe, tmp_path,
                                                                                     capsys):
    class DiscreteDecoder(Decoder):
        differentiable_mean = None

    with pytest.raises(ValueError, match=r"latent.condition_cycle: the decoder \(DiscreteDecoder\) has no "
                                         r"differentiable_mean"):
        apply_latent_config(VAE(Encoder(), DiscreteDecoder(), 2), LatentConfig(condition_cycle=1.0))
    assert main(["train", str(points_recipe), "latent.condition_cycle=1.0", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "latent.condition_cycle: needs a model conditioned on labels" in err and len(err.splitlines()) == 1
    assert main(["train", str(points_recipe), "latent.condition_cycle=-1", "--out", str(tmp_path / "s")]) == 2
    assert "condition_cycle: expected a weight >= 0" in capsys.readouterr().err
