"""Measuring a trained model, and the latent operations the verbs share. Imports vaekit.runs and below.

- evaluate: ELBO, KL, importance-sampled NLL on a split; diagnostics: KL per unit, active units, I(x; z);
- disentanglement: MIG and SAP on data with known factors; classifier_metrics: a cached classifier's scores;
- samplers: priors fitted to the training codes after training (gmm, pixelcnn);
- latent_paths: interpolation and traversal paths; encode: latent codes and maps of files or a split.
"""
