"""Pretrain the codec and the video models: ``python -m rewards.models.pretrain --domain D --model M``.

    python -m rewards.models.pretrain --domain metaworld --model codec --preset small
    python -m rewards.models.pretrain --domain metaworld --model videogpt --preset small --context 2
    python -m rewards.models.pretrain --domain metaworld --model vqdiffusion --preset small --context 2

Data: the training split of the domain's expert videos (the tasks of ``--task-set``, default ``seen``:
the domain's seen tasks; ``--tasks`` overrides; no task label); validation loss on the test split. A model
of another task set (``--task-set genreward``) lives in its own directory (``rewards.models.store.ModelRef``), and
so does a video model trained on expert clips with a post-success tail (``--expert-tail N``: the clips of
``python -m tasks.collect --expert-tail N``; ``vqdiffusion_small_l2_tail<N>``), through the one codec of the
release's clips (``ModelRef`` says why). The codec trains on single frames; a video model trains on
the codec tokens of (l context + 1 target) windows, built exactly like the log-likelihood reward's
windows (``rewards.models.video_model.ll_windows``: o_0 repeated before the start), from episodes tokenised
once and cached beside the codec (``rewards.models.store.episode_tokens``).

Optimisers: the codec uses Adam (betas 0.5, 0.9; lr 1e-3 small, 2e-4 paper) for the autoencoder and
another for the patch discriminator; a video model uses AdamW. Every field of the config's ``optim`` block
is read: lr, betas, weight_decay, a linear warm-up from ``warmup_start_lr`` over ``warmup_steps`` and the
gradient-norm clip ``grad_clip`` (VQ-Diffusion: (0.9, 0.96), 4.5e-2, 4.5e-4 from 3e-6, clip 0.5 as the
release; VideoGPT: see rewards/models/videogpt.py).

Checkpoints: ``train_state.pt`` (weights, optimisers, step, RNG states, history) and ``model.pt``
(weights + config + what it was trained on) are written atomically every ``--ckpt-every`` steps and at
the end. Re-running the command continues from ``train_state.pt`` up to ``--steps``; a run that already
reached ``--steps`` does nothing. When training ends the model-quality report is written (``quality/``).

Every ``--eval-every`` steps (and at the end) ``history.json`` gets one entry: the training and validation
loss and the diagnostics of the weights that are scored (``rewards.models.diagnostics``: the codec's PSNR;
VQ-Diffusion's copy accuracy, VideoGPT's NLL per token and the sample's token persistence beside the
data's), on a fixed held-out subset, without moving the training RNG. The codec's last PSNR is in its
``meta`` (``psnr``) and a video model's meta repeats it (``codec_psnr``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from common.io import atomic_torch_save, atomic_write_json
from common.runtime import DEFAULT_PRECISION, PRECISIONS, resolve_device, resolve_precision, seed_everything
from rewards.models import PRESETS, store
from rewards.models.codec import VQGAN, CodecConfig
from rewards.models.diagnostics import (
    DIAG_WINDOWS,
    VAL_LIMIT,
    diagnostics,
    evenly_spaced,
    heldout_data,
    split_frames,
    split_windows,
)
from rewards.models.precision import autocast
from rewards.models.precision import check as check_precision
from rewards.models.quality import write_report
from rewards.models.video_model import build_model, preset_config
from tasks.cli import expert_tail_arg, positive_int, run_reporting_user_errors
from tasks.datasets import DatasetMissingError, check_tail
from tasks.registry import DOMAINS, TASK_SETS

DEFAULT_STEPS = {
    ("codec", "small"): 3000,
    ("codec", "paper"): 50000,
    ("video", "small"): 3000,
    ("video", "paper"): 100000,
}
DEFAULT_BATCH = {"small": 32, "paper": 64}


# ---------------------------------------------------------------- trainers


def warmup_schedule(opt: torch.optim.Optimizer, o) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up of ``opt`` from ``o.warmup_start_lr`` to ``o.lr`` over ``o.warmup_steps``, then flat.

    Every model config's ``optim`` block has these fields (``rewards.models.config``); the factor at step
    s is ``start/lr + (1 - start/lr) * min(1, (s + 1) / warmup_steps)``.
    """
    warm, start = max(int(o.warmup_steps), 0), float(o.warmup_start_lr) / float(o.lr)

    def factor(s: int) -> float:
        return 1.0 if not warm else start + (1.0 - start) * min(1.0, (s + 1) / warm)

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def clip_gradients(params, o) -> None:
    """Clip the gradient norm to ``o.grad_clip`` (None or 0: no clipping)."""
    if o.grad_clip:
        torch.nn.utils.clip_grad_norm_(params, float(o.grad_clip))


class CodecTrainer:
    """One optimisation step of the VQGAN: autoencoder (L1 + VQ + GAN) then discriminator (hinge).

    Both use Adam with the config's ``optim`` block (lr, betas, weight decay, warm-up, clipping).
    """

    def __init__(self, config, device: torch.device, precision: str = "fp32"):
        self.config, self.precision, self.device = config, check_precision(precision), device
        self.model = VQGAN(config).to(device)
        o = self.optim = config.optim
        self.opt = torch.optim.Adam(
            self.model.autoencoder_parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay
        )
        self.opt_d = torch.optim.Adam(
            self.model.discriminator.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay
        )
        self.sched, self.sched_d = warmup_schedule(self.opt, o), warmup_schedule(self.opt_d, o)

    def step(self, batch: torch.Tensor, step: int) -> dict[str, float]:
        self.model.train()
        with autocast(self.precision, self.device):  # forward in bf16 if asked; backward outside autocast
            loss, recon, logs = self.model.generator_loss(batch, step)
        loss = loss.float()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(self.model.autoencoder_parameters(), self.optim)
        self.opt.step()
        self.sched.step()
        if step >= self.config.disc_start:
            with autocast(self.precision, self.device):
                d_loss, d_logs = self.model.discriminator_loss(batch, recon)
            d_loss = d_loss.float()
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            clip_gradients(self.model.discriminator.parameters(), self.optim)
            self.opt_d.step()
            self.sched_d.step()
            logs.update(d_logs)
        logs["loss"] = loss.item()
        return logs

    @torch.no_grad()
    def validate(self, data) -> float:
        frames = data
        with autocast(self.precision, self.device):
            return float(np.mean([self.model.validation_loss(frames[i : i + 128]) for i in range(0, len(frames), 128)]))

    def diagnose(self, frames: torch.Tensor) -> dict[str, float]:
        """``rewards.models.diagnostics`` of the codec on held-out frames: its reconstruction ``psnr``."""
        return diagnostics(store.CODEC, self.model, frames, self.precision)

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched": self.sched.state_dict(),
            "sched_d": self.sched_d.state_dict(),
        }

    def load_state_dict(self, sd: dict) -> None:
        self.model.load_state_dict(sd["model"])
        self.opt.load_state_dict(sd["opt"])
        self.opt_d.load_state_dict(sd["opt_d"])
        if "sched" in sd:  # states written before the codec had a schedule resume at the full lr
            self.sched.load_state_dict(sd["sched"])
            self.sched_d.load_state_dict(sd["sched_d"])


def _loss_and_logs(out) -> tuple[torch.Tensor, dict]:
    """A model's ``loss`` may return the scalar alone (VideoGPT) or (scalar, logs) (VQ-Diffusion)."""
    if isinstance(out, tuple):
        return out[0], dict(out[1]) if len(out) > 1 else {}
    return out, {}


def ema_average(decay: float):
    """The EMA rule for ``torch.optim.swa_utils.AveragedModel``: ``avg <- d avg + (1 - d) current``.

    ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates: the release's 0.99 every 25 steps is a
    ~2,500-step window, fine at its ~100k steps but at a CPU budget of 1-3k steps it would keep most of
    the random initial weights; the warm-up (as timm's and TF's EMAs) lets the average follow the early
    weights and reach the release's decay after ~900 updates.
    """

    def average(avg: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return d * avg + (1.0 - d) * current

    return average


class VideoModelTrainer:
    """One AdamW step on a video model's ``loss(context, target)``, with the config's ``optim`` block:
    linear warm-up from ``warmup_start_lr``, the gradient norm clipped to ``grad_clip``, and an EMA of the
    weights (``ema_decay`` every ``ema_every`` steps) that validation and the saved model use, as the
    Diffusion Reward release scores with its EMA weights."""

    def __init__(self, name: str, config, device: torch.device, precision: str = "fp32"):
        self.name, self.config, self.precision, self.device = name, config, check_precision(precision), device
        self.model = build_model(name, config).to(device)
        o = self.optim = config.optim
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay
        )
        self.sched = warmup_schedule(self.opt, o)
        decay = getattr(o, "ema_decay", None)
        self.ema = AveragedModel(self.model, avg_fn=ema_average(float(decay)), use_buffers=True) if decay else None
        self.ema_every = int(getattr(o, "ema_every", 1) or 1)

    @property
    def scored(self) -> torch.nn.Module:
        """The weights that are validated and saved: the EMA's when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def step(self, batch, step: int) -> dict[str, float]:
        ctx, tgt = batch
        self.model.train()
        with autocast(self.precision, self.device):  # forward in bf16 if asked; params, AdamW, loss in fp32
            loss, logs = _loss_and_logs(self.model.loss(ctx, tgt))
        loss = loss.float()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(self.model.parameters(), self.optim)
        self.opt.step()
        self.sched.step()
        if self.ema is not None and (step + 1) % self.ema_every == 0:
            self.ema.update_parameters(self.model)
        return {**logs, "loss": loss.item(), "lr": self.sched.get_last_lr()[0]}

    @torch.no_grad()
    def validate(self, data) -> float:
        ctx, tgt = data
        net = self.scored
        net.eval()
        # a stochastic loss (VQ-Diffusion draws t) is evaluated under a fixed seed, without moving the
        # training RNG (so resumed and uninterrupted runs stay identical)
        cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(0)
            with autocast(self.precision, self.device):
                losses = [
                    _loss_and_logs(net.loss(ctx[i : i + 64], tgt[i : i + 64]))[0].item() for i in range(0, len(ctx), 64)
                ]
        return float(np.mean(losses))

    def diagnose(self, data) -> dict[str, float]:
        """``rewards.models.diagnostics`` of the scored (EMA) weights on held-out windows: VQ-Diffusion's copy
        accuracy, VideoGPT's NLL per token, and the sample's token persistence beside the data's. They run
        under ``fork_rng`` with a fixed seed, so the training RNG (and a resumed run) is untouched."""
        return diagnostics(self.name, self.scored, data, self.precision)

    def state_dict(self) -> dict:
        sd = {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict()}
        if self.ema is not None:
            sd["ema"] = self.ema.state_dict()
        return sd

    def load_state_dict(self, sd: dict) -> None:
        if (self.ema is not None) != ("ema" in sd):
            raise ValueError(
                "the training state was written "
                + ("without" if self.ema is not None else "with")
                + " EMA weights, which this config "
                + ("keeps" if self.ema is not None else "does not")
            )
        self.model.load_state_dict(sd["model"])
        self.opt.load_state_dict(sd["opt"])
        self.sched.load_state_dict(sd["sched"])
        if self.ema is not None:
            self.ema.load_state_dict(sd["ema"])


# ---------------------------------------------------------------- data


def _subset(data, n: int, seed: int = 0):
    """A fixed, evenly spread subset of at most n items (validation stays cheap and comparable)."""
    size = len(data[0]) if isinstance(data, tuple) else len(data)
    idx = torch.linspace(0, size - 1, min(n, size)).long()
    return tuple(d[idx] for d in data) if isinstance(data, tuple) else data[idx]


def _batch(data, idx: torch.Tensor, device):
    if isinstance(data, tuple):
        return tuple(d[idx].to(device) for d in data)
    return data[idx].to(device)


# ---------------------------------------------------------------- RNG state


def _rng_state(gen: torch.Generator) -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.random.get_rng_state(),
        "batches": gen.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, gen: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.random.set_rng_state(state["torch"])
    gen.set_state(state["batches"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- the command


def codec_psnr_on_clips(codec, ref: store.ModelRef, tasks: Sequence[str], precision: str) -> float:
    """PSNR of the shared codec (trained on the release's clips) on the held-out frames of ``ref``'s own
    clips: a tail model records it, so whether one codec serves every tail is measured, not assumed."""
    frames = heldout_data(store.CODEC, codec, ref.domain, tasks, None, ref.data_root, precision, ref.expert_kind)
    return diagnostics(store.CODEC, codec, frames, precision)["psnr"]


def pretrain(
    ref: store.ModelRef,
    steps: int | None = None,
    tasks: Sequence[str] | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
    *,
    ckpt_every: int = 500,
    eval_every: int = 500,
    quality: bool = True,
    progress: bool = True,
    precision: str = "fp32",
    log: Callable[[str], Any] = print,
) -> Path:
    """Train (or continue training) the model ``ref`` up to ``steps``; returns its directory.

    ``precision`` (resolved, ``"fp32"`` or ``"bf16"``): the forward passes (and the codec tokens a video model
    trains on) run under that autocast; parameters, AdamW state and losses stay fp32. It is recorded in the
    model's ``meta``; continuing an unfinished model in another precision is refused (one model, one precision).

    Raises ``ModelMissingError`` when a video model's codec is missing (naming the command that makes
    it), and ``tasks.datasets.DatasetMissingError`` when the videos are (unknown names fail when the
    ``ModelRef`` is made).
    """
    if not isinstance(ref, store.ModelRef):
        raise TypeError(f"pretrain wants a rewards.models.store.ModelRef, got {type(ref).__name__}")
    domain, model, preset, context, root = ref.domain, ref.kind, ref.preset, ref.context, ref.data_root
    dev = resolve_device(device)
    task_list = sorted(tasks) if tasks else ref.tasks  # default: the reference's task set
    steps = int(steps if steps is not None else DEFAULT_STEPS[("codec" if ref.is_codec else "video", preset)])
    batch_size = int(batch_size or DEFAULT_BATCH[preset])
    out = ref.dir

    seed_everything(seed)
    if ref.is_codec:
        config = CodecConfig.preset(preset)
        trainer = CodecTrainer(config, dev, precision)

        def load_data():
            return split_frames(domain, task_list, "train", root), split_frames(domain, task_list, "test", root)

        codec_meta = {}
    else:
        codec = ref.codec.load(dev)  # ModelMissingError names the codec command
        config = preset_config(model, preset, context)
        vocab = next(
            (getattr(config, a) for a in ("vocab_size", "num_classes") if hasattr(config, a)),
            codec.config.codebook_size,
        )
        if vocab != codec.config.codebook_size:
            raise ValueError(f"{model} vocabulary {vocab} != codec codebook size {codec.config.codebook_size}")
        trainer = VideoModelTrainer(model, config, dev, precision)

        def load_data():
            clips = ref.expert_kind
            return (
                split_windows(codec, domain, task_list, "train", context, root, precision, clips),
                split_windows(codec, domain, task_list, "test", context, root, precision, clips),
            )

        codec_meta = {"codec_preset": preset, "codec_fingerprint": store.fingerprint(ref.codec.checkpoint)}
        if codec.meta.get("psnr") is not None:  # the codec's own quality, from its last evaluation
            codec_meta["codec_psnr"] = codec.meta["psnr"]
    config_dict = config.to_dict()

    meta = {
        "domain": domain,
        "model": model,
        "preset": preset,
        "context": None if ref.is_codec else context,
        "tasks": task_list,
        "task_set": ref.task_set,
        "expert_tail": ref.expert_tail,
        "batch_size": batch_size,
        "seed": seed,
        "precision": precision,
        **codec_meta,
    }
    gen = torch.Generator().manual_seed(seed)
    state_path, model_path = out / "train_state.pt", out / "model.pt"
    step, history = 0, []
    # A video model is saved as its best-by-validation weights (the EMA's where the config keeps one), as
    # the Diffusion Reward release scores with; the codec is saved as trained.
    selects_best = isinstance(trainer, VideoModelTrainer)
    best: dict[str, Any] = {"step": None, "val_loss": None, "weights": None}
    if state_path.exists():
        st = store.read_checkpoint(state_path)
        # compared as configs, not dicts: a field added since (with its default) is the same config
        if type(config).from_dict(st["config"]) != config or st["meta"]["tasks"] != task_list:
            raise ValueError(
                f"{state_path} was trained with another config or task list "
                f"({st['meta']['tasks']}); delete {out} to retrain, or pass the same --tasks"
            )
        trained_in = st["meta"].get("precision", "fp32")  # states before the field were fp32
        if trained_in != precision and st["step"] < steps:
            raise ValueError(
                f"{state_path} was trained in {trained_in} to step {st['step']}: a model is trained in "
                f"one precision, so continue it with --precision {trained_in}, or delete {out} "
                f"to retrain it in {precision}"
            )
        meta["precision"] = trained_in  # a finished model is used as it is
        try:
            trainer.load_state_dict(st["trainer"])
        except ValueError as e:
            raise ValueError(f"{state_path} cannot be continued: {e}; delete {out} to retrain it") from None
        if selects_best and "best" not in st:
            raise ValueError(
                f"{state_path} was saved before models were selected by validation loss; delete {out} to retrain it"
            )
        best = st.get("best", best)
        _set_rng_state(st["rng"], gen)
        step, history = st["step"], st["history"]
        log(f"resuming {model} from step {step} ({state_path})")

    def checkpoint():
        meta_now = {**meta, "steps": step, "val_loss": history[-1]["val_loss"] if history else None}
        if not selects_best and history and "psnr" in history[-1]:
            meta_now["psnr"] = history[-1]["psnr"]
        state = {
            "config": config_dict,
            "meta": meta_now,
            "step": step,
            "history": history,
            "trainer": trainer.state_dict(),
            "rng": _rng_state(gen),
        }
        if selects_best:
            state["best"] = best
            ema = getattr(config.optim, "ema_decay", None)
            meta_now = {
                **meta_now,
                "val_loss": best["val_loss"],
                "best_step": best["step"],
                "selection": "best validation loss",
                "weights": f"EMA {ema}" if ema else "raw",
            }
        atomic_torch_save(state_path, state)
        if selects_best and best["weights"] is not None:
            store.save_checkpoint(model_path, model, config_dict, meta_now, best["weights"])
        elif not selects_best:
            store.save_checkpoint(model_path, model, config_dict, meta_now, trainer.model)
        atomic_write_json(out / "history.json", history)

    if step >= steps:
        log(f"{model} already trained for {step} >= {steps} steps: nothing to do ({out})")
        if not model_path.exists():
            checkpoint()
        return out

    # Loading (and, for video models, tokenising) the videos is the slow part of a call that finds the
    # model already trained, so it happens only once training is certain.
    train, val = load_data()
    if ref.expert_tail != 0:  # a tail model reads its clips through the shared codec: how well it renders them
        meta["codec_psnr_clips"] = codec_psnr_on_clips(codec, ref, task_list, precision)
    val = _subset(val, VAL_LIMIT)
    diag_val = evenly_spaced(val, DIAG_WINDOWS)
    n_train = len(train[0]) if isinstance(train, tuple) else len(train)

    start = time.time()
    with tqdm(
        total=steps, initial=step, desc=f"pretrain {domain}/{model}_{preset}", unit="step", disable=not progress
    ) as bar:
        logs: dict[str, float] = {}
        while step < steps:
            idx = torch.randint(0, n_train, (batch_size,), generator=gen)
            logs = trainer.step(_batch(train, idx, dev), step)
            step += 1
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{logs['loss']:.4f}")
            if step % eval_every == 0 or step == steps:
                v = trainer.validate(
                    _batch(val, torch.arange(len(val[0]) if isinstance(val, tuple) else len(val)), dev)
                )
                diag = trainer.diagnose(diag_val)
                history.append(
                    {
                        "step": step,
                        "train_loss": logs["loss"],
                        "val_loss": v,
                        **diag,
                        "seconds": round(time.time() - start, 2),
                    }
                )
                bar.write(
                    f"step {step}: train loss {logs['loss']:.4f}, validation loss {v:.4f}, "
                    + ", ".join(f"{k} {x:.4g}" for k, x in diag.items())
                )
                if selects_best and (best["val_loss"] is None or v < best["val_loss"]):
                    best = {
                        "step": step,
                        "val_loss": v,
                        "weights": {k: t.detach().clone().cpu() for k, t in trainer.scored.state_dict().items()},
                    }
            if step % ckpt_every == 0 or step == steps:
                checkpoint()
    log(f"{model} trained to step {step} in {time.time() - start:.0f}s -> {model_path}")
    if quality:
        write_report([ref], device=dev, tasks=task_list, log=log)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m rewards.models.pretrain", description=__doc__.split("\n")[0].replace("``", "")
    )
    p.add_argument("--domain", required=True, choices=list(DOMAINS), help="which domain's videos")
    p.add_argument(
        "--model",
        required=True,
        choices=store.model_kinds(),
        help="the codec, or a video model (which needs its codec first)",
    )
    p.add_argument("--preset", default="small", choices=list(PRESETS), help="model size (default small)")
    p.add_argument("--context", type=int, default=2, help="context frames l of a video model (default 2)")
    p.add_argument(
        "--task-set",
        default=store.DEFAULT_TASK_SET,
        choices=list(TASK_SETS),
        help="which tasks' videos it is trained on (default: seen, the domain's seen tasks); part of "
        "the model's directory name unless the default",
    )
    p.add_argument(
        "--expert-tail",
        type=expert_tail_arg,
        default=0,
        help="a video model trained on expert clips that keep this many steps after the first success "
        "(python -m tasks.collect --expert-tail; 'full': up to the horizon); default 0, clips that end at it "
        "as the release's; part of the model's directory name unless 0. The codec is shared by every tail",
    )
    p.add_argument("--tasks", nargs="+", default=None, help="default: the tasks of --task-set")
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="train up to this many steps in total (default: "
        + ", ".join(f"{k[0]} {k[1]} {v}" for k, v in DEFAULT_STEPS.items())
        + ")",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_BATCH.items()),
    )
    p.add_argument("--data-root", default=None, help="datasets and models (default $VRB_DATA_ROOT or ./data)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument(
        "--precision",
        default=DEFAULT_PRECISION,
        choices=list(PRECISIONS),
        help=f"auto (bf16 where the hardware does it natively), bf16 or fp32 (default {DEFAULT_PRECISION}); "
        "recorded in the model's meta",
    )
    p.add_argument("--seed", type=int, default=0, help="default 0")
    p.add_argument(
        "--ckpt-every", type=positive_int, default=500, help="checkpoint every this many steps (default 500)"
    )
    p.add_argument(
        "--eval-every", type=positive_int, default=500, help="validation loss every this many steps (default 500)"
    )
    p.add_argument("--no-quality", action="store_true", help="skip the model-quality report at the end")
    a = p.parse_args(argv)

    if a.model == store.CODEC and check_tail(a.expert_tail) != 0:
        p.error(
            "--expert-tail names a video model's training clips; the codec is shared by every tail (trained on "
            "the release's clips): train it without --expert-tail"
        )

    def action():
        ref = store.ModelRef(a.domain, a.model, a.preset, a.context, a.data_root, a.task_set, a.expert_tail)
        precision = resolve_precision(a.precision, resolve_device(a.device))
        pretrain(
            ref,
            a.steps,
            a.tasks,
            a.batch_size,
            a.device,
            a.seed,
            ckpt_every=a.ckpt_every,
            eval_every=a.eval_every,
            quality=not a.no_quality,
            precision=precision,
        )

    return run_reporting_user_errors(action, (store.ModelMissingError, DatasetMissingError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
