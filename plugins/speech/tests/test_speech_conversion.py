"""Voice conversion with a digit+speaker CVAE on real FSDD, scored by the evaluation's own classifiers."""

from __future__ import annotations

import pytest
import torch
from speech_fixtures import build, fsdd_config, train
from vaekit_speech import plugin
from vaekit_speech.conversion import convert, moved_moments, moving_average, window_frames
from vaekit_speech.data import collate, single_thread
from vaekit_speech.models import SpeechModelConfig


@pytest.mark.slow
def test_conversion_moves_the_speaker_classifier_to_the_target(tmp_path, data_dir, capsys):
    speakers = ["jackson", "theo", "nicolas"]
    cfg = fsdd_config(data_dir, speakers=speakers, max_index=14, condition_on=["label", "speaker"])
    bundle, model = build(cfg, tmp_path)
    train(model, bundle.train, steps=90, batch_size=16)
    model.eval()
    loader = torch.utils.data.DataLoader(bundle.test, batch_size=50, collate_fn=collate)
    with single_thread():
        metrics = plugin.eval_metrics(model, loader, {"elbo": -1000.0}, classifier_epochs=10, eval_samples=150,
                                      classifier_dir=tmp_path / "classifiers")
    chance = 1 / len(speakers)
    assert metrics["speaker_acc_real"] > 0.7  # the classifier itself works on real test audio
    assert metrics["speaker_acc_converted"] > chance + 0.2, metrics  # decoded, this recipe's way
    assert metrics["speaker_acc_converted_residual"] > chance + 0.2, metrics  # the input plus the change of voice
    assert metrics["speaker_acc_converted_moments"] > chance + 0.2, metrics  # the target speaker's statistics
    for key in ("mel_l1_db", "lsd_db", "digit_acc_recon", "digit_acc_samples", "neg_elbo_per_frame"):
        assert key in metrics
    assert len(list((tmp_path / "classifiers").glob("speaker-*.safetensors"))) == 1
    # each score is said beside the classifier's accuracy on real audio, and kept relative to it
    err = capsys.readouterr().err
    assert f"speaker classifier (10 epochs): {metrics['speaker_acc_real']:.1%} right on real examples" in err, err
    assert metrics["speaker_acc_converted_relative"] == pytest.approx(
        metrics["speaker_acc_converted"] / metrics["speaker_acc_real"])
    # The cached classifiers are reused: the same numbers come back without training.
    with single_thread():
        again = plugin.eval_metrics(model, loader, {"elbo": -1000.0}, classifier_epochs=10, eval_samples=150,
                                    classifier_dir=tmp_path / "classifiers")
    assert again["speaker_acc_real"] == metrics["speaker_acc_real"]


def test_residual_conversion_is_the_input_plus_the_decoders_change_of_voice(tmp_path, data_dir):
    bundle, model = build(fsdd_config(data_dir, condition_on=["speaker"]), tmp_path)
    model.eval()
    batch = collate([bundle.test[i] for i in (0, 7, 19)])  # three lengths: padding in the batch
    x, source = batch["x"], batch["c"]
    target = (source + 1) % 2
    mask = x["mask"][:, None]
    same = convert(model, x, source, source, "residual")
    assert torch.allclose(same["mel"], x["mel"] * mask, atol=1e-5)  # to its own voice: the input itself
    residual = convert(model, x, source, target, "residual")
    decoded = convert(model, x, source, target, "decoded")
    own = convert(model, x, source, source, "decoded")
    assert torch.allclose(residual["mel"], (x["mel"] + decoded["mel"] - own["mel"]) * mask, atol=1e-5)
    assert (residual["mel"] * (1 - mask)).abs().max() == 0 and torch.equal(residual["mask"], x["mask"])
    lengths = x["mask"].sum(-1).long()
    with torch.no_grad():
        plain = model.decode(model.encode(x, source).mode(), target, lengths=lengths)["mel"]
    assert torch.allclose(decoded["mel"][..., : plain.shape[-1]], plain)
    assert not torch.allclose(residual["mel"], decoded["mel"], atol=1e-3)
    with pytest.raises(ValueError, match="conversion: expected one of residual, decoded, moments, got 'both'"):
        convert(model, x, source, target, "both")


def test_smoothed_residual_conversion_averages_the_change_of_voice_over_time(tmp_path, data_dir):
    bundle, model = build(fsdd_config(data_dir, condition_on=["speaker"]), tmp_path, conversion_smoothing_ms=200.0)
    model.eval()
    batch = collate([bundle.test[i] for i in (0, 7, 19)])
    x, source = batch["x"], batch["c"]
    target, mask = (source + 1) % 2, x["mask"][:, None]
    # 16 ms frames at 8 kHz: the odd number of frames nearest each window.
    assert [window_frames(model, ms) for ms in (0.0, 16.0, 40.0, 200.0, 208.0)] == [1, 1, 3, 13, 13]
    same = convert(model, x, source, source, "residual")
    assert torch.allclose(same["mel"], x["mel"] * mask, atol=1e-5)  # no change of voice to smooth
    frame_by_frame = convert(model, x, source, target, "residual", smoothing_ms=0.0)
    change = (frame_by_frame["mel"] - x["mel"]) * mask
    # A window longer than every utterance gives each one the mean change over its own frames, padding left out.
    whole = convert(model, x, source, target, "residual", smoothing_ms=1e5)
    mean_change = change.sum(-1, keepdim=True) / mask.sum(-1, keepdim=True)
    assert torch.allclose(whole["mel"], (x["mel"] + mean_change) * mask, atol=1e-4)
    default = convert(model, x, source, target, "residual")  # the model's 200 ms
    assert torch.allclose(default["mel"], (x["mel"] + moving_average(change, x["mask"], 13)) * mask, atol=1e-5)
    assert not torch.allclose(default["mel"], frame_by_frame["mel"], atol=1e-3)
    assert (default["mel"] * (1 - mask)).abs().max() == 0
    with pytest.raises(ValueError, match="conversion_smoothing_ms: expected 0 or more milliseconds, got -1"):
        convert(model, x, source, target, "residual", smoothing_ms=-1.0)
    with pytest.raises(ValueError, match="conversion_smoothing_ms: expected 0 or more milliseconds, got -5"):
        SpeechModelConfig(conversion_smoothing_ms=-5.0)


def test_moments_conversion_moves_the_statistics_to_the_target_speakers(tmp_path, data_dir):
    bundle, model = build(fsdd_config(data_dir, condition_on=["speaker"]), tmp_path, conversion_scale=0.5,
                          conversion_smoothing_ms=40.0)
    model.eval()
    moments = model.config["info"]["speaker_moments"]
    # Known answer: each speaker's training frames, joined, moved to the other speaker's statistics have exactly
    # the other's per-bin mean and spread.
    frames = [torch.cat([bundle.train.mels[i] for i in range(len(bundle.train)) if bundle.train.targets(i)[1] == s],
                        -1) for s in (0, 1)]
    for s in (0, 1):
        torch.testing.assert_close(frames[s].mean(-1), torch.tensor(moments["mean"][s]), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(frames[s].std(-1), torch.tensor(moments["std"][s]), atol=1e-5, rtol=1e-5)
        joined = {"mel": frames[s][None], "mask": torch.ones(1, frames[s].shape[-1])}
        moved = moved_moments(joined, moments, torch.tensor([s]), torch.tensor([1 - s]))[0]
        torch.testing.assert_close(moved.mean(-1), torch.tensor(moments["mean"][1 - s]), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(moved.std(-1), torch.tensor(moments["std"][1 - s]), atol=1e-4, rtol=1e-4)
    batch = collate([bundle.test[i] for i in (0, 7, 19)])  # three lengths: padding in the batch
    x, source = batch["x"], batch["c"]
    target, mask = (source + 1) % 2, x["mask"][:, None]
    same = convert(model, x, source, source, "moments")
    assert torch.allclose(same["mel"], x["mel"] * mask, atol=1e-5)  # to its own voice: the input itself
    converted = convert(model, x, source, target, "moments")
    decoded = convert(model, x, source, target, "decoded")["mel"]
    own = convert(model, x, source, source, "decoded")["mel"]
    change = (decoded - own) * mask
    varying = (change - change.sum(-1, keepdim=True) / mask.sum(-1, keepdim=True)) * mask
    expected = moved_moments(x, moments, source[:, 0], target[:, 0]) + 0.5 * moving_average(varying, x["mask"], 3)
    assert torch.allclose(converted["mel"], expected * mask, atol=1e-5)
    assert (converted["mel"] * (1 - mask)).abs().max() == 0
    with pytest.raises(ValueError, match="conversion 'moments': needs the source and target speakers"):
        moved_moments(x, moments, source[:, 0], torch.full_like(target[:, 0], -1))
    del model.config["info"]["speaker_moments"]  # a model saved without the statistics
    with pytest.raises(ValueError, match=r"conversion .moments. .* no speaker_moments\); use residual or decoded"):
        convert(model, x, source, target, "moments")
    with pytest.raises(ValueError, match="conversion_scale: expected 0 or more, got -1"):
        SpeechModelConfig(conversion_scale=-1.0)


def test_moving_average_keeps_a_constant_and_its_padding(tmp_path):
    mask = torch.tensor([[1.0] * 10, [1.0] * 4 + [0.0] * 6])
    values = torch.full((2, 3, 10), 2.5) * mask[:, None]
    smoothed = moving_average(values, mask, 5)
    assert torch.allclose(smoothed, values)  # edges and the padded end included
    ramp = torch.arange(10.0).expand(1, 1, 10)
    assert torch.allclose(moving_average(ramp, torch.ones(1, 10), 3)[0, 0, 1:-1], ramp[0, 0, 1:-1])
    assert moving_average(ramp, torch.ones(1, 10), 3)[0, 0, 0] == 0.5  # the first frame's window has two frames


def test_reconstruct_converts_to_the_target_speaker_files(tmp_path, data_dir):
    cfg = fsdd_config(data_dir, condition_on=["label", "speaker"])
    _, model = build(cfg, tmp_path)
    model.eval()
    source = data_dir / "fsdd" / "recordings" / "3_theo_2.wav"
    target = plugin.parse_condition("speaker=jackson", model)
    files = plugin.reconstruct(model, [str(source)], target, tmp_path / "out", griffin_lim_iters=4)
    names = sorted(p.name for p in files)
    assert names == ["3_theo_2_input.wav", "3_theo_2_to_digit-3_speaker-jackson.png",
                     "3_theo_2_to_digit-3_speaker-jackson.wav"]
    # A file whose name says nothing about its speaker needs --source.
    renamed = tmp_path / "clip.wav"
    renamed.write_bytes(source.read_bytes())
    with pytest.raises(Exception, match="--source"):
        plugin.reconstruct(model, [str(renamed)], target, tmp_path / "out2")
    files = plugin.reconstruct(model, [str(renamed)], target, tmp_path / "out2", source="digit=3,speaker=theo",
                               griffin_lim_iters=4)
    assert any(p.name == "clip_to_digit-3_speaker-jackson.wav" for p in files)


def test_samples_cycle_through_the_classes_not_given(tmp_path, data_dir):
    _, model = build(fsdd_config(data_dir, condition_on=["label", "speaker"]), tmp_path)
    model.eval()
    files = plugin.sample(model, 3, plugin.parse_condition("speaker=theo", model), tmp_path / "s",
                          griffin_lim_iters=4)
    assert [p.name for p in files] == ["sample_000_digit-0_speaker-theo.wav", "sample_001_digit-1_speaker-theo.wav",
                                       "sample_002_digit-2_speaker-theo.wav", "samples.png"]


def test_interpolate_between_two_speakers_with_a_given_source(tmp_path, data_dir):
    _, model = build(fsdd_config(data_dir, condition_on=["label", "speaker"]), tmp_path)
    model.eval()
    a = data_dir / "fsdd" / "recordings" / "3_theo_2.wav"
    b = tmp_path / "mystery.wav"
    b.write_bytes((data_dir / "fsdd" / "recordings" / "8_jackson_1.wav").read_bytes())
    files = plugin.interpolate(model, str(a), str(b), tmp_path / "i", steps=3, source_b="digit=8,speaker=jackson",
                               griffin_lim_iters=4)
    assert [p.name for p in files] == ["interp_00.wav", "interp_01.wav", "interp_02.wav", "interpolation.png",
                                       "interpolation.wav"]
    with pytest.raises(Exception, match="--source"):
        plugin.interpolate(model, str(a), str(b), tmp_path / "j", steps=3)
