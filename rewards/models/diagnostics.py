"""Diagnostics of a model while it trains and after: does it copy, does its sample persist like the data?

A video model that has not learned to copy scores rewards from noise: at the lowest noise level, with the
target frame all but visible, its top choice should be the visible token, and its sample of the next frame
should keep about as many of the last context frame's tokens as real consecutive frames do (they keep most:
the arm moves a few patches per frame). The held-out loss alone does not show either failure, so every
evaluation during pretraining (``history.json``), the quality report and the post-hoc command
(``python -m rewards.models.quality --diagnostics --model-file PATH``) record, per model kind
(``DIAGNOSTICS``):

- ``codec``: ``psnr``, the reconstruction PSNR (dB) of held-out frames.
- ``vqdiffusion``: ``copy_accuracy``, the fraction of target tokens that are the argmax of the predicted
  ``x0`` at the lowest noise level (level 1, network timestep t = 0) from ``z_1 ~ q(z_1 | target)`` (keep
  probability 0.99999: almost every token visible); ``persistence``, the fraction of the tokens of the
  model's own sample of the next frame (``sample``, 10 steps with noise: the scoring path's sampler) equal
  to the last context frame's token at that position, beside ``data_persistence``, the same fraction for
  the real next frame.
- ``videogpt``: ``nll_per_token``, the teacher-forced held-out negative log-likelihood per target token
  (nats), and the same ``persistence`` / ``data_persistence`` pair (its ``sample`` with noise).

All are computed on at most ``DIAG_WINDOWS`` held-out windows (frames for the codec), an evenly spread
fixed subset of the validation subset pretraining uses, so one evaluation costs seconds on a small model
and numbers of one model's checkpoints are comparable; the random draws come from a generator seeded with
``seed`` inside ``torch.random.fork_rng``, so a diagnostic never moves the training RNG (a resumed run stays
identical to an uninterrupted one) and the same weights give the same numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from rewards.models import store
from rewards.models.codec import VQGAN, CodecConfig
from rewards.models.precision import autocast
from rewards.models.video_model import build_model, config_class, ll_windows
from tasks.datasets import EXPERT, expert_kind, load_episodes

#: the number of held-out windows (or frames) a diagnostic evaluates
DIAG_WINDOWS = 256
#: the scoring path's number of denoising steps (``score_ce``'s default)
SAMPLE_STEPS = 10
BATCH = 64


def evenly_spaced(data, n: int):
    """At most ``n`` items of ``data`` (a tensor or a tuple of aligned tensors), evenly spread: a fixed subset,
    so checkpoints of one model are compared on the same items."""
    size = len(data[0]) if isinstance(data, tuple) else len(data)
    idx = torch.linspace(0, size - 1, min(n, size)).long()
    return tuple(d[idx] for d in data) if isinstance(data, tuple) else data[idx]


# ---------------------------------------------------------------- the metrics


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of uint8 images [N, C, H, W] (identical images give +inf)."""
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse)


def token_persistence(frame: torch.Tensor, last_context: torch.Tensor) -> float:
    """Fraction of the tokens of ``frame [N, 64]`` equal to ``last_context [N, 64]`` at the same position."""
    return float((frame == last_context).double().mean())


def copy_accuracy(
    predict_x0: Callable[[torch.Tensor], torch.Tensor], visible: torch.Tensor, target: torch.Tensor
) -> float:
    """Fraction of ``target`` tokens that are the top choice of ``predict_x0(visible)`` (scores over the
    codebook, ``[N, 64, >=K]``; a trailing mask column is ignored), ``visible`` being the target passed
    through the forward process at the lowest noise level. Taking the predictor as an argument lets a
    constructed predictor check the function (a perfect one scores 1)."""
    return float((predict_x0(visible).argmax(-1) == target).double().mean())


def _batched(fn, *tensors, batch: int = BATCH) -> torch.Tensor:
    return torch.cat([fn(*(t[i : i + batch] for t in tensors)) for i in range(0, len(tensors[0]), batch)])


@torch.no_grad()
def codec_diagnostics(codec, frames: torch.Tensor, generator: torch.Generator, precision: str) -> dict[str, float]:
    """``psnr``: mean reconstruction PSNR (dB) of uint8 ``frames [N, 3, 64, 64]``, the encoder in ``precision``
    as pretraining tokenises (the decoder in fp32, as the quality report renders)."""
    recon = codec.decode(codec.encode(frames.to(codec.device), precision=precision)).cpu()
    return {"psnr": float(psnr(frames.cpu(), recon).double().mean())}


def _persistence(net, ctx: torch.Tensor, tgt: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
    sampled = _batched(lambda c: net.sample(c, steps=SAMPLE_STEPS, noise=True, generator=generator), ctx)
    return {
        "persistence": token_persistence(sampled.cpu(), ctx[:, -1].cpu()),
        "data_persistence": token_persistence(tgt.cpu(), ctx[:, -1].cpu()),
    }


@torch.no_grad()
def vqdiffusion_diagnostics(
    net, windows: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator, precision: str
) -> dict[str, float]:
    """``copy_accuracy`` at the lowest noise level, then the sample's and the data's token persistence."""
    device = next(net.parameters()).device
    ctx, tgt = (w.to(device) for w in windows)
    level = torch.ones(1, dtype=torch.long, device=device)
    hits = 0.0
    with autocast(precision, device):
        for i in range(0, len(ctx), BATCH):
            c, t = ctx[i : i + BATCH], tgt[i : i + BATCH]
            z_1 = net.schedule.sample_marginal(t, level.expand(len(t)), generator)
            hits += copy_accuracy(lambda z: net.predict_x0(c, z, 1), z_1, t) * t.numel()  # noqa: B023 (called at once)
        return {"copy_accuracy": hits / tgt.numel(), **_persistence(net, ctx, tgt, generator)}


@torch.no_grad()
def videogpt_diagnostics(
    net, windows: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator, precision: str
) -> dict[str, float]:
    """``nll_per_token`` (teacher-forced, nats), then the sample's and the data's token persistence."""
    device = next(net.parameters()).device
    ctx, tgt = (w.to(device) for w in windows)
    with autocast(precision, device):
        ll = _batched(lambda c, t: net.score_ll(c, t).float(), ctx, tgt)
        return {"nll_per_token": float(-ll.double().sum() / tgt.numel()), **_persistence(net, ctx, tgt, generator)}


#: model kind -> its diagnostics ``(net, held-out data, generator, precision) -> {name: value}``; the data
#: is frames for the codec, (context, target) windows for a video model
DIAGNOSTICS: dict[str, Callable[..., dict[str, float]]] = {
    store.CODEC: codec_diagnostics,
    "vqdiffusion": vqdiffusion_diagnostics,
    "videogpt": videogpt_diagnostics,
}


def diagnostics(kind: str, net, data, precision: str = "fp32", seed: int = 0) -> dict[str, float]:
    """The diagnostics of ``net`` (a model of ``kind``) on held-out ``data``: frames for the codec, a
    (context, target) pair of windows for a video model, of which ``DIAG_WINDOWS`` evenly spread are used.

    Runs in eval mode in ``precision`` (the networks under its autocast), with its random draws from a
    generator seeded with ``seed`` inside ``torch.random.fork_rng`` (the global RNG is left as it was); the
    model's train/eval mode is restored afterwards.
    """
    if kind not in DIAGNOSTICS:
        raise ValueError(f"no diagnostics for model kind {kind!r}; valid: {', '.join(DIAGNOSTICS)}")
    device = next(net.parameters()).device
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    was_training = net.training
    net.eval()
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            gen = torch.Generator(device=device).manual_seed(seed)
            return DIAGNOSTICS[kind](net, evenly_spaced(data, DIAG_WINDOWS), gen, precision)
    finally:
        net.train(was_training)


# ---------------------------------------------------------------- a saved model

VAL_LIMIT = 512  # validation frames / windows (a fixed subset of the test split)


def split_frames(domain, tasks, split, root, kind: str = EXPERT) -> torch.Tensor:
    """Every frame of the ``split`` episodes of ``tasks``, uint8 [N, 3, H, W] (expert clips of dataset kind
    ``kind``: ``tasks.datasets.expert_kind``)."""
    episodes = load_episodes(domain, tasks, kind, split=split, root=root)
    return torch.from_numpy(np.concatenate([ep.frames for ep in episodes]))


def split_windows(
    codec, domain, tasks, split, context, root, precision="fp32", kind: str = EXPERT
) -> tuple[torch.Tensor, torch.Tensor]:
    """(context, target) token windows (``ll_windows``) of every ``split`` episode of ``tasks`` (expert clips
    of dataset kind ``kind``), tokenised by ``codec``."""
    ctxs, tgts = [], []
    clips = store.episode_tokens(codec, domain, tasks, kind, split=split, root=root, precision=precision)
    for tokens in clips.values():
        for ep in tokens:
            c, t = ll_windows(ep.long(), context)
            ctxs.append(c)
            tgts.append(t)
    return torch.cat(ctxs), torch.cat(tgts)


def heldout_data(
    kind: str,
    codec,
    domain: str,
    tasks: Sequence[str],
    context: int | None,
    root=None,
    precision: str = "fp32",
    clips: str = EXPERT,
):
    """The validation subset pretraining evaluates on: test-split frames (codec) or (context, target)
    windows of the test split's codec tokens (video model), ``VAL_LIMIT`` evenly
    spread; ``diagnostics`` takes its ``DIAG_WINDOWS`` from these. ``clips``: the dataset kind of the expert
    clips (a tail model's are ``expert_tail<N>``)."""
    if kind == store.CODEC:
        return evenly_spaced(split_frames(domain, list(tasks), "test", root, clips), VAL_LIMIT)
    windows = split_windows(codec, domain, list(tasks), "test", context, root, precision, clips)
    return evenly_spaced(windows, VAL_LIMIT)


def load_model_file(path: str | Path, data_root=None, device="cpu"):
    """(kind, model, codec, meta) of a saved ``model.pt`` anywhere (a store directory or a budget-study
    snapshot), the codec being the one its meta names (``codec_preset`` and task set) under ``data_root``;
    for a codec file, codec is the model itself."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    ckpt = store.read_checkpoint(path)
    kind, meta = ckpt["name"], ckpt.get("meta", {})
    if kind == store.CODEC:
        net = VQGAN(CodecConfig.from_dict(ckpt["config"]))
    else:
        net = build_model(kind, config_class(kind).from_dict(ckpt["config"]))
    net.load_state_dict(ckpt["state_dict"])
    net.meta = meta
    net = net.to(device).eval().requires_grad_(False)
    if kind == store.CODEC:
        return kind, net, net, meta
    codec_ref = store.ModelRef(
        meta["domain"],
        store.CODEC,
        meta.get("codec_preset", meta.get("preset", "small")),
        data_root=data_root,
        task_set=meta.get("task_set", store.DEFAULT_TASK_SET),
    )
    return kind, net, codec_ref.load(device), meta


def model_file_diagnostics(path: str | Path, data_root=None, device="cpu", seed: int = 0) -> dict:
    """The diagnostics of the saved model ``path`` on the held-out data of its domain and tasks, in the
    precision it was trained in: the numbers its pretraining history records for the same weights. A video
    model's row adds ``codec_psnr``, its codec's diagnostic. Returns one row: file, model, the meta's
    ``steps``/``best_step``/``val_loss``, then the diagnostics."""
    kind, net, codec, meta = load_model_file(path, data_root, device)
    domain, tasks, precision = meta["domain"], meta["tasks"], meta.get("precision", "fp32")
    clips = expert_kind(meta.get("expert_tail", 0))  # models from before the field: the release's clips
    data = heldout_data(kind, codec, domain, tasks, meta.get("context"), data_root, precision, clips)
    row = {
        "file": str(path),
        "model": kind,
        "domain": domain,
        "steps": meta.get("steps"),
        "best_step": meta.get("best_step"),
        "val_loss": meta.get("val_loss"),
    }
    row.update(diagnostics(kind, net, data, precision, seed))
    if kind != store.CODEC:
        frames = heldout_data(store.CODEC, codec, domain, tasks, None, data_root, precision)
        row["codec_psnr"] = diagnostics(store.CODEC, codec, frames, precision, seed)["psnr"]
    return row


def summary(row: dict) -> str:
    """One line of a row's numbers (for logs)."""
    return ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in row.items()
        if isinstance(v, (float, int, np.floating)) and not isinstance(v, bool)
    )
