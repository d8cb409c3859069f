"""Pixel tasks (MetaWorld, Adroit), their expert policies and recorded video datasets.

    env = tasks.make("reach", seed=0)          # gymnasium.Env, obs uint8 [3, 64, 64]
    tasks.names("metaworld_unseen")            # task lists per split
"""
from tasks.runtime import default_gl as _default_gl

_default_gl()  # before anything imports mujoco

from tasks.registry import DOMAINS, PROFILES, SPLITS, TASKS, TaskSpec, names, seen_tasks, spec  # noqa: E402


def make(name: str, seed: int = 0, image_size: int = 64):
    """Build the pixel env of a task (see tasks/pixel_env.py); unknown names list the valid ones."""
    from tasks.pixel_env import PixelEnv

    return PixelEnv(spec(name), seed=seed, image_size=image_size)


__all__ = ["DOMAINS", "PROFILES", "SPLITS", "TASKS", "TaskSpec", "make", "names", "seen_tasks", "spec"]
