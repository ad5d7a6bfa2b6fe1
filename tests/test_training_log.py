"""The train records of metrics.jsonl (vaekit.training.training_log): averages, gradient-norm spikes, the plugin's
batch amounts, and a window that survives a checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from vaekit.io.checkpoint import flatten_state, unflatten_state
from vaekit.objectives.elbo import ObjectiveTerms
from vaekit.training.run_folder import RunFolder
from vaekit.training.training_log import SPIKE_RATIO, SPIKE_WINDOW, TrainLog


def terms(loss: float) -> ObjectiveTerms:
    value = torch.tensor([loss])
    return ObjectiveTerms(loss=value[0], elbo=-value, log_likelihood=-value * 0.75, kl=value * 0.25,
                          kl_per_dim=torch.empty(0), beta=0.5)


@pytest.fixture
def folder(tmp_path):
    run = RunFolder(tmp_path / "run", resume=False, is_main=True)
    run.open()
    run.open_writer()
    yield run
    run.close_writer()
    run.close()


def train_log(folder: RunFolder, log_every: int) -> TrainLog:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    log = TrainLog(folder, log_every, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0))
    log.start(0.0)
    return log


def records(folder: RunFolder) -> list[dict]:
    return [json.loads(line) for line in (folder.path / "metrics.jsonl").read_text().splitlines()]


def run_steps(log: TrainLog, steps: range, norms: dict[int, float], total: int) -> None:
    """Steps (numbered from 1) of loss = step, gradient norm 1 (or norms[step]) and 2 seconds of audio each."""
    for step in steps:
        log.add(terms(float(step)), torch.tensor(norms.get(step, 1.0 + 0.01 * (step % 3))),
                {"audio_seconds": torch.tensor(2.0)})
        if log.due(step, total):
            log.write(step, 0, terms(float(step)), train_seconds=step / 10)


def test_a_record_averages_its_steps_and_lists_a_gradient_norm_spike(folder):
    spike_step = SPIKE_WINDOW + 7  # the first step with SPIKE_WINDOW norms before it is SPIKE_WINDOW + 1
    run_steps(train_log(folder, 10), range(1, 121), {spike_step: SPIKE_RATIO * 1.5, 3: SPIKE_RATIO * 1.5}, 120)
    lines = records(folder)
    assert [r["step"] for r in lines] == list(range(10, 121, 10))
    first = lines[0]
    assert first["loss"] == pytest.approx(5.5) and first["rec"] == pytest.approx(0.75 * 5.5)
    assert first["kl"] == pytest.approx(0.25 * 5.5) and first["beta"] == 0.5
    assert first["audio_seconds"] == pytest.approx(20.0) and first["train_seconds"] == pytest.approx(1.0)
    # Step 3's norm is as large, but it has no SPIKE_WINDOW steps before it to be compared with.
    assert first["grad_norm_max"] == pytest.approx(SPIKE_RATIO * 1.5) and "grad_spikes" not in first
    spiked = [r for r in lines if "grad_spikes" in r]
    assert [r["step"] for r in spiked] == [110]
    assert spiked[0]["grad_spikes"] == [{"step": spike_step, "grad_norm": pytest.approx(SPIKE_RATIO * 1.5),
                                         "loss": pytest.approx(spike_step)}]
    assert spiked[0]["grad_spikes_total"] == 1


def test_a_window_cut_by_a_checkpoint_writes_the_same_record(folder):
    spike_step = SPIKE_WINDOW + 14
    norms = {spike_step: SPIKE_RATIO * 2}
    run_steps(train_log(folder, 10), range(1, 121), norms, 120)
    whole = records(folder)
    (folder.path / "metrics.jsonl").unlink()
    log = train_log(folder, 10)
    run_steps(log, range(1, 116), norms, 120)  # a checkpoint after step 115, inside a window
    tensors = {}
    skeleton = json.loads(json.dumps(flatten_state(log.state_dict(), tensors)))  # what a checkpoint keeps
    state = unflatten_state(skeleton, tensors)
    resumed = train_log(folder, 10)
    resumed.load_state_dict(state, torch.device("cpu"))
    run_steps(resumed, range(116, 121), norms, 120)
    timings = ("steps_per_s",)
    assert [{k: v for k, v in r.items() if k not in timings} for r in records(folder)] == \
           [{k: v for k, v in r.items() if k not in timings} for r in whole]
    assert whole[-1]["grad_spikes"][0]["step"] == spike_step
