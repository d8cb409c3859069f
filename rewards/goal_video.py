"""Goal videos for GenReward: the suite's VQ-Diffusion rolled out autoregressively from a first frame.

GenReward (Wang et al., arXiv 2512.00961) asks a pretrained text-and-image-to-video model (CogVideoX) for
a video of the task being done, starting from the episode's first frame. No such weights can be had here,
so the goal video comes from the domain's own frame-conditioned VQ-Diffusion (``rewards.models.vqdiffusion``):

    context = [tokens(o_0)] * l                    (the first frame repeated, as the CE windows do)
    for k = 1..length:  x_k ~ model.sample(context)  (reverse chain from all-mask, ``steps`` denoising steps)
                        context = context[1:] + [x_k]   (its own samples are fed back, as tokens)
    goal frames = codec.decode(x_0..x_length)       (frame 0 is the first frame's own reconstruction)

The rollout is a pure function of (model, codec, first frame, length, steps, noise, seed): the sampling
generator is seeded from ``seed`` and a hash of the first frame's bytes. So a cache of goal videos never
has to be checkpointed (a resumed run regenerates the same video), and two episodes that start from the
same frame share one video. ``GoalVideoCache`` keeps the most recent ones (a run's first episode pays for
its video; later ones only when the first frame changes: MetaWorld draws the goal among 50 per task).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rewards.base import validate_frames
from rewards.models.precision import autocast


def frame_key(frame: np.ndarray) -> str:
    """A content hash of one uint8 frame ``[3, H, W]`` (the cache key and the rollout's seed source)."""
    frame = np.ascontiguousarray(frame)
    return hashlib.sha1(frame.tobytes() + str(frame.shape).encode()).hexdigest()


def rollout_seed(seed: int, key: str) -> int:
    return int(hashlib.sha1(f"{int(seed)}:{key}".encode()).hexdigest()[:15], 16)


@torch.no_grad()
def rollout_tokens(
    model: Any,
    first: torch.Tensor,
    length: int,
    steps: int = 10,
    noise: bool = True,
    generator: torch.Generator | None = None,
    precision: str = "fp32",
) -> torch.Tensor:
    """Tokens ``[B, length + 1, 64]`` of videos continuing each first frame's tokens ``first [B, 64]``.

    Batched over B first frames (one ``model.sample`` call per generated frame). Entry 0 is ``first``.
    ``precision="bf16"``: the denoiser under bf16 autocast (its posteriors stay fp32).
    """
    if not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length: expected a number of frames to generate >= 1, got {length!r}")
    if not (isinstance(first, torch.Tensor) and first.dtype == torch.long and first.ndim == 2):
        raise ValueError(f"first: expected int64 tokens [B, 64], got {getattr(first, 'dtype', type(first))}")
    l = int(model.config.context)  # noqa: E741 (the paper's context length)
    first = first.to(model.device)
    window = [first] * l
    out = [first]
    for _ in range(int(length)):
        with autocast(precision, model.device):
            nxt = model.sample(torch.stack(window, dim=1), steps=steps, noise=noise, generator=generator)
        out.append(nxt)
        window = window[1:] + [nxt]
    return torch.stack(out, dim=1)


@dataclass(frozen=True)
class GoalVideo:
    """A generated goal video: pixels uint8 ``[L+1, 3, 64, 64]`` (C-contiguous) and their codec latents
    ``[L+1, D]``."""

    frames: np.ndarray
    latents: torch.Tensor


def generate(
    codec: Any,
    model: Any,
    first_frame: np.ndarray,
    length: int,
    seed: int = 0,
    steps: int = 10,
    noise: bool = True,
    precision: str = "fp32",
) -> GoalVideo:
    """The goal video of ``length`` generated frames after ``first_frame`` (uint8 ``[3, 64, 64]``)."""
    validate_frames(np.asarray(first_frame)[None].repeat(2, axis=0), name="first_frame")
    key = frame_key(first_frame)
    device = model.device
    gen = torch.Generator(device=device).manual_seed(rollout_seed(seed, key))
    first = codec.encode(
        torch.from_numpy(np.ascontiguousarray(first_frame))[None].to(codec.device), precision=precision
    )
    tokens = rollout_tokens(model, first.to(device), length, steps, noise, gen, precision)[0]
    pixels = codec.decode(tokens.to(codec.device))
    # the codec decodes channels_last; the frames are handed on C-contiguous, the layout a checkpoint reloads
    # them in (a key goal frame's numbers must not depend on whether it came from here or from a checkpoint)
    return GoalVideo(
        frames=np.ascontiguousarray(pixels.cpu().numpy()), latents=codec.latents(pixels, precision=precision).float()
    )


class GoalVideoCache:
    """Goal videos keyed by (first-frame hash, length), least recently used dropped past ``capacity``.

    Not part of a checkpoint: ``generate`` is deterministic, so a miss after resume recomputes the same
    video. ``misses`` counts the rollouts actually paid for.
    """

    def __init__(
        self,
        codec: Any,
        model: Any,
        seed: int = 0,
        steps: int = 10,
        noise: bool = True,
        capacity: int = 64,
        precision: str = "fp32",
    ) -> None:
        self.codec, self.model, self.precision = codec, model, precision
        self.seed, self.steps, self.noise, self.capacity = int(seed), int(steps), bool(noise), int(capacity)
        self._videos: OrderedDict[tuple[str, int], GoalVideo] = OrderedDict()
        self.misses = 0

    def get(self, first_frame: np.ndarray, length: int) -> GoalVideo:
        key = (frame_key(first_frame), int(length))
        if key in self._videos:
            self._videos.move_to_end(key)
            return self._videos[key]
        video = generate(
            self.codec, self.model, first_frame, int(length), self.seed, self.steps, self.noise, self.precision
        )
        self.misses += 1
        self._videos[key] = video
        while len(self._videos) > self.capacity:
            self._videos.popitem(last=False)
        return video

    def __len__(self) -> int:
        return len(self._videos)
