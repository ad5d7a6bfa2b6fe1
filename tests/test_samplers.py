"""The post-hoc GMM sampler: EM recovers a known mixture; `vaekit sample --sampler gmm` fits once, keeps the
fit in the run folder as safetensors + JSON, and reuses it."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from vaekit.cli import main
from vaekit.samplers import FullGaussianMixture, fit_gmm


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
    from vaekit.model import VAE, ConditionEmbedding, LearnedConditionalPrior
    from vaekit.priors import MixturePrior
    from vaekit.samplers import gmm_unusable

    net = torch.nn.Identity()
    assert gmm_unusable(VAE(net, net, 4)) is None
    assert gmm_unusable(VAE(net, net, 4, prior=MixturePrior((4,), components=3))) is None  # p(z) ignores c
    assert "no fixed shape" in gmm_unusable(VAE(net, net, 4, latent_shape=(None, 4)))
    conditional = VAE(net, net, 4, prior=LearnedConditionalPrior(4, ConditionEmbedding(3, out_dim=8)))
    assert "conditional prior" in gmm_unusable(conditional)
