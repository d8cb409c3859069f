"""Where pretrained codecs and video models live, and how they are saved and loaded.

Layout (docs/interfaces.md) under ``tasks.io.data_root()/models/<domain>/``:

    codec_<preset>/            model.pt  train_state.pt  tokens_<split>_<key>.pt  quality/
    <model>_<preset>_l<L>/     model.pt  train_state.pt  stats.json  quality/

``model.pt`` holds ``{"format", "name", "config", "meta", "state_dict"}``: ``config`` is the model
config as a plain dict, ``meta`` what it was trained on (domain, tasks, preset, context, steps, codec
preset). The tasks list is what the zero-shot suite checks unseen tasks against. A loaded model
carries ``meta`` as ``model.meta``.

A missing model raises ``ModelMissingError`` (a ``FileNotFoundError``) whose message is the exact
command that makes it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from tasks.io import atomic_torch_save, data_root

DOMAINS = ("metaworld", "adroit")
PRESETS = ("small", "paper")
FORMAT = 1


class ModelMissingError(FileNotFoundError):
    """A pretrained codec or video model is not on disk; the message names the command that makes it."""


def check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; valid: {', '.join(DOMAINS)}")


def check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")


def models_root(root: str | os.PathLike | None = None) -> Path:
    return data_root(root) / "models"


def codec_dir(domain: str, preset: str, root=None) -> Path:
    check_domain(domain)
    check_preset(preset)
    return models_root(root) / domain / f"codec_{preset}"


def video_model_dir(domain: str, model: str, preset: str, context: int, root=None) -> Path:
    check_domain(domain)
    check_preset(preset)
    return models_root(root) / domain / f"{model}_{preset}_l{int(context)}"


def model_dir(domain: str, model: str, preset: str, context: int = 2, root=None) -> Path:
    """The directory of ``model`` ("codec" or a video model name)."""
    if model == "codec":
        return codec_dir(domain, preset, root)
    return video_model_dir(domain, model, preset, context, root)


def pretrain_command(domain: str, model: str, preset: str, context: int = 2, root=None) -> str:
    """The command line that trains ``model`` (used in every 'missing model' message)."""
    cmd = f"python -m rewards.models.pretrain --domain {domain} --model {model} --preset {preset}"
    if model != "codec":
        cmd += f" --context {int(context)}"
    if root is not None:
        cmd += f" --data-root {root}"
    return cmd


def save_checkpoint(path: Path, name: str, config: dict, meta: dict, module: torch.nn.Module) -> Path:
    """Write ``model.pt`` atomically (weights moved to CPU so it loads anywhere)."""
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    return atomic_torch_save(path, {"format": FORMAT, "name": name, "config": config, "meta": meta,
                                    "state_dict": state})


def read_checkpoint(path: Path) -> dict[str, Any]:
    # Files written by this project only; weights_only=False because configs may hold tuples/lists.
    return torch.load(path, map_location="cpu", weights_only=False)


def fingerprint(path: Path) -> str:
    """Cheap identity of a checkpoint file: size and modification time (changes on every rewrite)."""
    st = Path(path).stat()
    return f"{st.st_size}-{st.st_mtime_ns}"


def load_codec(domain: str, preset: str = "small", device: str | torch.device = "cpu", root=None):
    """The frozen codec of ``domain`` at ``preset``, in eval mode on ``device``."""
    from rewards.models.codec import VQGAN, codec_config_from_dict

    path = codec_dir(domain, preset, root) / "model.pt"
    if not path.exists():
        raise ModelMissingError(f"no {preset} codec for {domain} at {path}; make it with: "
                                f"{pretrain_command(domain, 'codec', preset, root=root)}")
    ckpt = read_checkpoint(path)
    codec = VQGAN(codec_config_from_dict(ckpt["config"]))
    codec.load_state_dict(ckpt["state_dict"])
    codec.meta = ckpt.get("meta", {})
    return codec.to(device).eval().requires_grad_(False)


def load_video_model_only(domain: str, model: str, preset: str = "small", context: int = 2,
                          device: str | torch.device = "cpu", root=None) -> torch.nn.Module:
    from rewards.models.video_model import build_model, config_class, config_from_dict

    path = video_model_dir(domain, model, preset, context, root) / "model.pt"
    if not path.exists():
        raise ModelMissingError(f"no {model} ({preset}, context {context}) for {domain} at {path}; make it with: "
                                f"{pretrain_command(domain, model, preset, context, root)}")
    ckpt = read_checkpoint(path)
    net = build_model(model, config_from_dict(config_class(model), ckpt["config"]))
    net.load_state_dict(ckpt["state_dict"])
    net.meta = ckpt.get("meta", {})
    return net.to(device).eval().requires_grad_(False)


def load_video_model(domain: str, model: str, preset: str = "small", context: int = 2,
                     device: str | torch.device = "cpu", root=None):
    """(codec, video model), both frozen in eval mode on ``device``.

    Raises ``ModelMissingError`` naming the pretraining command when either is missing, ValueError
    for an unknown model/domain/preset.
    """
    from rewards.models.video_model import video_model_names

    if model not in video_model_names():
        raise ValueError(f"unknown video model {model!r}; valid: {', '.join(video_model_names())}")
    net = load_video_model_only(domain, model, preset, context, device, root)
    codec = load_codec(domain, net.meta.get("codec_preset", preset), device, root)
    return codec, net


# ---------------------------------------------------------------- token cache

def _files_signature(files) -> list:
    return [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def episode_tokens(codec, domain: str, tasks, kind: str = "expert", split: str = "train",
                   root=None) -> dict[str, list[torch.Tensor]]:
    """Codec tokens of every episode of each task: ``{task: [int16 [T+1, 64], ...]}`` (CPU).

    Tokenising is the slow part of preparing video-model data, so each (task, kind, split) is encoded
    once and cached under ``codec_<preset>/tokens/<task>/``, keyed by the codec's fingerprint and the
    names, sizes and mtimes of the episode files; a retrained codec or re-recorded episode re-encodes.
    Missing datasets raise ``tasks.datasets.DatasetMissingError`` (naming ``python -m tasks.collect``).
    """
    from tasks.datasets import episode_dir, load_episodes, read_episode

    preset = getattr(codec, "meta", {}).get("preset")  # set by load_codec; an unsaved codec is not cached
    ckpt = codec_dir(domain, preset, root) / "model.pt" if preset else None
    codec_key = fingerprint(ckpt) if ckpt is not None and ckpt.exists() else "unsaved"
    out = {}
    for task in tasks:
        d = episode_dir(domain, task, kind, split, root)
        files = sorted(d.glob("ep_*.npz")) if d.is_dir() else []
        if not files:
            load_episodes(domain, [task], kind, split, root)  # raises DatasetMissingError naming the command
        key = {"codec": codec_key, "files": _files_signature(files)}
        cache = codec_dir(domain, preset, root) / "tokens" / task / f"{kind}_{split}.pt" if preset else None
        if cache is not None and cache.exists():
            try:
                c = torch.load(cache, map_location="cpu", weights_only=False)
                if c["key"] == key:
                    out[task] = c["tokens"]
                    continue
            except Exception:  # unreadable cache: re-encode
                pass
        tokens = [codec.encode(torch.from_numpy(read_episode(f).frames)).to(torch.int16).cpu() for f in files]
        if codec_key != "unsaved":
            atomic_torch_save(cache, {"key": key, "tokens": tokens})
        out[task] = tokens
    return out
