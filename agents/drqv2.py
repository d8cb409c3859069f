"""The DrQ-v2 agent (Yarats et al. 2021), one agent for every reward method of the suite.

Same math as the reference implementation; the update is arranged to do less work on CPU:
- random shift is an index gather on the uint8 frames (see ``augment.py``), not a float ``grid_sample``;
- the encoder runs in channels_last (oneDNN / cuDNN's preferred layout);
- ``next_obs`` is encoded under ``no_grad`` and the actor update reuses the critic-update features,
  detached, as DrQ-v2 does (no extra encoder pass);
- the actor loss backpropagates through the critic with the critic's parameters frozen, so no critic
  weight gradients are computed there (the reference computes them and throws them away);
- fused Adam, ``zero_grad(set_to_none=True)``, a foreach Polyak update, and one host sync for metrics.

``cfg.precision == "bf16"`` runs the encoder, actor and critic passes (forward, and so backward) under
``torch.autocast(bfloat16)`` (docs/precision.md); parameters, gradients, Adam state, the Polyak update,
the TD target and the losses stay float32 (the Q heads' and the policy's last layers compute in float32,
see ``networks.Float32Linear``). Autocast caches the bf16 copies of the weights inside one region, so
the critic and the actor phases each get their own region: the actor phase must see the critic's weights
after its optimiser step.

All randomness (policy noise, exploration actions, augmentation shifts) comes from the agent's own
generator, which ``state_dict()`` saves, so a resumed run continues bit-for-bit on CPU.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import nullcontext
from typing import Any, ContextManager, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from common.runtime import autocast, torch_threads

from . import distributions as D
from .augment import random_shift
from .config import DrQV2Config
from .networks import Actor, Critic, Encoder, init_module

BATCH_KEYS = ("obs", "action", "reward", "discount", "next_obs")


class DrQV2Agent:
    """``act(obs, step, eval_mode)`` for the env loop, ``update(batch, step)`` for one gradient step.

    ``update`` always updates: when to call it (every ``cfg.update_every_steps`` agent steps after
    ``cfg.num_seed_frames`` frames) is the training loop's decision.
    """

    def __init__(
        self,
        obs_shape: Sequence[int],
        action_dim: int,
        cfg: DrQV2Config | None = None,
        device: torch.device | str = "cpu",
    ):
        cfg = DrQV2Config() if cfg is None else cfg
        if not isinstance(cfg, DrQV2Config):
            raise ValueError(f"cfg must be a DrQV2Config, got {type(cfg).__name__}")
        obs_shape = tuple(int(s) for s in obs_shape)
        if len(obs_shape) != 3 or min(obs_shape) < 1:
            raise ValueError(f"obs_shape must be (C, H, W) with positive sizes, got {obs_shape}")
        if int(action_dim) < 1:
            raise ValueError(f"action_dim must be >= 1, got {action_dim}")
        self.cfg = cfg
        self.obs_shape = obs_shape
        self.action_dim = int(action_dim)
        self.device = torch.device(device)

        # Init on CPU from the config seed, so the same seed gives the same network on any device.
        init_gen = torch.Generator().manual_seed(cfg.seed)
        self.encoder = Encoder(obs_shape, cfg.num_filters)
        repr_dim = self.encoder.repr_dim
        self.actor = Actor(repr_dim, self.action_dim, cfg.feature_dim, cfg.hidden_dim)
        self.critic = Critic(repr_dim, self.action_dim, cfg.feature_dim, cfg.hidden_dim)
        for module in (self.encoder, self.actor, self.critic):
            init_module(module, init_gen)
        self.encoder.to(self.device, memory_format=torch.channels_last)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)

        fused = self.device.type in ("cpu", "cuda")
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), lr=cfg.lr, fused=fused)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr, fused=fused)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr, fused=fused)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())

    def _autocast(self):
        """The network passes' arithmetic: bf16 autocast, or a no-op for fp32."""
        return autocast(self.cfg.precision, self.device)

    # ------------------------------------------------------------------ acting
    def act(self, obs: np.ndarray, step: int, eval_mode: bool) -> np.ndarray:
        """Action in [-1, 1]^A for one uint8 frame ``[C, H, W]``.

        Eval mode: the policy mean (deterministic). Otherwise uniform random for the first
        ``num_expl_steps`` agent steps, then mean + scheduled-std noise (unclipped noise, as DrQ-v2).
        """
        if not isinstance(obs, np.ndarray) or obs.dtype != np.uint8 or obs.shape != self.obs_shape:
            got = f"{type(obs).__name__} {getattr(obs, 'dtype', '')} {tuple(getattr(obs, 'shape', ()))}"
            raise ValueError(f"act expects a numpy uint8 array of shape {self.obs_shape}, got {got}")
        with torch.inference_mode(), self._one_thread():
            if not eval_mode and step < self.cfg.num_expl_steps:
                action = torch.rand(self.action_dim, device=self.device, generator=self.generator)
                action = action.mul_(2.0).sub_(1.0)
            else:
                x = torch.from_numpy(obs).to(self.device).unsqueeze(0)
                # bf16: the encoder only. At batch 1 the actor is a matrix-vector product bound by reading
                # its 2.2M weights, and autocast would re-cast them to bf16 on every call (its weight
                # cache lasts one region): measured slower than the float32 actor.
                with self._autocast():
                    features = self.encoder(x)
                mu = self.actor(features.float())
                action = mu if eval_mode else D.sample(mu, self.cfg.stddev(step), None, self.generator)
                action = action[0]
            return action.to("cpu", torch.float32).numpy()

    def _one_thread(self) -> ContextManager:
        """Run one-frame acting on one CPU thread.

        A batch-1 pass is too small to split: with torch's default 2 threads every op pays a thread
        hand-off, and on a loaded machine each hand-off waits for a time slice. Measured here (load 4-5
        from other jobs): act 2.3 ms fp32 / 1.2 ms bf16 on one thread vs 3.3 / 53 ms on two. The thread
        count is restored on exit, so the update keeps all threads.
        """
        if self.device.type != "cpu" or torch.get_num_threads() == 1:
            return nullcontext()
        return torch_threads(1)

    # ----------------------------------------------------------------- learning
    def update(self, batch: Mapping[str, torch.Tensor], step: int) -> dict[str, float]:
        """One critic + actor + target update on a replay batch; returns float metrics.

        ``batch``: ``obs``/``next_obs`` ``[B, C, H, W]`` (uint8), ``action [B, A]``, ``reward`` and
        ``discount`` ``[B]`` (or ``[B, 1]``), as ``ReplayBuffer.sample`` returns them.
        """
        obs, action, reward, discount, next_obs = self._check_batch(batch)
        cfg, gen = self.cfg, self.generator
        std = cfg.stddev(step)

        obs = random_shift(obs, cfg.aug_pad, generator=gen)
        next_obs = random_shift(next_obs, cfg.aug_pad, generator=gen)
        with self._autocast():
            features = self.encoder(obs)
            with torch.no_grad():
                next_features = self.encoder(next_obs)
                next_action = D.sample(self.actor(next_features), std, cfg.stddev_clip, gen)
                target_q1, target_q2 = self.critic_target(next_features, next_action)
            q1, q2 = self.critic(features, action)
        # float32 from here on (the Q heads' last layers are float32; .float() makes it explicit):
        # critic target r + discount * min Q_target(s', a' ~ pi(s')), and the loss
        with torch.no_grad():
            target_q = reward + discount * torch.min(target_q1.float(), target_q2.float())
        q1, q2 = q1.float(), q2.float()
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        self.encoder_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.encoder_opt.step()

        # actor: maximise min Q on detached features; the critic is a frozen function here
        features = features.detach()
        with self._autocast():  # a new region: the critic's weights have just changed
            mu = self.actor(features)
            pi_action = D.sample(mu, std, cfg.stddev_clip, gen)
            self.critic.requires_grad_(False)
            try:
                pi_q1, pi_q2 = self.critic(features, pi_action)
            finally:
                self.critic.requires_grad_(True)
        actor_loss = -torch.min(pi_q1.float(), pi_q2.float()).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._critic_params, cfg.critic_target_tau)
            log_prob = D.normal_log_prob(pi_action, mu, std).sum(-1).mean()
            values = torch.stack(
                [
                    reward.mean(),
                    target_q.mean(),
                    q1.mean(),
                    q2.mean(),
                    critic_loss,
                    actor_loss,
                    log_prob,
                ]
            ).tolist()  # the one host sync of the update
        names = (
            "batch_reward",
            "critic_target_q",
            "critic_q1",
            "critic_q2",
            "critic_loss",
            "actor_loss",
            "actor_logprob",
        )
        metrics = dict(zip(names, values))
        metrics["actor_ent"] = D.normal_entropy(std) * self.action_dim
        metrics["actor_std"] = std
        return metrics

    def _check_batch(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise ValueError(f"batch is missing {missing}; expected keys {list(BATCH_KEYS)}")
        obs = torch.as_tensor(batch["obs"])
        b = obs.shape[0]
        expect = {"obs": (b, *self.obs_shape), "next_obs": (b, *self.obs_shape), "action": (b, self.action_dim)}
        for key, shape in expect.items():
            got = tuple(torch.as_tensor(batch[key]).shape)
            if got != shape:
                raise ValueError(f"batch[{key!r}] must have shape {shape}, got {got}")
        out = [obs.to(self.device, non_blocking=True)]
        out.append(torch.as_tensor(batch["action"]).to(self.device, torch.float32, non_blocking=True))
        for key in ("reward", "discount"):
            t = torch.as_tensor(batch[key])
            if tuple(t.shape) not in ((b,), (b, 1)):
                raise ValueError(f"batch[{key!r}] must have shape ({b},) or ({b}, 1), got {tuple(t.shape)}")
            out.append(t.to(self.device, torch.float32, non_blocking=True).reshape(b, 1))
        out.append(torch.as_tensor(batch["next_obs"]).to(self.device, non_blocking=True))
        return tuple(out)

    # --------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        """Networks, target, the three optimisers and the sampling generator (for bit-exact resume)."""
        return {
            "obs_shape": self.obs_shape,
            "action_dim": self.action_dim,
            "config": self.cfg.to_dict(),
            "encoder": self.encoder.state_dict(),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "encoder_opt": self.encoder_opt.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if tuple(state["obs_shape"]) != self.obs_shape or int(state["action_dim"]) != self.action_dim:
            raise ValueError(
                f"checkpoint is for obs {tuple(state['obs_shape'])}, action_dim {state['action_dim']}; "
                f"this agent has obs {self.obs_shape}, action_dim {self.action_dim}"
            )
        saved = state.get("config", {}).get("precision", "fp32")  # checkpoints before the field were fp32
        if saved != self.cfg.precision:
            warnings.warn(
                f"checkpoint was trained with precision {saved}, this agent runs {self.cfg.precision}: "
                "it continues, but not as the saved run would have",
                stacklevel=1,
            )
        for name in ("encoder", "actor", "critic", "critic_target", "encoder_opt", "actor_opt", "critic_opt"):
            getattr(self, name).load_state_dict(state[name])
        try:
            self.generator.set_state(state["generator"])
        except RuntimeError:
            # A CPU generator cannot take a CUDA generator's state (or the reverse); a run moved across
            # device types cannot be bit-exact anyway, so reseed deterministically from the saved state.
            warnings.warn(
                f"generator state from another device type; reseeding the {self.device.type} generator", stacklevel=1
            )
            self.generator.manual_seed(int(torch.as_tensor(state["generator"]).long().sum()))
