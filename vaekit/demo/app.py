"""The Gradio page of `vaekit demo RUN`: a tab per verb, widgets from the plugin's DemoKinds and conditions.

    app = build_app(RunRequests(model, plugin, root), title="runs/shapes")
    app.launch(server_name="127.0.0.1", server_port=7860)

Tabs: Sample (count, temperature, condition), Reconstruct (an input, decoded under another condition where the
model takes one), Interpolate (two inputs, points on the path), Traverse (latent units, span, points) and one
per plugin verb (inpaint, superres, ...). Every error a request raises is one line in the page (gr.Error); the
server keeps serving.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

import gradio as gr

from ..config.reading import RecipeError
from ..evaluation.latent_paths import METHODS
from ..evaluation.samplers import recorded_sampler
from ..io.checkpoint import CheckpointError
from ..io.messages import one_line
from ..plugin import Plugin, PluginError
from .forms import painted_over, verb_fields
from .requests import Reply, RunRequests, grouped_files, read_table

AUDIO_PLAYERS = 8  # players shown per request; every file is also in the request's download list
SAMPLE_COUNTS = {"image": (16, 64), "text": (8, 32), "audio": (4, AUDIO_PLAYERS), "table": (200, 2000),
                 "file": (16, 64)}  # (default, most) samples per click
# A picture fills its box; a grid of 32-pixel images stays sharp scaled up (each pixel a block, not a blur), while
# a plot (a spectrogram) is scaled smoothly.
CSS = (".vaekit-images img, .vaekit-input img { width: 100%; height: 100%; object-fit: contain; } "
       ".vaekit-pixels img { image-rendering: pixelated; }")
# Units ticked at first: as `vaekit traverse`, every unit, where a row of images is cheap (an unused unit's row does
# not change, which is worth seeing); recordings and sentences take longer to decode, so the first four.
TRAVERSED_UNITS = {"image": 10}  # ten rows of images still fill the output box legibly
NO_CONDITION = "(none)"
UNSET = "empty: the default"
CONDITION_OPTIONS = ("condition", "source")  # plugin options that name a condition: --condition, --source(-a)
EXPECTED = (ValueError, OSError, PluginError, RecipeError, CheckpointError)  # a person's mistake: its line alone


def shown_in_page(handler, page_names: dict[str, str] | None = None):
    """Run a request; any error becomes one line in the page (gr.Error) and on stderr, never a stack trace.
    page_names: a flag (and its metavar) -> what the page calls it, for a message that names the flag."""
    names = {"--condition": "the condition", **(page_names or {})}  # the page's dropdown, not a flag

    @functools.wraps(handler)
    def run(*args):
        try:
            return handler(*args)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001  the page must show a line and keep serving, whatever failed
            message = one_line(exc, 300) if isinstance(exc, EXPECTED) else f"{type(exc).__name__}: {one_line(exc, 300)}"
            for flag, name in names.items():
                message = re.sub(rf"(?<![\w-]){re.escape(flag)}(?![\w-])( [A-Z][\w.,]*)?", name, message)
            print(f"vaekit demo: {handler.__name__}: {message}", file=sys.stderr, flush=True)
            raise gr.Error(message, print_exception=False) from None

    return run


def image_upload(label: str) -> gr.Image:
    """gr.Image whose unreadable upload is one line in the page naming the file (gradio's own says only "Error").

    The instance's preprocess is wrapped rather than gr.Image subclassed: gradio writes a .pyi stub beside the
    module of every component subclass it meets.
    """
    image = gr.Image(type="filepath", label=label, sources=["upload", "clipboard"], height=200,
                     elem_classes=["vaekit-input", "vaekit-pixels"])  # a 32-pixel picture shown large
    preprocess = image.preprocess

    def named_errors(payload):
        try:
            return preprocess(payload)
        except Exception:  # noqa: BLE001  Pillow raises several kinds of error for a file that is no image
            name = getattr(payload, "orig_name", None) or "the upload"
            raise gr.Error(f"{label}: {name} is not an image Pillow can read; upload a PNG or JPEG",
                           print_exception=False) from None

    image.preprocess = named_errors
    return image


def input_widget(kind: str, label: str, optional: bool = False):
    """The component a person gives an input of this kind with."""
    hint = " (optional)" if optional else ""
    if kind == "image":
        return image_upload(label + hint)
    if kind == "text":
        return gr.Textbox(label=label + hint, lines=2, placeholder="type a sentence")
    if kind == "audio":
        return gr.Audio(type="filepath", label=label + hint, sources=["upload", "microphone"])
    if kind == "table":
        return gr.Textbox(label=label + hint, lines=4, placeholder="one row per line, e.g. 0.5, 1.0")
    return gr.File(label=label + hint, type="filepath")


class Outputs:
    """What a request's files are shown as, by the plugin's output kind; every file is also offered for download."""

    def __init__(self, kind: str):
        # the first picture large (a grid of samples, the spectrograms of the recordings), any others below it
        # shown from the start for audio too (its spectrograms): the box that shows a request is running
        self.image = gr.Image(label="spectrograms (players below)" if kind == "audio" else "output", format="png",
                              height=480, interactive=False,
                              visible=kind in ("image", "audio"),
                              elem_classes=["vaekit-images"] + (["vaekit-pixels"] if kind == "image" else []))
        self.gallery = gr.Gallery(label="more images", format="png", columns=4, height=260, object_fit="contain",
                                  visible=False, elem_classes=["vaekit-gallery"])
        self.text = gr.Textbox(label="text", lines=12, max_lines=40, visible=kind == "text",
                               elem_classes=["vaekit-text"])
        self.players = [gr.Audio(label=f"audio {i + 1}", visible=False, interactive=False, type="filepath",
                                 elem_classes=["vaekit-audio"]) for i in range(AUDIO_PLAYERS if kind == "audio" else 0)]
        self.table = gr.Dataframe(label="table", visible=kind == "table", interactive=False,
                                  elem_classes=["vaekit-table"])
        self.notes = gr.Markdown(elem_classes=["vaekit-notes"])
        with gr.Accordion("files written", open=kind == "file"):
            self.files = gr.File(label="files", file_count="multiple", interactive=False)

    def components(self) -> list:
        return [self.image, self.gallery, self.text, *self.players, self.table, self.notes, self.files]

    def values(self, reply: Reply, caption: str) -> list:
        """The components' new values: the files shown, a caption of what they are and the verb's notes."""
        files = reply.files
        groups = grouped_files(files)
        texts = "\n\n".join(path.read_text(encoding="utf-8", errors="replace").rstrip() for path in groups["texts"])
        players = [gr.update(value=str(path), label=path.stem, visible=True) for path in groups["audios"]]
        players += [gr.update(value=None, visible=False)] * AUDIO_PLAYERS
        table = read_table(groups["tables"][0]) if groups["tables"] else None
        large, small = groups["images"][:1], groups["images"][1:]
        if len(groups["audios"]) > len(self.players):  # say so, or the last units of a traversal seem missing
            caption += (f"; the first {len(self.players)} of {len(groups['audios'])} recordings play here, every one "
                        "is under *files written*")
        return [
            gr.update(value=str(large[0]) if large else None, label=large[0].name if large else "output",
                      visible=bool(large)),
            gr.update(value=[(str(p), p.stem) for p in small], visible=bool(small)),
            gr.update(value=texts, visible=bool(groups["texts"])),
            *players[: len(self.players)],
            gr.update(value=table, visible=table is not None),
            "\n\n".join([caption] + [f"*{note}*" for note in reply.notes]),
            [str(path) for path in files],
        ]


def condition_widget(requests: RunRequests, label: str):
    """A dropdown of the model's conditions (None: the model takes none)."""
    if not requests.conditions:
        return None
    return gr.Dropdown([NO_CONDITION, *requests.conditions], value=NO_CONDITION, label=label)


def _condition(value: str | None) -> str | None:
    return None if value in (None, "", NO_CONDITION) else value


def form_dict(dests: list[str], values) -> dict:
    """A form's values by option dest; a condition dropdown left at (none) is the option's default."""
    return {dest: _condition(value) if value == NO_CONDITION else value
            for dest, value in zip(dests, values, strict=True)}


def build_app(requests: RunRequests, title: str, run: str) -> gr.Blocks:
    """The page of one run."""
    model = requests.model
    with gr.Blocks(title=f"vaekit demo: {title}", analytics_enabled=False) as app:
        weights = Path(model.config.get("assets_dir", "")).parent.name  # step-N, best-step-N or the folder
        gr.Markdown(f"## vaekit demo: `{title}`\nThe run's model (plugin `{requests.plugin.name}`, a "
                    f"{model.latent_dim}-unit latent, weights `{weights}`). Each tab runs one `vaekit` verb on it; "
                    "every file a verb writes is under *files written*.")
        tabs = {"sample": _sample_tab, "reconstruct": _reconstruct_tab, "interpolate": _interpolate_tab,
                "traverse": _traverse_tab}
        for verb, tab in tabs.items():
            if getattr(type(requests.plugin), verb) is not getattr(Plugin, verb):  # the base says "not supported"
                with gr.Tab(verb.capitalize()):
                    tab(requests)
        commands = requests.plugin.commands()
        for verb in requests.plugin.demo_verbs(model):
            with gr.Tab(verb.capitalize()):
                _command_tab(requests, verb, commands[verb][1], run)
    return app


def _sample_tab(requests: RunRequests) -> None:
    default, most = SAMPLE_COUNTS[requests.kinds.output]
    kind = recorded_sampler(requests.model)["sampler"]
    source = "the prior" if kind == "prior" else f"the {kind} sampler the run's recipe names (latent.sampler)"
    centre = "the prior's mean" if kind == "prior" else "its components' means"
    gr.Markdown(f"Draw latents from {source} and decode them (`vaekit sample`). Temperature scales their spread: "
                f"0 gives {centre}, above 1 wilder samples.")
    with gr.Row():
        count = gr.Slider(1, most, value=default, step=1, label="samples")
        temperature = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="temperature")
        condition = condition_widget(requests, "condition")
    dests, options = plugin_options(requests, "sample")
    button = gr.Button("Sample", variant="primary", elem_id="vaekit-sample")
    outputs = Outputs(requests.kinds.output)

    def sample(n, t, c, *values):
        under = f", condition {_condition(c)}" if _condition(c) else ""
        reply = requests.sample(n, t, _condition(c), form_dict(dests, values))
        return outputs.values(reply, f"{int(n)} samples at temperature {t:g}{under}")

    page_names = {"-n": "the samples slider", "--temperature": "the temperature slider"}  # a plugin's hint
    button.click(shown_in_page(sample, page_names), [count, temperature, condition or gr.State(None), *options],
                 outputs.components())


def _reconstruct_tab(requests: RunRequests) -> None:
    other = " Pick another condition to decode it under (class transfer, voice conversion)."
    gr.Markdown("Encode an input and decode it again (`vaekit reconstruct`)." + (other if requests.conditions else ""))
    with gr.Row():
        value = input_widget(requests.kinds.input, "input")
        condition = condition_widget(requests, "decode under")
    dests, options = plugin_options(requests, "reconstruct")
    button = gr.Button("Reconstruct", variant="primary", elem_id="vaekit-reconstruct")
    outputs = Outputs(requests.kinds.output)

    @shown_in_page
    def reconstruct(x, c, *values):
        under = f", decoded under {_condition(c)}" if _condition(c) else ""
        reply = requests.reconstruct(x, _condition(c), form_dict(dests, values))
        layout = " (top: the input; below: its reconstruction)" if requests.kinds.output == "image" else ""
        return outputs.values(reply, f"the input reconstructed{under}{layout}")

    button.click(reconstruct, [value, condition or gr.State(None), *options], outputs.components())


def _interpolate_tab(requests: RunRequests) -> None:
    gr.Markdown("Walk the latent space from one input's code to another's and decode the points on the way "
                "(`vaekit interpolate`).")
    with gr.Row():
        a = input_widget(requests.kinds.input, "from")
        b = input_widget(requests.kinds.input, "to")
    with gr.Row():
        steps = gr.Slider(2, 16, value=8, step=1, label="points on the path (both ends included)")
        method = gr.Radio(list(METHODS), value="linear", label="path")
    dests, options = plugin_options(requests, "interpolate")
    button = gr.Button("Interpolate", variant="primary", elem_id="vaekit-interpolate")
    outputs = Outputs(requests.kinds.output)

    @shown_in_page
    def interpolate(x, y, n, m, *values):
        reply = requests.interpolate(x, y, n, m, form_dict(dests, values))
        ends = "; the inputs themselves at either end" if requests.kinds.output == "image" else ""
        return outputs.values(reply, f"{int(n)} points decoded on the {m} path between the two inputs' codes "
                              f"(both ends included){ends}")

    button.click(interpolate, [a, b, steps, method, *options], outputs.components())


def _traverse_tab(requests: RunRequests) -> None:
    units = list(range(requests.model.latent_dim))
    gr.Markdown("Move each ticked latent unit from -span to +span around a base point, the others kept, and decode "
                "(`vaekit traverse`): what each unit changes. Without an input the base point is the plugin's "
                "(an example of the run's data, or the prior's mean).")
    value = input_widget(requests.kinds.input, "base input", optional=True)
    ticked = units[:TRAVERSED_UNITS.get(requests.kinds.output, 4)]
    chosen = gr.CheckboxGroup(units, value=ticked, label="latent units (a unit that changes nothing is unused)")
    with gr.Row():
        span = gr.Slider(0.5, 6.0, value=3.0, step=0.5, label="span (prior standard deviations)")
        steps = gr.Slider(2, 15, value=5 if requests.kinds.output == "audio" else 9, step=1,
                          label="points per unit")
    dests, options = plugin_options(requests, "traverse")
    button = gr.Button("Traverse", variant="primary", elem_id="vaekit-traverse")
    outputs = Outputs(requests.kinds.output)

    @shown_in_page
    def traverse(x, u, s, n, *values):
        units = sorted(int(unit) for unit in u or [])
        reply = requests.traverse(x, units, s, n, form_dict(dests, values))
        rows = " (a row per unit, left to right)" if requests.kinds.output == "image" else ""
        return outputs.values(reply, f"units {', '.join(map(str, units))} in turn, each moved from {-s:g} to {s:g} "
                              f"in {int(n)} points{rows}, the others kept")

    button.click(traverse, [value, chosen, span, steps, *options], outputs.components())


def condition_option(field) -> bool:
    """Whether a plugin option names a condition (--condition, --source): a dropdown of the model's conditions."""
    return field.widget == "text" and field.dest.split("_")[0] in CONDITION_OPTIONS


def shown_fields(requests: RunRequests, verb: str) -> list:
    """A verb's plugin options the page shows: a model that takes no condition has none to pick."""
    fields = verb_fields(requests.plugin, verb)
    return [f for f in fields if requests.conditions or not condition_option(f)]


def form(requests: RunRequests, verb: str) -> tuple[list[str], list]:
    """The widgets of a verb's plugin options (see vaekit.demo.forms), in a row; their dests, in order."""
    fields = shown_fields(requests, verb)
    pair = painted_over(fields) if requests.kinds.input == "image" else None
    if pair is not None:  # the mask is painted over the image, in the image's own widget
        fields = [f for f in fields if f is not pair[1]]
    widgets = []
    if pair is not None:  # the picture large enough to paint on, the strokes scaled with it to the model's size
        widgets.append(gr.ImageEditor(
            type="filepath", format="png", sources=["upload", "clipboard"], layers=False, canvas_size=(320, 320),
            fixed_canvas=True, height=420, brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed"),
            eraser=gr.Eraser(), elem_classes=["vaekit-painted"],
            label=f"{pair[0].dest}: upload it, then paint over the region to fill (the brush; {pair[1].label})"))
    with gr.Row():
        for field in fields:
            label = f"{field.label}: {field.help}" if field.help else field.label
            if pair is not None and field is pair[0]:
                continue  # the editor above
            elif field.widget == "input":
                optional = field.label.startswith("-")
                widgets.append(input_widget(requests.kinds.input, field.label if optional else field.dest, optional))
            elif condition_option(field):  # typed too: a model of several conditions takes speaker=a,digit=3
                widgets.append(gr.Dropdown([NO_CONDITION, *requests.conditions], value=NO_CONDITION, label=label,
                                           allow_custom_value=True))
            elif field.widget == "choice":
                widgets.append(gr.Dropdown(field.choices, value=field.default, label=label))
            elif field.widget == "flag":
                widgets.append(gr.Checkbox(value=False, label=label))  # ticked: the option is given
            elif field.widget == "number" and field.default is not None:
                widgets.append(gr.Number(value=field.default, label=label))
            else:  # a number without a default too: gr.Number would show and send 0 for it, not "unset"
                widgets.append(gr.Textbox(value=field.default or "", label=label, placeholder=UNSET))
    painted = [pair[0]] if pair is not None else []
    return [field.dest for field in painted + [f for f in fields if f not in painted]], widgets


def plugin_options(requests: RunRequests, verb: str) -> tuple[list[str], list]:
    """The options the plugin adds to an engine verb, folded away under the tab's own widgets."""
    if not shown_fields(requests, verb):
        return [], []
    with gr.Accordion(f"more options (plugin {requests.plugin.name})", open=False):
        return form(requests, verb)


def _command_tab(requests: RunRequests, verb: str, run_verb, run: str) -> None:
    gr.Markdown(f"`vaekit {verb}`: {(run_verb.__doc__ or '').strip()}")
    dests, widgets = form(requests, verb)
    button = gr.Button(verb.capitalize(), variant="primary", elem_id=f"vaekit-{verb}")
    outputs = Outputs(requests.kinds.output)
    pair = painted_over(verb_fields(requests.plugin, verb)) if requests.kinds.input == "image" else None
    page_names = {pair[1].label: "strokes painted over the image"} if pair is not None else {}  # --mask MASK.png

    def command(*values):
        return outputs.values(requests.command(verb, run, form_dict(dests, values)), f"`vaekit {verb}`")

    button.click(shown_in_page(command, page_names), widgets, outputs.components())
