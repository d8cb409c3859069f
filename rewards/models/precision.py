"""Mixed precision of the video models: which parts run in bf16 and which stay fp32 (docs/precision.md).

A resolved precision (``"fp32"`` or ``"bf16"``, see ``common.runtime.resolve_precision``) is passed by
keyword to what encodes, scores, samples or trains (``codec.encode(..., precision=)``,
``video_model.score_episode_tokens(..., precision=)``, ``pretrain(..., precision=)``); the models themselves
hold no precision state, so one loaded model can serve fp32 and bf16 callers.

Under ``"bf16"`` the network forwards (codec encoder, VQ-Diffusion denoiser and its condition K/V cache,
VideoGPT) run under ``torch.autocast(bfloat16)``: matmuls and convolutions in bf16, weights and optimiser
state stay fp32. What needs the range or the precision runs in fp32 inside ``fp32_region``: the codec's
nearest-code search and EMA codebook (a bf16 distance flips ties between codes), the logits before every
``log_softmax``, the VQ-Diffusion posteriors' log-space sums (``logsumexp``/``logaddexp`` over 1025 classes
and the KL terms, whose differences of near-equal logs bf16's 8 mantissa bits would round away), and
every loss.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager

import torch

from common.runtime import RESOLVED_PRECISIONS
from common.runtime import autocast as _autocast


def check(precision: str) -> str:
    """``precision`` if it is a resolved one; a ValueError naming the valid ones otherwise."""
    if precision not in RESOLVED_PRECISIONS:
        hint = " (resolve 'auto' first: common.runtime.resolve_precision)" if precision == "auto" else ""
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(RESOLVED_PRECISIONS)}{hint}")
    return precision


def autocast(precision: str, device: torch.device | str) -> ContextManager:
    """bf16 autocast on ``device`` for ``"bf16"``, nothing for ``"fp32"`` (``common.runtime.autocast``)."""
    return _autocast(check(precision), device)


def fp32_region(device: torch.device | str) -> ContextManager:
    """Autocast switched off on ``device``: the code inside runs in the dtype of its (fp32) inputs."""
    device = torch.device(device)
    if not torch.is_autocast_enabled(device.type):
        return nullcontext()
    return torch.autocast(device.type, enabled=False)
