"""The post-hoc samplers: EM recovers a known mixture; the latent PixelCNN is causal and learns a dependence
between latent pixels; `vaekit sample --sampler gmm|pixelcnn` fits once, keeps the fit in the run folder as
safetensors + JSON, and reuses it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from vaekit.cli import main
from vaekit.core.fitted_priors import FullGaussianMixture
from vaekit.evaluation.samplers import fit_gmm


def test_em_recovers_a_known_two_component_mixture():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3000, 2, generator=g, dtype=torch.float64) * 0.3 + torch.tensor([3.0, 0.0])
    mixing = torch.tensor([[1.0, 0.8], [0.0, 0.6]], dtype=torch.float64)
    b = torch.randn(1000, 2, generator=g, dtype=torch.float64) @ mixing - 2.0
    params, log_lik = fit_gmm(torch.cat([a, b]), components=2)
    order = params["means"][:, 0].argsort(descending=True)
    weights, means, covs = params["weights"][order], params["means"][order], params["covs"][order]
    torch.testing.assert_close(weights, torch.tensor([0.75, 0.25], dtype=torch.float64), atol=0.01, rtol=0)
    torch.testing.assert_close(means[0], torch.tensor([3.0, 0.0], dtype=torch.float64), atol=0.03, rtol=0)
    torch.testing.assert_close(covs[1], torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64), atol=0.1, rtol=0)
    mix = FullGaussianMixture(weights, means, covs, (2,), batch_size=5000)
    assert abs(mix.log_prob(torch.cat([a, b])).mean().item() - log_lik) < 1e-6
    draws = mix.sample()
    assert draws.shape == (5000, 2) and abs((draws[:, 0] > 0.5).float().mean().item() - 0.75) < 0.03


def test_sample_with_the_gmm_sampler_fits_once_and_records_the_fit(points_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "objective.kind=ae", "trainer.epochs=1", "--out", str(run)]) == 0
    args = ["sample", str(run), "-n", "6", "--sampler", "gmm", "--components", "3", "-o", str(tmp_path / "s")]
    assert main(args) == 0
    record = json.loads((run / "samplers" / "gmm-3.json").read_text())
    assert record["components"] == 3 and record["n_examples"] == 640 and record["checkpoint"].startswith("step-")
    params = load_file(str(run / "samplers" / "gmm-3.safetensors"))
    assert params["means"].shape == (3, 2) and params["covs"].shape == (3, 2, 2)
    stamp = (run / "samplers" / "gmm-3.safetensors").stat().st_mtime_ns
    assert main(args) == 0  # the same checkpoint: the saved fit is reused, not refitted
    assert (run / "samplers" / "gmm-3.safetensors").stat().st_mtime_ns == stamp
    assert main(["sample", str(run), "--sampler", "gmm", "--components", "0"]) == 2
    assert "--components" in capsys.readouterr().err


def test_a_recipe_with_latent_sampler_gmm_fits_it_when_training_ends_and_sample_uses_it(points_recipe, tmp_path,
                                                                                       capsys):
    run = tmp_path / "run"
    assert main(["train", str(points_recipe), "trainer.epochs=1", "latent.sampler=gmm", "latent.sampler_components=4",
                 "latent.sampler_examples=500", "--out", str(run)]) == 0
    record = json.loads((run / "samplers" / "gmm-4.json").read_text())
    assert record["n_examples"] == 500 and record["checkpoint"] == "step-20"
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["sampler"] for r in logged if r["split"] == "sampler"] == ["gmm"]
    assert (run / "samples" / "step-20-gmm4").is_dir()  # the fitted sampler's own draws, beside the prior's
    stamp = (run / "samplers" / "gmm-4.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "5", "-o", str(tmp_path / "s")]) == 0  # the recipe's sampler, reused
    assert "gmm-4.json" in capsys.readouterr().err
    assert (run / "samplers" / "gmm-4.safetensors").stat().st_mtime_ns == stamp
    assert main(["sample", str(run), "-n", "5", "--sampler", "prior", "-o", str(tmp_path / "p")]) == 0
    assert "sampler:" not in capsys.readouterr().err


def test_latent_sampler_with_no_components_is_one_line(points_recipe, tmp_path, capsys):
    code = main(["train", str(points_recipe), "latent.sampler=gmm", "latent.sampler_components=0",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "sampler_components" in err and len(err.strip().splitlines()) == 1


def test_one_rule_says_which_models_a_fitted_mixture_can_stand_in_for():
    from vaekit.core.priors import MixturePrior
    from vaekit.evaluation.samplers import gmm_unusable
    from vaekit.model.vae import VAE, ConditionEmbedding, LearnedConditionalPrior

    net = torch.nn.Identity()
    assert gmm_unusable(VAE(net, net, 4)) is None
    assert gmm_unusable(VAE(net, net, 4, prior=MixturePrior((4,), components=3))) is None  # p(z) ignores c
    assert "no fixed shape" in gmm_unusable(VAE(net, net, 4, latent_shape=(None, 4)))
    conditional = VAE(net, net, 4, prior=LearnedConditionalPrior(4, ConditionEmbedding(3, out_dim=8)))
    assert "conditional prior" in gmm_unusable(conditional)


RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "image"
TINY_SPATIAL = ["trainer.max_steps=8", "trainer.batch_size=16", "trainer.eval_every=8", "trainer.eval_batches=1",
                "trainer.checkpoint_every=8", "trainer.samples=4", "trainer.progress=false", "trainer.log_every=4",
                "data.num_train=128", "data.num_val=32", "data.num_test=32", "model.width=8", "eval.batch_size=16",
                "model.latent_shape=spatial", "model.latent_channels=2", "model.depth=2",
                "model.decoder_pose=false"]


def test_the_latent_pixelcnn_reads_only_earlier_pixels_and_learns_their_dependence():
    from vaekit.core.latent_priors import LatentPixelCNN, fit_latent_pixelcnn

    net = LatentPixelCNN((3, 4, 5), hidden=8, blocks=2, components=2)
    z = torch.randn(2, 3, 4, 5)
    moved = z.clone()
    moved[:, :, 2, 3] += 5.0
    with torch.no_grad():
        before, after = net._params(z)[1], net._params(moved)[1]
    changed = (before - after).abs().sum((0, 1, 2)) > 0  # [H, W]: which pixels' parameters moved
    order = torch.arange(20).reshape(4, 5)
    assert not changed[order <= 2 * 5 + 3].any() and changed[order > 2 * 5 + 3].any()
    # 2 channels on a 2 x 2 grid: every pixel copies the first one (plus noise 0.05); channel 1 = -channel 0
    g = torch.Generator().manual_seed(0)
    first = torch.randn(4000, 1, 1, 1, generator=g)
    codes = torch.cat([first, -first], 1).expand(4000, 2, 2, 2) + 0.05 * torch.randn(4000, 2, 2, 2, generator=g)
    prior, log_lik = fit_latent_pixelcnn(codes, torch.zeros_like(codes), (2, 2, 2), components=3, steps=400,
                                         batch_size=128, lr=1e-2, hidden=16, blocks=1)
    independent = torch.distributions.Normal(0.0, codes.std((0, 2, 3)).reshape(2, 1, 1)).log_prob(codes)
    assert log_lik > independent.sum((1, 2, 3)).mean().item() + 10  # nats: the dependence is learned
    draws = prior.sample(2000, generator=torch.Generator().manual_seed(1))
    assert 0.6 < draws[:, 0].std().item() < 1.3  # 400 steps: near the data's spread of 1
    # the copy, not independent noise (whose median gap would be 0.95)
    assert (draws[:, 0, 1, 1] - draws[:, 0, 0, 0]).abs().median().item() < 0.35
    assert (draws[:, 1] + draws[:, 0]).abs().median().item() < 0.35


def test_a_latent_pixelcnn_fit_of_any_number_of_steps_runs_its_learning_rate_schedule():
    from vaekit.core.latent_priors import fit_latent_pixelcnn

    codes = torch.randn(50, 1, 2, 2)
    for steps in (1, 20, 21):  # 20: a 5% warm-up of exactly one step
        _, log_lik = fit_latent_pixelcnn(codes, torch.ones_like(codes), (1, 2, 2), components=2, steps=steps,
                                         batch_size=8, hidden=4, blocks=1)
        assert torch.isfinite(torch.tensor(log_lik))


def test_a_spatial_recipe_with_latent_sampler_pixelcnn_fits_saves_and_reloads_it(tmp_path, capsys):
    import vaekit
    from vaekit.core.latent_priors import LatentPixelCNN

    run = tmp_path / "run"
    assert main(["train", str(RECIPES / "shapes.yaml"), *TINY_SPATIAL, "latent.sampler=pixelcnn",
                 "latent.sampler_components=2", "latent.sampler_steps=5", "--out", str(run)]) == 0
    record = json.loads((run / "samplers" / "pixelcnn-2.json").read_text())
    assert record["n_examples"] == 128 and record["checkpoint"] == "step-8" and record["steps"] == 5
    assert record["latent_shape"] == [2, 8, 8]
    assert (run / "samples" / "step-8-pixelcnn2").is_dir()
    weights = run / "samplers" / "pixelcnn-2.safetensors"
    stamp = weights.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["sample", str(run), "-n", "4", "-o", str(tmp_path / "s")]) == 0  # the recipe's sampler, reused
    assert "pixelcnn-2.json" in capsys.readouterr().err and (tmp_path / "s" / "samples.png").is_file()
    assert weights.stat().st_mtime_ns == stamp
    # the saved fit reloads (safetensors + JSON, no pickle) to the same density
    saved = LatentPixelCNN(tuple(record["latent_shape"]), **record["network"])
    saved.load_state_dict(load_file(str(weights)))
    model, _ = vaekit.load(run)
    from vaekit.evaluation.samplers import pixelcnn_prior

    reloaded, _ = pixelcnn_prior(model, run, None, components=2, max_examples=10000, checkpoint="step-8", steps=5)
    z = model.posterior(torch.rand(3, 1, 32, 32)).mean
    torch.testing.assert_close(reloaded.net.log_prob(z), saved.log_prob(z), atol=1e-4, rtol=1e-5)
    assert reloaded(None, 3).sample().shape == (3, 2, 8, 8)


def test_latent_sampler_pixelcnn_on_a_vector_latent_is_one_line(points_recipe, tmp_path, capsys):
    code = main(["train", str(points_recipe), "latent.sampler=pixelcnn", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "spatial latent" in err and len(err.strip().splitlines()) == 1
