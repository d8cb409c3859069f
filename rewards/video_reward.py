"""Pretrained video-model rewards: Diffusion Reward, VIPER, VIPER-std and the CE/LL and noise ablations.

Every one of them is the same computation (docs/models-and-rewards.md#rewards)::

    r_t = (1 - alpha) * (s_t - mu_task) / sigma_task + beta * r_env_t     (episode end, frozen in replay)
        + alpha * r_rnd(o_{t+n})                                        (update time, on the n-step return)

with s_t the score of a frozen video model over the codec tokens of the episode (one score per
transition, windows aligned as in ``rewards.models.video_model``), mu/sigma the score statistics of that task's
expert training videos under the same model and settings (``rewards.models.reward_stats``; with
``zero_shot_stats="seen"`` the pooled statistics of the seen tasks instead), beta = 1, and the
RND bonus trained online (update interval 1 on MetaWorld, 100 on Adroit, as the release's scripts). The
providers differ only in the model, the score and the defaults, so each is a few class attributes:

| name | model | score | alpha | standardised |
|---|---|---|---|---|
| diffusion_reward | VQ-Diffusion | CE | 0.95 (pen 0.0) | yes |
| diffusion_reward_nonoise | VQ-Diffusion | CE without Gumbel noise | 0.95 (pen 0.0) | yes |
| diffusion_ll | VQ-Diffusion | LL (context-only condition) | 0.95 | yes |
| viper | VideoGPT | LL | 0.5 | no (raw LL) |
| viper_std | VideoGPT | LL | 0.5 | yes |
| viper_ce | VideoGPT | CE | 0.5 | yes |

``expert_tail=N`` (``--methods diffusion_reward:expert_tail=20``; ``full``: up to the horizon) uses the video
model trained on expert clips that keep N steps after the first success (``rewards.models.store.ModelRef``),
standardised over those clips; the default 0 is the release's clips, which end at the success, so that
model never saw the post-success frames RL episodes are full of.

The whole episode is scored in one batched call when it ends. A non-finite reward is never returned: a
ValueError names the provider, task and episode frames (the trainer then stops with its last good
checkpoint kept).
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from common.runtime import resolve_device
from rewards.base import RewardProvider, validate_episode
from rewards.models import reward_stats
from rewards.models.pretrain import pretrain
from rewards.models.store import ModelRef
from rewards.models.video_model import score_episode_tokens
from rewards.prepare import PrepareRequest
from rewards.rnd import RNDReward
from tasks.collect import collect
from tasks.datasets import collect_command

#: (model, steps) whose preparation this process has already announced (``VideoReward.prepare``)
_ANNOUNCED: set = set()

#: how an episode's scores are standardised: "task" (the paper's: that task's own expert videos, also for an
#: unseen task) or "seen" (strict zero-shot: pooled statistics of the tasks the model was trained on)
ZERO_SHOT_STATS = ("task", "seen")


class VideoModelReward(RewardProvider):
    uses_video_model = True
    #: what changes the artefacts: the model (context, task set, expert tail), the statistics' score settings
    #: (steps, noise) and which statistics (zero_shot_stats: the task's own or the seen tasks' pooled)
    prepare_overrides = ("context", "steps", "noise", "task_set", "zero_shot_stats", "expert_tail")
    score_only = {"alpha": 0.0, "beta": 0.0}
    model_name: ClassVar[str] = ""
    score_kind: ClassVar[str] = ""  # "ce" | "ll"
    standardise: ClassVar[bool] = True
    default_alpha: ClassVar[float] = 0.5
    task_alpha: ClassVar[Mapping[str, float]] = {}
    default_noise: ClassVar[bool] = True

    def __init__(
        self,
        *,
        task: str,
        domain: str,
        device: Any = "cpu",
        data_root: Any = None,
        seed: int = 0,
        alpha: float | None = None,
        beta: float = 1.0,
        steps: int = 10,
        noise: bool | None = None,
        context: int = 2,
        preset: str = "small",
        rnd_update_interval: int | None = None,
        image_size: int = 64,
        task_set: str = "seen",
        zero_shot_stats: str = "task",
        precision: str = "fp32",
        expert_tail: int | str = 0,
    ) -> None:
        """``task_set``: the tasks the video model is pretrained on (``tasks.registry.TASK_SETS``; ``seen``, the
        paper's, or e.g. ``genreward`` in the genreward5 suite). ``zero_shot_stats``: ``task`` (the paper's
        setting: mu/sigma from the task's own expert videos, which for an unseen task is expert data of the
        unseen task) or ``seen`` (strict zero-shot: the pooled statistics of the tasks the model was trained
        on; no file of the task is read). ``expert_tail``: steps after the first success kept in the expert
        clips the model is trained on and standardised over (``tasks.datasets.check_tail``; 0, the release's
        clips; ``full``)."""
        # precision (resolved, fp32|bf16): codec encoding and scoring run under it, and mu/sigma are the
        # statistics computed at the same precision (their cache is keyed by it); it is the run config's
        # "precision", not one of params (a checkpoint's params stay comparable with older ones)
        super().__init__(task=task, domain=domain, device=device, data_root=data_root, seed=seed, precision=precision)

        alpha = self.task_alpha.get(task, self.default_alpha) if alpha is None else float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha: expected a number in [0, 1], got {alpha}")
        noise = self.default_noise if noise is None else bool(noise)
        if int(steps) < 1:
            raise ValueError(f"steps: expected a number of denoising steps >= 1, got {steps}")
        self.alpha, self.beta, self.steps, self.noise = alpha, float(beta), int(steps), noise
        self.context, self.preset, self.image_size = int(context), preset, int(image_size)
        if zero_shot_stats not in ZERO_SHOT_STATS:
            raise ValueError(
                f"zero_shot_stats: unknown setting {zero_shot_stats!r}; valid: {', '.join(ZERO_SHOT_STATS)}"
            )
        self.bonus_scale = alpha
        self.ref = ModelRef(domain, self.model_name, preset, self.context, data_root, task_set, expert_tail)
        self.codec, self.model = self.ref.load_with_codec(self.device)
        self.mu, self.sigma = 0.0, 1.0
        stats_tasks = None
        if self.standardise and zero_shot_stats == "seen":
            pooled = reward_stats.pooled_stats(
                self.ref,
                self.score_kind,
                steps=self.steps,
                noise=noise,
                seed=0,
                device=self.device,
                loaded=(self.codec, self.model),
                precision=self.precision,
            )
            self.mu, self.sigma, stats_tasks = pooled["mean"], pooled["std"], pooled["tasks"]
        elif self.standardise:
            stats = reward_stats.task_stats(
                self.ref,
                self.score_kind,
                steps=self.steps,
                noise=noise,
                tasks=[task],
                seed=0,
                device=self.device,
                loaded=(self.codec, self.model),
                precision=self.precision,
            )
            if task not in stats:
                raise FileNotFoundError(
                    f"{self.name}: no expert training videos of {task!r} to standardise its rewards; make them "
                    f"with: {collect_command(domain, [task], root=data_root, expert_tail=self.ref.expert_tail)}"
                )
            self.mu, self.sigma, stats_tasks = stats[task]["mean"], stats[task]["std"], [task]
        # RND bonus (alpha > 0): the same networks and schedule as the `rnd` provider
        self.rnd = (
            RNDReward(
                task=task,
                domain=domain,
                device=self.device,
                seed=seed,
                bonus_scale=1.0,
                update_interval=rnd_update_interval,
                image_size=image_size,
            )
            if alpha > 0
            else None
        )
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.episodes = 0
        self.params = {
            "model": self.model_name,
            "score": self.score_kind,
            "alpha": alpha,
            "beta": self.beta,
            "steps": self.steps,
            "noise": noise,
            "context": self.context,
            "preset": preset,
            "standardised": self.standardise,
            "mu": self.mu,
            "sigma": self.sigma,
            "task_set": task_set,
            "zero_shot_stats": zero_shot_stats,
            "stats_tasks": stats_tasks,
            "rnd_update_interval": self.rnd.update_interval if self.rnd else None,
            "trained_on": list(getattr(self.model, "meta", {}).get("tasks", [])),
        }
        if self.ref.expert_tail != 0:  # only then: the params of default runs stay those their checkpoints hold
            self.params["expert_tail"] = self.ref.expert_tail

    # -- upstream artefacts ------------------------------------------------------------------------
    @classmethod
    def prepare(cls, request: PrepareRequest, log: Any = print) -> None:
        """Record the videos, pretrain codec and video model on the task set's tasks, compute stats.

        Each step is skipped when its artefact is already there (pretraining resumes up to
        each model's ``request.steps_for(kind)``), so calling it again costs almost nothing. The request's overrides
        ``context``, ``steps``, ``noise``, ``task_set``, ``zero_shot_stats`` and ``expert_tail`` are the
        method's (the constructor's defaults otherwise). Strict zero-shot (``zero_shot_stats="seen"``) records
        and scores the training tasks' videos only: the request's own tasks need no expert video. With an
        expert tail, the tail's clips are recorded for the model and its statistics, and the release's clips
        of the training tasks for the codec every tail shares.
        """
        r = request
        context, steps, noise = cls.setting(r, "context"), cls.setting(r, "steps"), cls.setting(r, "noise")
        strict = cls.setting(r, "zero_shot_stats")
        if strict not in ZERO_SHOT_STATS:
            raise ValueError(f"zero_shot_stats: unknown setting {strict!r}; valid: {', '.join(ZERO_SHOT_STATS)}")
        strict = strict == "seen"
        device = str(resolve_device(r.device))
        ref = ModelRef(
            r.domain,
            cls.model_name,
            r.preset,
            context,
            r.data_root,
            cls.setting(r, "task_set"),
            cls.setting(r, "expert_tail"),
        )
        train_on = ref.tasks
        clips = sorted(set(train_on) | (set() if strict else set(r.tasks)))
        collect(r.domain, clips, episodes=r.expert_episodes, root=r.data_root, expert_tail=ref.expert_tail)
        if ref.expert_tail != 0:  # the shared codec's clips
            collect(r.domain, train_on, episodes=r.expert_episodes, root=r.data_root)
        for model in (ref.codec, ref):
            # providers sharing a model (viper, viper_std; every method's codec) announce it once per launch
            key = (model, r.steps_for(model.kind))
            first = key not in _ANNOUNCED
            _ANNOUNCED.add(key)
            if first:
                log(f"pretraining {r.domain} {model.name} if needed")
            pretrain(
                model,
                steps=r.steps_for(model.kind),
                tasks=train_on,
                device=device,
                quality=r.reports,
                log=log if first else (lambda message: None),
                precision=r.precision,
            )
        if cls.standardise:
            noise = cls.default_noise if noise is None else bool(noise)
            if strict:
                reward_stats.pooled_stats(
                    ref, cls.score_kind, steps=steps, noise=noise, device=device, precision=r.precision
                )
            else:
                reward_stats.task_stats(
                    ref,
                    cls.score_kind,
                    steps=steps,
                    noise=noise,
                    tasks=list(r.tasks),
                    device=device,
                    precision=r.precision,
                )

    # -- rewards -----------------------------------------------------------------------------------
    def scores(self, frames: np.ndarray) -> np.ndarray:
        """The model's score of each transition of an episode, float32 [T] (one batched call)."""
        with torch.no_grad():
            tokens = self.codec.encode(
                torch.from_numpy(np.ascontiguousarray(frames)).to(self.device), precision=self.precision
            )
            s = score_episode_tokens(
                self.model,
                tokens,
                self.score_kind,
                steps=self.steps,
                noise=self.noise,
                generator=self.generator,
                batch_size=max(1, frames.shape[0]),
                precision=self.precision,
            )
        return s.cpu().numpy().astype(np.float32)

    def label_episode(self, frames: np.ndarray, env_rewards: np.ndarray) -> np.ndarray:
        frames, env_rewards = validate_episode(frames, env_rewards, self.image_size)
        s = self.scores(frames)
        r = (1.0 - self.alpha) * (s - self.mu) / self.sigma + self.beta * env_rewards
        self.episodes += 1
        if not np.all(np.isfinite(r)):
            bad = np.flatnonzero(~np.isfinite(r))
            raise ValueError(
                f"{self.name}: non-finite reward on task {self.task!r}, episode {self.episodes} "
                f"of this provider, transitions {bad[:5].tolist()}"
            )
        return r.astype(np.float32)

    def bonus(self, batch: Mapping[str, Any]) -> "torch.Tensor | None":
        return self.rnd.bonus(batch) if self.rnd is not None else None

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        return self.rnd.update(batch, step) if self.rnd is not None else {}

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "rnd": self.rnd.state_dict() if self.rnd else None,
            "generator": self.generator.get_state(),
            "episodes": self.episodes,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._check_state(state)
        if self.rnd is not None:
            self.rnd.load_state_dict(state["rnd"])
        self.generator.set_state(state["generator"].cpu())
        self.episodes = int(state["episodes"])


class DiffusionReward(VideoModelReward):
    model_name, score_kind, default_alpha = "vqdiffusion", "ce", 0.95
    task_alpha = {"pen": 0.0}


class DiffusionRewardNoNoise(DiffusionReward):
    default_noise = False


class DiffusionLL(VideoModelReward):
    model_name, score_kind, default_alpha = "vqdiffusion", "ll", 0.95


class Viper(VideoModelReward):
    model_name, score_kind, default_alpha, standardise = "videogpt", "ll", 0.5, False


class ViperStd(VideoModelReward):
    model_name, score_kind, default_alpha = "videogpt", "ll", 0.5


class ViperCE(VideoModelReward):
    model_name, score_kind, default_alpha = "videogpt", "ce", 0.5
