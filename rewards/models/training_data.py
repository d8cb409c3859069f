"""What the video models train and validate on: the expert videos' frames (the codec) and the (l context + 1
target) token windows of their episodes (a video model), per split.

Its own module because pretraining and the model diagnostics both read the same held-out data: each
importing the other's would make a cycle.
"""
from __future__ import annotations

import numpy as np
import torch

from rewards.models import store
from rewards.models.video_model import ll_windows
from tasks.datasets import load_episodes

VAL_LIMIT = 512  # validation frames / windows (a fixed subset of the test split)


def frames(domain, tasks, split, root) -> torch.Tensor:
    """Every frame of the split's expert episodes of ``tasks``, uint8 [N, 3, H, W]."""
    return torch.from_numpy(np.concatenate([ep.frames for ep in load_episodes(domain, tasks, split=split, root=root)]))


def windows(codec, domain, tasks, split, context, root, precision="fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """(context [N, l, 64], target [N, 64]) token windows of the split's episodes, built as the rewards build
    them (``ll_windows``), from tokens cached beside the codec."""
    ctxs, tgts = [], []
    for tokens in store.episode_tokens(codec, domain, tasks, split=split, root=root, precision=precision).values():
        for ep in tokens:
            c, t = ll_windows(ep.long(), context)
            ctxs.append(c)
            tgts.append(t)
    return torch.cat(ctxs), torch.cat(tgts)
