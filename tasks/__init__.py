"""Pixel tasks (MetaWorld, Adroit), their expert policies and recorded video datasets.

env = tasks.make("reach", seed=0)          # gymnasium.Env, obs uint8 [3, 64, 64]
tasks.names("metaworld_unseen")            # task lists per split
"""

import os as _os
import warnings as _warnings


def _default_gl() -> str:
    """Pick the off-screen GL backend before MuJoCo is imported.

    EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0) is the default; set
    ``MUJOCO_GL=osmesa`` (libosmesa6) where EGL is unavailable. An explicit setting is kept.
    Only the tasks render, so only importing them sets it.
    """
    _os.environ.setdefault("MUJOCO_GL", "egl")
    # PyOpenGL must agree with MuJoCo on the platform, or context creation fails.
    if _os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
        _os.environ.setdefault("PYOPENGL_PLATFORM", _os.environ["MUJOCO_GL"])
    return _os.environ["MUJOCO_GL"]


_default_gl()  # before anything imports mujoco
# MetaWorld's scripted experts warn on nearly every step that their gains exceed the action range; the env
# clips actions to [-1, 1] by design, so the warning says nothing to a user and buries the real output.
_warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", category=UserWarning)

from tasks.pixel_env import PixelEnv  # noqa: E402
from tasks.registry import DOMAINS, PROFILES, SPLITS, TASKS, TaskSpec, names, seen_tasks, spec  # noqa: E402


def make(name: str, seed: int = 0, image_size: int = 64, goal_seed: int | None = None):
    """Build the pixel env of a task (see tasks/pixel_env.py); unknown names list the valid ones.

    ``goal_seed`` (default: ``seed``) picks MetaWorld's set of 50 MT1 goals; an eval env passes the run's
    seed here and another ``seed`` so it draws different goals from the same set.
    """
    return PixelEnv(spec(name), seed=seed, image_size=image_size, goal_seed=goal_seed)


__all__ = ["DOMAINS", "PROFILES", "SPLITS", "TASKS", "TaskSpec", "make", "names", "seen_tasks", "spec"]
