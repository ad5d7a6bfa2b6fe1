"""Speech at real length: long inputs keep their length, chunks equal the whole, digit strings, sentences."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from speech_fixtures import build, fsdd_config, fsdd_root, train
from vaekit_speech import plugin
from vaekit_speech.audio import write_audio
from vaekit_speech.data import collate, single_thread
from vaekit_speech.data_config import SpeechDataConfig, frontend_from
from vaekit_speech.features import MelStats

from vaekit import SubsetConfig
from vaekit.config.subsets import chosen_indices

RATE, HOP = 8000, 128


def long_recording(data_dir, path, seconds: float) -> int:
    """Theo's recordings back to back with 0.2 s pauses, cut to `seconds`; returns the sample count."""
    waves = []
    for index in range(5):
        for digit in range(10):
            data, _ = sf.read(str(fsdd_root(data_dir) / f"{digit}_theo_{index}.wav"), dtype="float32")
            waves += [torch.from_numpy(data), torch.zeros(RATE // 5)]
    wave = torch.cat(waves)[: int(seconds * RATE)]
    write_audio(path, wave, RATE)
    return wave.numel()


def test_a_20_second_input_comes_back_20_seconds_long(tmp_path, data_dir):
    _, model = build(fsdd_config(data_dir), tmp_path, chunk_seconds=4.0)  # 20 s goes through five chunks
    model.eval()
    path = tmp_path / "long.wav"
    samples = long_recording(data_dir, path, 20.0)
    assert samples == 20 * RATE
    with single_thread():
        files = plugin.reconstruct(model, [str(path)], None, tmp_path / "out", griffin_lim_iters=2)
    recon = sf.info(str(next(p for p in files if p.name == "long_recon.wav")))
    assert recon.samplerate == RATE
    assert abs(recon.frames - samples) <= HOP  # the same number of frames: within one hop of the input


def test_outputs_are_as_long_as_their_inputs_to_the_sample(tmp_path, data_dir):
    """11.000 s (88,000 samples, not a whole number of 128-sample hops) comes back 88,000 samples long, the
    input's own Griffin-Lim rendering too; a 16 kHz file comes back as long at the model's 8 kHz; so do
    `sample --seconds` and `traverse --input`."""
    _, model = build(fsdd_config(data_dir), tmp_path)
    model.eval()
    path = tmp_path / "eleven.wav"
    assert long_recording(data_dir, path, 11.0) == 88_000 and 88_000 % HOP
    wave, _ = sf.read(str(path), dtype="float32")
    sf.write(str(tmp_path / "odd.wav"), wave[:12_345], RATE)
    sf.write(str(tmp_path / "wide.wav"), np.repeat(wave[:8_001], 2), 2 * RATE)  # 16,002 samples at 16 kHz
    with single_thread():
        files = plugin.reconstruct(model, [str(path), str(tmp_path / "odd.wav"), str(tmp_path / "wide.wav")], None,
                                   tmp_path / "out", griffin_lim_iters=2)
    frames = {p.name: sf.info(str(p)).frames for p in files if p.suffix == ".wav"}
    assert frames == {"eleven_input.wav": 88_000, "eleven_recon.wav": 88_000, "odd_input.wav": 12_345,
                      "odd_recon.wav": 12_345, "wide_input.wav": 8_001, "wide_recon.wav": 8_001}
    files = plugin.sample(model, 1, None, tmp_path / "s", seconds=1.01, griffin_lim_iters=2)
    assert sf.info(str(files[0])).frames == 8_080
    files = plugin.traverse(model, tmp_path / "t", input=str(tmp_path / "odd.wav"), dims=[0], steps=2,
                            griffin_lim_iters=2)
    assert [sf.info(str(p)).frames for p in files if p.suffix == ".wav"] == [12_345, 12_345]


def test_chunked_encoding_and_decoding_equal_the_whole(tmp_path, data_dir):
    _, model = build(fsdd_config(data_dir), tmp_path)
    model.eval()
    generator = torch.Generator().manual_seed(0)
    x = {"mel": torch.randn(2, 32, 700, generator=generator), "lengths": torch.tensor([700, 523])}
    with torch.no_grad():
        q_whole = model.posterior(x)
        z = q_whole.mean
        whole = model.decoder.outputs(z, (torch.arange(700)[None] < x["lengths"][:, None]).float())
        model.encoder.chunk_frames = model.decoder.chunk_frames = 64  # far shorter than the input
        q_chunked = model.posterior(x)
        chunked = model.decoder.outputs(z, (torch.arange(700)[None] < x["lengths"][:, None]).float())
    assert torch.equal(q_whole.mask, q_chunked.mask) and q_whole.mask.sum(-1).tolist() == [88, 66]
    assert torch.allclose(q_whole.mean, q_chunked.mean, atol=1e-5)
    assert torch.allclose(q_whole.logvar, q_chunked.logvar, atol=1e-5)
    assert torch.allclose(whole, chunked, atol=1e-5)


def test_an_utterance_latent_beside_the_stretches(tmp_path, data_dir):
    bundle, model = build(fsdd_config(data_dir), tmp_path, utterance_latent=True)
    model.eval()
    mel = bundle.train[0]["x"]["mel"]
    n = -(-mel.shape[-1] // 8)
    alone = {"mel": mel[None], "lengths": torch.tensor([mel.shape[-1]])}
    padded = {"mel": torch.nn.functional.pad(mel, (0, 50), value=7.0)[None], "lengths": alone["lengths"]}
    with torch.no_grad():
        q, q_padded = model.posterior(alone), model.posterior(padded)
        assert q.mean.shape == (1, 1 + n, 8) and q.mask.all()  # step 0: the whole utterance, never masked
        assert torch.allclose(q.mean, q_padded.mean[:, : 1 + n], atol=1e-5) and q_padded.mask.sum() == 1 + n
        z = torch.cat([q.mean, torch.randn(1, 7, 8)], 1)
        assert torch.allclose(model.log_likelihood(alone, q.mean), model.log_likelihood(padded, z), atol=1e-3)
        model.encoder.chunk_frames = model.decoder.chunk_frames = 16
        assert torch.allclose(model.posterior(alone).mean, q.mean, atol=1e-5)
        out = model.decode(q.mean, lengths=alone["lengths"])
    assert out["mel"].shape == mel[None].shape
    files = plugin.sample(model, 1, None, tmp_path / "s", seconds=2.0, griffin_lim_iters=2)
    assert abs(sf.info(str(files[0])).frames - 2 * RATE) <= HOP


def test_samples_have_the_asked_length(tmp_path, data_dir):
    _, model = build(fsdd_config(data_dir, condition_on=["speaker"]), tmp_path)
    model.eval()
    files = plugin.sample(model, 2, None, tmp_path / "s", seconds=3.0, griffin_lim_iters=2)
    for path in files[:2]:
        assert abs(sf.info(str(path)).frames - 3 * RATE) <= HOP
    with pytest.raises(Exception, match="--seconds"):
        plugin.sample(model, 1, None, tmp_path / "t", seconds=0.0)


def strings_config(data_dir, **overrides) -> SpeechDataConfig:
    values = {"source": "fsdd_strings", "root": str(fsdd_root(data_dir)), "speakers": ["jackson", "theo"],
              "n_strings": 10, "n_fft": 256, "hop_length": HOP, "n_mels": 32, "condition_on": ["speaker"],
              **overrides}
    return SpeechDataConfig(**values)


def test_digit_strings_have_known_words_lengths_and_splits(tmp_path, data_dir):
    cfg = strings_config(data_dir)
    assert cfg.sample_rate == RATE  # FSDD keeps its native rate
    bundle = plugin.build_data(cfg, seed=0, assets=tmp_path)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (40, 2, 10)
    val_indices = {u.index for s in bundle.val.strings for u in s.words}
    for split, allowed in ((bundle.train, lambda i: i >= 5 and i not in val_indices), (bundle.test, lambda i: i < 5)):
        for i, string in enumerate(split.strings):
            assert 3 <= len(string.words) <= 8
            assert 2.0 <= string.wave.numel() / RATE <= 8.0
            assert {u.speaker for u in string.words} == {string.speaker}
            assert all(allowed(u.index) for u in string.words), (string.name, [u.index for u in string.words])
            segments = split[i]["segments"]
            frames = split[i]["x"]["mel"].shape[-1]
            assert len(segments) == len(string.words)
            assert (segments[:, 0] < segments[:, 1]).all() and segments[-1, 1] <= frames
            assert (segments[1:, 0] >= segments[:-1, 1] - 1).all()  # words do not overlap (a frame of slack)
            assert segments[:, 2].tolist() == [int(u.label) for u in string.words]
    batch = collate([bundle.test[i] for i in range(3)])
    assert len(batch["segments"]) == 3 and batch["c"].shape == (3, 1)
    again = plugin.build_data(cfg, seed=0, assets=tmp_path)
    assert torch.equal(again.test.strings[4].wave, bundle.test.strings[4].wave)  # seeded
    with pytest.raises(ValueError, match="speaker only"):
        strings_config(data_dir, condition_on=["label", "speaker"])


def test_interpolation_walks_between_sentences_of_different_lengths(tmp_path, data_dir):
    _, model = build(fsdd_config(data_dir), tmp_path)
    model.eval()
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    long_recording(data_dir, a, 3.0)
    long_recording(data_dir, b, 6.0)
    files = plugin.interpolate(model, str(a), str(b), tmp_path / "i", steps=3, griffin_lim_iters=2)
    lengths = [sf.info(str(p)).frames for p in files if p.name.startswith("interp_")]
    assert lengths[0] < lengths[1] < lengths[2]
    assert lengths[2] - lengths[0] > 2.5 * RATE  # trimmed ends aside, 3 s apart
    files = plugin.interpolate(model, str(a), str(b), tmp_path / "s", steps=4, method="slerp", griffin_lim_iters=2)
    slerp_lengths = [sf.info(str(p)).frames for p in files if p.name.startswith("interp_")]
    assert len(slerp_lengths) == 4 and slerp_lengths[0] == lengths[0] and slerp_lengths[-1] == lengths[2]


def test_traverse_moves_each_unit_of_a_whole_recording(tmp_path, data_dir):
    """Every traversed utterance is as long as the base recording (or --seconds), one WAV per unit and value."""
    _, model = build(fsdd_config(data_dir), tmp_path)
    model.eval()
    recording = tmp_path / "long.wav"
    long_recording(data_dir, recording, 2.0)
    files = plugin.traverse(model, tmp_path / "t", input=str(recording), dims="0,3", span=2.0, steps=3,
                            griffin_lim_iters=2)
    waves = [p for p in files if p.suffix == ".wav"]
    assert [p.stem for p in waves] == ["unit00_0", "unit00_1", "unit00_2", "unit03_0", "unit03_1", "unit03_2"]
    assert (tmp_path / "t" / "traversal.png").is_file()
    assert len({sf.info(str(p)).frames for p in waves}) == 1
    files = plugin.traverse(model, tmp_path / "p", dims=[1], steps=2, seconds=1.5, griffin_lim_iters=2)
    assert abs(sf.info(str(files[0])).frames - int(1.5 * RATE)) <= HOP
    with pytest.raises(ValueError, match="--dims"):
        plugin.traverse(model, tmp_path / "bad", dims=[model.latent_dim], seconds=1.0)


@pytest.mark.slow
def test_converting_digit_strings_moves_the_speaker_classifier(tmp_path, data_dir):
    speakers = ["jackson", "theo", "nicolas"]
    cfg = strings_config(data_dir, speakers=speakers, n_strings=30)
    bundle, model = build(cfg, tmp_path, instance_norm=True)
    train(model, bundle.train, steps=200, batch_size=8)
    model.eval()
    loader = torch.utils.data.DataLoader(bundle.test, batch_size=10, collate_fn=collate)
    with single_thread():
        metrics = plugin.eval_metrics(model, loader, {"elbo": -1000.0}, classifier_epochs=6, eval_samples=30,
                                      classifier_dir=tmp_path / "classifiers")
    # every word of every test string is scored at its known boundaries
    assert metrics["speaker_acc_real"] > 0.7 and metrics["digit_acc_real"] > 0.5
    # ~160 test words: chance (1/3) + 0.1 is almost three binomial standard deviations above chance
    assert metrics["speaker_acc_converted"] > 1 / len(speakers) + 0.1, metrics


def test_stft_settings_follow_the_rate(tmp_path, data_dir):
    folder = SpeechDataConfig(source="folder", root=str(tmp_path))
    assert (folder.sample_rate, folder.n_fft, folder.hop_length, folder.n_mels) == (16000, 1024, 256, 80)
    fsdd = SpeechDataConfig(source="fsdd", root=str(fsdd_root(data_dir)))
    assert (fsdd.sample_rate, fsdd.n_fft, fsdd.hop_length) == (8000, 512, 128)  # FSDD keeps its native 8 kHz
    given = SpeechDataConfig(source="folder", root=str(tmp_path), sample_rate=22050, hop_length=200)
    assert (given.n_fft, given.hop_length) == (1024, 200)  # 64 ms at 22.05 kHz rounds to 1024 samples


def test_a_subset_of_strings_is_drawn_before_the_statistics_are_taken(tmp_path, data_dir):
    cfg = strings_config(data_dir)
    whole = plugin.build_data(cfg, seed=0, assets=tmp_path)
    cut = plugin.build_data(strings_config(data_dir), seed=0, assets=tmp_path, subset=SubsetConfig(train=12, test=4))
    assert (len(cut.train), len(cut.val), len(cut.test)) == (12, 2, 4)
    kept = chosen_indices(40, 12, 0, "train")
    assert [s.name for s in cut.train.strings] == [whole.train.strings[i].name for i in kept]
    frontend = frontend_from(cfg)
    stats = MelStats.from_mels([frontend.log_mel(whole.train.strings[i].wave) for i in kept]).to_info()
    assert cut.info["mel_mean"] == stats["mel_mean"] and cut.info["mel_std"] == stats["mel_std"]
    assert cut.info["mel_mean"] != whole.info["mel_mean"]
