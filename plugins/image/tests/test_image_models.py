"""Image encoders/decoders: shapes for every size, channel count and likelihood; training on real MNIST."""

from __future__ import annotations

import pytest
import torch
from image_test_helpers import configs, data_and_model, info, plugin, tiny_model
from vaekit_image.nets import ImageDecoder

import vaekit
from vaekit import RecipeError


@pytest.mark.parametrize("architecture", ["conv", "resnet"])
@pytest.mark.parametrize("size,channels,depth", [(28, 1, 2), (32, 3, 3), (64, 3, 4)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "discretized_logistic"])
def test_shapes_and_likelihoods(architecture, size, channels, depth, likelihood, tmp_path):
    model = tiny_model(info(size, channels), tmp_path, architecture=architecture, depth=depth, likelihood=likelihood)
    x = torch.rand(3, channels, size, size)
    if likelihood == "bernoulli":
        x = torch.bernoulli(x)
    elif likelihood == "discretized_logistic":
        x = (x * 255).round() / 255
    terms = model(x)
    assert terms.elbo.shape == (3,) and torch.isfinite(terms.loss)
    nll = vaekit.iw_nll(model, x, k=7, chunk_size=3)  # tiles x to 3 * 3 and 1 * 3 rows
    assert nll.shape == (3,) and torch.isfinite(nll).all()
    images = model.sample(5)
    assert images.shape == (5, channels, size, size) and 0 <= images.min() and images.max() <= 1
    if likelihood == "discretized_logistic":  # a probability mass: the code length is positive
        assert (nll > 0).all()


def test_depth_must_divide_size(tmp_path):
    with pytest.raises(RecipeError, match="model.depth"):
        tiny_model(info(28), tmp_path, depth=3)


def test_conditional_prior_needs_a_condition(tmp_path):
    with pytest.raises(RecipeError, match="conditional_prior"):
        tiny_model(info(28), tmp_path, conditional_prior=True)
    with pytest.raises(RecipeError, match="model.likelihood"):
        configs({}, {"likelihood": "poisson"})


@pytest.mark.parametrize("conditional_prior", [False, True])
def test_cvae_label_changes_the_sample(conditional_prior, tmp_path):
    torch.manual_seed(0)
    model = tiny_model(info(28, condition="label", num_classes=10), tmp_path, conditional_prior=conditional_prior)
    if conditional_prior:  # an untrained learned prior starts at N(0, I) for every label: give it a shape
        torch.nn.init.normal_(model.prior_net.net[-1].weight)
    z = torch.randn(1, 4)
    three = model.decode(z, torch.tensor([3]))
    seven = model.decode(z, torch.tensor([7]))
    assert not torch.allclose(three, seven, atol=1e-4)
    assert torch.equal(three, model.decode(z, torch.tensor([3])))
    terms = model(torch.bernoulli(torch.rand(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
    assert torch.isfinite(terms.loss)


def test_lowres_condition_model_decodes_with_its_image(tmp_path):
    model = tiny_model(info(28, condition="lowres"), tmp_path, conditional_prior=True)
    c = torch.rand(2, 1, 7, 7)
    x = torch.bernoulli(torch.rand(2, 1, 28, 28))
    assert torch.isfinite(vaekit.iw_nll(model, x, c, k=4)).all()
    z = torch.zeros(2, 4)
    assert not torch.allclose(model.decode(z, c), model.decode(z, c.flip(0)))


@pytest.mark.parametrize("size, factor", [(32, 2), (30, 4)])
def test_lowres_layers_at_the_low_resolution_give_full_size_images_that_depend_on_the_condition(tmp_path, size,
                                                                                                 factor):
    """lowres_at=low: convs at the low-res size, then a sub-pixel conv to full size (cropped where the factor
    does not divide the size: 30 px at factor 4 reads 8 x 8 and makes 32 x 32 before the crop)."""
    torch.manual_seed(0)
    model = tiny_model(info(size, channels=3, condition="lowres", lowres_factor=factor), tmp_path,
                       likelihood="discretized_logistic_rgb", lowres_layers=2, lowres_at="low", lowres_width=6)
    low = -(-size // factor)
    c = torch.rand(2, 3, low, low)
    z = torch.zeros(2, 4)
    out = model.decode(z, c)
    assert out.shape == (2, 3, size, size)
    assert not torch.allclose(out, model.decode(z, c.flip(0)))
    assert torch.isfinite(vaekit.iw_nll(model, torch.rand(2, 3, size, size), c, k=2)).all()
    with pytest.raises(ValueError, match="lowres_at=low"):
        tiny_model(info(size, channels=3, condition="lowres", lowres_factor=factor), tmp_path, lowres_at="low")


@pytest.mark.slow
def test_loss_falls_and_reconstructions_improve_on_real_mnist(data_dir, tmp_path):
    torch.manual_seed(0)
    bundle, model = data_and_model({"name": "mnist", "root": str(data_dir / "mnist")},
                                   {"latent_dim": 8, "width": 8, "hidden": 64}, tmp_path, train_examples=1024)
    test = torch.stack([bundle.test[i]["x"] for i in range(64)])
    loader = torch.utils.data.DataLoader(bundle.train, batch_size=32, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)

    def held_out():
        model.eval()
        with torch.no_grad():
            mse = torch.mean((model.reconstruct(test) - test) ** 2).item()
            loss = -model(test).elbo.mean().item()
        model.train()
        return loss, mse

    loss_before, mse_before = held_out()
    for batch in loader:  # one epoch: 32 steps
        terms = model(batch["x"])
        optimizer.zero_grad()
        terms.loss.backward()
        optimizer.step()
    loss_after, mse_after = held_out()
    assert loss_after < 0.6 * loss_before, (loss_before, loss_after)  # about 540 -> under 300 nats
    assert mse_after < 0.8 * mse_before, (mse_before, mse_after)
    assert plugin().eval_metrics(model, [{"x": test}], {"elbo": -loss_after})["reconstruction_mse"] > 0


def test_replicated_edges_give_border_pixels_the_inputs_inner_ones_get():
    from vaekit_image.nets import EdgeConvTranspose2d

    torch.manual_seed(0)
    zeros = EdgeConvTranspose2d(3, 2, 4, stride=2, padding=1)
    replicate = EdgeConvTranspose2d(3, 2, 4, stride=2, padding=1, edges="replicate")
    replicate.load_state_dict(zeros.state_dict())  # the same weights: a checkpoint loads into either
    flat = torch.ones(1, 3, 5, 5)  # a featureless map decodes to one 2x2 tile (stride 2) repeated, border included
    out = replicate(flat)
    assert out.shape == zeros(flat).shape == (1, 2, 10, 10)
    torch.testing.assert_close(out, out[:, :, 4:6, 4:6].repeat(1, 1, 5, 5), atol=1e-6, rtol=0)
    border = zeros(flat)[0, 0, 0, 4] - zeros(flat)[0, 0, 4, 4]  # zero padding: the border gets half the inputs
    assert border.abs() > 1e-3
    x = torch.randn(2, 3, 5, 5)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # away from the edge both agree
    torch.testing.assert_close(replicate(x)[inner], zeros(x)[inner], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("architecture", ["conv", "resnet"])
def test_a_new_run_replicates_edges_and_an_older_checkpoint_keeps_zeros(architecture, tmp_path):
    from vaekit.runs import build_model, load

    _, model = data_and_model({"name": "shapes", "num_train": 8, "num_val": 4, "num_test": 4},
                              {"architecture": architecture, "width": 4, "hidden": 0, "latent_dim": 2}, tmp_path)
    assert model.config["model"]["edges"] == "replicate"  # recorded, so the run reloads as it was trained
    paddings = {m.padding_mode for m in model.modules() if isinstance(m, torch.nn.Conv2d)}
    assert paddings == {"replicate"}  # encoder and decoder
    assert all(m.edges == "replicate" for m in model.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d))
    folder = model.save_pretrained(tmp_path / "new")
    assert load(folder)[0].config["model"]["edges"] == "replicate"
    older = dict(model.config["model"])
    del older["edges"]  # a config.json written before the key existed
    _, cfg = configs({}, older)
    rebuilt = build_model(plugin(), cfg, dict(model.config["info"]), tmp_path / "assets")
    assert rebuilt.config["model"]["edges"] == "zeros"
    assert {m.padding_mode for m in rebuilt.modules() if isinstance(m, torch.nn.Conv2d)} == {"zeros"}
    assert rebuilt.state_dict().keys() == model.state_dict().keys()


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_a_decoder_whose_last_upsampling_gives_the_parameters(likelihood, tmp_path):
    """decoder_output=upsample: no output convolution; the same image sizes, fewer weights, a finite ELBO."""
    torch.manual_seed(0)
    direct = tiny_model(info(32), tmp_path, depth=3, likelihood=likelihood, decoder_output="upsample")
    usual = tiny_model(info(32), tmp_path, depth=3, likelihood=likelihood)
    assert isinstance(direct.decoder.out, torch.nn.Identity)
    assert direct.decoder.params(torch.zeros(2, 4)).shape == usual.decoder.params(torch.zeros(2, 4)).shape
    count = lambda model: sum(p.numel() for p in model.decoder.parameters())
    assert count(direct) < count(usual)
    x = torch.bernoulli(torch.rand(3, 1, 32, 32))
    assert torch.isfinite(direct(x).loss)
    assert direct.sample(2).shape == (2, 1, 32, 32)
    with pytest.raises(RecipeError, match="decoder_output"):
        tiny_model(info(28, condition="lowres"), tmp_path, decoder_output="upsample")
    with pytest.raises(RecipeError, match="decoder_output"):
        configs({}, {"architecture": "resnet", "decoder_output": "upsample"})


def test_placing_a_drawing_turns_and_moves_it():
    """decoder_pose's similarity transform: (1, 0, 0, 0) leaves a drawing as it is, (0, 1, 0, 0) turns it a quarter
    and a shift of 2/S moves it one pixel."""
    place = ImageDecoder.place
    drawing = torch.randn(2, 3, 8, 8)
    identity = torch.tensor([[1.0, 0.0, 0.0, 0.0]]).expand(2, 4)
    torch.testing.assert_close(place(drawing, identity), drawing, atol=1e-5, rtol=0)
    quarter = place(drawing, torch.tensor([[0.0, 1.0, 0.0, 0.0]]).expand(2, 4))
    assert torch.allclose(quarter, torch.rot90(drawing, 1, dims=(2, 3)), atol=1e-5) \
        or torch.allclose(quarter, torch.rot90(drawing, -1, dims=(2, 3)), atol=1e-5)
    shifted = place(drawing, torch.tensor([[1.0, 0.0, 2 / 8, 0.0]]).expand(2, 4))
    torch.testing.assert_close(shifted[..., :-1], drawing[..., 1:], atol=1e-5, rtol=0)


def test_a_posed_decoder_starts_as_the_plain_one_and_learns_a_pose(tmp_path):
    """decoder_pose starts at the identity transform, so the same weights give the same images; its pose net gets
    gradients; it refuses a spatial latent and the low-res condition in one line each."""
    torch.manual_seed(0)
    posed = tiny_model(info(32), tmp_path, depth=3, decoder_output="upsample", decoder_pose=True)
    plain = tiny_model(info(32), tmp_path, depth=3, decoder_output="upsample")
    plain.load_state_dict({k: v for k, v in posed.state_dict().items() if not k.startswith("decoder.pose.")})
    z = torch.randn(3, 4)
    torch.testing.assert_close(posed.decoder.params(z), plain.decoder.params(z), atol=1e-4, rtol=0)
    x = torch.bernoulli(torch.rand(3, 1, 32, 32))
    posed.train()(x).loss.backward()
    assert posed.decoder.pose[2].weight.grad.abs().sum() > 0
    with pytest.raises(RecipeError, match="decoder_pose"):
        tiny_model(info(32, condition="lowres"), tmp_path, depth=3, decoder_pose=True)
    with pytest.raises(RecipeError, match="decoder_pose"):
        configs({}, {"latent_shape": "spatial", "decoder_pose": True})
