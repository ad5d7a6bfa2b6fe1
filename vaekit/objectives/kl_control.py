"""A KL set-point: β steered by a PI controller so that KL(q||p) stays near a target (ControlVAE, Shao et al. 2020).

    objective: {kind: elbo, beta: 1.0, kl_target: 15.0}   # nats per example; β moves within [kl_control.beta_min, beta]

Each step the batch's KL (nats per example, before free bits) is measured first, then

    e_t = kl_target - KL_t
    β_t = kp / (1 + exp(e_t)) + I_t + beta_min,    I_t = I_{t-1} - ki * e_t

clipped to [beta_min, beta]. The integral only moves while β is inside its bounds (anti-windup), so a long
stretch at a bound does not have to be unwound later. KL below target -> β falls and the encoder is free to
put information in z (the cure for posterior collapse); KL above target -> β rises. The controller's state
(I_t, β_t) is saved with every checkpoint, so `--resume` continues the same trajectory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .elbo import ELBO, kl_divergence


@dataclass
class KLControlConfig:
    """Gains and floor of the PI controller on β (ControlVAE's defaults; β's ceiling is objective.beta)."""

    kp: float = 0.01  # proportional gain: the most the P term adds to β
    ki: float = 0.0001  # integral gain: β moves by ki per nat of error per step
    beta_min: float = 0.0


class KLController:
    """PI controller mapping the measured KL (nats) to β; its state is two floats."""

    def __init__(self, target: float, kp: float = 0.01, ki: float = 0.0001, beta_min: float = 0.0,
                 beta_max: float = 1.0):
        if target < 0:
            raise ValueError(f"objective.kl_target: expected nats >= 0, got {target}")
        if not 0 <= beta_min <= beta_max:
            raise ValueError(f"objective.kl_control.beta_min: expected 0 <= beta_min <= beta ({beta_max}), "
                             f"got {beta_min}")
        self.target, self.kp, self.ki, self.beta_min, self.beta_max = target, kp, ki, beta_min, beta_max
        self.integral, self.beta = 0.0, beta_max  # β before the first measurement (never used for a loss)

    def update(self, kl: float) -> float:
        """Take one KL measurement (nats per example) and return the β for this step."""
        error = self.target - kl
        proportional = self.kp / (1.0 + math.exp(min(error, 50.0)))  # exp overflows past ~700; 50 is already 0
        integral = self.integral - self.ki * error
        beta = proportional + integral + self.beta_min
        if self.beta_min <= beta <= self.beta_max:
            self.integral = integral  # anti-windup: integrate only while β is not clipped
        self.beta = min(self.beta_max, max(self.beta_min, beta))
        return self.beta

    def __call__(self, step: int) -> float:
        """The current β (the KLSchedule interface; the step does not matter, the measurements do)."""
        return self.beta

    def state_dict(self) -> dict:
        return {"integral": self.integral, "beta": self.beta}

    def load_state_dict(self, state: dict) -> None:
        self.integral, self.beta = float(state["integral"]), float(state["beta"])


class ControlledELBO(ELBO):
    """The β-ELBO whose β comes from a KLController fed with each batch's KL (averaged over DDP processes)."""

    def __init__(self, controller: KLController, free_bits: float = 0.0):
        super().__init__(controller, free_bits)
        self.controller = controller

    def beta_for(self, step, posterior, prior, z, log_qz) -> float:
        """β from the controller, fed the KL the ELBO uses (closed form, or Monte Carlo for a flow posterior or a
        mixture/Vamp prior; the prior shaped like the posterior, so sequence latents work too)."""
        kl = kl_divergence(posterior, prior, z, log_qz).detach().float().mean()
        if dist.is_available() and dist.is_initialized():  # every process must apply the same β
            dist.all_reduce(kl)
            kl = kl / dist.get_world_size()
        return self.controller.update(float(kl)) if torch.is_grad_enabled() else self.controller.beta

    def state_dict(self) -> dict:
        return self.controller.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.controller.load_state_dict(state)
