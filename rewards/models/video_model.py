"""The contract every video model over codec tokens follows, and the table of those models.

Pretraining, reward statistics, the quality report and the reward providers treat VideoGPT and
VQ-Diffusion the same way, through this contract (docs/interfaces.md, "Video models"):

- ``Model.from_config(cfg)`` builds a model; ``ConfigClass.preset("small"|"paper", context=l)`` gives
  its config (a ``rewards.models.config.ModelConfig``), with an ``.optim`` block (``lr``, ``betas``,
  ``weight_decay``, ``warmup_steps``, ``warmup_start_lr``, ``grad_clip``) that pretraining turns into AdamW,
  a linear warm-up and gradient clipping.
- ``loss(context [B,l,64], target [B,64]) -> scalar`` (training objective),
  ``score_ll(context, target) -> [B]``, ``score_ce(context, steps, noise, generator) -> [B]``,
  ``sample(context, steps, noise, generator) -> [B,64]``.

``VIDEO_MODELS`` maps a model name to (module, class, config class); modules are imported lazily, so a
model whose module is not there yet (or fails to import) only breaks the commands that ask for it.

The window functions below fix how an episode's frames become (context, target) pairs, so the reward
providers, the statistics and training all use the same alignment (docs/models-and-rewards.md#rewards).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from rewards.models.codec import TOKENS_PER_FRAME  # noqa: E402  (the codec decides the token grid)
from rewards.models.precision import autocast

# name -> (module, model class, config class)
VIDEO_MODELS: dict[str, tuple[str, str, str]] = {
    "videogpt": ("rewards.models.videogpt", "VideoGPT", "VideoGPTConfig"),
    "vqdiffusion": ("rewards.models.vqdiffusion", "VQDiffusion", "VQDiffusionConfig"),
}

SCORE_KINDS = ("ce", "ll")


def video_model_names() -> list[str]:
    return sorted(VIDEO_MODELS)


def _entry(name: str) -> tuple[str, str, str]:
    if name not in VIDEO_MODELS:
        raise ValueError(f"unknown video model {name!r}; valid: {', '.join(video_model_names())}")
    return VIDEO_MODELS[name]


def model_class(name: str) -> type:
    module, cls, _ = _entry(name)
    return getattr(importlib.import_module(module), cls)


def config_class(name: str) -> type:
    module, _, cfg = _entry(name)
    return getattr(importlib.import_module(module), cfg)


def preset_config(name: str, preset: str, context: int) -> Any:
    """The config of model ``name`` at ``preset`` for ``context`` frames."""
    return config_class(name).preset(preset, context=context)


def build_model(name: str, config: Any) -> torch.nn.Module:
    return model_class(name).from_config(config)


# ---------------------------------------------------------------- config (de)serialisation


def config_to_dict(config: Any) -> dict:
    """A plain dict of a model config (``rewards.models.config.ModelConfig.to_dict``)."""
    return config.to_dict()


def config_from_dict(cls: type, data: dict) -> Any:
    """Rebuild a model config of class ``cls`` from ``config_to_dict`` output (tuples and nested configs
    come back typed, see ``rewards.models.config``)."""
    return cls.from_dict(data)


# ---------------------------------------------------------------- windows


def _check_episode_tokens(tokens: torch.Tensor, context: int) -> None:
    if tokens.ndim != 2 or tokens.shape[1] != TOKENS_PER_FRAME:
        raise ValueError(f"episode tokens must be [T+1, {TOKENS_PER_FRAME}], got {tuple(tokens.shape)}")
    if tokens.shape[0] < 2:
        raise ValueError(f"an episode needs at least 2 frames (one transition), got {tokens.shape[0]}")
    if context < 1:
        raise ValueError(f"context length must be >= 1, got {context}")


def _padded_index(idx: torch.Tensor) -> torch.Tensor:
    return idx.clamp(min=0)  # frames before o_0 repeat o_0


def ce_windows(tokens: torch.Tensor, context: int) -> torch.Tensor:
    """Contexts for the conditional-entropy reward: ``[T, l, 64]`` for an episode of T+1 frames.

    The reward of transition t (o_t -> o_{t+1}) is the entropy of the next frame given the l frames
    ending at o_{t+1}, the frame just reached: context (o_{t+2-l}, ..., o_{t+1}), o_0 repeated before
    the episode start.
    """
    _check_episode_tokens(tokens, context)
    n = tokens.shape[0] - 1
    ends = torch.arange(1, n + 1, device=tokens.device)  # index of o_{t+1}
    idx = ends[:, None] + torch.arange(-context + 1, 1, device=tokens.device)[None, :]
    return tokens[_padded_index(idx)]


def ll_windows(tokens: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(context ``[T, l, 64]``, target ``[T, 64]``) for the log-likelihood reward.

    The reward of transition t is log p(o_{t+1} | o_{t+1-l}, ..., o_t), o_0 repeated before the start.
    These are also the training windows, so the model is trained on exactly what it scores.
    """
    _check_episode_tokens(tokens, context)
    n = tokens.shape[0] - 1
    targets = torch.arange(1, n + 1, device=tokens.device)
    idx = targets[:, None] + torch.arange(-context, 0, device=tokens.device)[None, :]
    return tokens[_padded_index(idx)], tokens[targets]


@torch.no_grad()
def score_episode_tokens(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    kind: str,
    *,
    steps: int | None = 10,
    noise: bool = True,
    generator: torch.Generator | None = None,
    batch_size: int = 128,
    precision: str = "fp32",
) -> torch.Tensor:
    """One score per transition (``[T]`` float32) for an episode's tokens ``[T+1, 64]``.

    ``kind`` is ``"ll"`` (log-likelihood of the frame reached) or ``"ce"`` (minus the entropy of the
    next frame given the context ending at the frame reached). Windows are scored in batches.
    ``precision="bf16"`` runs the network under bf16 autocast; log-softmax, posteriors and sums stay fp32
    (``rewards.models.precision``).
    """
    if kind not in SCORE_KINDS:
        raise ValueError(f"unknown score kind {kind!r}; valid: {', '.join(SCORE_KINDS)}")
    context = model.config.context
    device = next(model.parameters()).device
    with autocast(precision, device):
        return _score_windows(model, tokens.to(device), kind, context, steps, noise, generator, batch_size)


def _score_windows(model, tokens, kind, context, steps, noise, generator, batch_size) -> torch.Tensor:
    out = []
    if kind == "ll":
        ctx, tgt = ll_windows(tokens, context)
        for i in range(0, ctx.shape[0], batch_size):
            # VQ-Diffusion's ELBO samples z_t, so it takes the generator too (VideoGPT's LL ignores it)
            out.append(model.score_ll(ctx[i : i + batch_size], tgt[i : i + batch_size], generator=generator))
    else:
        ctx = ce_windows(tokens, context)
        for i in range(0, ctx.shape[0], batch_size):
            out.append(model.score_ce(ctx[i : i + batch_size], steps=steps, noise=noise, generator=generator))
    return torch.cat(out).float()
