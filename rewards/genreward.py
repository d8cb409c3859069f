"""``genreward``: reward for following a generated goal video (GenReward, Wang et al., arXiv 2512.00961).

Two levels (docs/genreward.md; docs/models-and-rewards.md#rewards):

    r_t = w_video * (cos(h(o_{t+1}), h(g_{t+1})) - mu_task) / sigma_task + beta * r_env_t   (episode end, frozen)
        + w_frame * F(o_t, a_t)^T z_g                                                  (update time, n-step return)

- **Goal video** g_0..g_L: the domain's VQ-Diffusion rolled out from the episode's first frame
  (``rewards.goal_video``), L = the episode's length unless ``goal_frames`` is set (then step t is compared
  with g_min(t+1, L)). Cached per first frame; a pure function of (model, first frame, seed).
- **Video level**: h = the codec's pre-quantisation latents (``VQGAN.latents``); the cosine is
  standardised with mu/sigma of the same cosine on the task's expert training videos against the goal videos
  of their own first frames (like the other learned rewards; cached in the model's directory).
- **Key goal frame**: the goal frame whose latent is closest (cosine) to any of the task's expert training
  videos' final (success) frames. The paper ranks goal frames by CLIP similarity to the task text; no CLIP
  weights can be loaded here.
- **Frame level**: a forward-backward representation (``rewards.fb``) of the behaviour policy's successor
  measure, trained online from the sampled batch: (obs, action, next_obs) with next_obs = o_{t+n} is the
  FB transition (an n-step kernel; ``fb_gamma`` discounts n-step jumps). z_g = mean_k B(key goal frame_k)
  over the goal videos of the run so far: a replay batch does not say which episode (hence which goal
  video) a sample came from, and F^T B is linear in B, so F^T z_g is the mean successor-measure score of
  the task's goals. The key frames are part of the checkpoint (they decide later bonuses).

``genreward_video`` / ``genreward_frame`` keep one level each (the ablation). ``pretrained_on`` picks the
video model: ``"genreward"`` (GenReward's setting: pretrained on the five genreward tasks' expert videos) or
``"seen"`` (the zero-shot variant: the domain's model pretrained on its seen tasks); it is the model's
``ModelRef.task_set`` (``tasks.registry.TASK_SETS``).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from common.io import atomic_write_json
from common.runtime import resolve_device
from rewards.base import RewardProvider, seeded_init, validate_episode, validate_obs_batch
from rewards.fb import FBLearner, FBNetworks, PixelTrunk
from rewards.goal_video import GoalVideoCache, frame_key, generate
from rewards.models import store
from rewards.models.pretrain import pretrain
from rewards.models.store import ModelMissingError, ModelRef
from tasks.collect import collect
from tasks.datasets import DatasetMissingError, collect_command, episode_dir, load_episodes
from tasks.registry import task_set as registry_task_set

VIDEO_MODEL = "vqdiffusion"
#: ``pretrained_on`` names a task set of ``tasks.registry.TASK_SETS`` (the model's ``ModelRef.task_set``)
TASK_SETS = ("genreward", "seen")


# ------------------------------------------------------------------------------------ the model


def task_set(domain: str, pretrained_on: str) -> list[str]:
    """The tasks the video model is pretrained on: the genreward split, or the domain's seen tasks."""
    if pretrained_on not in TASK_SETS:
        raise ValueError(f"pretrained_on: unknown task set {pretrained_on!r}; valid: {', '.join(TASK_SETS)}")
    return registry_task_set(pretrained_on, domain)


def pretrain_commands(domain: str, preset: str, context: int, data_root: Any, pretrained_on: str) -> str:
    """The commands that make the task set's expert videos, codec and VQ-Diffusion."""
    ref = model_ref(domain, preset, context, data_root, pretrained_on)
    tasks = " ".join(ref.tasks)
    return (
        f"python -m tasks.collect --domain {domain} --tasks {tasks}"
        + (f" --data-root {data_root}" if data_root else "")
        + f" && {ref.codec.command} && {ref.command}"
    )


def model_ref(domain: str, preset: str, context: int, data_root: Any, pretrained_on: str):
    """The VQ-Diffusion of the task set: ``pretrained_on`` is the ``ModelRef``'s task set."""
    task_set(domain, pretrained_on)  # validates the name (listing GenReward's two)
    return ModelRef(domain, VIDEO_MODEL, preset, context, data_root, task_set=pretrained_on)


def load_models(domain: str, preset: str, context: int, device: Any, data_root: Any, pretrained_on: str):
    """(codec, VQ-Diffusion) of the task set; a missing one names the commands that make it."""
    ref = model_ref(domain, preset, context, data_root, pretrained_on)
    try:
        return ref.load_with_codec(device)
    except ModelMissingError as e:
        if pretrained_on == "seen":
            raise
        raise ModelMissingError(
            f"{e.args[0].split(';')[0]} (GenReward's {pretrained_on} task set); make it with: "
            f"{pretrain_commands(domain, preset, context, data_root, pretrained_on)}"
        ) from None


# ------------------------------------------------------------------------------------ statistics


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)


def aligned_cosine(codec: Any, frames: np.ndarray, goal_latents: torch.Tensor) -> np.ndarray:
    """cos(h(o_{t+1}), h(g_min(t+1, L))) for t = 0..T-1, float32 [T]."""
    t = frames.shape[0] - 1
    lat = codec.latents(torch.from_numpy(np.ascontiguousarray(frames[1:])))
    idx = torch.clamp(torch.arange(1, t + 1), max=goal_latents.shape[0] - 1).to(goal_latents.device)
    return _cosine(lat, goal_latents[idx].to(lat.device)).cpu().numpy().astype(np.float32)


def expert_cosine_stats(
    codec: Any,
    model: Any,
    domain: str,
    task: str,
    *,
    goal_frames: int | None,
    steps: int,
    noise: bool,
    seed: int,
    root: Any,
) -> dict[str, float]:
    """mean/std of the aligned cosine over the task's expert training videos, each against the goal video of
    its own first frame (generated with ``seed``, as the provider does)."""
    values = []
    for ep in load_episodes(domain, [task], split="train", root=root):
        length = goal_frames or ep.frames.shape[0] - 1
        goal = generate(codec, model, ep.frames[0], length, seed, steps, noise)
        values.append(aligned_cosine(codec, ep.frames, goal.latents))
    v = np.concatenate(values)
    return {"mean": float(v.mean()), "std": float(max(v.std(), 1e-6)), "n": int(v.size)}


def cached_stats(
    codec: Any,
    model: Any,
    domain: str,
    task: str,
    preset: str,
    context: int,
    *,
    goal_frames: int | None,
    steps: int,
    noise: bool,
    seed: int,
    data_root: Any,
    pretrained_on: str,
) -> dict[str, float]:
    """``expert_cosine_stats`` cached in the model's ``genreward_stats.json``, keyed by the settings and
    the fingerprints of the model and the expert videos (recomputed when either changes)."""
    mdir = model_ref(domain, preset, context, data_root, pretrained_on).dir
    files = sorted(episode_dir(domain, task, "expert", "train", data_root).glob("ep_*.npz"))
    key = json.dumps(
        {
            "task": task,
            "goal_frames": goal_frames,
            "steps": steps,
            "noise": noise,
            "seed": seed,
            "model": store.fingerprint(mdir / "model.pt"),
            "videos": [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files],
        },
        sort_keys=True,
    )
    path = mdir / "genreward_stats.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    if key not in cache:
        cache[key] = expert_cosine_stats(
            codec, model, domain, task, goal_frames=goal_frames, steps=steps, noise=noise, seed=seed, root=data_root
        )
        atomic_write_json(path, cache)
    return cache[key]


def expert_final_latents(codec: Any, domain: str, task: str, root: Any) -> torch.Tensor:
    """Codec latents of the last (success) frame of each expert training video of ``task``."""
    last = np.stack([ep.frames[-1] for ep in load_episodes(domain, [task], split="train", root=root)])
    return codec.latents(torch.from_numpy(last))


def key_frame_index(goal_latents: torch.Tensor, final_latents: torch.Tensor) -> int:
    """The goal frame most similar (max cosine over the expert final frames) to an expert success frame."""
    sim = _cosine(goal_latents[:, None, :], final_latents[None, :, :].to(goal_latents.device))
    return int(sim.max(dim=1).values.argmax())


# ------------------------------------------------------------------------------------ the provider


class GenRewardBase(RewardProvider):
    uses_video_model = True
    model_name = VIDEO_MODEL  # the video model kind behind it (its goal videos), as VideoModelReward's
    #: what changes the artefacts: the model (task set, context) and the statistics' rollout settings
    prepare_overrides = ("pretrained_on", "context", "goal_frames", "goal_steps", "goal_noise")
    #: reward analysis: the standardised goal-video cosine alone, on the domain's seen-task model (the one
    #: the other video rewards are analysed with)
    score_only = {"beta": 0.0, "w_frame": 0.0, "pretrained_on": "seen"}
    use_video: ClassVar[bool] = True
    use_frame: ClassVar[bool] = True

    def __init__(
        self,
        *,
        task: str,
        domain: str,
        device: Any = "cpu",
        data_root: Any = None,
        seed: int = 0,
        w_video: float = 1.0,
        w_frame: float = 0.1,
        beta: float = 1.0,
        goal_frames: int | None = None,
        goal_steps: int = 10,
        goal_noise: bool = True,
        context: int = 2,
        preset: str = "small",
        pretrained_on: str = "genreward",
        fb_dim: int = 32,
        fb_lr: float = 1e-4,
        fb_gamma: float = 0.98,
        fb_tau: float = 0.01,
        update_interval: int = 1,
        max_goals: int = 64,
        image_size: int = 64,
    ) -> None:
        super().__init__(task=task, domain=domain, device=device, data_root=data_root, seed=seed)

        if goal_frames is not None and int(goal_frames) < 1:
            raise ValueError(f"goal_frames: expected None (the episode's length) or an int >= 1, got {goal_frames!r}")
        if int(update_interval) < 1 or int(max_goals) < 1:
            raise ValueError(f"update_interval and max_goals must be >= 1, got {update_interval}, {max_goals}")
        task_set(domain, pretrained_on)  # validates the name
        self.w_video = float(w_video) if self.use_video else 0.0
        self.bonus_scale = float(w_frame) if self.use_frame else 0.0
        self.beta, self.goal_frames = float(beta), None if goal_frames is None else int(goal_frames)
        self.context, self.preset, self.pretrained_on = int(context), preset, pretrained_on
        self.image_size, self.update_interval, self.max_goals = int(image_size), int(update_interval), int(max_goals)
        self.fb_cfg = dict(z_dim=int(fb_dim), lr=float(fb_lr), gamma=float(fb_gamma), tau=float(fb_tau))
        self.codec, self.model = load_models(domain, preset, self.context, self.device, data_root, pretrained_on)
        self.goals = GoalVideoCache(
            self.codec, self.model, seed=self.seed, steps=int(goal_steps), noise=bool(goal_noise)
        )
        self.mu, self.sigma = 0.0, 1.0
        if self.use_video:
            st = self._stats(task, data_root, int(goal_steps), bool(goal_noise))
            self.mu, self.sigma = st["mean"], st["std"]
        self.final_latents = expert_final_latents(self.codec, domain, task, data_root) if self.use_frame else None
        self.fb = None  # built at the first batch (the action size comes from it)
        self.key_frames: list[np.ndarray] = []
        self.key_ids: list[str] = []
        self.episodes = 0
        self.params = {
            "model": VIDEO_MODEL,
            "pretrained_on": pretrained_on,
            "trained_on": list(getattr(self.model, "meta", {}).get("tasks", [])),
            "w_video": self.w_video,
            "w_frame": self.bonus_scale,
            "beta": self.beta,
            "goal_frames": self.goal_frames,
            "goal_steps": int(goal_steps),
            "goal_noise": bool(goal_noise),
            "context": self.context,
            "preset": preset,
            "mu": self.mu,
            "sigma": self.sigma,
            "fb": dict(self.fb_cfg),
            "update_interval": self.update_interval,
            "max_goals": self.max_goals,
            "image_size": self.image_size,
        }

    def _stats(self, task: str, data_root: Any, steps: int, noise: bool) -> dict[str, float]:
        try:
            return cached_stats(
                self.codec,
                self.model,
                self.domain,
                task,
                self.preset,
                self.context,
                goal_frames=self.goal_frames,
                steps=steps,
                noise=noise,
                seed=0,
                data_root=data_root,
                pretrained_on=self.pretrained_on,
            )
        except DatasetMissingError:
            raise FileNotFoundError(
                f"{self.name}: no expert training videos of {task!r} to standardise its "
                f"rewards; make them with: {collect_command(self.domain, [task], root=data_root)}"
            ) from None

    # -- upstream artefacts ------------------------------------------------------------------------
    @classmethod
    def prepare(cls, request: Any, log: Any = print) -> None:
        """Expert videos of the task set and of the request's tasks, codec and VQ-Diffusion pretrained on the
        task set (the same steps as ``VideoModelReward.prepare``, with the task set's ``ModelRef``), then the
        video-level statistics of each task (so parallel runs only read them)."""
        r = request
        pretrained_on, context = cls.setting(r, "pretrained_on"), cls.setting(r, "context")
        train_on = task_set(r.domain, pretrained_on)
        collect(r.domain, sorted(set(train_on) | set(r.tasks)), episodes=r.expert_episodes, root=r.data_root)
        ref = model_ref(r.domain, r.preset, context, r.data_root, pretrained_on)
        device = str(resolve_device(r.device))
        for model in (ref.codec, ref):
            log(f"pretraining {r.domain} {model.name} on the {pretrained_on} tasks if needed")
            pretrain(
                model, steps=r.steps_for(model.kind), device=device, quality=r.reports, log=log, precision=r.precision
            )
        if cls.use_video:
            codec, model = ref.load_with_codec(device)
            for task in r.tasks:
                cached_stats(
                    codec,
                    model,
                    r.domain,
                    task,
                    r.preset,
                    context,
                    goal_frames=cls.setting(r, "goal_frames"),
                    steps=cls.setting(r, "goal_steps"),
                    noise=cls.setting(r, "goal_noise"),
                    seed=0,
                    data_root=r.data_root,
                    pretrained_on=pretrained_on,
                )

    # -- episode-level reward --------------------------------------------------------------------
    def label_episode(self, frames: np.ndarray, env_rewards: np.ndarray) -> np.ndarray:
        frames, env_rewards = validate_episode(frames, env_rewards, self.image_size)
        with torch.no_grad():
            goal = self.goals.get(frames[0], self.goal_frames or len(env_rewards))
            r = self.beta * env_rewards
            if self.use_video:
                cos = aligned_cosine(self.codec, frames, goal.latents)
                r = r + self.w_video * (cos - self.mu) / self.sigma
            if self.use_frame:
                key = frame_key(frames[0])
                if key not in self.key_ids:
                    self.key_ids.append(key)
                    # an own C-contiguous copy: the layout the checkpoint reloads it in, and not a view that
                    # keeps a whole cached goal video alive
                    frame = goal.frames[key_frame_index(goal.latents, self.final_latents)]
                    self.key_frames.append(np.array(frame, dtype=np.uint8, order="C", copy=True))
                    del self.key_ids[: -self.max_goals], self.key_frames[: -self.max_goals]
        self.episodes += 1
        if not np.all(np.isfinite(r)):
            raise ValueError(f"{self.name}: non-finite reward on task {self.task!r}, episode {self.episodes}")
        return r.astype(np.float32)

    # -- frame-level reward ----------------------------------------------------------------------
    def _fb_for(self, action_dim: int):
        if self.fb is None:
            with seeded_init(self.seed):
                nets = FBNetworks(lambda: (PixelTrunk(self.image_size), 128), action_dim, self.fb_cfg["z_dim"])
            self.fb = FBLearner(
                nets, gamma=self.fb_cfg["gamma"], lr=self.fb_cfg["lr"], tau=self.fb_cfg["tau"], device=self.device
            )
        elif self.fb.nets.action_dim != action_dim:
            raise ValueError(
                f"{self.name}: batch actions have {action_dim} dims, the FB networks {self.fb.nets.action_dim}"
            )
        return self.fb

    def _batch(self, batch: Mapping[str, Any]):
        if not isinstance(batch, Mapping) or not {"obs", "action", "next_obs"} <= set(batch):
            raise ValueError(
                f"batch: expected a replay sample with keys obs, action, next_obs, got "
                f"{sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__}"
            )
        obs = validate_obs_batch(batch["obs"], self.image_size, "batch['obs']").to(self.device)
        nxt = validate_obs_batch(batch["next_obs"], self.image_size, "batch['next_obs']").to(self.device)
        action = batch["action"].to(self.device).float()
        return obs, action, nxt

    @torch.no_grad()
    def bonus(self, batch: Mapping[str, Any]) -> "torch.Tensor | None":
        """F(o_t, a_t)^T z_g per sample (None before the first goal video or without the frame level)."""
        if not self.use_frame:
            return None
        obs, action, _ = self._batch(batch)
        if not self.key_frames:
            return None
        fb = self._fb_for(action.shape[1])
        z = fb.goal_vector(torch.from_numpy(np.stack(self.key_frames)).to(self.device))
        return fb.score(obs, action, z)

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """One FB step on (o_t, a_t, o_{t+n}) every ``update_interval`` agent steps (terminal: no bootstrap)."""
        if not self.use_frame or int(step) % self.update_interval:
            return {}
        obs, action, nxt = self._batch(batch)
        not_done = batch["discount"].to(self.device) > 0 if "discount" in batch else None
        return self._fb_for(action.shape[1]).update(obs, action, nxt, not_done)

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "episodes": self.episodes,
            "key_ids": list(self.key_ids),
            "key_frames": np.stack(self.key_frames) if self.key_frames else None,
            "action_dim": self.fb.nets.action_dim if self.fb is not None else None,
            "fb": self.fb.state_dict() if self.fb is not None else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._check_state(state)
        self.episodes = int(state["episodes"])
        self.key_ids = list(state["key_ids"])
        kf = state["key_frames"]
        self.key_frames = [np.array(f, dtype=np.uint8, order="C", copy=True) for f in kf] if kf is not None else []
        self.fb = None
        if state["fb"] is not None:
            self._fb_for(int(state["action_dim"])).load_state_dict(state["fb"])


class GenReward(GenRewardBase):
    """Both levels: standardised goal-video cosine in replay + FB goal-reaching bonus at update time."""


class GenRewardVideo(GenRewardBase):
    """Video level only (ablation): no FB, no bonus."""

    use_frame = False


class GenRewardFrame(GenRewardBase):
    """Frame level only (ablation): env reward in replay, FB bonus toward the key goal frame."""

    use_video = False
