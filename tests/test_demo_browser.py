"""`vaekit demo` in a real browser: tiny image, text and speech runs served on 127.0.0.1, driven in headless
Chromium (Debian's chromium + chromium-driver through Selenium; nothing is downloaded).

Each test starts the demo as a user does (`python -m vaekit demo RUN --port N`), clicks sample and reconstruct,
and checks what the page shows against the files the same verbs write from the command line: the image's size,
the sentences, the audio's duration. Bad input shows one line in the page and the server keeps serving.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaekit.cli import main

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "the market closed higher on friday",
             "stocks fell as investors sold shares", "the company said it expects a loss"]


def _missing() -> list[str]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    return missing + [m for m in ("selenium", "gradio") if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium; without it the tests skip, except under CI=true, where they fail."""
    missing = _missing()
    if missing:
        message = (f"the browser tests need {', '.join(missing)}: apt-get install chromium chromium-driver and "
                   'pip install -e ".[demo]"')
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # a fake microphone (a beep) that needs no permission prompt, for the recording test
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400",
                     "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(run: Path, port: int | None = None):
    """`vaekit demo RUN` in a subprocess; yields its URL once it says where it serves, stops it with Ctrl-C."""
    port = port or free_port()
    process = subprocess.Popen([sys.executable, "-m", "vaekit", "demo", str(run), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if f"127.0.0.1:{port}" in line:
                break
        else:
            pytest.fail(f"vaekit demo exited ({process.wait()}) without serving:\n{''.join(lines)}")
        yield f"http://127.0.0.1:{port}/"
        assert process.poll() is None, "the demo stopped while it was being used"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- driving the page --------------------------------------------------------------------------------

def wait(driver, condition, what: str, timeout: float = 180):
    """condition(driver)'s first truthy value, polled; fails naming what did not appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition(driver)
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"the page did not show {what} within {timeout:.0f} s")


def open_page(driver, url: str) -> None:
    driver.get(url)
    wait(driver, lambda d: d.find_elements("id", "vaekit-sample"), "its Sample button")


def panel(driver):
    """The visible tab's panel."""
    return next(p for p in driver.find_elements("css selector", "[role=tabpanel]") if p.is_displayed())


def open_tab(driver, name: str) -> None:
    """Show the tab called name (its button is vaekit-<name>)."""
    next(t for t in driver.find_elements("css selector", "button[role=tab]") if t.text == name).click()
    button = f"vaekit-{name.lower()}"
    wait(driver, lambda d: any(b.is_displayed() for b in d.find_elements("id", button)), f"the {name} tab")


def click(driver, button_id: str) -> None:
    driver.find_element("id", button_id).click()


def upload(driver, url: str, tab: str, path: Path) -> None:
    """Give the first upload widget of a tab, on a freshly opened page, a file, as a person picking it would."""
    open_page(driver, url)
    open_tab(driver, tab)
    inputs = panel(driver).find_elements("css selector", "input[type=file]")
    assert inputs, "the tab has no upload widget"
    inputs[0].send_keys(str(path))
    time.sleep(1.0)  # the browser sends the file to the server before the button uses it


def error_line(driver, expected: str) -> str:
    """The error line the page shows (a toast) containing expected."""
    def found(d):
        texts = [e.text for e in d.find_elements("css selector", "[data-testid=toast-body], .toast-body")]
        return next((t for t in texts if expected in t), None)
    return wait(driver, found, f"an error containing {expected!r}", timeout=60)


def shown_images(driver, previous: set[str]) -> list:
    """The output images of the visible tab once a new one is shown (previous: the src values before)."""
    def images(d):
        found = [i for i in panel(d).find_elements("css selector", ".vaekit-images img")
                 if i.get_attribute("src") not in previous
                 and d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)]
        return found or None
    return wait(driver, images, "an output image")


def image_sizes(driver, images) -> list[tuple[int, int]]:
    return [tuple(driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", i))
            for i in images]


def output_text(driver, previous: str = "") -> str:
    def text(d):
        boxes = panel(d).find_elements("css selector", ".vaekit-text textarea")
        value = boxes[0].get_attribute("value") if boxes else ""
        return value if value and value != previous else None
    return wait(driver, text, "output text")


def audio_durations(driver, count: int) -> list[float]:
    """Seconds of the first `count` audio players of the visible tab, as the browser decodes their files."""
    def links(d):
        found = [a.get_attribute("href") for a in
                 panel(d).find_elements("css selector", ".vaekit-audio a[data-testid=download-link]")]
        return found if len(found) >= count else None
    durations = []
    for href in wait(driver, links, f"{count} audio player(s)")[:count]:
        durations.append(driver.execute_async_script(
            "const [url, done] = arguments; const audio = new Audio(); audio.preload = 'metadata';"
            "audio.onloadedmetadata = () => done(audio.duration); audio.onerror = () => done(-1); audio.src = url;",
            href))
    return durations


# -- tiny runs ---------------------------------------------------------------------------------------

def train(recipe_text: str, folder: Path) -> Path:
    recipe = folder / "recipe.yaml"
    recipe.write_text(recipe_text)
    run = folder / "run"
    assert main(["train", str(recipe), "--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, browser) -> Path:
    folder = tmp_path_factory.mktemp("demo-image")
    return train("plugin: image\ndata: {name: shapes, size: 32, num_train: 256, num_val: 64, num_test: 64}\n"
                 "model: {latent_dim: 4, width: 8, depth: 3, hidden: 32}\n"
                 "trainer: {max_steps: 4, batch_size: 32, progress: false, samples: 0}\neval: {iw_samples: 2}\n",
                 folder)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, browser) -> Path:
    folder = tmp_path_factory.mktemp("demo-text")
    for split, lines in {"train": SENTENCES * 4, "val": SENTENCES[:3], "test": SENTENCES[3:]}.items():
        (folder / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return train(f"plugin: text\ndata: {{train: {folder}/train.txt, val: {folder}/val.txt, test: {folder}/test.txt, "
                 "max_length: 16}\nmodel: {embed_dim: 16, hidden_dim: 32, latent_dim: 4}\n"
                 "trainer: {max_steps: 2, batch_size: 8, progress: false, samples: 0}\neval: {iw_samples: 2}\n", folder)


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory, data_dir, browser) -> Path:
    folder = tmp_path_factory.mktemp("demo-speech")
    return train(f"plugin: speech\ndata: {{source: fsdd, root: {data_dir}/fsdd/recordings, speakers: [jackson, theo], "
                 "max_index: 9, n_fft: 256, hop_length: 128, n_mels: 32}\n"
                 "model: {latent_dim: 8, channels: [16, 32], hidden: 32}\n"
                 "trainer: {max_steps: 2, batch_size: 16, progress: false, samples: 0}\neval: {iw_samples: 2}\n",
                 folder)


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    samples = (np.sin(np.arange(int(seconds * rate)) * 0.05) * 3000).astype(np.int16)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(samples.tobytes())
    return path


# -- the tests ---------------------------------------------------------------------------------------

def test_image_demo_samples_and_reconstructs_at_the_sizes_the_cli_writes(browser, image_run, tmp_path):
    picture = tmp_path / "input.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)).save(picture)
    assert main(["sample", str(image_run), "-n", "16", "-o", str(tmp_path / "cli-sample")]) == 0
    assert main(["reconstruct", str(image_run), str(picture), "-o", str(tmp_path / "cli-recon")]) == 0
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are notes, not pixels\n")

    with served(image_run) as url:
        open_page(browser, url)
        click(browser, "vaekit-sample")
        assert image_sizes(browser, shown_images(browser, set())) == [png_size(tmp_path / "cli-sample/samples.png")]

        upload(browser, url, "Reconstruct", not_an_image)
        click(browser, "vaekit-reconstruct")
        assert "not an image" in error_line(browser, "notes.png")

        upload(browser, url, "Reconstruct", picture)
        click(browser, "vaekit-reconstruct")
        expected = png_size(tmp_path / "cli-recon/reconstructions.png")
        assert image_sizes(browser, shown_images(browser, set())) == [expected]
        notes = panel(browser).find_element("css selector", ".vaekit-notes").text
        assert "the input reconstructed" in notes and "48x48 resized to the model's 32x32" in notes

        # inpainting: the picture uploaded into the editor, the region painted over it with the brush
        from selenium.webdriver.common.action_chains import ActionChains  # optional: the browser fixture checks it

        upload(browser, url, "Inpaint", picture)
        editor = panel(browser).find_element("css selector", ".vaekit-painted")
        next(b for b in editor.find_elements("css selector", "button") if b.get_attribute("title") == "Brush").click()
        canvas = next(c for c in editor.find_elements("css selector", "canvas") if c.is_displayed())
        ActionChains(browser).move_to_element(canvas).click_and_hold().move_by_offset(40, 0).move_by_offset(0, 40) \
            .release().perform()
        click(browser, "vaekit-inpaint")
        assert image_sizes(browser, shown_images(browser, set())) == [(32, 32)]  # inpainted.png at the model's size

        open_tab(browser, "Sample")  # the server still serves after the error
        before = {i.get_attribute("src") for i in panel(browser).find_elements("css selector", ".vaekit-images img")}
        click(browser, "vaekit-sample")
        assert len(shown_images(browser, before)) == 1


def test_text_demo_samples_sentences_and_reconstructs_a_typed_one(browser, text_run):
    with served(text_run) as url:
        open_page(browser, url)
        click(browser, "vaekit-sample")
        lines = output_text(browser).splitlines()
        assert len(lines) == 8 and all(line.strip() for line in lines)

        open_tab(browser, "Reconstruct")
        click(browser, "vaekit-reconstruct")
        assert "type a sentence" in error_line(browser, "sentence")

        box = panel(browser).find_element("css selector", "textarea")
        box.send_keys("the cat sat on the mat")
        click(browser, "vaekit-reconstruct")
        shown = output_text(browser).splitlines()
        assert shown[0].split() == ["input:", "the", "cat", "sat", "on", "the", "mat"]
        assert shown[1].startswith("reconstruction:") and len(shown[1].split()) >= 2


def test_speech_demo_plays_audio_as_long_as_the_cli_writes(browser, speech_run, data_dir, tmp_path):
    recording = data_dir / "fsdd/recordings/3_theo_4.wav"
    assert main(["sample", str(speech_run), "-n", "1", "-o", str(tmp_path / "cli-sample")]) == 0
    sample_seconds = wav_seconds(next((tmp_path / "cli-sample").glob("*.wav")))
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(40)))
    long = write_wav(tmp_path / "ten-minutes.wav", 600.0)

    with served(speech_run) as url:
        open_page(browser, url)
        click(browser, "vaekit-sample")
        durations = audio_durations(browser, 4)
        assert durations == pytest.approx([sample_seconds] * 4, abs=0.01)

        upload(browser, url, "Reconstruct", corrupt)
        click(browser, "vaekit-reconstruct")
        assert "not a readable WAV" in error_line(browser, "corrupt.wav")
        upload(browser, url, "Reconstruct", long)
        click(browser, "vaekit-reconstruct")
        assert "600 s long" in error_line(browser, "600 s")

        upload(browser, url, "Reconstruct", recording)
        click(browser, "vaekit-reconstruct")
        # the input as the model hears it, then its reconstruction: both as long as the recording
        assert audio_durations(browser, 2) == pytest.approx([wav_seconds(recording)] * 2, abs=0.01)

        # the microphone: about two seconds recorded in the page, reconstructed as long as it is
        open_page(browser, url)
        open_tab(browser, "Reconstruct")
        buttons = lambda: panel(browser).find_elements("css selector", "button")  # noqa: E731
        next(b for b in buttons() if b.get_attribute("aria-label") == "Record audio").click()
        wait(browser, lambda d: [b for b in buttons() if b.text == "Record"], "the Record button")[0].click()
        time.sleep(2.0)
        wait(browser, lambda d: [b for b in buttons() if b.text == "Stop"], "the Stop button")[0].click()
        time.sleep(1.0)
        click(browser, "vaekit-reconstruct")
        taken, reconstructed = audio_durations(browser, 2)
        assert taken > 1.0 and reconstructed == pytest.approx(taken, abs=0.01)
