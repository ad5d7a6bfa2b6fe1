"""The command line as a user meets it: help, plugins listing, one-line errors, every verb on a trained run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from vaekit.cli import main


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, points_plugin):
    folder = tmp_path_factory.mktemp("cli")
    recipe = folder / "points.yaml"
    recipe.write_text("plugin: points\ndata: {n_train: 320, n_val: 64}\nmodel: {latent_dim: 2, hidden: 16}\n"
                      "trainer: {epochs: 2, batch_size: 32, progress: false, samples: 0}\neval: {iw_samples: 10}\n")
    run = folder / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize("verb", ["train", "eval", "sample", "reconstruct", "interpolate", "plugins"])
def test_every_verb_has_useful_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"vaekit {verb}" in out and len(out.splitlines()) >= 4


def test_python_dash_m_and_top_level_usage():
    result = subprocess.run([sys.executable, "-m", "vaekit", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for verb in ("train", "eval", "sample", "reconstruct", "interpolate", "plugins"):
        assert verb in result.stdout
    assert main(["frobnicate"]) == 2


def test_plugins_lists_name_distribution_version_status(points_plugin, capsys):
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "distribution", "version", "status"]
    assert any(line.split()[:4] == ["points", "vaekit-points", "0.1.0", "ok"] for line in lines[1:])


def test_recipe_errors_are_one_line_and_name_file_and_key(points_plugin, tmp_path, capsys):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text("plugin: points\ntrainer:\n  epoch: 3\n")
    assert main(["train", str(recipe), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"vaekit: error: {recipe}: trainer.epoch: unknown key; did you mean 'epochs'?"

    assert main(["train", str(recipe), "trainer.epoch=3", "model.hiden=3", "--out", str(tmp_path / "r")]) == 2
    assert "model.hiden: unknown key; did you mean 'hidden'?" in capsys.readouterr().err

    recipe.write_text("plugin: pointz\n")
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "unknown plugin 'pointz'" in err and "points" in err

    recipe.write_text("plugin: points\ndata: {source: csv, path: /no/such/file.csv}\n")
    assert main(["train", str(recipe)]) == 2
    assert "data.path: /no/such/file.csv does not exist" in capsys.readouterr().err

    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "recipe file not found" in capsys.readouterr().err


def test_run_verbs_on_a_trained_run(trained_run, tmp_path, capsys):
    assert main(["eval", str(trained_run), "--iw-samples", "20", "--output", str(tmp_path / "eval.json")]) == 0
    results = json.loads((tmp_path / "eval.json").read_text())
    assert results["split"] == "test" and results["iw_samples"] == 20
    # The importance-sampled NLL is at most the negative ELBO (it is a tighter bound on -log p(x)).
    assert results["nll"] <= -results["elbo"] + 1e-3

    out = tmp_path / "samples"
    assert main(["sample", str(trained_run), "-n", "7", "-o", str(out)]) == 0
    assert (out / "samples.csv").read_text().count("\n") == 7

    points = tmp_path / "in.csv"
    points.write_text("0.5,0.25\n1.0,0.0\n")
    assert main(["reconstruct", str(trained_run), str(points), "-o", str(tmp_path / "rec")]) == 0
    assert (tmp_path / "rec" / "reconstructions.csv").read_text().count("\n") == 2

    capsys.readouterr()
    assert main(["interpolate", str(trained_run), "a", "b"]) == 2
    assert "does not support interpolate" in capsys.readouterr().err
    assert main(["traverse", str(trained_run), "--dims", "0"]) == 2
    assert "does not support traverse" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "nothing-here")]) == 2
    assert "no such run or model folder" in capsys.readouterr().err


def test_corrupt_checkpoint_is_a_clear_error(trained_run, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(sorted((trained_run / "checkpoints").iterdir())[-1], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert main(["sample", str(broken)]) == 2
    err = capsys.readouterr().err
    assert str(weights) in err and err.count("\n") == 1


# -- bad input is one line --------------------------------------------------------------

def test_out_that_is_a_file_and_a_recipe_that_is_a_folder_are_one_line(points_plugin, tmp_path, capsys):
    recipe = tmp_path / "points.yaml"
    recipe.write_text("plugin: points\ndata: {n_train: 32}\ntrainer: {epochs: 1, progress: false}\n")
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    for out in (taken, taken / "run"):
        assert main(["train", str(recipe), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err == f"vaekit: error: --out {out}: {taken} is a file; expected a run folder (new or existing)\n"
    assert taken.read_text() == "mine"
    assert main(["train", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"vaekit: error: {tmp_path}: is a folder; expected a recipe YAML")


def test_zero_intervals_are_one_line_errors_not_zero_division(points_plugin, tmp_path, capsys):
    recipe = tmp_path / "points.yaml"
    recipe.write_text("plugin: points\ndata: {n_train: 32}\ntrainer: {epochs: 1, progress: false}\n")
    for key in ("trainer.eval_every", "trainer.checkpoint_every", "trainer.log_every", "trainer.epochs"):
        assert main(["train", str(recipe), f"{key}=0", "--out", str(tmp_path / "run")]) == 2
        assert capsys.readouterr().err == f"vaekit: error: {recipe}: {key}: expected an integer >= 1, got 0\n"
    assert not (tmp_path / "run").exists()


def test_an_alias_bomb_in_a_runs_recipe_stops_eval_in_one_line(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    bomb = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else 'lol'] * 9)}]\n" for i in range(7))
    (run / "recipe.yaml").write_text((run / "recipe.yaml").read_text() + bomb)
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vaekit: error: {run / 'recipe.yaml'}: YAML aliases expand to more than")
    assert err.count("\n") == 1


def test_an_alias_bomb_in_a_runs_recipe_stops_resume_in_one_line(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    bomb = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else 'lol'] * 9)}]\n" for i in range(7))
    (run / "recipe.yaml").write_text((run / "recipe.yaml").read_text() + bomb)
    recipe = tmp_path / "points.yaml"
    recipe.write_text("plugin: points\ndata: {n_train: 320, n_val: 64}\nmodel: {latent_dim: 2, hidden: 16}\n"
                      "trainer: {epochs: 3, batch_size: 32, progress: false, samples: 0}\neval: {iw_samples: 10}\n")
    assert main(["train", str(recipe), "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vaekit: error: {run / 'recipe.yaml'}: YAML aliases expand to more than")


def test_an_error_from_anywhere_is_one_bounded_line(points_plugin, tmp_path, capsys):
    from vaekit.cli.commands import one_line

    assert one_line(ValueError("a\n  b\tc")) == "a b c"
    assert one_line(ValueError("x" * 5000)) == "x" * 1000 + "... (5,000 characters)"
    recipe = tmp_path / "points.yaml"
    recipe.write_text("plugin: points\ndata: {n_train: 32}\n")
    assert main(["train", str(recipe), "data." + "k" * 3000 + "=1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 1100


@pytest.mark.parametrize("args, expected", [
    (["sample", "{run}", "-n", "0"], "vaekit sample: error: argument -n/--num: expected an integer >= 1, got 0"),
    (["eval", "{run}", "--iw-samples", "-3"], "vaekit eval: error: argument --iw-samples: expected an integer >= 0, "
                                              "got -3"),
    (["sample", "{run}", "--seed", "-1"], "vaekit sample: error: argument --seed: expected an integer >= 0, got -1"),
    (["sample", "{run}", "-n", "ten"], "vaekit sample: error: argument -n/--num: expected an integer >= 1, "
                                       "got 'ten'"),
])
def test_bad_arguments_are_one_line(trained_run, capsys, args, expected):
    verb = args[0]
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(run=trained_run) for a in args])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"{expected} (see vaekit {verb} --help)\n"


def test_temperature_zero_draws_the_prior_mean_in_the_cli(trained_run, tmp_path):
    out = tmp_path / "cold"
    assert main(["sample", str(trained_run), "-n", "5", "--temperature", "0", "-o", str(out)]) == 0
    rows = torch.tensor([[float(v) for v in row.split(",")] for row in (out / "samples.csv").read_text().splitlines()])
    # One point five times; compared to float precision, since a batched matmul may round a row differently.
    assert rows.shape[0] == 5 and torch.allclose(rows, rows[:1].expand_as(rows), atol=1e-6)
    assert main(["sample", str(trained_run), "-n", "5", "-o", str(tmp_path / "warm")]) == 0
    assert len(set((tmp_path / "warm" / "samples.csv").read_text().splitlines())) == 5


@pytest.mark.parametrize("args, expected", [
    (["sample", "{run}", "--temperature", "-1"], "vaekit sample: error: argument --temperature: expected a number "
                                                 ">= 0, got -1"),
    (["interpolate", "{run}", "a", "b", "--steps", "1"], "vaekit interpolate: error: argument --steps: expected an "
                                                         "integer >= 2, got 1"),
    (["interpolate", "{run}", "a", "b", "--method", "cubic"], "vaekit interpolate: error: argument --method: "
                                                              "invalid choice: 'cubic' (choose from "),
])
def test_the_engine_options_are_checked_for_every_plugin(trained_run, capsys, args, expected):
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(run=trained_run) for a in args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err  # argparse quotes the choices in some Python versions, not in others
    assert err.startswith(expected) and err.endswith(f" (see vaekit {args[0]} --help)\n") and err.count("\n") == 1


def test_a_plugin_option_that_clashes_with_the_engine_is_one_line(trained_run, capsys, monkeypatch):
    """A plugin written when interpolate's --steps was its own: the user is told which option and why."""
    from vaekit.plugin import get_plugin

    plugin = get_plugin("points")
    monkeypatch.setattr(plugin, "add_arguments", lambda verb, parser: parser.add_argument("--steps", type=int))
    assert main(["interpolate", str(trained_run), "a", "b"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaekit: error: plugin 'points': its `interpolate` options clash with the engine's")
    assert "--steps" in err and err.count("\n") == 1
