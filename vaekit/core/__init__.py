"""Probability on tensors, modality-free: distributions, likelihoods, priors, flows, estimators, and the batch
helpers. Imports only vaekit.io (and torch).

- distributions: DiagonalGaussian over latents of any shape ([D], [T, D] masked, [C, H, W]);
- likelihoods: log p(x|z) families (Bernoulli, Gaussian, Laplace, discretized logistic, categorical);
- priors: learned mixtures and VampPrior; flows: IAF posteriors; estimators: KL decompositions, MMD;
- latent_priors: the latent PixelCNN; fitted_priors: priors fitted after training, as prior modules;
- batch: moving, counting and tiling batches of any structure.
"""
