"""What the demo page asks of a run: inputs checked and turned into files, the plugin's verbs run into a fresh folder.

    requests = RunRequests(model, plugin, root=Path("/tmp/vaekit-demo-x"))
    files = requests.sample(16, temperature=1.0, condition=None)

Every input a person gives (an upload, a typed sentence, rows of numbers) becomes a file in the request's own
folder before a verb sees it, so a typed "README.md" is a sentence and never a file of the server. A mistake is
a ValueError with one line that the page shows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import tempfile
import threading
import wave
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch import nn

from ..config.reading import RecipeError
from ..evaluation.latent_paths import METHODS
from ..evaluation.samplers import recipe_sampler, recorded_sampler
from ..io.checkpoint import CheckpointError
from ..io.messages import one_line
from ..io.safe_writes import atomic_write_text
from ..model.vae import VAE
from ..plugin import Plugin, PluginError
from .forms import form_values, painted_over, verb_arguments, verb_fields

MAX_AUDIO_SECONDS = 60.0  # longer recordings are refused: Griffin-Lim on CPU takes seconds per second of audio
MAX_TEXT_CHARACTERS = 2000
MAX_NOTES = 5  # lines a verb printed, shown under its output
SAMPLER_PROBLEMS = (ValueError, OSError, RecipeError, PluginError, CheckpointError)  # fitting the recipe's sampler
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


def read_input(kind: str, value, folder: Path, name: str) -> str:
    """One input from the page as the path (or sentence file) a plugin verb reads; ValueError when unusable."""
    if kind == "text":
        return _sentence_file(value, folder / f"{name.replace(' ', '-')}.txt")
    if kind == "table":
        return _table_file(value, folder / f"{name.replace(' ', '-')}.csv")
    if value is None or (isinstance(value, str) and not value.strip()):
        noun = {"image": "an image", "audio": "a recording or an audio file"}.get(kind, "a file")
        raise ValueError(f"{name}: give {noun} first")
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"{name}: the upload {path.name} did not arrive; upload it again")
    if kind == "image":
        _check_image(path, name)
    if kind == "audio":
        _check_audio(path, name)
    return str(path)


def _sentence_file(text, path: Path) -> str:
    text = (text or "").strip()
    if not text:
        raise ValueError("type a sentence first (the box is empty)")
    if len(text) > MAX_TEXT_CHARACTERS:
        raise ValueError(f"the text is {len(text):,} characters; give at most {MAX_TEXT_CHARACTERS:,}")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return str(atomic_write_text(path, "\n".join(lines) + "\n"))


def _table_file(text, path: Path) -> str:
    """Rows typed as `0.5, 1.2` (one per line) -> a CSV file of numbers."""
    rows = []
    for number, line in enumerate((text or "").strip().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append([float(cell) for cell in line.replace(";", ",").split(",")])
        except ValueError:
            raise ValueError(f"row {number} {line.strip()[:80]!r}: expected numbers separated by commas") from None
    if not rows:
        raise ValueError("type at least one row of numbers, e.g. 0.5, 1.0")
    if len({len(row) for row in rows}) != 1:
        raise ValueError("every row needs the same number of values")
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return str(atomic_write_text(path, out.getvalue()))


def _check_image(path: Path, name: str) -> None:
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValueError(f"{name}: {path.name} is not an image Pillow can read; upload a PNG or JPEG") from None


def _check_audio(path: Path, name: str) -> None:
    """A WAV must open; any recording whose length can be read must be at most MAX_AUDIO_SECONDS long. Other
    formats' own errors are left to the plugin."""
    if path.suffix.lower() == ".wav":
        try:
            with wave.open(str(path), "rb") as audio:
                seconds = audio.getnframes() / max(audio.getframerate(), 1)
        except (wave.Error, EOFError, OSError):
            raise ValueError(f"{name}: {path.name} is not a readable WAV file (damaged or not audio)") from None
    else:
        seconds = _other_audio_seconds(path)
    if seconds is not None and seconds > MAX_AUDIO_SECONDS:
        raise ValueError(f"{name}: the recording is {seconds:.0f} s long; give at most {MAX_AUDIO_SECONDS:.0f} s")


def _other_audio_seconds(path: Path) -> float | None:
    """Seconds of a FLAC, OGG, MP3 ... recording as soundfile reads its header; None when soundfile (installed with
    the speech plugin, not the engine) is missing or cannot read the file."""
    try:
        import soundfile  # optional: imported lazily, only for an upload that is not a WAV
    except ImportError:
        return None
    try:
        return soundfile.info(str(path)).duration
    except Exception:  # noqa: BLE001  libsndfile's errors for a file it cannot parse: the plugin says what is wrong
        return None


def painted_mask(editor: dict | None, path: Path) -> str | None:
    """The strokes painted over an image (an editor's layers: RGBA files) as a mask file, white where painted;
    None when nothing is painted."""
    layers = [layer for layer in (editor or {}).get("layers") or [] if layer]
    painted = None
    for layer in layers:
        with Image.open(layer) as image:
            alpha = np.asarray(image.convert("RGBA"))[..., 3] > 0
        painted = alpha if painted is None else painted | alpha
    if painted is None or not painted.any():
        return None
    Image.fromarray(painted.astype(np.uint8) * 255).save(path)
    return str(path)


class Reply(NamedTuple):
    """What one request gave: the files the verb wrote, and the lines it printed on stderr for the person (`vaekit:
    note: traverse starts from test image 0 ...`, `pic.png: 48x48 resized to the model's 32x32`), prefix cut."""

    files: list[Path]
    notes: list[str]


class RunRequests:
    """One run's model and plugin behind the page: each request runs one verb into its own folder under root."""

    def __init__(self, model: VAE, plugin: Plugin, root: Path):
        self.model, self.plugin, self.root = model, plugin, Path(root)
        self.kinds = plugin.demo_kinds
        self.conditions = plugin.condition_choices(model)
        self._lock = threading.Lock()  # the page may send requests at once; the one model serves them in turn
        self._sampler = None  # the recipe's sampler and its note, once the Sample tab asks (recipe_sampler)

    def folder(self, verb: str) -> Path:
        """A new empty folder for one request's inputs and outputs."""
        return Path(tempfile.mkdtemp(prefix=f"{verb}-", dir=self.root))

    @contextlib.contextmanager
    def _one_at_a_time(self):
        """Hold the model for one request and keep the notes a verb prints on stderr, to show them in the page."""
        with self._lock, contextlib.redirect_stderr(io.StringIO()) as printed:  # stderr is safe to swap: one verb
            notes: list[str] = []                                                # runs at a time
            try:
                yield notes
            finally:
                lines = [line.strip() for line in printed.getvalue().splitlines() if line.strip()]
                notes += [one_line(line.removeprefix("vaekit: note: ").removeprefix("vaekit: "), 300)
                          for line in lines[:MAX_NOTES]]

    def _options(self, verb: str, values: dict | None, out: Path) -> dict:
        """The plugin's own options of an engine verb from the page's form (vaekit.demo.forms), checked."""
        return form_values(self.plugin, verb, values or {}, lambda value, name: read_input(self.kinds.input, value,
                                                                                             out, name))

    def _condition(self, text: str | None):
        if not text:
            return None
        return self.plugin.parse_condition(text, self.model).to(self.model.device)

    def sample(self, n: int, temperature: float, condition: str | None, options: dict | None = None) -> Reply:
        """n samples at a temperature (the latents' spread), under a condition where the model takes one; options:
        the plugin's own (dest -> the form's value)."""
        out = self.folder("sample")
        options = self._options("sample", options, out)
        with self._one_at_a_time() as notes:
            sampler, fitted = self.recipe_sampler()
            prior = self.model.prior_net
            if sampler is not None:  # for this request only: the other verbs keep the model's own prior
                self.model.prior_net = sampler
            try:
                files = self.plugin.sample(self.model, int(n), self._condition(condition), out,
                                           temperature=float(temperature), **options)
            finally:
                self.model.prior_net = prior
        return Reply(files, fitted + notes)

    def recipe_sampler(self) -> tuple[nn.Module | None, list[str]]:
        """The sampler the run's recipe names (latent.sampler: gmm, pixelcnn), as `vaekit sample` draws from it,
        fitted or loaded on first use (None: the model's own prior), and a note saying which it is."""
        if self._sampler is None:
            try:
                chosen = recipe_sampler(self.model, self.plugin)
            except SAMPLER_PROBLEMS as exc:  # the run's training data gone, say: the page still samples
                kind = recorded_sampler(self.model)["sampler"]
                self._sampler = None, [f"drawn from the prior: the recipe's {kind} sampler is not available "
                                       f"({one_line(exc, 200)})"]
            else:
                self._sampler = (None, []) if chosen is None else (chosen[0], [
                    f"drawn from the {chosen[1].stem} sampler fitted to the run's training codes "
                    f"(samplers/{chosen[1].name})"])
        return self._sampler

    def reconstruct(self, value, condition: str | None, options: dict | None = None) -> Reply:
        """An input encoded and decoded (under another condition: class transfer, voice conversion)."""
        out = self.folder("reconstruct")
        path = read_input(self.kinds.input, value, out, "input")
        options = self._options("reconstruct", options, out)
        with self._one_at_a_time() as notes:
            files = self.plugin.reconstruct(self.model, [path], self._condition(condition), out, **options)
        return Reply(files, notes)

    def interpolate(self, a, b, steps: int, method: str, options: dict | None = None) -> Reply:
        """steps points on the latent path from input a to input b, both ends included."""
        if method not in METHODS:
            raise ValueError(f"method {method!r}: expected one of {', '.join(METHODS)}")
        out = self.folder("interpolate")
        path_a = read_input(self.kinds.input, a, out, "from")  # named as the page labels them
        path_b = read_input(self.kinds.input, b, out, "to")
        options = self._options("interpolate", options, out)
        with self._one_at_a_time() as notes:
            files = self.plugin.interpolate(self.model, path_a, path_b, out, steps=int(steps), method=method,
                                            **options)
        return Reply(files, notes)

    def traverse(self, value, units: list[int], span: float, steps: int, options: dict | None = None) -> Reply:
        """Each chosen latent unit moved over [-span, span] around a base point (an input, or the plugin's)."""
        if not units:
            raise ValueError("tick at least one latent unit to traverse")
        out = self.folder("traverse")
        given = value is not None and not (isinstance(value, str) and not value.strip())
        path = read_input(self.kinds.input, value, out, "base input") if given else None
        options = self._options("traverse", options, out)
        with self._one_at_a_time() as notes:
            files = self.plugin.traverse(self.model, out, input=path, dims=[int(u) for u in units], span=float(span),
                                         steps=int(steps), **options)
        return Reply(files, notes)

    def command(self, verb: str, run, values: dict) -> Reply:
        """A plugin verb (inpaint, superres, ...) with its form's values (see vaekit.demo.forms)."""
        out = self.folder(verb)
        pair = painted_over(verb_fields(self.plugin, verb)) if self.kinds.input == "image" else None
        if pair is not None:  # one editor gave both: its picture the image, its strokes the mask
            editor = values.get(pair[0].dest) or {}
            values = {**values, pair[0].dest: editor.get("background"),
                      pair[1].dest: painted_mask(editor, out / "mask.png")}
        args = verb_arguments(self.plugin, verb, run, values, out,
                              lambda value, name: read_input(self.kinds.input, value, out, name))
        with self._one_at_a_time() as notes:
            files = list(self.plugin.commands()[verb][1](self.model, self.plugin, args) or [])
        return Reply(files, notes)


def grouped_files(files: list[Path]) -> dict[str, list[Path]]:
    """A verb's files by what the page shows them as: images, texts, audios, tables."""
    groups: dict[str, list[Path]] = {"images": [], "texts": [], "audios": [], "tables": []}
    for path in files:
        suffix = Path(path).suffix.lower()
        key = ("images" if suffix in IMAGE_SUFFIXES else "texts" if suffix == ".txt" else
               "audios" if suffix in (".wav", ".mp3", ".flac", ".ogg") else "tables" if suffix == ".csv" else None)
        if key is not None:
            groups[key].append(Path(path))
    return groups


def read_table(path: Path, rows: int = 1000) -> list[list[str]]:
    """The first rows of a CSV file, for the page's table."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(itertools.islice(csv.reader(f), rows))
