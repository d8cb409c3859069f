"""The pixel env every method trains on (docs/protocol.md#tasks).

Observation: uint8 [3, S, S], channels first, upright. Reward: the sparse success flag summed over the
action-repeat sub-steps (0..action_repeat). ``info["is_success"]``: the flag was on in any sub-step of
the agent step (as the release does for Adroit; docs/protocol.md#adroit-as-the-release).
``info["dense_reward"]``: the env's
own shaped reward (MetaWorld v3 reward, Adroit dense reward) summed over the sub-steps, for the oracle
"dense" provider; no method sees it. No termination on success; ``truncated`` at the task's horizon (agent steps);
``terminated``
only when pen drops. The low-dimensional state the experts read is ``env.unwrapped.state`` and is never
part of the observation.

Seeding: ``tasks.make(name, seed=s)`` makes the first ``reset()`` use ``s``; later resets without a
seed continue the same RNG stream, so two envs made with the same seed produce identical frames.
``goal_seed`` (default ``seed``) fixes MetaWorld's set of 50 MT1 goals; the seed only picks among them,
so an eval env made with ``seed + 1, goal_seed=seed`` draws other goals from the same set.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from tasks.registry import TaskSpec
from tasks.simulators import make_simulator


class PixelEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, spec: TaskSpec, seed: int = 0, image_size: int = 64, goal_seed: int | None = None):
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
        self.task_spec = spec
        self.task = spec.name
        self.image_size = image_size
        self.goal_seed = int(seed if goal_seed is None else goal_seed)
        self.render_mode = "rgb_array"
        self._sim = make_simulator(spec, image_size, self.goal_seed)
        self.observation_space = gym.spaces.Box(0, 255, (3, image_size, image_size), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self._sim.action_dim,), np.float32)
        self._pending_seed: int | None = int(seed)
        self._t = 0
        self._frame: np.ndarray | None = None
        self.state: np.ndarray | None = None

    # --- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._pending_seed = int(seed)
        super().reset(seed=self._pending_seed)  # seeds self.np_random (action_space sampling etc.)
        if self._pending_seed is not None:
            self.action_space.seed(self._pending_seed)
        self.state = self._sim.reset(self._pending_seed)
        self._pending_seed = None
        self._t = 0
        return self._observe(), {"is_success": False}

    def step(self, action):
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"{self.task}: action must have shape {self.action_space.shape}, got {action.shape}")
        action = np.clip(action, -1.0, 1.0)
        reward, dense, any_success, dropped = 0.0, 0.0, False, False
        for _ in range(self.task_spec.action_repeat):
            self.state, success, dropped, dense_step = self._sim.step(action)
            reward += float(success)
            dense += dense_step
            any_success |= success
            if dropped:
                break
        self._t += 1
        truncated = self._t >= self.task_spec.horizon and not dropped
        return self._observe(), reward, dropped, truncated, {"is_success": any_success, "dense_reward": dense}

    def render(self) -> np.ndarray:
        """The last observed frame as an H x W x 3 image."""
        assert self._frame is not None, "call reset() first"
        return np.ascontiguousarray(self._frame.transpose(1, 2, 0))

    def close(self) -> None:
        self._sim.close()

    # --- helpers ---------------------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        self._frame = np.ascontiguousarray(self._sim.render().transpose(2, 0, 1))
        return self._frame

    @property
    def horizon(self) -> int:
        return self.task_spec.horizon

    @property
    def simulator(self):
        """The back end (tasks/simulators.py): goal set, goal-marker switch, success flags, for checks."""
        return self._sim

    def describe(self) -> dict[str, Any]:
        s = self.task_spec
        return {
            "task": s.name,
            "domain": s.domain,
            "env_id": s.env_id,
            "camera": s.camera,
            "action_repeat": s.action_repeat,
            "horizon": s.horizon,
            "image_size": self.image_size,
            "goal_seed": self.goal_seed,
        }
