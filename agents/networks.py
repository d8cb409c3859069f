"""DrQ-v2 networks: conv encoder, actor and twin-Q critic, with DrQ-v2's orthogonal init.

Shapes follow docs/protocol.md#agent-drq-v2: the encoder maps 3x64x64 to 32x25x25 = 20000 features; actor and
critic each have their own trunk Linear(20000, 50) + LayerNorm + tanh (the encoder itself is shared and
learns only through the critic).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def weight_init(m: nn.Module, generator: torch.Generator | None = None) -> None:
    """DrQ-v2's init: orthogonal weights (gain sqrt(2) for convs, 1 for linears), zero biases."""
    if isinstance(m, nn.Linear):
        nn.init.orthogonal_(m.weight.data, generator=generator)
        if m.bias is not None:
            m.bias.data.zero_()
    elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.orthogonal_(m.weight.data, nn.init.calculate_gain("relu"), generator=generator)
        if m.bias is not None:
            m.bias.data.zero_()


def init_module(module: nn.Module, generator: torch.Generator | None) -> None:
    for m in module.modules():
        weight_init(m, generator)


def conv_output_hw(h: int, w: int, num_layers: int = 4) -> tuple[int, int]:
    """Spatial size after the encoder: a stride-2 then three stride-1 unpadded 3x3 convs."""
    h, w = (h - 3) // 2 + 1, (w - 3) // 2 + 1
    return h - 2 * (num_layers - 1), w - 2 * (num_layers - 1)


class _FlattenCHW(torch.autograd.Function):
    """Flatten a channels_last feature map in C, H, W order, and hand the gradient back channels_last.

    A plain ``reshape`` would return an NCHW gradient, and the last ReLU's backward would then mix
    layouts (several times slower than either layout alone).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        ctx.shape = h.shape
        return h.contiguous().view(h.shape[0], -1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.reshape(ctx.shape).contiguous(memory_format=torch.channels_last)


class Encoder(nn.Module):
    """4 conv 3x3 (stride 2, 1, 1, 1), ReLU, no padding, on ``x / 255 - 0.5``; flattens to repr_dim.

    Accepts uint8 or float pixels in [0, 255]. Runs in channels_last memory format, which is what
    oneDNN (CPU) and cuDNN prefer for small-channel convs; the flattened features keep PyTorch's usual
    C, H, W order so the trunk weights mean the same as in the reference implementation.
    """

    def __init__(self, obs_shape: Sequence[int], num_filters: int = 32):
        super().__init__()
        c, h, w = obs_shape
        oh, ow = conv_output_hw(h, w)
        if oh < 1 or ow < 1:
            raise ValueError(f"observation {tuple(obs_shape)} is too small for the encoder (needs H, W >= 15)")
        self.repr_dim = num_filters * oh * ow
        self.convnet = nn.Sequential(
            nn.Conv2d(c, num_filters, 3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_filters, num_filters, 3, stride=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_filters, num_filters, 3, stride=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(num_filters, num_filters, 3, stride=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # one pass to float32 channels_last (a fresh tensor), then normalise it in place
        x = obs.to(dtype=torch.float32, memory_format=torch.channels_last, copy=True)
        x = x.div_(255.0).sub_(0.5)
        return _FlattenCHW.apply(self.convnet(x))


class Float32Linear(nn.Linear):
    """A Linear that always computes in float32, also inside a bf16 autocast region.

    Used for the last layer of the Q heads and of the policy: a Q value in bf16 has 8 significant bits
    (Q ~ 50 would be rounded to 0.25), which is too coarse for the TD error it feeds; the policy mean
    sets the sampling dtype, so keeping it float32 keeps the random draws the same in fp32 and bf16.
    Costs one [B, 1024] x [1024, out] float32 matmul. Same parameters and state_dict keys as nn.Linear.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32 and not torch.is_autocast_enabled(x.device.type):
            return F.linear(x, self.weight, self.bias)
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(x.float(), self.weight, self.bias)


def _trunk(repr_dim: int, feature_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())


def _mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, hidden_dim),
        nn.ReLU(inplace=True),
        Float32Linear(hidden_dim, out_dim),
    )


class Actor(nn.Module):
    """Trunk + MLP to a tanh mean; the std is given from outside (the schedule)."""

    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.trunk = _trunk(repr_dim, feature_dim)
        self.policy = _mlp(feature_dim, hidden_dim, action_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.policy(self.trunk(features)))


class Critic(nn.Module):
    """Own trunk, then two Q heads on [trunk features, action]."""

    def __init__(self, repr_dim: int, action_dim: int, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.trunk = _trunk(repr_dim, feature_dim)
        self.Q1 = _mlp(feature_dim + action_dim, hidden_dim, 1)
        self.Q2 = _mlp(feature_dim + action_dim, hidden_dim, 1)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([self.trunk(features), action], dim=-1)
        return self.Q1(h), self.Q2(h)
