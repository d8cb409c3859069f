"""Every hyperparameter of the DrQ-v2 agent (docs/protocol.md#agent-drq-v2), in one dataclass.

The training loop's own settings (replay size, seed frames, update interval) live here too, so the
runner reads them from one place instead of repeating the numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from common.runtime import RESOLVED_PRECISIONS


@dataclass(frozen=True)
class DrQV2Config:
    # networks
    num_filters: int = 32  # conv channels of the encoder (4 convs 3x3, first stride 2)
    feature_dim: int = 50  # trunk output: Linear(repr, 50) + LayerNorm + tanh
    hidden_dim: int = 1024  # actor and Q-head MLP width
    # optimisation
    lr: float = 1e-4  # Adam, for encoder, actor and critic alike
    batch_size: int = 256
    critic_target_tau: float = 0.01  # Polyak rate of the target critic
    nstep: int = 3
    discount: float = 0.99
    # exploration
    num_expl_steps: int = 2000  # agent steps with uniform random actions (not in eval mode)
    std_init: float = 1.0  # std schedule linear(std_init, std_final, std_duration)
    std_final: float = 0.1
    std_duration: float = 3e6  # counted in agent steps
    stddev_clip: float = 0.3  # clip of the policy noise in the update
    aug_pad: int = 4  # random-shift augmentation, pixels
    # loop settings, read by the runner
    replay_capacity: int = 1_000_000  # transitions
    num_seed_frames: int = 4000  # env frames before the first update
    update_every_steps: int = 2  # agent steps between updates
    # reproducibility: parameter init and the agent's own sampling generator
    seed: int = 0
    # arithmetic of the network passes (docs/precision.md): "fp32", or "bf16" autocast for the encoder,
    # actor and critic passes (losses, TD targets, optimiser state, Polyak update stay fp32). Always the
    # resolved value, so each run's config records what it ran with: resolve "auto" with
    # common.runtime.resolve_precision(name, device) before building the config.
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in RESOLVED_PRECISIONS:
            hint = (
                " (resolve it first: common.runtime.resolve_precision(name, device))"
                if self.precision == "auto"
                else ""
            )
            raise ValueError(
                f"DrQV2Config.precision must be one of {', '.join(RESOLVED_PRECISIONS)}, got {self.precision!r}{hint}"
            )
        positive_int = (
            "num_filters",
            "feature_dim",
            "hidden_dim",
            "batch_size",
            "nstep",
            "replay_capacity",
            "update_every_steps",
        )
        for name in positive_int:
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"DrQV2Config.{name} must be a positive integer, got {v!r}")
        for name in ("num_expl_steps", "num_seed_frames", "aug_pad"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
                raise ValueError(f"DrQV2Config.{name} must be a non-negative integer, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"DrQV2Config.lr must be > 0, got {self.lr!r}")
        if not 0 < self.critic_target_tau <= 1:
            raise ValueError(f"DrQV2Config.critic_target_tau must be in (0, 1], got {self.critic_target_tau!r}")
        if not 0 <= self.discount <= 1:
            raise ValueError(f"DrQV2Config.discount must be in [0, 1], got {self.discount!r}")
        if not (self.std_init > 0 and self.std_final > 0 and self.std_duration > 0):
            raise ValueError(
                "DrQV2Config std schedule needs std_init > 0, std_final > 0, std_duration > 0; "
                f"got ({self.std_init}, {self.std_final}, {self.std_duration})"
            )
        if not self.stddev_clip > 0:
            raise ValueError(f"DrQV2Config.stddev_clip must be > 0, got {self.stddev_clip!r}")

    def stddev(self, step: int) -> float:
        """Policy std at an agent step: linear from std_init to std_final over std_duration, then flat."""
        mix = float(np.clip(step / self.std_duration, 0.0, 1.0))
        return (1.0 - mix) * self.std_init + mix * self.std_final

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DrQV2Config":
        """Build from a (possibly partial) mapping; unknown keys are an error that lists the valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown DrQV2Config keys {unknown}; valid keys: {valid}")
        return cls(**dict(d))
