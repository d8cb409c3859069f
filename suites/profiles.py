"""Profiles: how big a suite runs (design.md section 7).

- ``paper``: the paper's budgets (task spec frames: MetaWorld 1M, assembly 3M, Adroit 3M), 5 seeds,
  paper-size video models, DrQ-v2 exactly as the spec. Needs GPUs and a cluster.
- ``quick``: minutes to an hour on a laptop CPU: small video models, 30-50k frames, 2 seeds, the suite's
  few quick tasks.
- ``smoke``: seconds to a few minutes, for tests: 2k frames, tiny batch and networks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping


@dataclass(frozen=True)
class Profile:
    name: str
    seeds: int
    model_preset: str  # video-model size preset: "paper" | "small"
    eval_every_frames: int
    eval_episodes: int
    checkpoint_every_frames: int
    agent: Mapping[str, Any] = field(default_factory=dict)  # DrQV2Config overrides
    few_tasks: bool = False  # use the suite's quick task subset
    max_tasks: int | None = None  # at most this many of them
    pretrain_steps: int | None = None  # video-model and codec training steps (None: the preset's default)
    expert_episodes: int | None = None  # expert videos per task (None: 20 MetaWorld, 50 Adroit)
    model_reports: bool = True  # write the model-quality report after pretraining


PROFILES: Mapping[str, Profile] = MappingProxyType({
    "paper": Profile("paper", seeds=5, model_preset="paper", eval_every_frames=20_000, eval_episodes=10,
                     checkpoint_every_frames=100_000),
    # quick: DrQ-v2 at batch 64 instead of 256 (one update costs ~0.5 s at 256 on a 2-core CPU)
    "quick": Profile("quick", seeds=2, model_preset="small", eval_every_frames=5_000, eval_episodes=5,
                     checkpoint_every_frames=10_000, few_tasks=True, pretrain_steps=1_000,
                     agent=MappingProxyType(dict(batch_size=64))),
    "smoke": Profile("smoke", seeds=1, model_preset="small", eval_every_frames=1_000, eval_episodes=2,
                     checkpoint_every_frames=1_000, few_tasks=True, pretrain_steps=30, expert_episodes=2, model_reports=False,
                     max_tasks=1,
                     agent=MappingProxyType(dict(batch_size=16, hidden_dim=64, num_seed_frames=400,
                                                 num_expl_steps=200))),
})


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}") from None
