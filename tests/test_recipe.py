"""Recipes: real YAML files typed against an in-process plugin's dataclasses; every error names file and key."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers_toy_plugin import PLUGIN_NAME, PointsData, PointsModel, register_points_plugin

import vaekit
from vaekit import Plugin, RecipeError, load_recipe
from vaekit.config.recipe import parse_recipe


@pytest.fixture(autouse=True)
def points_plugin(monkeypatch):
    return register_points_plugin(monkeypatch)


def write_recipe(folder: Path, body: str, name: str = "points.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


GOOD = f"""\
    # vaekit train {{path}}  (engine test recipe)
    plugin: {PLUGIN_NAME}
    seed: 3
    data:
      n_points: 32
      shape: moons
    model:
      latent_dim: 3
      layers: [8, 8]
    objective:
      kind: iwae
      iw_samples: 10
      free_bits: 0.25
      kl_schedule: {{kind: cyclical, n_cycles: 2, ratio: 0.25}}
    trainer:
      epochs: 5
      batch_size: 16
      lr: 0.002
      precision: bf16
      max_steps: 100
    eval:
      split: val
      iw_samples: 50
"""


def test_a_good_recipe_is_typed_against_engine_and_plugin_dataclasses(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, GOOD))
    assert recipe.plugin == PLUGIN_NAME and recipe.seed == 3
    assert recipe.name == "points"  # defaults to the file's stem
    assert recipe.data == PointsData(n_points=32, shape="moons")
    assert recipe.model == PointsModel(latent_dim=3, layers=[8, 8])
    assert recipe.objective.kind == "iwae" and recipe.objective.iw_samples == 10
    assert recipe.objective.free_bits == 0.25 and isinstance(recipe.objective.free_bits, float)
    assert recipe.objective.kl_schedule.kind == "cyclical" and recipe.objective.kl_schedule.ratio == 0.25
    assert recipe.trainer.epochs == 5 and recipe.trainer.max_steps == 100 and recipe.trainer.precision == "bf16"
    assert recipe.trainer.lr == 0.002 and recipe.trainer.weight_decay == 0.0  # unspecified keys keep defaults
    assert recipe.eval.split == "val" and recipe.eval.iw_samples == 50


def test_the_resolved_recipe_round_trips_through_yaml(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, GOOD))
    saved = write_recipe(tmp_path, yaml.safe_dump(recipe.to_dict()), "resolved.yaml")
    again = load_recipe(saved)
    assert again.to_dict() == recipe.to_dict()


def test_a_typo_in_an_engine_key_names_file_key_path_and_the_nearest_key(tmp_path):
    path = write_recipe(tmp_path, GOOD.replace("epochs: 5", "epoch: 5"))
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    message = str(error.value)
    assert str(path) in message and "trainer.epoch" in message and "'epochs'" in message
    assert "\n" not in message  # one line


def test_a_typo_in_a_plugin_key_suggests_the_plugin_field(tmp_path):
    path = write_recipe(tmp_path, GOOD.replace("n_points: 32", "n_point: 32"))
    with pytest.raises(RecipeError, match=r"data\.n_point: unknown key; did you mean 'n_points'"):
        load_recipe(path)


def test_a_typo_in_a_nested_section_and_at_the_top_level(tmp_path):
    path = write_recipe(tmp_path, GOOD.replace("n_cycles: 2", "n_cycle: 2"))
    with pytest.raises(RecipeError, match=r"objective\.kl_schedule\.n_cycle: .*'n_cycles'"):
        load_recipe(path)
    path = write_recipe(tmp_path, GOOD.replace("trainer:", "trainr:"))
    with pytest.raises(RecipeError, match=r"trainr: unknown top-level key; did you mean 'trainer'"):
        load_recipe(path)


@pytest.mark.parametrize("old, new, key, expected", [
    ("batch_size: 16", "batch_size: sixteen", "trainer.batch_size", "expected int"),
    ("epochs: 5", "epochs: 2.5", "trainer.epochs", "expected int"),
    ("latent_dim: 3", "latent_dim: true", "model.latent_dim", "expected int"),
    ("lr: 0.002", "lr: fast", "trainer.lr", "expected float"),
    ("max_steps: 100", "max_steps: lots", "trainer.max_steps", "expected int or null"),
    ("layers: [8, 8]", "layers: 8", "model.layers", "expected a list"),
    ("layers: [8, 8]", "layers: [8, wide]", r"model.layers\[1\]", "expected int"),
    ("kl_schedule: {kind: cyclical, n_cycles: 2, ratio: 0.25}", "kl_schedule: 3", "objective.kl_schedule",
     "expected a section"),
])
def test_a_wrong_type_names_the_key_and_the_expected_type(tmp_path, old, new, key, expected):
    path = write_recipe(tmp_path, GOOD.replace(old, new))
    assert old in GOOD
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    assert str(path) in str(error.value)
    assert error.match(f"{key}: {expected}")


@pytest.mark.parametrize("old, new, key, nearest", [
    ("precision: bf16", "precision: bf61", "trainer.precision", "bf16"),
    ("shape: moons", "shape: moon", "data.shape", "moons"),
    ("kind: iwae", "kind: iwea", "objective.kind", "iwae"),
])
def test_a_literal_mismatch_lists_the_choices_and_suggests_the_nearest(tmp_path, old, new, key, nearest):
    path = write_recipe(tmp_path, GOOD.replace(old, new))
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    assert error.match(f"{key}: expected one of ") and error.match(f"did you mean '{nearest}'")


def test_a_plugin_config_that_rejects_a_value_names_the_section(tmp_path):
    @dataclass
    class EvenModel:
        width: int = 2

        def __post_init__(self):
            if self.width % 2:
                raise ValueError(f"width must be even, got {self.width}")

    class Even(Plugin):
        name = "enginetest_even"
        model_config = EvenModel

    vaekit.register_plugin(Even())
    path = write_recipe(tmp_path, "plugin: enginetest_even\nmodel: {width: 3}\n")
    with pytest.raises(RecipeError, match=r"model: width must be even, got 3"):
        load_recipe(path)


def test_overrides_set_dotted_keys_with_yaml_values(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, GOOD), [
        "trainer.epochs=20", "model.latent_dim=16", "objective.kl_schedule.kind=linear", "data.noise=0.1",
        "trainer.max_steps=null", "model.layers=[4, 5]", "name=short", "eval.max_examples=7",
    ])
    assert recipe.trainer.epochs == 20 and recipe.model.latent_dim == 16
    assert recipe.objective.kl_schedule.kind == "linear" and recipe.objective.kl_schedule.n_cycles == 2
    assert recipe.data.noise == 0.1 and recipe.data.n_points == 32  # siblings survive
    assert recipe.trainer.max_steps is None and recipe.model.layers == [4, 5]
    assert recipe.name == "short" and recipe.eval.max_examples == 7


def test_overrides_are_checked_like_the_file(tmp_path):
    path = write_recipe(tmp_path, GOOD)
    with pytest.raises(RecipeError, match=r"trainer\.epoch: unknown key; did you mean 'epochs'"):
        load_recipe(path, ["trainer.epoch=3"])
    with pytest.raises(RecipeError, match=r"override 'trainer\.epochs': expected KEY=VALUE"):
        load_recipe(path, ["trainer.epochs"])
    with pytest.raises(RecipeError, match=r"trainer\.epochs is a value, not a section"):
        load_recipe(path, ["trainer.epochs.max=3"])


def test_an_override_in_scientific_notation_is_a_float(tmp_path):
    # `trainer.lr=1e-3` is how people write learning rates; PyYAML (YAML 1.1) reads 1e-3 as a string.
    recipe = load_recipe(write_recipe(tmp_path, GOOD), ["trainer.lr=1e-3"])
    assert recipe.trainer.lr == pytest.approx(0.001)


def test_scientific_notation_in_a_recipe_file_is_a_float(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, GOOD.replace("lr: 0.002", "lr: 3e-4")))
    assert recipe.trainer.lr == pytest.approx(3e-4)


def test_environment_variables_expand_in_values(tmp_path, monkeypatch):
    (tmp_path / "points.csv").write_text("0,1\n")
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    recipe = load_recipe(write_recipe(tmp_path, GOOD.replace("shape: moons", "file: ${VAEKIT_DATA}/points.csv")))
    assert recipe.data.file == str(tmp_path / "points.csv")


def test_vaekit_data_has_a_default_under_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("VAEKIT_DATA", raising=False)
    recipe = load_recipe(write_recipe(tmp_path, GOOD), ["name=${VAEKIT_DATA}/x"])
    assert recipe.name == str(Path("~/.cache/vaekit/data/x").expanduser())


def test_a_must_exist_path_that_is_missing_names_the_key_and_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "nowhere"))
    path = write_recipe(tmp_path, GOOD.replace("shape: moons", "file: ${VAEKIT_DATA}/points.csv"))
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    assert str(path) in str(error.value)
    assert error.match(r"data\.file: .*nowhere/points\.csv does not exist")


def test_an_unknown_plugin_lists_the_installed_ones(tmp_path):
    path = write_recipe(tmp_path, GOOD.replace(f"plugin: {PLUGIN_NAME}", "plugin: enginetest_pionts"))
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    assert str(path) in str(error.value)
    assert error.match(r"unknown plugin 'enginetest_pionts'; installed plugins: .*" + PLUGIN_NAME)


def test_a_missing_plugin_key_says_what_to_write(tmp_path):
    with pytest.raises(RecipeError, match=r"plugin: missing"):
        load_recipe(write_recipe(tmp_path, "seed: 1\n"))


def test_invalid_yaml_names_the_file_and_the_line(tmp_path):
    path = write_recipe(tmp_path, f"""\
        plugin: {PLUGIN_NAME}
        data:
          n_points: 32
        model:
          latent_dim: [3
        trainer:
          epochs: 5
    """)
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    assert str(path) in str(error.value) and error.match(r"line [56]\b") and error.match("not valid YAML")


def test_a_recipe_that_is_not_a_mapping_or_not_there(tmp_path):
    with pytest.raises(RecipeError, match="must be a YAML mapping"):
        load_recipe(write_recipe(tmp_path, "- plugin\n- data\n"))
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "absent.yaml")


def test_parse_recipe_needs_the_plugins_required_sections_typed(points_plugin):
    recipe = parse_recipe({"plugin": PLUGIN_NAME}, "inline")
    assert recipe.data == PointsData() and recipe.model == PointsModel()
    assert recipe.trainer.epochs == 10  # engine defaults


def test_a_plugin_without_config_dataclasses_keeps_raw_sections_and_they_are_saved(tmp_path):
    class Untyped(Plugin):  # data_config / model_config are optional in the contract
        name = "enginetest_untyped"

    vaekit.register_plugin(Untyped())
    path = write_recipe(tmp_path, """\
        plugin: enginetest_untyped
        data: {rows: 10}
        model: {width: 3}
    """)
    recipe = load_recipe(path, ["model.width=4"])
    assert recipe.data == {"rows": 10} and recipe.model == {"width": 4}
    saved = recipe.to_dict()  # what the trainer writes to the run's recipe.yaml
    assert saved["data"] == {"rows": 10} and saved["model"] == {"width": 4}


# -- hostile or mistaken input --------------------------------------------------------

ALIAS_BOMB = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else '0'] * 9)}]\n" for i in range(7))


def test_a_yaml_alias_bomb_is_refused_in_one_line_before_anything_expands_it(tmp_path):
    path = write_recipe(tmp_path, GOOD)
    path.write_text(path.read_text() + ALIAS_BOMB)  # 9**7 = 4.8 million values once expanded
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    message = str(error.value)
    assert message.startswith(f"{path}: YAML aliases expand to more than 100,000 values") and "\n" not in message


def test_an_alias_bomb_in_an_override_and_a_recursive_anchor_are_refused(tmp_path):
    path = write_recipe(tmp_path, GOOD)
    bomb = "{" + ", ".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else '0'] * 9)}]" for i in range(7)) + "}"
    with pytest.raises(RecipeError, match="override data.noise: YAML aliases expand"):
        load_recipe(path, [f"data.noise={bomb}"])
    with pytest.raises(RecipeError, match="refers to itself"):
        load_recipe(write_recipe(tmp_path, "plugin: points\nloop: &loop [*loop]\n", "loop.yaml"))


def test_ordinary_anchors_still_work(tmp_path):
    body = GOOD.replace("    seed: 3\n", "    seed: &s 3\n").replace("epochs: 5", "epochs: *s")
    assert load_recipe(write_recipe(tmp_path, body)).trainer.epochs == 3


@pytest.mark.parametrize("override, expected", [
    ("trainer.eval_every=0", "trainer.eval_every: expected an integer >= 1, got 0"),
    ("trainer.checkpoint_every=0", "trainer.checkpoint_every: expected an integer >= 1, got 0"),
    ("trainer.log_every=0", "trainer.log_every: expected an integer >= 1, got 0"),
    ("trainer.epochs=0", "trainer.epochs: expected an integer >= 1, got 0"),
    ("trainer.lr=0", "trainer.lr: expected a number > 0, got 0.0"),
    ("objective.beta=-1", "objective.beta: expected a number >= 0, got -1.0"),
    ("model.latent_dim=0", "model.latent_dim: expected an integer >= 1, got 0"),
    ("seed=-1", "seed: expected an integer >= 0, got -1"),
    ("data.n_points=-1001", "data.n_points: expected an integer >= 0, got -1001"),
    ("objective.kl_schedule.ratio=1.5", "objective.kl_schedule.ratio: expected a number <= 1, got 1.5"),
    ("model.latent_dim=99999999999999999999999",
     "model.latent_dim: expected an integer <= 9,223,372,036,854,775,807 (2**63 - 1), got 99999999999999999999999"),
    (f"seed={2**70}", f"seed: expected an integer <= 4,294,967,295 (2**32 - 1), got {2**70}"),
    ("model.hidden=-5", "model.hidden: expected an integer >= 0, got -5"),
    (f"trainer.max_steps=-{2**64}", f"trainer.max_steps: expected an integer >= 1, got -{2**64}"),
])
def test_values_a_key_cannot_mean_are_one_line_errors_naming_file_and_key(tmp_path, override, expected):
    path = write_recipe(tmp_path, GOOD)
    with pytest.raises(RecipeError) as error:
        load_recipe(path, [override])
    assert str(error.value) == f"{path}: {expected}"


def test_an_error_quotes_at_most_200_characters_of_a_huge_value(tmp_path):
    path = write_recipe(tmp_path, GOOD)
    huge = "[" + ",".join(["1"] * 50_000) + "]"
    with pytest.raises(RecipeError) as error:
        load_recipe(path, [f"model.latent_dim={huge}"])
    message = str(error.value)
    assert "model.latent_dim: expected int, got [1, 1, 1" in message
    assert len(message) < 400 and "(150,000 characters)" in message


def test_a_recipe_path_that_is_a_folder_says_so(tmp_path):
    with pytest.raises(RecipeError, match=f"^{tmp_path}: is a folder; expected a recipe YAML file"):
        load_recipe(tmp_path)


def test_eval_options_must_name_the_plugins_eval_flags(tmp_path):
    # the toy plugin adds no `vaekit eval` flags, so any name is a typo; the text plugin's test covers a real flag
    path = write_recipe(tmp_path, GOOD + "      options: {recon_beam_size: 5}\n")
    with pytest.raises(RecipeError, match=rf"^{path}: eval\.options\.recon_beam_size: not a `vaekit eval` option of "
                                          rf"plugin '{PLUGIN_NAME}'; expected one of none$"):
        load_recipe(path)
    assert load_recipe(write_recipe(tmp_path, GOOD + "      options: {}\n")).eval.options == {}
