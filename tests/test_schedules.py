"""KL weight schedules produce the values their documentation promises; invalid ones raise."""

from __future__ import annotations

import math

import pytest

from vaekit import KLSchedule


def test_constant_is_its_value_at_every_step():
    schedule = KLSchedule.constant(0.3)
    assert {schedule(step) for step in (0, 1, 10, 10**6)} == {0.3}
    assert KLSchedule()(123) == 1.0  # the default is the plain ELBO


def test_linear_warmup_endpoints_midpoint_and_plateau():
    schedule = KLSchedule.linear(warmup_steps=1000, start=0.2, end=0.8)
    assert schedule(0) == pytest.approx(0.2)
    assert schedule(500) == pytest.approx(0.5)
    assert schedule(250) == pytest.approx(0.35)
    assert schedule(1000) == pytest.approx(0.8)
    assert schedule(5000) == pytest.approx(0.8)
    values = [schedule(step) for step in range(0, 1001, 50)]
    assert values == sorted(values)
    assert KLSchedule.linear(warmup_steps=0)(0) == 1.0  # no warm-up: straight to the end value


def test_sigmoid_is_halfway_at_half_the_warmup_and_saturates():
    schedule = KLSchedule.sigmoid(warmup_steps=2000, start=0.0, end=2.0, steepness=10.0)
    assert schedule(1000) == pytest.approx(1.0)
    assert schedule(0) == pytest.approx(2.0 / (1 + math.exp(5.0)))  # the documented formula at step 0
    assert schedule(0) < 0.02 and schedule(2000) > 1.98
    assert schedule(10**6) == pytest.approx(2.0)
    values = [schedule(step) for step in range(0, 2001, 100)]
    assert values == sorted(values)
    steeper = KLSchedule.sigmoid(warmup_steps=2000, steepness=30.0)
    assert steeper(500) < KLSchedule.sigmoid(warmup_steps=2000)(500) / 2


@pytest.mark.parametrize("total_steps, n_cycles", [(1000, 4), (1000, 3), (10, 4), (999, 1)])
def test_cyclical_cycles_rise_over_ratio_then_hold(total_steps, n_cycles):
    ratio, start, end = 0.5, 0.1, 0.9
    schedule = KLSchedule.cyclical(total_steps, n_cycles=n_cycles, ratio=ratio, start=start, end=end)
    values = [schedule(step) for step in range(total_steps)]
    # Each drop back to the start value opens a new cycle: exactly n_cycles of them over the run.
    restarts = sum(1 for before, after in zip(values, values[1:], strict=False) if after < before)
    assert restarts + 1 == n_cycles
    cycle = total_steps / n_cycles
    for i in range(n_cycles):
        first = math.ceil(i * cycle)
        if first == i * cycle:  # the cycle starts on an integer step
            assert schedule(first) == pytest.approx(start)
        reach = i * cycle + ratio * cycle
        if reach == int(reach) and reach < total_steps:
            assert schedule(int(reach)) == pytest.approx(end)  # reaches end at `ratio` of the cycle...
        for step in range(math.ceil(reach), min(math.ceil((i + 1) * cycle), total_steps)):
            assert schedule(step) == pytest.approx(end)  # ...and holds it for the rest


def test_cyclical_midpoints_are_linear():
    schedule = KLSchedule.cyclical(total_steps=400, n_cycles=4, ratio=0.5)  # cycles of 100, rising over 50
    assert schedule(0) == 0.0 and schedule(100) == 0.0 and schedule(300) == 0.0
    assert schedule(25) == pytest.approx(0.5)
    assert schedule(125) == pytest.approx(0.5)
    assert schedule(50) == pytest.approx(1.0) and schedule(99) == pytest.approx(1.0)
    full_ratio = KLSchedule.cyclical(total_steps=400, n_cycles=2, ratio=1.0)
    assert full_ratio(100) == pytest.approx(0.5) and full_ratio(199) == pytest.approx(199 / 200)


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "exponential"}, "unknown KL schedule kind"),
    ({"kind": "cyclical", "total_steps": 0}, "total_steps"),
    ({"kind": "cyclical", "total_steps": 100, "n_cycles": 0}, "n_cycles"),
    ({"kind": "cyclical", "total_steps": 100, "ratio": 0.0}, "ratio"),
    ({"kind": "linear", "ratio": 1.5}, "ratio"),
])
def test_invalid_schedules_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KLSchedule(**kwargs)
