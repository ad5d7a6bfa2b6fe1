"""`vaekit demo` without a browser: its one-line CLI errors, the checks of what a page sends, the plugin verbs as
forms, and a third-party plugin (examples/vaekit-points, table kind) served through the same requests."""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
import sys
import types
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from vaekit.cli import main
from vaekit.plugin_api import DemoKinds, Plugin, PluginError, check_plugin

requests = pytest.importorskip("vaekit.demo.requests", reason="Pillow is needed by vaekit.demo (gradio brings it)")
forms = pytest.importorskip("vaekit.demo.forms")


@pytest.fixture(scope="module")
def points_run(tmp_path_factory, points_plugin) -> Path:
    folder = tmp_path_factory.mktemp("demo-points")
    recipe = folder / "points.yaml"
    recipe.write_text("plugin: points\ndata: {n_train: 128, n_val: 32}\nmodel: {latent_dim: 2, hidden: 8}\n"
                      "trainer: {max_steps: 2, batch_size: 32, progress: false, samples: 0}\neval: {iw_samples: 2}\n")
    assert main(["train", str(recipe), "--out", str(folder / "run")]) == 0
    return folder / "run"


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(np.zeros(int(seconds * rate), dtype=np.int16).tobytes())
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("vaekit: error: "), err
    return err


def test_demo_cli_errors_are_one_line(points_run, tmp_path, capsys):
    assert main(["demo", str(tmp_path / "no-such-run"), "--port", "7999"]) == 2
    assert "no-such-run" in one_error_line(capsys)

    assert main(["demo", str(points_run), "--port", "70000"]) == 2
    assert "from 1 to 65535" in one_error_line(capsys)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", str(points_run), "--port", str(port)]) == 2
        assert f"cannot serve on 127.0.0.1:{port}" in one_error_line(capsys)

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", str(points_run), "--port", "http"])
    assert exit_info.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_demo_without_gradio_says_how_to_install_it(points_run):
    code = ("import sys; sys.modules['gradio'] = None; from vaekit.cli import main; "
            f"sys.exit(main(['demo', {str(points_run)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'vaekit: error: vaekit demo needs gradio, which is not installed: pip install -e ".[demo]" (from the vaekit '
        "repository) or pip install gradio"]


def test_page_inputs_become_files_or_one_line_errors(tmp_path):
    sentence = requests.read_input("text", "  the cat sat  \n\n on the mat ", tmp_path, "input")
    assert Path(sentence).read_text() == "the cat sat\non the mat\n"
    with pytest.raises(ValueError, match="type a sentence first"):
        requests.read_input("text", "   ", tmp_path, "input")
    table = requests.read_input("table", "0.5, 1\n\n2;3", tmp_path, "input")
    assert list(csv.reader(open(table))) == [["0.5", "1.0"], ["2.0", "3.0"]]
    with pytest.raises(ValueError, match="row 2 'a, b': expected numbers"):
        requests.read_input("table", "1, 2\na, b", tmp_path, "input")

    notes = tmp_path / "notes.png"
    notes.write_text("not pixels")
    with pytest.raises(ValueError, match="notes.png is not an image"):
        requests.read_input("image", str(notes), tmp_path, "input")
    with pytest.raises(ValueError, match="give an image first"):
        requests.read_input("image", None, tmp_path, "input")

    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVE" + bytes(30))
    with pytest.raises(ValueError, match="not a readable WAV"):
        requests.read_input("audio", str(corrupt), tmp_path, "input")
    with pytest.raises(ValueError, match="600 s long; give at most 60 s"):
        requests.read_input("audio", str(write_wav(tmp_path / "long.wav", 600)), tmp_path, "input")
    short = write_wav(tmp_path / "short.wav", 1.5)
    assert requests.read_input("audio", str(short), tmp_path, "input") == str(short)
    soundfile = pytest.importorskip("soundfile")  # other formats' lengths are read where soundfile is installed
    soundfile.write(tmp_path / "long.flac", np.zeros(600 * 8000, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match="input: the recording is 600 s long; give at most 60 s"):
        requests.read_input("audio", str(tmp_path / "long.flac"), tmp_path, "input")


def test_a_third_party_table_plugin_gets_a_working_demo(points_run, tmp_path):
    model, plugin = vaekit.load(points_run)
    served = requests.RunRequests(model, plugin, tmp_path)
    assert served.kinds == DemoKinds("table", "table") and served.conditions == []

    reply = served.sample(50, 1.0, None)
    rows = requests.read_table(requests.grouped_files(reply.files)["tables"][0])
    assert len(rows) == 50 and all(len(row) == 2 for row in rows) and reply.notes == []

    groups = requests.grouped_files(served.reconstruct("0.0, 0.5\n1.0, -0.5\n", None).files)
    assert len(requests.read_table(groups["tables"][0])) == 2
    with pytest.raises(ValueError, match="same number of values"):
        served.reconstruct("0.0, 0.5\n1.0\n", None)
    with pytest.raises(PluginError, match="does not support interpolate"):
        served.interpolate("0, 0", "1, 1", 4, "linear")
    assert len(list(tmp_path.iterdir())) == 4  # a folder per request


def test_the_sample_tab_draws_from_the_sampler_the_recipe_names_as_vaekit_sample_does(points_plugin, tmp_path):
    recipe = tmp_path / "points.yaml"
    recipe.write_text("plugin: points\ndata: {n_train: 256, n_val: 32}\nmodel: {latent_dim: 2, hidden: 8}\n"
                      "latent: {sampler: gmm, sampler_components: 3}\n"
                      "trainer: {max_steps: 4, batch_size: 32, progress: false, samples: 0}\neval: {iw_samples: 2}\n")
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    assert main(["sample", str(run), "-n", "40", "--seed", "5", "-o", str(tmp_path / "cli")]) == 0
    from_cli = np.loadtxt(next((tmp_path / "cli").glob("*.csv")), delimiter=",")

    torch.manual_seed(5)  # as `vaekit demo --seed 5` does before loading the run
    model, plugin = vaekit.load(run)
    own_prior = model.prior_net
    (tmp_path / "page").mkdir()
    reply = requests.RunRequests(model, plugin, tmp_path / "page").sample(40, 1.0, None)
    from_page = np.loadtxt(requests.grouped_files(reply.files)["tables"][0], delimiter=",")
    assert from_page == pytest.approx(from_cli, abs=1e-5)  # the prior's own draws differ from the mixture's
    assert "gmm-3 sampler" in reply.notes[0]
    assert model.prior_net is own_prior  # the other tabs (traverse's base point) keep the model's prior

    (run / "recipe.yaml").unlink()  # nothing left to fit the sampler to: the page samples the prior and says so
    shutil.rmtree(run / "samplers")
    reply = requests.RunRequests(model, plugin, tmp_path / "page").sample(40, 1.0, None)
    assert reply.notes[0].startswith("drawn from the prior: the recipe's gmm sampler is not available (")
    assert len(requests.read_table(requests.grouped_files(reply.files)["tables"][0])) == 40


def test_plugin_verbs_become_forms_and_namespaces(tmp_path):
    image = vaekit.get_plugin("image")
    fields = {f.dest: f for f in forms.verb_fields(image, "inpaint")}
    assert fields["image"].widget == "input" and fields["iterations"].widget == "number"
    assert fields["iterations"].default == 50 and fields["box"].widget == "text"
    assert fields["mask"].widget == "input"  # --mask MASK.png: an upload, left out when empty
    assert "label" not in fields  # a hidden former name of --condition
    args = forms.verb_arguments(image, "inpaint", "runs/x", {"image": "pic", "iterations": 7.0, "box": " 0,0,4,4 "},
                                tmp_path, lambda value, name: f"read:{value}")
    assert (args.image, args.iterations, args.box, args.mask, args.out_dir) == ("read:pic", 7, "0,0,4,4", None,
                                                                               tmp_path)
    args = forms.verb_arguments(image, "inpaint", "runs/x", {"image": "pic", "mask": "m.png"}, tmp_path,
                                lambda value, name: f"read:{value}")
    assert (args.mask, args.box) == ("read:m.png", None)
    with pytest.raises(ValueError, match="--iterations: expected an integer >= 1, got 0"):
        forms.verb_arguments(image, "inpaint", "runs/x", {"image": "pic", "iterations": 0}, tmp_path,
                             lambda value, name: value)
    superres = {f.dest: f for f in forms.verb_fields(image, "superres")}
    assert superres["inputs"].many and superres["temperature"].widget == "number"

    # the options a plugin adds to an engine verb: reconstruct's --mode and --source (class transfer)
    reconstruct = {f.dest: f for f in forms.verb_fields(image, "reconstruct")}
    assert reconstruct["mode"].widget == "choice" and reconstruct["mode"].choices == ["mean", "sample"]
    assert forms.form_values(image, "reconstruct", {"mode": "sample", "source": " 3 "}, None) == {
        "mode": "sample", "source": "3"}
    assert forms.form_values(image, "reconstruct", {}, None) == {"mode": "mean", "source": None}
    text = vaekit.get_plugin("text")  # a ticked flag is the option given: --no-print stores False in echo
    flags = {f.dest: f.widget for f in forms.verb_fields(text, "reconstruct")}
    assert flags["echo"] == "flag" and flags["sample_latent"] == "flag"
    assert forms.form_values(text, "reconstruct", {"echo": True}, None)["echo"] is False
    assert forms.form_values(text, "reconstruct", {}, None)["echo"] is True
    # --text and --file store one value: one choice among them, not two flags writing the same key
    kinds = [f for f in forms.verb_fields(text, "reconstruct") if f.dest == "inputs_are"]
    assert len(kinds) == 1 and kinds[0].widget == "choice" and kinds[0].choices == ["text", "file"]
    assert forms.form_values(text, "reconstruct", {"inputs_are": "file"}, None)["inputs_are"] == "file"
    assert forms.form_values(text, "reconstruct", {}, None)["inputs_are"] is None


def test_the_page_has_a_tab_for_each_verb_the_plugin_supports(points_run, tmp_path):
    gradio = pytest.importorskip("gradio")
    app_module = pytest.importorskip("vaekit.demo.app")
    model, plugin = vaekit.load(points_run)
    app = app_module.build_app(requests.RunRequests(model, plugin, tmp_path), title="points", run=str(points_run))
    tabs = [block.label for block in app.blocks.values() if isinstance(block, gradio.Tab)]
    assert tabs == ["Sample", "Reconstruct"]  # points has no interpolate, traverse or verbs of its own


def test_an_image_page_names_its_widgets_not_flags_and_offers_conditions_only_to_a_conditional_model(tmp_path):
    gradio = pytest.importorskip("gradio")
    app_module = pytest.importorskip("vaekit.demo.app")
    recipe = tmp_path / "shapes.yaml"
    recipe.write_text("plugin: image\ndata: {name: shapes, size: 16, num_train: 64, num_val: 16, num_test: 16}\n"
                      "model: {latent_dim: 2, width: 4, depth: 2, hidden: 8}\n"
                      "trainer: {max_steps: 1, batch_size: 16, progress: false, samples: 0}\neval: {iw_samples: 2}\n")
    assert main(["train", str(recipe), "--out", str(tmp_path / "run")]) == 0
    model, plugin = vaekit.load(tmp_path / "run")
    served = requests.RunRequests(model, plugin, tmp_path)
    app = app_module.build_app(served, title="shapes", run=str(tmp_path / "run"))
    labels = [str(block.label) for block in app.blocks.values() if getattr(block, "label", None)]
    assert "Inpaint" in labels and not [label for label in labels if label.startswith("--condition")]

    served.conditions = ["circle", "square"]  # as a label CVAE's page: the option is a dropdown of them
    with gradio.Blocks():
        dests, widgets = app_module.form(served, "inpaint")
    picked = widgets[dests.index("condition")]
    assert isinstance(picked, gradio.Dropdown) and [c[0] for c in picked.choices] == ["(none)", "circle", "square"]
    assert app_module.form_dict(["condition", "box"], ["(none)", "1,1,4,4"]) == {"condition": None, "box": "1,1,4,4"}

    def inpaint():
        raise ValueError("inpaint: give exactly one of --box x0,y0,x1,y1 or --mask MASK.png (--condition CLASS)")
    with pytest.raises(gradio.Error) as shown:
        app_module.shown_in_page(inpaint, {"--mask": "strokes painted over the image"})()
    assert shown.value.message == ("inpaint: give exactly one of --box x0,y0,x1,y1 or strokes painted over the image "
                                   "(the condition)")

    def sample():
        raise PluginError("--per-class 2: this image model is unconditional (no classes); use -n for the number")
    with pytest.raises(gradio.Error) as shown:
        app_module.shown_in_page(sample, {"-n": "the samples slider"})()
    assert shown.value.message == ("--per-class 2: this image model is unconditional (no classes); use the samples "
                                   "slider for the number")


def test_a_number_option_without_a_default_is_left_unset_not_sent_as_zero():
    gradio = pytest.importorskip("gradio")
    app_module = pytest.importorskip("vaekit.demo.app")
    page = types.SimpleNamespace(plugin=vaekit.get_plugin("text"), kinds=DemoKinds("text", "text"), conditions=[])
    with gradio.Blocks():
        dests, widgets = app_module.form(page, "sample")
    beam = widgets[dests.index("beam_size")]  # --beam-size: default None, the plugin's own 5
    assert isinstance(beam, gradio.Textbox) and beam.value == ""
    values = dict.fromkeys(dests) | {"beam_size": beam.value, "top_k": "3"}
    options = forms.form_values(page.plugin, "sample", values, None)
    assert options["beam_size"] is None and options["top_k"] == 3


def test_strokes_painted_over_an_image_become_a_mask(tmp_path):
    layer = np.zeros((40, 40, 4), dtype=np.uint8)
    layer[5:10, 20:30] = (255, 0, 255, 255)  # a stroke; the rest transparent
    Image.fromarray(layer, "RGBA").save(tmp_path / "layer.png")
    mask = requests.painted_mask({"background": "x.png", "layers": [str(tmp_path / "layer.png")]}, tmp_path / "m.png")
    pixels = np.asarray(Image.open(mask))
    assert pixels.shape == (40, 40) and pixels[5:10, 20:30].min() == 255 and pixels.sum() == 50 * 255
    Image.fromarray(np.zeros((40, 40, 4), dtype=np.uint8), "RGBA").save(tmp_path / "empty.png")
    assert requests.painted_mask({"layers": [str(tmp_path / "empty.png")]}, tmp_path / "n.png") is None
    assert forms.painted_over(forms.verb_fields(vaekit.get_plugin("image"), "inpaint"))[1].dest == "mask"


def test_check_plugin_refuses_an_unknown_demo_kind():
    class Odd(Plugin):
        name = "odd"
        demo_kinds = DemoKinds(input="video", output="image")

        def build_data(self, data, *, seed, assets):
            raise NotImplementedError

        def build_model(self, model, info, *, assets):
            raise NotImplementedError

    with pytest.raises(PluginError, match="demo_kinds must be DemoKinds"):
        check_plugin(Odd())
