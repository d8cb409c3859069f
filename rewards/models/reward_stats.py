"""Per-task reward statistics of a video model: mean and std of its per-transition scores.

The standardised rewards of design.md section 5, r = (s - mu_task) / sigma_task, need mu and sigma
of the same model and score settings over the expert training videos of *that* task. They are
computed for every task of the domain whose expert videos exist (seen and unseen tasks: a zero-shot
task is standardised by its own expert statistics, never trained on) and cached in the model's
``stats.json``, keyed by the score settings. Each entry records the model's fingerprint (size and
mtime of ``model.pt``) and is recomputed when the model changes.

Scores use the windows of ``rewards.models.video_model`` (``ce_windows`` / ``ll_windows``): one score per
transition, T scores for an episode of T+1 frames. CE scoring with noise draws from a generator seeded
by ``seed``, so the statistics are reproducible.
"""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import torch

from rewards.models import store
from rewards.models.video_model import SCORE_KINDS, score_episode_tokens
from tasks.io import atomic_write_json


def settings_key(kind: str, steps: int | None = 10, noise: bool = True) -> str:
    """The cache key of a score setting: ``ll`` or ``ce_s<steps>_noise`` / ``ce_s<steps>_nonoise``."""
    if kind not in SCORE_KINDS:
        raise ValueError(f"unknown score kind {kind!r}; valid: {', '.join(SCORE_KINDS)}")
    if kind == "ll":
        return "ll"
    return f"ce_s{steps}_{'noise' if noise else 'nonoise'}"


def domain_tasks(domain: str) -> list[str]:
    """Every task of the domain (seen and unseen): statistics are per task."""
    from tasks.registry import names

    return names(domain=domain)


def score_frames(codec, model, frames, kind: str, *, steps: int | None = 10, noise: bool = True,
                 generator: torch.Generator | None = None, batch_size: int = 128) -> np.ndarray:
    """Scores of one episode's frames (uint8 [T+1, 3, 64, 64], numpy or torch) -> float32 [T]."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(frames)
    tokens = codec.encode(frames)
    return score_episode_tokens(model, tokens, kind, steps=steps, noise=noise, generator=generator,
                                batch_size=batch_size).cpu().numpy().astype(np.float32)


def compute_task_stats(codec, model, domain: str, tasks: Sequence[str], kind: str, *, steps: int | None = 10,
                       noise: bool = True, seed: int = 0, root=None, batch_size: int = 128) -> dict:
    """{task: {"mean", "std", "n"}} over the expert training videos of each task that has them."""
    from tasks.datasets import DatasetMissingError

    device = next(model.parameters()).device
    out = {}
    for task in tasks:
        try:
            eps = store.episode_tokens(codec, domain, [task], "expert", "train", root)[task]
        except DatasetMissingError:
            continue  # unseen tasks without videos have no statistics
        gen = torch.Generator(device=device).manual_seed(seed)
        scores = np.concatenate([
            score_episode_tokens(model, ep.long(), kind, steps=steps, noise=noise, generator=gen,
                                 batch_size=batch_size).cpu().numpy() for ep in eps])
        out[task] = {"mean": float(scores.mean()), "std": float(max(scores.std(), 1e-6)), "n": int(scores.size)}
    return out


def task_stats(ref: store.ModelRef, kind: str, *, steps: int | None = 10, noise: bool = True,
               tasks: Sequence[str] | None = None, seed: int = 0, device="cpu", loaded=None) -> dict[str, dict]:
    """Cached per-task statistics ``{task: {"mean", "std", "n"}}`` of the trained video model ``ref``.

    ``loaded`` may pass an already loaded ``(codec, model)`` pair to avoid loading twice. Tasks are the
    domain's tasks (default all, seen and unseen); tasks without expert videos are left out.
    """
    if ref.is_codec:
        raise ValueError(f"statistics are of a video model's scores; {ref.name} is a codec")
    if not ref.exists():
        raise ref.missing()
    task_list = list(tasks) if tasks is not None else domain_tasks(ref.domain)
    key = settings_key(kind, steps, noise) + f"_seed{seed}"
    fp = store.fingerprint(ref.checkpoint)
    stats_path = ref.dir / "stats.json"
    cache = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    entry = cache.get(key, {})
    if entry.get("model") != fp:
        entry = {"model": fp, "tasks": {}}
    missing = [t for t in task_list if t not in entry["tasks"]]  # tasks without videos are retried (cheap)
    if missing:
        codec, net = loaded if loaded is not None else ref.load_with_codec(device)
        entry["tasks"].update(compute_task_stats(codec, net, ref.domain, missing, kind, steps=steps, noise=noise,
                                                 seed=seed, root=ref.data_root))
        # re-read before writing: another process may have added other settings meanwhile
        cache = json.loads(stats_path.read_text()) if stats_path.exists() else {}
        cache[key] = entry
        atomic_write_json(stats_path, cache)
    return {t: entry["tasks"][t] for t in task_list if t in entry["tasks"]}
