"""DrQ-v2's "truncated normal" policy distribution, written as plain functions.

DrQ-v2 samples ``mu + clip(std * eps, -c, c)`` and clamps the result into (-1, 1) with a straight-through
gradient (the clamp does not cut the gradient to the mean). Plain functions with an explicit generator
avoid ``torch.distributions`` argument checks on every call and make the agent's randomness its own
(so a checkpoint can restore it).
"""

from __future__ import annotations

import math

import torch

LOW, HIGH, EPS = -1.0, 1.0, 1e-6


def straight_through_clamp(x: torch.Tensor, low: float = LOW + EPS, high: float = HIGH - EPS) -> torch.Tensor:
    """Value of ``x.clamp(low, high)``, gradient of the identity (as DrQ-v2's ``TruncatedNormal._clamp``)."""
    return x - x.detach() + x.clamp(low, high).detach()


def sample(mu: torch.Tensor, std: float, clip: float | None, generator: torch.Generator | None) -> torch.Tensor:
    """One sample per entry of ``mu``; noise clipped to ``[-clip, clip]`` when ``clip`` is given."""
    noise = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator).mul_(std)
    if clip is not None:
        noise.clamp_(-clip, clip)
    return straight_through_clamp(mu + noise)


def normal_log_prob(x: torch.Tensor, mu: torch.Tensor, std: float) -> torch.Tensor:
    """Elementwise log-density of N(mu, std^2) (what DrQ-v2 logs as ``actor_logprob``)."""
    return -((x - mu) ** 2) / (2 * std * std) - math.log(std) - 0.5 * math.log(2 * math.pi)


def normal_entropy(std: float) -> float:
    """Entropy of one N(., std^2) coordinate (DrQ-v2's ``actor_ent`` is this times |A|)."""
    return 0.5 + 0.5 * math.log(2 * math.pi) + math.log(std)
