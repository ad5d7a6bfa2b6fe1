"""M1+M2 over a text VAE on Yelp: an unconditional VAE on the labelled corpus, M2 on its sentence codes, trained
and evaluated through recipes/text/yelp_m1m2.yaml on tiny subsets."""

from __future__ import annotations

import json
from pathlib import Path

from vaekit.cli import main

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "text"
TINY = ["subset.train=200", "subset.val=20", "subset.test=40", "trainer.threads=1", "trainer.progress=false",
        "trainer.samples=0", "trainer.eval_every=1000", "eval.iw_samples=0"]
M1 = ["data.condition_on=null", "data.references=null", "latent.condition_adversary=0", "model.embed_dim=16",
      "model.hidden_dim=16", "model.encoder_hidden_dim=16", "model.latent_dim=4", "model.condition_dim=0",
      "trainer.max_steps=3", "trainer.min_steps=0", "trainer.batch_size=16"]


def test_m1_m2_learns_sentiment_from_a_text_vae_s_codes(tmp_path):
    assert main(["train", str(RECIPES / "yelp_sentiment.yaml"), *TINY, *M1, "--out", str(tmp_path / "m1")]) == 0
    m2 = ["semi_supervised.labelled=20", "semi_supervised.latent_dim=2", "semi_supervised.hidden=16",
          "trainer.max_steps=5", f"semi_supervised.codes_from={tmp_path / 'm1'}"]
    assert main(["train", str(RECIPES / "yelp_m1m2.yaml"), *TINY, *m2, "--out", str(tmp_path / "m1m2")]) == 0
    config = json.loads(next((tmp_path / "m1m2" / "checkpoints").glob("step-*/config.json")).read_text())
    facts = config["info"]["semi_supervised"]
    assert facts["class_names"] == ["0", "1"] and facts["labelled"] == 20 and facts["code_dim"] == 4
    assert main(["eval", str(tmp_path / "m1m2")]) == 0
    assert 0.0 <= json.loads((tmp_path / "m1m2" / "eval-test.json").read_text())["class_error"] <= 100.0
