"""The model: VAE around a plugin's encoder and decoder, and the recipe's latent section put around it.
Imports vaekit.objectives, vaekit.core and vaekit.io.

- vae: VAE, its priors (standard normal, learned conditional) and ConditionEmbedding;
- latent: LatentConfig and apply_latent_config (prior, posterior flow, condition adversary and cycle), and
  which fitted samplers a model can use.
"""
