"""End to end through the CLI: train a tiny recipe, then eval, sample, reconstruct, convert and interpolate."""

from __future__ import annotations

import json
import math

import numpy
import pytest
import soundfile as sf
from vaekit_speech.data import single_thread

from vaekit.cli import main

TINY = ["model.channels=[8,16,32]", "model.hidden=64", "model.latent_dim=8", "data.n_mels=32", "data.n_fft=256",
        "trainer.batch_size=16", "trainer.samples=2", "trainer.progress=false", "trainer.lr=0.003",
        "eval.iw_samples=2", "data.griffin_lim_iters=4"]


def cli(*args) -> int:
    with single_thread():  # the shared 2-core machine runs tiny models faster on one thread
        return main([str(a) for a in args])


def test_tones_recipe_end_to_end(tmp_path, repo, capsys):
    run = tmp_path / "tones"
    assert cli("train", repo / "recipes/speech/tones.yaml", *TINY, "data.n_tones=96", "trainer.max_steps=8",
               "trainer.eval_every=8", "--out", run) == 0
    assert sorted(p.name for p in (run / "samples" / "step-8").iterdir()) == ["sample_000.wav", "sample_001.wav",
                                                                             "samples.png"]
    assert cli("eval", run, "--classifier-epochs", "1", "--eval-samples", "4", "--score-audio",
               "--pitch-utterances", "4") == 0
    results = json.loads((run / "eval-test.json").read_text())
    for key in ("nll", "nll_per_frame", "mel_l1_db", "lsd_db", "pitch_acc_real", "pitch_acc_recon",
                "timbre_acc_recon", "pitch_acc_recon_audio", "active_units", "pitch_voiced_kept"):
        assert key in results, key
    assert 0 <= results["pitch_voiced_kept"] <= 1  # of the inputs' voiced frames; the 8-step model keeps few
    assert len(list((run / "speech_classifiers").glob("label-*.safetensors"))) == 1  # keyed by what it learnt from
    capsys.readouterr()
    assert cli("sample", run, "-n", "3", "--temperature", "0.5", "-o", tmp_path / "s") == 0
    written = capsys.readouterr().out.split()
    assert len(written) == 4 and written[-1].endswith("samples.png")
    info = sf.info(written[0])
    assert info.samplerate == 8000 and info.channels == 1
    assert info.frames % 128 == 0 and info.frames > 0  # (frames - 1) * hop samples
    assert cli("sample", run, "-n", "1", "--seconds", "1.5", "-o", tmp_path / "s15") == 0
    assert abs(sf.info(str(tmp_path / "s15" / "sample_000.wav")).frames - 12_000) <= 128  # 1.5 s within a hop
    tone = tmp_path / "tone.wav"
    t = [i / 22_050 for i in range(11_025)]
    sf.write(str(tone), [[0.3 * math.sin(2 * math.pi * 330 * s), 0.1] for s in t], 22_050)  # stereo, 22 kHz
    assert cli("reconstruct", run, tone, "-o", tmp_path / "r") == 0
    recon = sf.info(str(tmp_path / "r" / "tone_recon.wav"))
    original = sf.info(str(tmp_path / "r" / "tone_input.wav"))
    assert recon.samplerate == 8000 and recon.frames == original.frames
    assert cli("interpolate", run, tone, tone, "--steps", "3", "-o", tmp_path / "i") == 0
    assert (tmp_path / "i" / "interpolation.wav").is_file() and (tmp_path / "i" / "interp_02.wav").is_file()
    assert not (tmp_path / "i" / "interp_03.wav").exists()  # --steps counts both ends, as in every plugin
    assert cli("traverse", run, "--input", tone, "--dims", "1", "--steps", "2", "-o", tmp_path / "t") == 0
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["traversal.png", "unit01_0.wav", "unit01_1.wav"]


def test_fsdd_cvae_voice_conversion_from_the_cli(tmp_path, repo, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(data_dir))
    run = tmp_path / "cvae"
    assert cli("train", repo / "recipes/speech/fsdd_cvae.yaml", *TINY, "data.speakers=[jackson,theo]",
               "data.max_index=8", "trainer.max_steps=4", "trainer.eval_every=4", "trainer.log_every=1",
               "latent.condition_adversary=1.0", "latent.condition_cycle=1.0", "--out", run) == 0
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in logged if r["split"] == "train"]
    assert len(train) == 4 and all(r["adversary_ce"] > 0 for r in train)  # digit + speaker from every latent step
    assert all(0 < r["cycle_rec"] < math.inf for r in train)  # the reconstruction through a converted decode
    source = data_dir / "fsdd" / "recordings" / "7_theo_3.wav"
    capsys.readouterr()
    assert cli("reconstruct", run, source, "--condition", "speaker=jackson", "-o", tmp_path / "conv") == 0
    out = capsys.readouterr().out
    assert "7_theo_3_to_digit-7_speaker-jackson.wav" in out
    assert cli("sample", run, "-n", "2", "--condition", "digit=3,speaker=theo", "-o", tmp_path / "s") == 0
    assert (tmp_path / "s" / "sample_001_digit-3_speaker-theo.wav").is_file()
    assert cli("sample", run, "-n", "2", "--condition", "speaker=nobody") == 2
    assert "speaker must be one of jackson, theo" in capsys.readouterr().err


@pytest.mark.slow
def test_fsdd_strings_recipe_trains_evaluates_and_converts_a_sentence(tmp_path, repo, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(data_dir))
    run = tmp_path / "strings"
    assert cli("train", repo / "recipes/speech/fsdd_strings.yaml", *TINY, "data.speakers=[jackson,theo]",
               "data.n_strings=6", "trainer.max_steps=4", "trainer.eval_every=4", "trainer.batch_size=4",
               "--out", run) == 0
    assert cli("eval", run, "--classifier-epochs", "1", "--eval-samples", "2", "--iw-samples", "1") == 0
    results = json.loads((run / "eval-test.json").read_text())
    for key in ("digit_acc_real", "digit_acc_recon", "speaker_acc_converted", "speaker_acc_converted_decoded",
                "mel_l1_db"):
        assert key in results, key  # each word of each string is scored; conversions both ways
    sentence = tmp_path / "sentence.wav"
    waves = [sf.read(str(data_dir / "fsdd" / "recordings" / f"{d}_theo_0.wav"), dtype="float32")[0] for d in (4, 2, 7)]
    sf.write(str(sentence), numpy.concatenate([numpy.concatenate([w, numpy.zeros(2000, "float32")]) for w in waves]),
             8000)
    capsys.readouterr()
    assert cli("reconstruct", run, sentence, "--source", "speaker=theo", "--condition", "speaker=jackson",
               "-o", tmp_path / "conv") == 0
    converted = tmp_path / "conv" / "sentence_to_speaker-jackson.wav"
    assert converted.is_file()
    assert abs(sf.info(str(converted)).frames - sf.info(str(sentence)).frames) <= 128  # the whole sentence
    assert cli("reconstruct", run, sentence, "--source", "speaker=theo", "--condition", "speaker=jackson",
               "--conversion", "decoded", "-o", tmp_path / "decoded") == 0  # the recipe's residual is the default
    decoded = sf.read(str(tmp_path / "decoded" / "sentence_to_speaker-jackson.wav"))[0]
    assert decoded.shape == sf.read(str(converted))[0].shape and not numpy.allclose(decoded, sf.read(str(converted))[0])
    assert cli("reconstruct", run, sentence, "--source", "speaker=theo", "--condition", "speaker=jackson",
               "--conversion-smoothing-ms", "0", "-o", tmp_path / "unsmoothed") == 0  # the recipe's is 200 ms
    unsmoothed = sf.read(str(tmp_path / "unsmoothed" / "sentence_to_speaker-jackson.wav"))[0]
    assert unsmoothed.shape == decoded.shape and not numpy.allclose(unsmoothed, sf.read(str(converted))[0])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli("reconstruct", run, sentence, "--condition", "speaker=jackson", "--conversion-smoothing-ms", "-5")
    error = capsys.readouterr().err.strip()
    assert "--conversion-smoothing-ms" in error and "expected a number >= 0, got -5" in error and "\n" not in error
