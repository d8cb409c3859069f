"""``rnd``: env reward + alpha * Random Network Distillation bonus (Burda et al. 2019; design section 5).

A frozen, randomly initialised target network embeds the next observation; a predictor learns to
match it. Frames seen often are predicted well, so the error 0.5 * ||f_target - f_pred||^2 is a
novelty bonus that fades with visits. The env reward is kept unchanged in replay (beta = 1); the bonus
is added at update time on ``batch["next_obs"]`` with ``bonus_scale`` = alpha = 1.

Choices, as in the Diffusion Reward release:
- inputs scaled ``x / 255 - 0.5`` (no running observation normalisation, no reward normalisation);
- orthogonal init with gain sqrt(2) and zero biases for both networks;
- the predictor is trained when ``step % update_interval == 0`` (step = agent step, the release's gate
  ``global_step % expl_update_interval``): interval 1 on MetaWorld (every call), 100 on Adroit.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rewards.base import RewardProvider, batch_next_obs, seeded_init, validate_episode

#: predictor updates every this many agent steps (the release's scripts)
UPDATE_INTERVAL = {"metaworld": 1, "adroit": 100}
FEATURE_DIM = 512


def _conv_trunk() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 32, kernel_size=6, stride=3),
        nn.LeakyReLU(),
        nn.Conv2d(32, 64, kernel_size=4, stride=2),
        nn.LeakyReLU(),
        nn.Conv2d(64, 64, kernel_size=3, stride=1),
        nn.LeakyReLU(),
        nn.Flatten(),
    )


class RNDNetworks(nn.Module):
    """Target (convs + Linear -> 512, frozen) and predictor (same convs + MLP 512-512-512).

    The flatten size comes from a dummy forward at ``image_size`` (3136 at 64x64, 6400 at 84x84).
    """

    def __init__(self, image_size: int = 64) -> None:
        super().__init__()
        with torch.no_grad():
            flat = _conv_trunk()(torch.zeros(1, 3, image_size, image_size)).shape[1]
        self.flat_dim = int(flat)
        self.target = nn.Sequential(_conv_trunk(), nn.Linear(flat, FEATURE_DIM))
        self.predictor = nn.Sequential(
            _conv_trunk(),
            nn.Linear(flat, FEATURE_DIM),
            nn.ReLU(),
            nn.Linear(FEATURE_DIM, FEATURE_DIM),
            nn.ReLU(),
            nn.Linear(FEATURE_DIM, FEATURE_DIM),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.orthogonal_(m.weight, math.sqrt(2))
                nn.init.zeros_(m.bias)
        self.target.requires_grad_(False)

    def forward(self, obs_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted, target) features of uint8 frames ``[B, 3, H, W]``."""
        x = obs_uint8.float() / 255.0 - 0.5
        return self.predictor(x), self.target(x)


class RNDReward(RewardProvider):
    """Env reward in replay; RND bonus on ``next_obs`` at update time; predictor trained online."""

    def __init__(
        self,
        *,
        task: str,
        domain: str,
        device: Any = "cpu",
        data_root: Any = None,
        seed: int = 0,
        bonus_scale: float = 1.0,
        lr: float = 1e-4,
        update_interval: int | None = None,
        image_size: int = 64,
    ) -> None:
        super().__init__(task=task, domain=domain, device=device, data_root=data_root, seed=seed)
        if update_interval is None:
            update_interval = UPDATE_INTERVAL[self.domain]
        if not (isinstance(update_interval, (int, np.integer)) and update_interval >= 1):
            raise ValueError(f"update_interval: expected an int >= 1 (agent steps), got {update_interval!r}")
        if not lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
        if not (isinstance(image_size, (int, np.integer)) and image_size >= 27):
            raise ValueError(
                f"image_size: expected an int >= 27 (the smallest input the conv stack takes), got {image_size!r}"
            )
        self.bonus_scale = float(bonus_scale)
        self.update_interval = int(update_interval)
        self.image_size = int(image_size)
        self.params = {
            "bonus_scale": self.bonus_scale,
            "lr": float(lr),
            "update_interval": self.update_interval,
            "image_size": self.image_size,
        }
        with seeded_init(self.seed):
            self.nets = RNDNetworks(self.image_size)
        self.nets.to(self.device)
        self.optimizer = torch.optim.Adam(self.nets.predictor.parameters(), lr=lr)
        self.num_updates = 0
        self._forward = None  # (next_obs, predicted, target) of the last bonus call, for the update after it

    @property
    def target(self) -> nn.Module:
        return self.nets.target

    @property
    def predictor(self) -> nn.Module:
        return self.nets.predictor

    def label_episode(self, frames: np.ndarray, env_rewards: np.ndarray) -> np.ndarray:
        return validate_episode(frames, env_rewards)[1]

    def bonus(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """0.5 * ||f_target(o') - f_pred(o')||^2 per sample, float32 ``[B]``.

        The trainer calls ``update`` on the same batch right after. With ``update_interval`` 1 (MetaWorld:
        every call trains) the forward runs with autograd on and is kept for that ``update``: one forward
        of both networks per agent update instead of two, and the same numbers (the bonus is the detached
        per-sample loss of the forward the update differentiates). Otherwise (Adroit, interval 100) the
        bonus runs without autograd and ``update`` runs its own forward on the steps it trains."""
        obs = batch_next_obs(batch, self.image_size)
        self._forward = None
        with torch.set_grad_enabled(self.update_interval == 1 and torch.is_grad_enabled()):
            pred, target = self.nets(obs.to(self.device, non_blocking=True))
        if pred.requires_grad:
            self._forward = (batch["next_obs"], pred, target)
        return 0.5 * (target - pred.detach()).pow(2).sum(dim=1)

    def _forward_of(self, batch: Mapping[str, Any], obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted, target) features of ``obs``: the ones ``bonus`` kept when it saw this very batch."""
        kept, self._forward = self._forward, None
        if kept is not None and kept[0] is batch["next_obs"]:
            return kept[1], kept[2]
        return self.nets(obs.to(self.device, non_blocking=True))

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One Adam step of the predictor on the MSE to the target, when ``step % update_interval == 0``."""
        obs = batch_next_obs(batch, self.image_size)
        if int(step) % self.update_interval != 0:
            self._forward = None
            return {}
        pred, target = self._forward_of(batch, obs)
        loss = F.mse_loss(pred, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.num_updates += 1
        return {"rnd_loss": float(loss.detach())}

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "nets": self.nets.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._check_state(state)
        self._forward = None  # a kept forward is of the weights being replaced
        self.nets.load_state_dict(state["nets"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.num_updates = int(state["num_updates"])
