"""Simulator back ends: one MuJoCo env per domain behind a three-call interface.

The pixel env (tasks/pixel_env.py) only needs ``reset(seed) -> state``, ``step(action) -> (state,
success, dropped)`` and ``render() -> uint8 [H, W, 3]``. Each back end steps the raw (unwrapped) env so no
gymnasium wrapper sits on the hot path, and owns its own ``mujoco.Renderer`` set up with the fast
settings of design.md section 2 (no shadows, no multi-sampling, no reflections) *before* the GL context
is made: MuJoCo reads them when the context is created, so setting them later has no effect.
"""
from __future__ import annotations

import atexit
import weakref
from typing import Callable

import mujoco
import numpy as np

from tasks.registry import TaskSpec


def fast_render_settings(model: mujoco.MjModel, image_size: int) -> None:
    """About 60 ms -> about 6 ms a 64x64 MetaWorld frame on a CPU (llvmpipe)."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0
    model.mat_reflectance[:] = 0
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), image_size)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), image_size)


_LIVE: "weakref.WeakSet[Simulator]" = weakref.WeakSet()


_EXIT_HOOK = False


def _close_renderers() -> None:
    # GL contexts freed during interpreter shutdown print EGL errors; free them while EGL still works.
    # Registered after MuJoCo's first context (which registers eglTerminate), so it runs before it.
    for sim in list(_LIVE):
        sim.close_renderer()


class _Camera:
    """A named model camera, or a free camera placed like the env's own default view."""

    def __init__(self, model: mujoco.MjModel, spec: TaskSpec):
        if spec.camera == "free":
            cam = mujoco.MjvCamera()
            mujoco.mjv_defaultFreeCamera(model, cam)
            for key, value in spec.free_camera.items():
                setattr(cam, key, value)
            self.camera: int | mujoco.MjvCamera = cam
        else:
            cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, spec.camera)
            if cid < 0:
                raise ValueError(f"camera {spec.camera!r} not in {spec.env_id}")
            self.camera = cid


class Simulator:
    """Base: a raw MuJoCo env, its renderer and camera."""

    flip: bool = False  # rotate the rendered frame by 180 degrees

    def __init__(self, spec: TaskSpec, image_size: int):
        self.spec = spec
        self.image_size = image_size
        self.env = self._make_env()
        self.model, self.data = self.env.model, self.env.data
        fast_render_settings(self.model, image_size)
        self._renderer: mujoco.Renderer | None = None  # made lazily: the GL context is per process
        self._camera = _Camera(self.model, spec).camera
        _LIVE.add(self)

    def _make_env(self):
        raise NotImplementedError

    @property
    def action_dim(self) -> int:
        return int(self.env.action_space.shape[0])

    def render(self) -> np.ndarray:
        if self._renderer is None:
            global _EXIT_HOOK
            self._renderer = mujoco.Renderer(self.model, self.image_size, self.image_size)
            if not _EXIT_HOOK:
                atexit.register(_close_renderers)
                _EXIT_HOOK = True
        self._renderer.update_scene(self.data, camera=self._camera)
        frame = self._renderer.render()
        return frame[::-1, ::-1] if self.flip else frame

    def close_renderer(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def close(self) -> None:
        self.close_renderer()
        self.env.close()


class MetaWorldSimulator(Simulator):
    """A MetaWorld 3.1.1 task with a fresh random goal at every reset.

    MetaWorld's MT1 wrapper picks among 50 pre-drawn goals; like the Diffusion Reward release (and
    MetaWorld v2 without frozen goals) we draw a new goal at each reset from the env's own seeded RNG, so
    the goal sequence is a function of the seed alone. The goal is visible in the state (MT setting),
    which the scripted experts need; the agent never sees the state.
    """

    flip = True  # the corner cameras render upside down in MetaWorld 3.x

    def _make_env(self):
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        env = ALL_V3_ENVIRONMENTS[self.spec.env_id]()
        # What MetaWorld's own `set_task` does for an MT task, without freezing the goal
        # (private attributes: metaworld is pinned at 3.1.1).
        env._partially_observable = False
        env.__dict__.pop("sawyer_observation_space", None)  # a cached property of the observability
        env._set_task_inner()
        env._set_task_called = True
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        return env

    def reset(self, seed: int | None) -> np.ndarray:
        if seed is not None:
            self.env.seed(int(seed))
        state, _ = self.env.reset()
        return state

    def step(self, action: np.ndarray) -> tuple[np.ndarray, bool, bool]:
        state, _, _, _, info = self.env.step(action)
        return state, bool(info["success"]), False


class AdroitSimulator(Simulator):
    """An Adroit hand task of gymnasium-robotics 1.4.2 (sparse variant; we use only its success flag)."""

    def _make_env(self):
        import gymnasium as gym
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
        # max_episode_steps is irrelevant: we step the unwrapped env and count the horizon ourselves.
        return gym.make(self.spec.env_id, max_episode_steps=10_000).unwrapped

    def reset(self, seed: int | None) -> np.ndarray:
        state, _ = self.env.reset(seed=None if seed is None else int(seed))
        return state

    def step(self, action: np.ndarray) -> tuple[np.ndarray, bool, bool]:
        state, _, _, _, info = self.env.step(action)
        return state, bool(info["success"]), self._dropped()

    def _dropped(self) -> bool:
        return False


class AdroitPenSimulator(AdroitSimulator):
    """Pen ends its episode when the pen falls (height below 0.075 m, the env's own threshold)."""

    def _dropped(self) -> bool:
        return bool(self.data.xpos[self.env.obj_body_id][2] < 0.075)


SIMULATORS: dict[str, Callable[[TaskSpec, int], Simulator]] = {
    "metaworld": MetaWorldSimulator,
    "adroit": AdroitSimulator,
}
TASK_SIMULATORS: dict[str, Callable[[TaskSpec, int], Simulator]] = {"pen": AdroitPenSimulator}


def make_simulator(spec: TaskSpec, image_size: int) -> Simulator:
    factory = TASK_SIMULATORS.get(spec.name, SIMULATORS[spec.domain])
    return factory(spec, image_size)
