"""The update written the plain DrQ-v2 way, as a yardstick for the fast ``DrQV2Agent.update``.

Used by the benchmark (to report both timings on the same machine) and by the tests (to check the fast
update computes the same thing). It follows the reference code's structure: float ``grid_sample``
random shift, NCHW encoder with ``x / 255 - 0.5``, ``torch.distributions`` truncated normal, separate
zero_grad/backward/step calls with ``.item()`` metrics, critic weight gradients computed during the actor
update, default (for-loop) Adam on CPU, and a per-parameter Polyak loop.

Randomness is drawn from ``generator`` in the same order and shapes as the fast agent draws it (shifts
of obs, shifts of next_obs, target-action noise, policy-action noise), so both give the same numbers
from the same state.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import distributions as pyd

from agents.augment import grid_sample_shift
from agents.drqv2 import DrQV2Agent


class TruncatedNormal(pyd.Normal):
    """DrQ-v2's distribution: normal noise (optionally clipped), straight-through clamp to (-1, 1)."""

    def __init__(self, loc, scale, low=-1.0, high=1.0, eps=1e-6):
        super().__init__(loc, scale, validate_args=False)
        self.low, self.high, self.eps = low, high, eps

    def _clamp(self, x):
        clamped_x = torch.clamp(x, self.low + self.eps, self.high - self.eps)
        return x - x.detach() + clamped_x.detach()

    def sample(self, clip=None, sample_shape=torch.Size(), generator=None):  # noqa: B008 (immutable)
        shape = self._extended_shape(sample_shape)
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device, generator=generator)
        eps *= self.scale
        if clip is not None:
            eps = torch.clamp(eps, -clip, clip)
        return self._clamp(self.loc + eps)


class ReferenceDrQV2:
    """A plain-DrQ-v2 copy of an agent's networks and optimisers (non-fused Adam, NCHW encoder)."""

    def __init__(self, agent: DrQV2Agent):
        self.cfg = agent.cfg
        self.action_dim = agent.action_dim
        self.convnet = copy.deepcopy(agent.encoder.convnet).to(memory_format=torch.contiguous_format)
        self.actor = copy.deepcopy(agent.actor)
        self.critic = copy.deepcopy(agent.critic)
        self.critic_target = copy.deepcopy(agent.critic_target)
        lr = self.cfg.lr
        self.encoder_opt = torch.optim.Adam(self.convnet.parameters(), lr=lr, foreach=False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=lr, foreach=False)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=lr, foreach=False)

    def encode(self, obs):
        h = self.convnet(obs / 255.0 - 0.5)
        return h.view(h.shape[0], -1)

    def aug(self, x, generator):
        n = x.shape[0]
        pad = self.cfg.aug_pad
        shifts = torch.randint(0, 2 * pad + 1, (n, 2), device=x.device, generator=generator)
        return grid_sample_shift(x, pad, shifts)

    def dist(self, features, std):
        mu = self.actor(features)
        return TruncatedNormal(mu, torch.ones_like(mu) * std)

    def update(self, batch, step, generator=None):
        cfg = self.cfg
        obs, action = batch["obs"], batch["action"]
        reward, discount = batch["reward"].view(-1, 1), batch["discount"].view(-1, 1)
        next_obs = batch["next_obs"]
        obs = self.aug(obs.float(), generator)
        next_obs = self.aug(next_obs.float(), generator)
        obs = self.encode(obs)
        with torch.no_grad():
            next_obs = self.encode(next_obs)
        metrics = {"batch_reward": reward.mean().item()}
        stddev = cfg.stddev(step)

        # critic
        with torch.no_grad():
            next_action = self.dist(next_obs, stddev).sample(clip=cfg.stddev_clip, generator=generator)
            target_Q1, target_Q2 = self.critic_target(next_obs, next_action)
            target_Q = reward + discount * torch.min(target_Q1, target_Q2)
        Q1, Q2 = self.critic(obs, action)
        critic_loss = F.mse_loss(Q1, target_Q) + F.mse_loss(Q2, target_Q)
        metrics.update(
            critic_target_q=target_Q.mean().item(),
            critic_q1=Q1.mean().item(),
            critic_q2=Q2.mean().item(),
            critic_loss=critic_loss.item(),
        )
        self.encoder_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.encoder_opt.step()

        # actor
        obs = obs.detach()
        dist = self.dist(obs, stddev)
        pi_action = dist.sample(clip=cfg.stddev_clip, generator=generator)
        log_prob = dist.log_prob(pi_action).sum(-1, keepdim=True)
        Q1, Q2 = self.critic(obs, pi_action)
        actor_loss = -torch.min(Q1, Q2).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        metrics.update(
            actor_loss=actor_loss.item(),
            actor_logprob=log_prob.mean().item(),
            actor_ent=dist.entropy().sum(dim=-1).mean().item(),
        )

        # target
        tau = cfg.critic_target_tau
        for param, target_param in zip(self.critic.parameters(), self.critic_target.parameters()):
            target_param.data.copy_(tau * param.data + (1 - tau) * target_param.data)
        return metrics
