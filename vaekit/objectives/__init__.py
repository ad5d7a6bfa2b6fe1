"""What training minimises: the ELBO family and its controls. Imports vaekit.core and vaekit.io.

- elbo: ELBO, IWAE, β-TCVAE, InfoVAE, the autoencoder, the importance-sampled NLL;
- sampling: the prior shaped like the posterior and the k samples every objective shares;
- refine: per-example refinement of q(z|x) for tighter NLL estimates (iw_nll calls it);
- schedules: KL weight schedules; kl_control: a KL held at a target by a controller;
- adversary, cycle: the CVAE's training-only condition terms (a reversed-gradient adversary, a cycle).
"""
