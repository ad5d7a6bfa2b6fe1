"""Class transfer: an image encoded under its own label and decoded under another becomes that class."""

from __future__ import annotations

import pytest
import torch
from image_test_helpers import data_and_model, info, tiny_model
from vaekit_image.artifacts import transfer_latent
from vaekit_image.metrics import image_classifier, transfer_accuracy

from vaekit.objectives.elbo import ELBO


def test_transfer_latent_moves_between_conditional_priors(tmp_path):
    model = tiny_model(info(28, condition="label", num_classes=3), tmp_path, conditional_prior=True)
    with torch.no_grad():  # give the prior distinct means and scales per class
        model.prior_net.net[-1].bias.copy_(torch.randn(8))
        model.prior_net.net[-1].weight.copy_(torch.randn_like(model.prior_net.net[-1].weight))
    source, target = torch.tensor([0, 1]), torch.tensor([2, 0])
    p_s, p_t = model.prior(source, 2), model.prior(target, 2)
    z = p_s.mean + 1.5 * p_s.std  # 1.5 standard deviations above the source class's prior mean
    assert torch.allclose(transfer_latent(model, z, source, target), p_t.mean + 1.5 * p_t.std, atol=1e-5)
    plain = tiny_model(info(28, condition="label", num_classes=3), tmp_path)  # N(0, I): the label alone moves
    assert torch.equal(transfer_latent(plain, z, source, target), z)


@pytest.mark.slow
def test_label_transfer_changes_the_classifier_decision(data_dir, tmp_path):
    bundle, model = data_and_model(
        {"name": "mnist", "root": str(data_dir / "mnist"), "condition": "label"},
        {"latent_dim": 16, "width": 16, "hidden": 128, "conditional_prior": True}, tmp_path, train_examples=6000)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = torch.utils.data.DataLoader(bundle.train, batch_size=64, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    model.train()
    batches = (batch for _ in range(3) for batch in loader)  # 200 steps: more than one epoch of 6,000 images
    for step, batch in zip(range(200), batches, strict=False):
        loss = ELBO()(model, batch["x"], batch["c"], step).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    classifier = image_classifier(bundle.info, lambda: bundle.train, {"test": "transfer"}, tmp_path,
                                  examples=6000, epochs=2)
    x, y = bundle.test.images[:300].float().div(255).bernoulli(), bundle.test.labels[:300]
    assert (classifier(x).argmax(-1) == y).float().mean() > 0.85  # the judge itself works
    accuracy = transfer_accuracy(model, classifier, x, y)
    assert accuracy > 0.5, accuracy  # chance is 0.1: the decoded class follows the new label
