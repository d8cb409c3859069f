"""The contract every reward provider implements, and the input checks they all share.

A provider turns what the agent sees into the reward it learns from, at two moments of a run
(design section 5):

- ``label_episode(frames, env_rewards)``: once, when an episode ends, on the whole episode. The
  returned rewards are stored in replay and stay frozen (as the Diffusion Reward release does).
- ``bonus(batch)``: at every agent update, on the sampled batch's ``next_obs`` (o_{t+n}). The training
  loop adds ``bonus_scale * bonus(batch)`` (alpha * r_bonus) once to the n-step return.

Online parts (the RND predictor, the AMP discriminator) learn in ``update(batch, step)``; everything a
run needs to resume bit-for-bit (weights, optimiser state, RNG state) goes through
``state_dict()`` / ``load_state_dict()``.

This module imports no torch at import time so that ``import rewards`` stays cheap; torch is
imported inside the functions that need it.
"""

from __future__ import annotations

import abc
import contextlib
import inspect
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from rewards.prepare import PrepareRequest

from common.runtime import RESOLVED_PRECISIONS, resolve_device
from tasks.registry import DOMAINS  # the domains the suite knows (one list, kept by the task registry)

#: Frames are RGB, channels first.
CHANNELS = 3


# ---------------------------------------------------------------------------------------------
# shared validation (every provider, including the video-model ones, calls these)
# ---------------------------------------------------------------------------------------------


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None:
        return type(x).__name__
    return f"{type(x).__name__} of shape {tuple(shape)} and dtype {dtype}"


def validate_frames(frames: Any, image_size: int | None = None, name: str = "frames") -> np.ndarray:
    """Check an episode's frames: a numpy uint8 array ``[T+1, 3, H, W]`` with at least 2 frames.

    ``image_size``, when given, must equal H and W (the networks are sized for it).
    Returns the array unchanged (no copy).
    """
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"{name}: expected a numpy uint8 array [T+1, 3, H, W], got {_describe(frames)}")
    if frames.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8 (raw pixels 0..255), got {frames.dtype}")
    if frames.ndim != 4 or frames.shape[1] != CHANNELS:
        raise ValueError(f"{name}: expected shape [T+1, 3, H, W] (channels first), got {tuple(frames.shape)}")
    if frames.shape[0] < 2:
        raise ValueError(f"{name}: expected at least 2 frames (reset frame + one step), got {frames.shape[0]}")
    if image_size is not None and frames.shape[2:] != (image_size, image_size):
        raise ValueError(f"{name}: expected {image_size}x{image_size} frames, got {frames.shape[2]}x{frames.shape[3]}")
    return frames


def validate_episode(frames: Any, env_rewards: Any, image_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check a finished episode and return ``(frames, env_rewards as float32 [T])``.

    ``frames``: uint8 ``[T+1, 3, H, W]`` (reset frame first); ``env_rewards``: real numbers ``[T]``,
    finite, one per transition.
    """
    frames = validate_frames(frames, image_size)
    rewards = np.asarray(env_rewards)
    if rewards.dtype.kind not in "fiu":
        raise ValueError(f"env_rewards: expected a float array [T], got dtype {rewards.dtype}")
    t = frames.shape[0] - 1
    if rewards.shape != (t,):
        raise ValueError(f"env_rewards: expected shape [T] = ({t},) for {t + 1} frames, got {rewards.shape}")
    rewards = rewards.astype(np.float32)
    if not np.all(np.isfinite(rewards)):
        raise ValueError("env_rewards: expected finite values, got NaN or inf")
    return frames, rewards


def validate_obs_batch(obs: Any, image_size: int | None = None, name: str = "next_obs") -> "torch.Tensor":
    """Check a batch of observations: a torch uint8 tensor ``[B, 3, H, W]`` with B >= 1."""
    import torch  # local import: `import rewards` stays torch-free (rewards/registry.py)

    if not isinstance(obs, torch.Tensor):
        raise ValueError(f"{name}: expected a torch uint8 tensor [B, 3, H, W], got {_describe(obs)}")
    if obs.dtype != torch.uint8:
        raise ValueError(f"{name}: expected dtype torch.uint8 (raw pixels 0..255), got {obs.dtype}")
    if obs.ndim != 4 or obs.shape[1] != CHANNELS or obs.shape[0] < 1:
        raise ValueError(f"{name}: expected shape [B, 3, H, W] with B >= 1, got {tuple(obs.shape)}")
    if image_size is not None and tuple(obs.shape[2:]) != (image_size, image_size):
        raise ValueError(f"{name}: expected {image_size}x{image_size} frames, got {obs.shape[2]}x{obs.shape[3]}")
    return obs


def batch_next_obs(batch: Any, image_size: int | None = None) -> "torch.Tensor":
    """``batch["next_obs"]`` checked with :func:`validate_obs_batch` (the replay sample is a dict)."""
    if not isinstance(batch, Mapping):
        raise ValueError(f"batch: expected a dict with key 'next_obs' (a replay sample), got {type(batch).__name__}")
    if "next_obs" not in batch:
        raise ValueError(f"batch: expected key 'next_obs', got keys {sorted(batch)}")
    return validate_obs_batch(batch["next_obs"], image_size, name="batch['next_obs']")


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Build networks under ``seed`` without touching the caller's global torch RNG.

    Networks are created on the CPU inside this block (then moved to the device), so the same seed
    gives the same initial weights on every machine.
    """
    import torch  # local import: `import rewards` stays torch-free (rewards/registry.py)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def validate_domain(domain: str) -> str:
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; valid: {', '.join(DOMAINS)}")
    return domain


# ---------------------------------------------------------------------------------------------
# the interface
# ---------------------------------------------------------------------------------------------


class RewardProvider(abc.ABC):
    """Base class of every reward provider (built-in or third-party).

    Subclasses take the common keywords below plus their own parameters (keyword-only, with
    defaults), and store the resolved provider parameters in ``self.params`` (JSON-friendly) so the run
    config records exactly what ran. ``rewards.make(name, **kwargs)`` builds them.

    Defaults: no bonus (``bonus`` returns None and ``bonus_scale`` is 0), nothing to learn online, no
    state. Only ``label_episode`` must be written.
    """

    #: registry name: the name the registry loaded the class under (``rewards.registry``), and the one
    #: ``make()`` built it as
    name: str = ""
    #: alpha: the training loop adds ``bonus_scale * bonus(batch)`` to the n-step reward
    bonus_scale: float = 0.0
    #: True for providers scored by a pretrained video model: they take ``preset`` (the profile's model
    #: size, which ``suites.plan`` puts into their overrides) and ``prepare`` pretrains models
    uses_video_model: ClassVar[bool] = False
    #: constructor overrides that change what ``prepare`` must make (kept in the ``PrepareRequest``)
    prepare_overrides: ClassVar[tuple[str, ...]] = ()
    #: constructor overrides that reduce the reward to the learned score alone (reward analysis)
    score_only: ClassVar[Mapping[str, Any]] = {}
    #: which env reward ``label_episode`` is given: "sparse" (success) or "dense" (the env's shaped reward)
    env_reward: str = "sparse"

    def __init__(
        self,
        *,
        task: str,
        domain: str,
        device: Any = "cpu",
        data_root: Any = None,
        seed: int = 0,
        precision: str = "fp32",
    ) -> None:
        import torch  # local import: `import rewards` stays torch-free (rewards/registry.py)

        if not isinstance(task, str) or not task:
            raise ValueError(f"task: expected a task name (str), got {task!r}")
        self.task = task
        self.domain = validate_domain(domain)
        self.device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        self.data_root = data_root
        self.seed = int(seed)
        # the resolved precision its networks run in ("fp32" | "bf16"); a provider that ignores it keeps fp32
        # (rewards.make drops the keyword for it) and it is not part of params, so checkpoints written before
        # it existed still load: the run config records the precision, and its check refuses a mix
        if precision not in RESOLVED_PRECISIONS:
            raise ValueError(
                f"unknown precision {precision!r}; valid: {', '.join(RESOLVED_PRECISIONS)}"
                + (" (resolve 'auto' first: common.runtime.resolve_precision)" if precision == "auto" else "")
            )
        self.precision = precision
        self.params: dict[str, Any] = {}

    # -- upstream artefacts ------------------------------------------------------------------------
    @classmethod
    def default(cls, name: str) -> Any:
        """The constructor's default for parameter ``name``: what a method that does not override it gets.

        ``prepare`` reads its settings through :meth:`setting`, so each default is written once, in
        ``__init__``, and a provider and its preparation cannot disagree about it.
        """
        params = inspect.signature(cls.__init__).parameters
        if name not in params or params[name].default is inspect.Parameter.empty:
            raise ValueError(
                f"{cls.__name__} has no parameter {name!r} with a default; its parameters: "
                f"{', '.join(p for p, v in params.items() if v.default is not inspect.Parameter.empty)}"
            )
        return params[name].default

    @classmethod
    def setting(cls, request: "PrepareRequest", name: str) -> Any:
        """Parameter ``name`` of the runs behind ``request``: the method's override, else the default. Only
        ``prepare_overrides`` are kept in a request; any other name would silently read the default."""
        if name not in cls.prepare_overrides:
            raise ValueError(
                f"{cls.__name__}.prepare cannot read {name!r}: a request keeps only "
                f"{', '.join(cls.prepare_overrides) or 'no overrides'}"
            )
        return request.override(name, cls.default(name))

    @classmethod  # noqa: B027 (an optional hook, empty by design)
    def prepare(cls, request: "PrepareRequest", log: Any = print) -> None:
        """Make what this provider needs for ``request`` (datasets, pretrained models) if it is missing.

        ``suites.run`` calls it once per (provider, request) before any run starts, so one command goes
        from a fresh checkout to results (``rewards.prepare.PrepareRequest`` says what the request holds).
        Default: nothing is needed.
        """

    # -- episode-level reward (frozen in replay) -------------------------------------------------
    @abc.abstractmethod
    def label_episode(self, frames: np.ndarray, env_rewards: np.ndarray) -> np.ndarray:
        """Rewards ``float32 [T]`` for a finished episode (frames uint8 ``[T+1, 3, H, W]``)."""

    # -- update-time bonus ------------------------------------------------------------------------
    def bonus(self, batch: Mapping[str, Any]) -> "torch.Tensor | None":
        """Bonus ``[B]`` on ``batch["next_obs"]`` (uint8 ``[B, 3, H, W]`` on the device), or None."""
        return None

    def update(self, batch: Mapping[str, Any], step: int) -> dict[str, float]:
        """Learn online from a sampled batch at agent step ``step``; returns metrics (may be empty)."""
        return {}

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: weights, optimiser state, RNG state, params."""
        return {"name": self.name, "params": dict(self.params)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._check_state(state)

    def _check_state(self, state: Mapping[str, Any]) -> None:
        """Refuse a checkpoint of another provider or of other parameters (it would not resume exactly)."""
        if not isinstance(state, Mapping) or "params" not in state:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: expected a dict from state_dict(), got {type(state).__name__}"
            )
        if state.get("name", self.name) != self.name:
            raise ValueError(f"checkpoint is for reward {state.get('name')!r}, this provider is {self.name!r}")
        saved = dict(state["params"])
        if saved != self.params:
            diff = {
                k: (saved.get(k), self.params.get(k))
                for k in sorted(set(saved) | set(self.params))
                if saved.get(k) != self.params.get(k)
            }
            raise ValueError(f"checkpoint parameters differ from this provider's (saved, current): {diff}")

    def __repr__(self) -> str:
        fields = {"name": self.name, "task": self.task, "domain": self.domain, **self.params}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"
