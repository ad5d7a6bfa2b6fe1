"""Recipes: the YAML file, its overrides and ${ENV} values, typed into dataclasses against the engine and the
plugin it names. Imports vaekit.plugin and everything below it.

- reading: bounded YAML, overrides, ${ENV}, typing a value against a dataclass (RecipeError, build_dataclass);
- recipe: the engine's sections (objective, trainer, eval) and Recipe, parse_recipe, load_recipe; the latent
  section is vaekit.model.latent.LatentConfig and the KL controller's vaekit.objectives.kl_control's, each
  defined beside the code that reads it;
- subsets: the subset section (SubsetConfig) and how a split is cut to it.
"""
