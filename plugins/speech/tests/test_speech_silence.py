"""Silence in, silence out: reconstruct keeps the frames training trims as they were, at the input's level."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from speech_fixtures import build, fsdd_config, fsdd_root
from vaekit_speech import plugin
from vaekit_speech.data import single_thread

RATE = 8000


def dbfs(wave: np.ndarray) -> float:
    """RMS level in dBFS."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(wave, dtype=np.float64))) + 1e-12))


def speech_with_pauses(data_dir, path) -> list[tuple[int, int]]:
    """Two FSDD words at -3 dBFS peak, each followed by 1.5 s of -72 dBFS noise; returns the pauses' spans."""
    noise = np.random.default_rng(0).standard_normal(3 * RATE).astype("float32") * 10 ** (-72 / 20)
    parts, pauses, at = [], [], 0
    for k, name in enumerate(("3_theo_7.wav", "5_theo_7.wav")):
        word, _ = sf.read(str(fsdd_root(data_dir) / name), dtype="float32")
        word = 0.7 * word / np.abs(word).max()
        pause = noise[k * RATE * 3 // 2: (k + 1) * RATE * 3 // 2]
        parts += [word, pause]
        pauses.append((at + word.size, at + word.size + pause.size))
        at += word.size + pause.size
    sf.write(str(path), np.concatenate(parts), RATE)
    return pauses


def test_pauses_and_a_click_in_silence_come_back_silent_at_the_input_level(tmp_path, data_dir):
    _, model = build(fsdd_config(data_dir, condition_on=["speaker"]), tmp_path)  # untrained: renders noise
    model.eval()
    talk = tmp_path / "talk.wav"
    pauses = speech_with_pauses(data_dir, talk)
    click = np.random.default_rng(1).standard_normal(3 * RATE).astype("float32") * 10 ** (-72 / 20)
    click[RATE * 3 // 2: RATE * 3 // 2 + 32] += 0.5 * np.hanning(32).astype("float32")
    sf.write(str(tmp_path / "click.wav"), click, RATE)
    with single_thread():
        files = plugin.reconstruct(model, [str(talk), str(tmp_path / "click.wav")], None, tmp_path / "out",
                                   source="speaker=theo", griffin_lim_iters=8)
        files += plugin.reconstruct(model, [str(talk)], plugin.parse_condition("speaker=jackson", model),
                                    tmp_path / "out", source="speaker=theo", griffin_lim_iters=8)
    waves = {p.stem: sf.read(str(p), dtype="float32")[0] for p in files if p.suffix == ".wav"}
    assert set(waves) == {"talk_input", "talk_recon", "click_input", "click_recon", "talk_to_speaker-jackson"}
    for name in ("talk_input", "talk_recon", "talk_to_speaker-jackson"):
        for start, end in pauses:  # the middle of each pause, clear of Griffin-Lim's spread from the words
            level = dbfs(waves[name][start + RATE // 4: end - RATE // 4])
            assert -76 < level < -68, (name, level)
        assert dbfs(waves[name][: pauses[0][0]]) > -45, name  # the words are still there
    for name in ("click_input", "click_recon"):
        assert -76 < dbfs(waves[name][: RATE]) < -68 and -76 < dbfs(waves[name][2 * RATE:]) < -68, name
    assert dbfs(waves["click_input"][RATE * 3 // 2 - 256: RATE * 3 // 2 + 288]) > -45  # the click, where it was
