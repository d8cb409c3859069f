"""``amp``: adversarial motion prior on single frames (Peng et al. 2021; design section 5).

A discriminator D learns online to tell expert frames of the same task (the recorded expert videos)
from the frames the policy reaches, with the least-squares GAN loss (expert -> +1, policy -> -1) plus a
gradient penalty. The bonus ``max(0, 1 - 0.25 (D(o) - 1)^2)`` lies in [0, 1]: 1 where a frame looks
like the expert's, 0 where D is sure it does not. The env reward is kept in replay (beta = 1); the
bonus is added at update time with ``bonus_scale`` 1.

Choices (from the Diffusion Reward release unless said):
- frames scaled to [-1, 1] (``x / 127.5 - 1``);
- D: conv 3-32 k3 s2, 32-32 k3, 32-32 k3 (ReLU), MLP 256-256-1 with tanh hidden units, orthogonal
  init (ReLU gain for convs);
- every ``update_interval`` = 10 agent steps (``step % 10 == 0``): 32 policy frames (the first 32 of
  the batch's scored frames, themselves a uniform sample) against 32 expert frames drawn uniformly;
- gradient penalty 0.1 on random interpolates expert--policy.

Two switches, recorded in ``params`` (docs/models-and-rewards.md#rewards: default as the
release ran this baseline, so that results compare with its; the textbook variant one keyword away):

- ``penalty="per_pixel"`` (release): ``lambda * mean over B, H, W of (||grad at that pixel over
  channels||_2 - 1)^2`` (``grad.norm(2, dim=1)``); ``penalty="full"`` (textbook WGAN-GP / AMP): the
  norm over all of C*H*W of each interpolate.
- ``reward_on="obs"`` (release): the bonus scores o_t, the observation the action was taken from;
  ``reward_on="next_obs"`` (textbook): o_{t+n}. The discriminator is trained on the same key it
  scores, so the policy frames it sees are the frames it rewards.

Expert frames come from ``tasks.datasets.expert_frames(domain, task, split="train", root=data_root)``,
loaded once when the provider is built so that a missing dataset fails before training starts (its
``DatasetMissingError`` names the ``python -m tasks.collect`` command that makes it).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from rewards.base import RewardProvider, seeded_init, validate_episode, validate_frames, validate_obs_batch
from tasks.collect import collect
from tasks.datasets import expert_frames as load_expert_frames  # written by the tasks package


def _scale(obs_uint8: torch.Tensor) -> torch.Tensor:
    return obs_uint8.float() / 127.5 - 1.0


class Discriminator(nn.Module):
    """Single-frame discriminator: 3 convs (ReLU) then MLP ``hidden``-``hidden``-1 (tanh)."""

    def __init__(self, image_size: int = 64, hidden: int = 256) -> None:
        super().__init__()
        self.convnet = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = int(self.convnet(torch.zeros(1, 3, image_size, image_size)).shape[1])
        self.trunk = nn.Sequential(
            nn.Linear(flat, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.orthogonal_(m.weight, nn.init.calculate_gain("relu"))
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """D of frames already scaled to [-1, 1], ``[B]``."""
        return self.trunk(self.convnet(x)).squeeze(-1)


def lsgan_loss(d_expert: torch.Tensor, d_policy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares GAN targets: expert -> +1, policy -> -1 (each a mean over its batch)."""
    return (d_expert - 1).pow(2).mean(), (d_policy + 1).pow(2).mean()


def _per_pixel_norm(grad: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]``: the gradient's 2-norm over channels at each pixel (the release's penalty)."""
    return grad.norm(2, dim=1)


def _full_norm(grad: torch.Tensor) -> torch.Tensor:
    """``[B]``: the gradient's 2-norm over all of C*H*W of each input (textbook WGAN-GP)."""
    return grad.flatten(1).norm(2, dim=1)


#: penalty variant -> the gradient norms whose squared distance to 1 is averaged
PENALTY_NORMS = {"per_pixel": _per_pixel_norm, "full": _full_norm}
#: batch keys the bonus may score: o_t (the release) or o_{t+n} (textbook)
REWARD_KEYS = ("obs", "next_obs")


def gradient_penalty(
    disc: nn.Module,
    expert: torch.Tensor,
    policy: torch.Tensor,
    weight: float,
    generator: torch.Generator,
    penalty: str = "per_pixel",
) -> torch.Tensor:
    """``weight * mean((||dD/dx(x_hat)|| - 1)^2)``, x_hat uniform on the segments expert--policy.

    ``penalty`` picks the norm (``PENALTY_NORMS``): ``"per_pixel"`` over channels at each pixel, the
    mean then over B, H, W; ``"full"`` over all of C*H*W, the mean over B.
    """
    if penalty not in PENALTY_NORMS:
        raise ValueError(f"penalty: expected one of {', '.join(PENALTY_NORMS)}, got {penalty!r}")
    n = min(len(expert), len(policy))
    expert, policy = expert[:n], policy[:n]
    mix = torch.rand(n, 1, 1, 1, generator=generator).to(expert.device)
    x_hat = (mix * expert + (1 - mix) * policy).detach().requires_grad_(True)
    d = disc(x_hat)
    (grad,) = torch.autograd.grad(d.sum(), x_hat, create_graph=True)
    return weight * (PENALTY_NORMS[penalty](grad) - 1).pow(2).mean()


def amp_reward(d: torch.Tensor) -> torch.Tensor:
    """``max(0, 1 - 0.25 (d - 1)^2)``: 1 at d = 1 (expert-like), 0 at d <= -1 (policy-like)."""
    return torch.clamp(1 - 0.25 * (d - 1).pow(2), min=0)


class AMPReward(RewardProvider):
    """Env reward in replay; discriminator bonus on ``batch[reward_on]`` at update time; D trained online.

    ``expert_frames`` (uint8 ``[N, 3, H, W]``) may be given directly instead of being read from the
    dataset, e.g. for experts recorded elsewhere; ``params`` then records ``expert_source="given"``.
    """

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
        update_interval: int = 10,
        batch_size: int = 32,
        grad_penalty: float = 0.1,
        hidden_dim: int = 256,
        image_size: int = 64,
        penalty: str = "per_pixel",
        reward_on: str = "obs",
        expert_frames: np.ndarray | None = None,
    ) -> None:
        super().__init__(task=task, domain=domain, device=device, data_root=data_root, seed=seed)
        for key, value, low in (
            ("update_interval", update_interval, 1),
            ("batch_size", batch_size, 1),
            ("hidden_dim", hidden_dim, 1),
            ("image_size", image_size, 8),
        ):
            if not (isinstance(value, (int, np.integer)) and value >= low):
                raise ValueError(f"{key}: expected an int >= {low}, got {value!r}")
        if not lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
        if not grad_penalty >= 0:
            raise ValueError(f"grad_penalty: expected a weight >= 0, got {grad_penalty!r}")
        if penalty not in PENALTY_NORMS:
            raise ValueError(f"penalty: expected one of {', '.join(PENALTY_NORMS)}, got {penalty!r}")
        if reward_on not in REWARD_KEYS:
            raise ValueError(f"reward_on: expected one of {', '.join(REWARD_KEYS)}, got {reward_on!r}")
        self.penalty = penalty
        self.reward_on = reward_on
        self.bonus_scale = float(bonus_scale)
        self.update_interval = int(update_interval)
        self.batch_size = int(batch_size)
        self.grad_penalty = float(grad_penalty)
        self.image_size = int(image_size)

        source = "dataset" if expert_frames is None else "given"
        if expert_frames is None:
            expert_frames = load_expert_frames(self.domain, self.task, split="train", root=data_root)
        expert_frames = validate_frames(expert_frames, self.image_size, name="expert_frames")
        self.expert = torch.as_tensor(np.ascontiguousarray(expert_frames)).to(self.device)

        self.params = {
            "bonus_scale": self.bonus_scale,
            "lr": float(lr),
            "update_interval": self.update_interval,
            "batch_size": self.batch_size,
            "grad_penalty": self.grad_penalty,
            "hidden_dim": int(hidden_dim),
            "image_size": self.image_size,
            "penalty": self.penalty,
            "reward_on": self.reward_on,
            "expert_source": source,
            "num_expert_frames": int(len(self.expert)),
        }
        with seeded_init(self.seed):
            self.disc = Discriminator(self.image_size, int(hidden_dim))
        self.disc.to(self.device)
        self.optimizer = torch.optim.Adam(self.disc.parameters(), lr=lr)
        # draws expert indices and interpolation weights; on the CPU so its state is portable
        self.generator = torch.Generator().manual_seed(self.seed)
        self.num_updates = 0

    @classmethod
    def prepare(cls, request, log=print) -> None:
        """Record the expert videos of the request's tasks where they are missing (``tasks.collect``)."""
        collect(request.domain, list(request.tasks), episodes=request.expert_episodes, root=request.data_root)

    def label_episode(self, frames: np.ndarray, env_rewards: np.ndarray) -> np.ndarray:
        return validate_episode(frames, env_rewards)[1]

    @torch.no_grad()
    def discriminate(self, obs_uint8: torch.Tensor) -> torch.Tensor:
        """Raw D(o) of uint8 frames ``[B, 3, H, W]``, ``[B]`` (analysis and tests)."""
        return self.disc(_scale(obs_uint8.to(self.device, non_blocking=True)))

    def scored_frames(self, batch: Any) -> torch.Tensor:
        """``batch[reward_on]`` checked: uint8 ``[B, 3, H, W]`` (a replay sample is a dict)."""
        key = self.reward_on
        if not isinstance(batch, Mapping):
            raise ValueError(f"batch: expected a dict with key {key!r} (a replay sample), got {type(batch).__name__}")
        if key not in batch:
            raise ValueError(f"batch: expected key {key!r} (amp reward_on={key!r}), got keys {sorted(batch)}")
        return validate_obs_batch(batch[key], self.image_size, name=f"batch[{key!r}]")

    @torch.no_grad()
    def bonus(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """``max(0, 1 - 0.25 (D(o) - 1)^2)`` per sample on ``batch[reward_on]``, float32 ``[B]`` in [0, 1]."""
        return amp_reward(self.discriminate(self.scored_frames(batch)))

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One discriminator step on 32 policy vs 32 expert frames, when ``step % update_interval == 0``."""
        obs = self.scored_frames(batch)
        if int(step) % self.update_interval != 0:
            return {}
        policy = _scale(obs[: self.batch_size].to(self.device, non_blocking=True))
        idx = torch.randint(len(self.expert), (self.batch_size,), generator=self.generator)
        expert = _scale(self.expert[idx.to(self.expert.device)])

        d_expert, d_policy = self.disc(expert), self.disc(policy)
        expert_loss, policy_loss = lsgan_loss(d_expert, d_policy)
        penalty = gradient_penalty(self.disc, expert, policy, self.grad_penalty, self.generator, self.penalty)
        loss = expert_loss + policy_loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.num_updates += 1
        return {
            "amp_expert_loss": float(expert_loss.detach()),
            "amp_policy_loss": float(policy_loss.detach()),
            "amp_grad_penalty": float(penalty.detach()),
            "amp_d_expert": float(d_expert.detach().mean()),
            "amp_d_policy": float(d_policy.detach().mean()),
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "disc": self.disc.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._check_state(state)
        self.disc.load_state_dict(state["disc"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(torch.as_tensor(state["generator"]).cpu())
        self.num_updates = int(state["num_updates"])
