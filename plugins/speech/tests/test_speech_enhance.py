"""Speech enhancement: the noise mixer's SNR, SI-SDR on known signals, `vaekit enhance` end to end (lengths, rates,
bad inputs) and the noise-robust encoder on a tiny FSDD model."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from vaekit_speech.audio import load_audio
from vaekit_speech.data import single_thread
from vaekit_speech.enhance_eval import enhancement_scores, string_recordings
from vaekit_speech.enhancement import VAENMFConfig, robust_settings, vae_nmf, wiener
from vaekit_speech.metrics import get_classifiers
from vaekit_speech.noise import make_noise, mix_at_snr, snr_db
from vaekit_speech.quality import pesq_nb, si_sdr, stoi

import vaekit
from vaekit.cli import main

TINY = ["model.channels=[8,16,32]", "model.hidden=32", "model.latent_dim=8", "data.n_mels=32", "data.n_fft=256",
        "trainer.batch_size=16", "trainer.samples=0", "trainer.progress=false", "trainer.max_steps=6",
        "trainer.eval_every=6", "trainer.checkpoint_every=6", "eval.iw_samples=2", "data.speakers=[jackson,theo]",
        "data.max_index=9"]
RATE = 8000


def cli(*args) -> int:
    with single_thread():
        return main([str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir) -> Path:
    run = tmp_path_factory.mktemp("enhance") / "fsdd"
    root = Path(data_dir) / "fsdd" / "recordings"
    recipe = Path(__file__).resolve().parents[3] / "recipes" / "speech" / "fsdd.yaml"
    assert cli("train", recipe, *TINY, f"data.root={root}", "--out", run) == 0
    return run


@pytest.fixture(scope="module")
def clean_digit(data_dir) -> torch.Tensor:
    return load_audio(Path(data_dir) / "fsdd" / "recordings" / "3_theo_2.wav", RATE)


# -- the mixer and the scores ----------------------------------------------------------------------

def test_mix_at_snr_known_answer():
    clean = torch.ones(100)
    noise = torch.tensor([1.0, -1.0] * 50)  # the same energy as clean: at 0 dB it is added unscaled
    assert torch.allclose(mix_at_snr(clean, noise, 0.0), clean + noise)
    # at 20 dB the noise is scaled by 10 ** (-20 / 20) = 0.1
    assert torch.allclose(mix_at_snr(clean, noise, 20.0), clean + 0.1 * noise, atol=1e-6)


@pytest.mark.parametrize("kind", ["white", "pink"])
@pytest.mark.parametrize("snr", [-5.0, 0.0, 5.0, 10.0])
def test_mixer_snr_is_exact_and_seeded(kind, snr, clean_digit):
    noise = make_noise(kind, clean_digit.numel(), RATE, seed=7)
    assert torch.equal(noise, make_noise(kind, clean_digit.numel(), RATE, seed=7))
    assert not torch.equal(noise, make_noise(kind, clean_digit.numel(), RATE, seed=8))
    noisy = mix_at_snr(clean_digit, noise, snr)
    assert snr_db(clean_digit, noisy) == pytest.approx(snr, abs=1e-4)


def test_pink_noise_falls_with_frequency():
    spectrum = np.abs(np.fft.rfft(make_noise("pink", 80_000, RATE, seed=0).numpy())) ** 2
    low, high = spectrum[100:1000].mean(), spectrum[10_000:20_000].mean()  # 10-100 Hz against 1-2 kHz
    assert 10 * math.log10(low / high) > 10  # 1/f: about 10 dB per decade between the bands' centres


def test_babble_and_folder_noise(tmp_path, data_dir):
    root = Path(data_dir) / "fsdd" / "recordings"
    sources = sorted(root.glob("*_george_1*.wav"))
    babble = make_noise("babble", 8000, RATE, seed=1, babble_sources=sources)
    assert babble.numel() == 8000 and babble.std() == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="babble noise: needs speech recordings"):
        make_noise("babble", 8000, RATE, seed=1)
    folder = tmp_path / "noises"
    folder.mkdir()
    sf.write(folder / "hum.wav", 0.1 * np.sin(np.arange(3000) / 8.0), RATE)
    hum = make_noise(str(folder), 10_000, RATE, seed=0)  # shorter than asked: looped
    assert hum.numel() == 10_000 and hum.std() == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="expected white, pink, babble or a folder"):
        make_noise("brown", 100, RATE, seed=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        make_noise(str(tmp_path / "empty"), 100, RATE, seed=0)


def test_si_sdr_on_known_signals():
    t = torch.arange(8000, dtype=torch.float64)
    x = torch.sin(2 * math.pi * 100 * t / RATE)
    e = torch.cos(2 * math.pi * 100 * t / RATE)  # orthogonal to x over whole periods
    assert si_sdr(x, x + 0.1 * e) == pytest.approx(20.0, abs=1e-3)
    assert si_sdr(x, 3 * (x + 0.1 * e)) == pytest.approx(20.0, abs=1e-3)  # scale-invariant
    assert si_sdr(x, x + e) == pytest.approx(0.0, abs=1e-3)


def test_pesq_and_stoi_order_noisy_below_clean(clean_digit):
    noisy = mix_at_snr(clean_digit, make_noise("white", clean_digit.numel(), RATE, seed=0), 0.0)
    assert pesq_nb(clean_digit, clean_digit, RATE) > 4.0
    assert pesq_nb(clean_digit, noisy, RATE) < 2.5
    joined_clean, joined_noisy = clean_digit.repeat(3), noisy.repeat(3)  # STOI needs > 384 ms of speech
    assert stoi(joined_clean, joined_clean, RATE) == pytest.approx(1.0, abs=1e-6)
    assert stoi(joined_clean, joined_noisy, RATE) < 0.9


def test_wiener_keeps_length_and_helps_white_noise(clean_digit):
    noise = make_noise("white", clean_digit.numel(), RATE, seed=3)
    padded = torch.cat([torch.zeros(1600), clean_digit])  # 200 ms of noise alone first, as Wiener assumes
    noisy = mix_at_snr(padded, torch.cat([make_noise("white", 1600, RATE, 4), noise]), 5.0)
    out = wiener(noisy, RATE)
    assert out.shape == noisy.shape
    assert si_sdr(padded, out) > si_sdr(padded, noisy) + 2


# -- the VAE enhancer and the verbs ----------------------------------------------------------------

def test_vae_nmf_keeps_length_and_is_seeded(tiny_run, clean_digit):
    model, _ = vaekit.load(tiny_run)
    noisy = mix_at_snr(clean_digit, make_noise("white", clean_digit.numel(), RATE, seed=0), 5.0)
    config = VAENMFConfig(iterations=4)
    with single_thread():
        out, again = vae_nmf(model, noisy, config), vae_nmf(model, noisy, config)
    assert out.shape == noisy.shape and torch.isfinite(out).all()
    assert torch.equal(out, again)
    assert si_sdr(clean_digit, out) > -5  # a 6-step model: no quality asked, only a sane signal


def test_noise_from_the_residual_only_lowers_the_gain(tiny_run, clean_digit):
    model, _ = vaekit.load(tiny_run)
    noisy = mix_at_snr(clean_digit, make_noise("white", clean_digit.numel(), RATE, seed=0), 0.0)
    settings = robust_settings(VAENMFConfig(iterations=4, seed=3))
    assert (settings.iterations, settings.seed, settings.latent_every, settings.frame_gain) == (4, 3, 0, False)
    with single_thread():
        floor_only = vae_nmf(model, noisy, settings)
        with_residual = vae_nmf(model, noisy, dataclasses.replace(settings, residual_noise=0.5))
    assert with_residual.shape == noisy.shape and torch.isfinite(with_residual).all()
    # more noise in the Wiener gain never lets more through: the output's energy can only fall
    assert float(with_residual.pow(2).sum()) < float(floor_only.pow(2).sum())


def test_digit_strings_scored_word_by_word(tiny_run, data_dir):
    model, _ = vaekit.load(tiny_run)
    strings = string_recordings(model, 2)
    assert [s.name for s in strings] == [s.name for s in string_recordings(model, 2)]  # seeded
    for string in strings:
        assert string.speaker in {"jackson", "theo"} and 3 <= len(string.words) <= 8
        assert 2.0 <= string.wave.numel() / RATE <= 8.0
        ends = [0] + [end for _, end, _ in string.words[:-1]]
        for (start, end, digit), previous_end in zip(string.words, ends, strict=True):
            assert previous_end < start < end <= string.wave.numel() and 0 <= digit <= 9
            assert float(string.wave[previous_end:start].abs().max()) == 0.0  # pauses between words are silent
    classifier = get_classifiers(model, 1, None)["label"].eval()
    babble = sorted((Path(data_dir) / "fsdd" / "recordings").glob("*_george_1*.wav"))
    with single_thread():
        scores = enhancement_scores(model, strings, babble, ("babble",), (5.0,), classifier,
                                    {"noisy": lambda w: w, "wiener": lambda w: wiener(w, RATE)})
    assert scores["clips_scored"] == 2 and scores["words_scored"] == sum(len(s.words) for s in strings)
    for method in ("noisy", "wiener"):
        row = scores["babble_5dB"][method]
        assert 0 <= row["digit_acc"] <= 100 and 0 < row["stoi"] < 1 and 1 <= row["pesq"] <= 4.6
    # a word is 1 / words_scored of the accuracy: every figure is a whole number of words
    words = scores["words_scored"]
    assert round(scores["clean"]["digit_acc"] * words / 100, 6).is_integer()


def test_enhance_cli_keeps_length_rate_and_level(tiny_run, clean_digit, tmp_path):
    noisy = mix_at_snr(clean_digit, make_noise("pink", clean_digit.numel(), RATE, seed=0), 5.0)
    stereo16k = np.stack([noisy.numpy(), 0.5 * noisy.numpy()], 1).repeat(2, 0)  # 16 kHz, two channels
    sf.write(tmp_path / "a.wav", 0.5 * noisy.numpy(), RATE)
    sf.write(tmp_path / "b.flac", stereo16k, 16000)
    out = tmp_path / "out"
    assert cli("enhance", tiny_run, tmp_path / "a.wav", tmp_path / "b.flac", "--iterations", "3", "-o", out) == 0
    a, rate_a = sf.read(out / "a.wav")
    b, rate_b = sf.read(out / "b.wav")
    assert (rate_a, a.shape) == (RATE, (noisy.numel(),))
    assert (rate_b, b.shape) == (16000, (stereo16k.shape[0],))
    assert (out / "a.png").is_file() and (out / "b.png").is_file()
    level_in = 20 * math.log10(float((0.5 * noisy).pow(2).mean().sqrt()))
    level_out = 20 * math.log10(float(np.sqrt(np.mean(a ** 2))))
    assert level_in - 20 < level_out < level_in + 1  # attenuated noise, never louder than the input


def test_enhance_bad_inputs_are_one_line(tiny_run, tmp_path, capsys):
    sf.write(tmp_path / "silent.wav", np.zeros(4000), RATE)
    sf.write(tmp_path / "click.wav", 0.5 * np.ones(40), RATE)
    (tmp_path / "text.wav").write_text("not audio")
    cases = {"silent.wav": "silent", "click.wav": "too short", "text.wav": "not a readable audio file",
             "missing.wav": "no such audio file"}
    for name, words in cases.items():
        assert cli("enhance", tiny_run, tmp_path / name, "-o", tmp_path / "out") == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("vaekit: error:") and words in err and "\n" not in err, err
    assert cli("enhance", tiny_run, tmp_path / "silent.wav", "--method", "vae_nmf_robust") == 2
    assert "train-enhancer" in capsys.readouterr().err
    sf.write(tmp_path / "x.wav", 0.1 * np.random.default_rng(0).standard_normal(4000), RATE)
    assert cli("enhance", tiny_run, tmp_path / "x.wav", "-o", tmp_path) == 2  # would overwrite its input
    assert "overwrite the input" in capsys.readouterr().err


def test_train_enhancer_then_enhance_with_it(tiny_run, clean_digit, tmp_path):
    assert cli("train-enhancer", tiny_run, "--steps", "2", "--batch-size", "4") == 0
    assert (tiny_run / "enhancer" / "encoder.safetensors").is_file()
    noisy = mix_at_snr(clean_digit, make_noise("white", clean_digit.numel(), RATE, seed=0), 0.0)
    sf.write(tmp_path / "n.wav", noisy.numpy(), RATE)
    assert cli("enhance", tiny_run, tmp_path / "n.wav", "--method", "vae_nmf_robust", "--iterations", "2",
               "-o", tmp_path / "out") == 0
    assert sf.read(tmp_path / "out" / "n.wav")[0].shape == (noisy.numel(),)
    assert cli("train-enhancer", tiny_run, "--snr-low", "10", "--snr-high", "0") == 2


def test_eval_reports_enhancement(tiny_run):
    assert cli("eval", tiny_run, "--enhancement-clips", "1", "--classifier-epochs", "1", "--eval-samples", "1",
               "--pitch-utterances", "0") == 0
    results = json.loads((tiny_run / "eval-test.json").read_text())
    for noise in ("white", "babble"):
        for snr in (0, 5, 10):
            for method in ("noisy", "spectral_gating", "wiener", "vae_nmf"):
                for metric in ("pesq", "stoi", "si_sdr", "digit_acc"):
                    assert math.isfinite(results[f"enhance_{noise}_{snr}dB_{method}_{metric}"])
    assert 0 <= results["enhance_digit_acc_clean"] <= 100
