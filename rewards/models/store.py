"""Where pretrained codecs and video models live, and how they are saved and loaded.

Layout (docs/interfaces.md) under ``common.io.data_root()/models/<domain>/``:

    codec_<preset>/            model.pt  train_state.pt  tokens_<split>_<key>.pt  quality/
    <model>_<preset>_l<L>/     model.pt  train_state.pt  stats.json  quality/

``model.pt`` holds ``{"format", "name", "config", "meta", "state_dict"}``: ``config`` is the model
config as a plain dict, ``meta`` what it was trained on (domain, tasks, preset, context, steps, codec
preset). The tasks list is what the zero-shot suite checks unseen tasks against. A loaded model
carries ``meta`` as ``model.meta`` and its reference as ``model.ref``.

A model is named by a :class:`ModelRef` (domain, kind, preset, context, data root, task set): its ``dir``,
the ``command`` that trains it and ``load(device)``. The task set (``tasks.registry.TASK_SETS``) says which
tasks' expert videos it is trained on; the default, ``seen``, leaves the directory name as it always was
(``codec_small``), another set is appended to it (``codec_small_genreward``,
``vqdiffusion_small_l2_genreward``), so models of different task sets never share a directory. The expert tail
(``tasks.datasets.check_tail``: post-success steps kept in the training clips, default 0 as the release) works
the same way: a video model trained on ``expert_tail20`` clips is ``vqdiffusion_small_l2_tail20`` (the one
naming rule is ``tasks.datasets.tail_suffix``). A missing model raises
``ModelMissingError`` (a
``FileNotFoundError``) whose message is the exact command that makes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from common.io import atomic_torch_save, data_root
from rewards.models import PRESETS
from rewards.models.codec import VQGAN, CodecConfig
from rewards.models.video_model import build_model, config_class, video_model_names
from tasks.datasets import check_tail, episode_dir, expert_kind, load_episodes, read_episode, tail_suffix
from tasks.registry import DEFAULT_TASK_SET, DOMAINS
from tasks.registry import task_set as task_set_tasks

FORMAT = 1
#: the model kind of the codec; the video models' kinds are ``rewards.models.video_model.VIDEO_MODELS``
CODEC = "codec"


class ModelMissingError(FileNotFoundError):
    """A pretrained codec or video model is not on disk; the message names the command that makes it."""


def model_kinds() -> list[str]:
    """Every kind of model the store keeps: the codec and each video model."""
    return [CODEC, *video_model_names()]


def models_root(root: str | os.PathLike | None = None) -> Path:
    return data_root(root) / "models"


@dataclass(frozen=True)
class ModelRef:
    """Which pretrained model: domain, kind ("codec" or a video model), size preset, context, data root, the
    task set it is trained on (``tasks.registry.TASK_SETS``; default ``seen``, the domain's seen tasks) and
    the expert tail of its training clips (``tasks.datasets.check_tail``; default 0, the release's clips).

    These always travel together (where a model lives, the command that trains it, how it loads), so
    they are one value instead of seven arguments passed in changing orders. Bad names fail when the
    reference is made, listing the valid ones. The codec has no context: its ``context`` is stored as 0,
    so every reference to one codec compares equal.

    Nor has the codec a tail: every tail's video model is trained on, and scores through, the codec of the
    release's clips (its ``expert_tail`` is stored as 0). Why one codec: it encodes single frames, and a
    post-success frame shows the scene of the success frame every clip already ends with (the arm at the
    goal, held there), so a codec of the tail's frames would learn the same images again; and with one
    codec a tail model and the default one read identical tokens, so a difference in their rewards is the
    video model's training clips alone. The tail model's meta records the shared codec's PSNR on its own
    clips' held-out frames (``codec_psnr_clips``), so that claim is checked for every tail model trained.
    """

    domain: str
    kind: str
    preset: str = "small"
    context: int = 2
    data_root: str | os.PathLike | None = None
    task_set: str = DEFAULT_TASK_SET
    expert_tail: int | str = 0

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"unknown domain {self.domain!r}; valid: {', '.join(DOMAINS)}")
        task_set_tasks(self.task_set, self.domain)  # an unknown set, or one without tasks here, lists the valid ones
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        kinds = model_kinds()
        if self.kind not in kinds:
            raise ValueError(f"unknown model {self.kind!r}; valid: {', '.join(kinds)}")
        object.__setattr__(self, "expert_tail", 0 if self.is_codec else check_tail(self.expert_tail))
        if self.is_codec:
            object.__setattr__(self, "context", 0)
        elif isinstance(self.context, bool) or int(self.context) != self.context or self.context < 1:
            raise ValueError(f"context: expected a number of frames >= 1, got {self.context!r}")
        else:
            object.__setattr__(self, "context", int(self.context))

    @property
    def is_codec(self) -> bool:
        return self.kind == CODEC

    @property
    def name(self) -> str:
        """The directory name: ``codec_<preset>`` or ``<model>_<preset>_l<context>``, then ``_<task set>``
        unless it is the default set and ``_tail<N>`` unless the tail is 0 (so the directories of existing
        models stay valid)."""
        base = f"codec_{self.preset}" if self.is_codec else f"{self.kind}_{self.preset}_l{self.context}"
        base = base if self.task_set == DEFAULT_TASK_SET else f"{base}_{self.task_set}"
        return base + tail_suffix(self.expert_tail)

    @property
    def expert_kind(self) -> str:
        """The dataset kind of its training clips (``tasks.datasets.expert_kind``): ``expert`` for the codec
        and the default tail, ``expert_tail<N>`` otherwise."""
        return expert_kind(self.expert_tail)

    @property
    def tasks(self) -> list[str]:
        """The tasks of its task set: what ``pretrain`` trains it on unless told otherwise."""
        return task_set_tasks(self.task_set, self.domain)

    @property
    def dir(self) -> Path:
        return models_root(self.data_root) / self.domain / self.name

    @property
    def checkpoint(self) -> Path:
        return self.dir / "model.pt"

    def exists(self) -> bool:
        return self.checkpoint.exists()

    @property
    def codec(self) -> "ModelRef":
        """The codec a video model of this preset is trained on (the codec itself for a codec)."""
        return ModelRef(self.domain, CODEC, self.preset, data_root=self.data_root, task_set=self.task_set)

    @property
    def command(self) -> str:
        """The command line that trains this model (every 'missing model' message names it)."""
        cmd = f"python -m rewards.models.pretrain --domain {self.domain} --model {self.kind} --preset {self.preset}"
        if not self.is_codec:
            cmd += f" --context {self.context}"
        if self.task_set != DEFAULT_TASK_SET:
            cmd += f" --task-set {self.task_set}"
        if self.expert_tail != 0:
            cmd += f" --expert-tail {self.expert_tail}"
        if self.data_root is not None:
            cmd += f" --data-root {self.data_root}"
        return cmd

    def missing(self) -> ModelMissingError:
        what = f"{self.preset} codec" if self.is_codec else f"{self.kind} ({self.preset}, context {self.context})"
        if self.task_set != DEFAULT_TASK_SET:
            what += f" of the {self.task_set} task set"
        if self.expert_tail != 0:
            what += f" trained on expert clips with post-success tail {self.expert_tail}"
        return ModelMissingError(f"no {what} for {self.domain} at {self.checkpoint}; make it with: {self.command}")

    def load(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The frozen model, in eval mode on ``device``, with ``.meta`` (what it was trained on) and ``.ref``.

        Raises ``ModelMissingError`` naming the pretraining command when it is not on disk.
        """
        if not self.exists():
            raise self.missing()
        try:
            ckpt = read_checkpoint(self.checkpoint)
            ckpt["state_dict"], ckpt["config"]
        except Exception as e:  # truncated by a full disk or a killed copy: say which file and how to remake it
            raise ModelMissingError(
                f"{self.checkpoint} cannot be read (truncated or corrupted: {type(e).__name__}: "
                f"{str(e).split('. ')[0].splitlines()[0] if str(e) else ''}); delete it and rebuild it with: "
                f"{self.command}"
            ) from None
        if self.is_codec:
            net = VQGAN(CodecConfig.from_dict(ckpt["config"]))
        else:
            net = build_model(self.kind, config_class(self.kind).from_dict(ckpt["config"]))
        net.load_state_dict(ckpt["state_dict"])
        net.meta = ckpt.get("meta", {})
        net.ref = self
        return net.to(device).eval().requires_grad_(False)

    def load_with_codec(self, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, torch.nn.Module]:
        """(codec, video model), both frozen on ``device``; the codec is the one the model was trained on."""
        if self.is_codec:
            raise ValueError(f"{self.name} is a codec; load_with_codec wants a video model reference")
        net = self.load(device)
        codec_preset = net.meta.get("codec_preset", self.preset)
        codec = ModelRef(self.domain, CODEC, codec_preset, data_root=self.data_root, task_set=self.task_set)
        return codec.load(device), net


def save_checkpoint(
    path: Path, name: str, config: dict, meta: dict, weights: torch.nn.Module | dict[str, torch.Tensor]
) -> Path:
    """Write ``model.pt`` atomically from a module or a state dict (weights moved to CPU so it loads anywhere)."""
    sd = weights.state_dict() if isinstance(weights, torch.nn.Module) else weights
    state = {k: v.detach().cpu() for k, v in sd.items()}
    return atomic_torch_save(
        path, {"format": FORMAT, "name": name, "config": config, "meta": meta, "state_dict": state}
    )


def read_checkpoint(path: Path) -> dict[str, Any]:
    # Files written by this project only; weights_only=False because configs may hold tuples/lists.
    return torch.load(path, map_location="cpu", weights_only=False)


def fingerprint(path: Path) -> str:
    """Cheap identity of a checkpoint file: size and modification time (changes on every rewrite)."""
    st = Path(path).stat()
    return f"{st.st_size}-{st.st_mtime_ns}"


# ---------------------------------------------------------------- token cache


def _files_signature(files) -> list:
    return [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]


def episode_tokens(
    codec, domain: str, tasks, kind: str = "expert", split: str = "train", root=None, precision: str = "fp32"
) -> dict[str, list[torch.Tensor]]:
    """Codec tokens of every episode of each task: ``{task: [int16 [T+1, 64], ...]}`` (CPU).

    Tokenising is the slow part of preparing video-model data, so each (task, kind, split) is encoded
    once and cached under ``codec_<preset>/tokens/<task>/``, keyed by the codec's fingerprint and the
    names, sizes and mtimes of the episode files; a retrained codec or re-recorded episode re-encodes.
    Missing datasets raise ``tasks.datasets.DatasetMissingError`` (naming ``python -m tasks.collect``).
    ``precision`` is that of the encoder (``codec.encode``); bf16 tokens are cached apart
    (``<kind>_<split>_bf16.pt``), since a bf16 encoder may pick another code for a few patches.
    """
    # the cache lives beside the codec it was encoded with: a codec loaded from the store carries its ``ref``
    # (which knows its task set); an unsaved codec is not cached
    cref = getattr(codec, "ref", None)
    preset = getattr(codec, "meta", {}).get("preset")
    codec_dir = (
        cref.dir
        if isinstance(cref, ModelRef)
        else ModelRef(domain, CODEC, preset, data_root=root).dir
        if preset
        else None
    )
    codec_key = (
        fingerprint(codec_dir / "model.pt")
        if codec_dir is not None and (codec_dir / "model.pt").exists()
        else "unsaved"
    )
    out = {}
    for task in tasks:
        d = episode_dir(domain, task, kind, split, root)
        files = sorted(d.glob("ep_*.npz")) if d.is_dir() else []
        if not files:
            load_episodes(domain, [task], kind, split, root)  # raises DatasetMissingError naming the command
        key = {"codec": codec_key, "files": _files_signature(files)}
        suffix = "" if precision == "fp32" else f"_{precision}"
        cache = codec_dir / "tokens" / task / f"{kind}_{split}{suffix}.pt" if codec_dir is not None else None
        if cache is not None and cache.exists():
            try:
                c = torch.load(cache, map_location="cpu", weights_only=False)
                if c["key"] == key:
                    out[task] = c["tokens"]
                    continue
            except Exception:  # unreadable cache: re-encode
                pass
        tokens = [
            codec.encode(torch.from_numpy(read_episode(f).frames), precision=precision).to(torch.int16).cpu()
            for f in files
        ]
        if codec_key != "unsaved":
            atomic_torch_save(cache, {"key": key, "tokens": tokens})
        out[task] = tokens
    return out
