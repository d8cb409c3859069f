"""``sparse``: the environment's own success reward, nothing learned (the baseline of every figure)."""

from __future__ import annotations

import numpy as np

from rewards.base import RewardProvider, validate_episode


class SparseReward(RewardProvider):
    """Env reward only: ``label_episode`` returns the env rewards as float32, no bonus, no learning."""

    def __init__(self, *, task: str, domain: str, device="cpu", data_root=None, seed: int = 0) -> None:
        super().__init__(task=task, domain=domain, device=device, data_root=data_root, seed=seed)

    def label_episode(self, frames: np.ndarray, env_rewards: np.ndarray) -> np.ndarray:
        return validate_episode(frames, env_rewards)[1]
