"""Per-task reward statistics of a video model: mean and std of its per-transition scores.

The standardised rewards of docs/models-and-rewards.md#rewards, r = (s - mu_task) / sigma_task, need mu and sigma
of the same model and score settings over the expert training videos of *that* task. They are
computed for every task of the domain whose expert videos exist (seen and unseen tasks: by default, the
paper's setting, a zero-shot task is standardised by its own expert statistics, i.e. with expert data of
the "unseen" task, though never trained on it) and cached in the model's ``stats.json``, keyed by the
score settings. The expert videos are those the model was trained on: a model of expert clips with a
post-success tail (``ModelRef.expert_tail``) is standardised over the clips of that tail. The strict
zero-shot setting (``zero_shot_stats="seen"`` of the video-reward providers) uses :func:`pooled_stats`
instead: mu/sigma of the pooled scores of the tasks the model was trained on, so a zero-shot run reads no
data of its own task. Each entry records the model's fingerprint (size and
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

from common.io import atomic_write_json
from rewards.models import store
from rewards.models.precision import check as check_precision
from rewards.models.video_model import SCORE_KINDS, score_episode_tokens
from tasks.datasets import EXPERT, DatasetMissingError, load_episodes
from tasks.registry import names


def settings_key(kind: str, steps: int | None = 10, noise: bool = True) -> str:
    """The cache key of a score setting: ``ll`` or ``ce_s<steps>_noise`` / ``ce_s<steps>_nonoise``."""
    if kind not in SCORE_KINDS:
        raise ValueError(f"unknown score kind {kind!r}; valid: {', '.join(SCORE_KINDS)}")
    if kind == "ll":
        return "ll"
    return f"ce_s{steps}_{'noise' if noise else 'nonoise'}"


def domain_tasks(domain: str) -> list[str]:
    """Every task of the domain (seen and unseen): statistics are per task."""
    return names(domain=domain)


def score_frames(
    codec,
    model,
    frames,
    kind: str,
    *,
    steps: int | None = 10,
    noise: bool = True,
    generator: torch.Generator | None = None,
    batch_size: int = 128,
    precision: str = "fp32",
) -> np.ndarray:
    """Scores of one episode's frames (uint8 [T+1, 3, 64, 64], numpy or torch) -> float32 [T]."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(frames)
    tokens = codec.encode(frames, precision=precision)
    return (
        score_episode_tokens(
            model,
            tokens,
            kind,
            steps=steps,
            noise=noise,
            generator=generator,
            batch_size=batch_size,
            precision=precision,
        )
        .cpu()
        .numpy()
        .astype(np.float32)
    )


def compute_task_stats(
    codec,
    model,
    domain: str,
    tasks: Sequence[str],
    kind: str,
    *,
    steps: int | None = 10,
    noise: bool = True,
    seed: int = 0,
    root=None,
    batch_size: int = 128,
    precision: str = "fp32",
    clips: str = EXPERT,
) -> dict:
    """{task: {"mean", "std", "n"}} over the expert training videos of each task that has them (the dataset
    kind ``clips``: ``tasks.datasets.expert_kind`` of the model's tail)."""
    device = next(model.parameters()).device
    out = {}
    for task in tasks:
        try:
            eps = store.episode_tokens(codec, domain, [task], clips, "train", root, precision=precision)[task]
        except DatasetMissingError:
            continue  # unseen tasks without videos have no statistics
        gen = torch.Generator(device=device).manual_seed(seed)
        scores = np.concatenate(
            [
                score_episode_tokens(
                    model,
                    ep.long(),
                    kind,
                    steps=steps,
                    noise=noise,
                    generator=gen,
                    batch_size=batch_size,
                    precision=precision,
                )
                .cpu()
                .numpy()
                for ep in eps
            ]
        )
        out[task] = {"mean": float(scores.mean()), "std": float(max(scores.std(), 1e-6)), "n": int(scores.size)}
    return out


#: a model kind whose bf16 scoring path changed gets a new bf16 key, so that statistics cached from the old
#: path are recomputed, not mixed with the new path's scores (which differ in the last bf16 bits):
#: VQ-Diffusion's own bf16 forward (``Denoiser._forward_lowp``, 2026-11-22) replaced autocast for scoring
BF16_SCORING_PATH = {"vqdiffusion": "_lowp"}


def precision_suffix(model_kind: str, precision: str) -> str:
    """The statistics key's precision part for a video model of ``model_kind`` ("vqdiffusion", "videogpt").

    Scores differ with the precision they are computed in, so bf16 statistics never stand in for fp32 ones
    (nor the reverse); fp32 keeps the key it always had (no suffix), so existing caches stay valid."""
    if check_precision(precision) == "fp32":
        return ""
    return f"_{precision}" + (BF16_SCORING_PATH.get(model_kind, "") if precision == "bf16" else "")


def task_stats(
    ref: store.ModelRef,
    kind: str,
    *,
    steps: int | None = 10,
    noise: bool = True,
    tasks: Sequence[str] | None = None,
    seed: int = 0,
    device="cpu",
    loaded=None,
    precision: str = "fp32",
) -> dict[str, dict]:
    """Cached per-task statistics ``{task: {"mean", "std", "n"}}`` of the trained video model ``ref``.

    ``loaded`` may pass an already loaded ``(codec, model)`` pair to avoid loading twice. Tasks are the
    domain's tasks (default all, seen and unseen); tasks without expert videos are left out.
    """
    if ref.is_codec:
        raise ValueError(f"statistics are of a video model's scores; {ref.name} is a codec")
    if not ref.exists():
        raise ref.missing()
    task_list = list(tasks) if tasks is not None else domain_tasks(ref.domain)
    key = settings_key(kind, steps, noise) + f"_seed{seed}" + precision_suffix(ref.kind, precision)
    fp = store.fingerprint(ref.checkpoint)
    stats_path = ref.dir / "stats.json"
    cache = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    entry = cache.get(key, {})
    if entry.get("model") != fp:
        entry = {"model": fp, "tasks": {}}
    missing = [t for t in task_list if t not in entry["tasks"]]  # tasks without videos are retried (cheap)
    if missing:
        codec, net = loaded if loaded is not None else ref.load_with_codec(device)
        entry["tasks"].update(
            compute_task_stats(
                codec,
                net,
                ref.domain,
                missing,
                kind,
                steps=steps,
                noise=noise,
                seed=seed,
                root=ref.data_root,
                precision=precision,
                clips=ref.expert_kind,
            )
        )
        # re-read before writing: another process (a parallel scoring worker) may have added other settings, or
        # other tasks of this one, meanwhile; keep theirs
        cache = json.loads(stats_path.read_text()) if stats_path.exists() else {}
        theirs = cache.get(key, {})
        if theirs.get("model") == fp:
            entry["tasks"] = {**theirs["tasks"], **entry["tasks"]}
        cache[key] = entry
        atomic_write_json(stats_path, cache)
    return {t: entry["tasks"][t] for t in task_list if t in entry["tasks"]}


def pool(stats: Sequence[dict]) -> dict:
    """mean/std of the union of several score sets, from each set's ``{"mean", "std", "n"}``.

    Exactly the mean and (population) std of the concatenated scores, every transition weighted once
    (so a task with longer or more videos weighs more), not the average of the per-task means and stds:
    E[s^2] of each set is std^2 + mean^2, and the pooled variance is the pooled E[s^2] minus the pooled
    mean squared. (A set whose std was floored at 1e-6 contributes that floor: negligible.)
    """
    if not stats:
        raise ValueError("pool: no score statistics to pool")
    n = np.array([s["n"] for s in stats], dtype=np.float64)
    mean = np.array([s["mean"] for s in stats], dtype=np.float64)
    sq = np.array([s["std"] for s in stats], dtype=np.float64) ** 2 + mean**2
    mu = float((n * mean).sum() / n.sum())
    var = float((n * sq).sum() / n.sum() - mu**2)
    return {"mean": mu, "std": float(max(np.sqrt(max(var, 0.0)), 1e-6)), "n": int(n.sum())}


def pooled_stats(
    ref: store.ModelRef,
    kind: str,
    *,
    steps: int | None = 10,
    noise: bool = True,
    seed: int = 0,
    device="cpu",
    loaded=None,
    precision: str = "fp32",
) -> dict:
    """Strict zero-shot statistics: ``{"mean", "std", "n", "tasks"}`` of the scores of every expert training
    transition of the tasks the model was trained on (its ``meta["tasks"]``), pooled into one set.

    Why: the paper standardises an unseen task with its own expert videos, which uses expert data of a
    task the benchmark calls unseen. Pooling the seen tasks' scores gives one mu/sigma that needs nothing
    of the target task. Per-task entries come from (and go into) the same ``stats.json`` cache as
    :func:`task_stats`; :func:`pool` combines them exactly. Every training task must have its videos (a
    missing one names the ``python -m tasks.collect`` command: pooling over fewer tasks than the model saw
    would silently change the statistics).
    """
    if ref.is_codec:
        raise ValueError(f"statistics are of a video model's scores; {ref.name} is a codec")
    if not ref.exists():
        raise ref.missing()
    seen = (
        list(loaded[1].meta.get("tasks", []))
        if loaded is not None and hasattr(loaded[1], "meta")
        else list(store.read_checkpoint(ref.checkpoint).get("meta", {}).get("tasks", []))
    )
    if not seen:
        raise ValueError(
            f"{ref.checkpoint} does not record the tasks it was trained on; retrain it with: {ref.command}"
        )
    per_task = task_stats(
        ref, kind, steps=steps, noise=noise, tasks=seen, seed=seed, device=device, loaded=loaded, precision=precision
    )
    missing = [t for t in seen if t not in per_task]
    if missing:
        load_episodes(ref.domain, missing, ref.expert_kind, "train", ref.data_root)  # raises naming the command
        raise DatasetMissingError(f"no expert training videos of {missing} under {ref.data_root}")
    return {**pool([per_task[t] for t in seen]), "tasks": seen}
