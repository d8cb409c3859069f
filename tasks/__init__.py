"""Pixel tasks (MetaWorld, Adroit), their expert policies and recorded video datasets.

    env = tasks.make("reach", seed=0)          # gymnasium.Env, obs uint8 [3, 64, 64]
    tasks.names("metaworld_unseen")            # task lists per split
"""
import warnings as _warnings

from tasks.runtime import default_gl as _default_gl

_default_gl()  # before anything imports mujoco
# MetaWorld's scripted experts warn on nearly every step that their gains exceed the action range; the env
# clips actions to [-1, 1] by design, so the warning says nothing to a user and buries the real output.
_warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", category=UserWarning)

from tasks.registry import DOMAINS, PROFILES, SPLITS, TASKS, TaskSpec, names, seen_tasks, spec  # noqa: E402


def make(name: str, seed: int = 0, image_size: int = 64, goal_seed: int | None = None):
    """Build the pixel env of a task (see tasks/pixel_env.py); unknown names list the valid ones.

    ``goal_seed`` (default: ``seed``) picks MetaWorld's set of 50 MT1 goals; an eval env passes the run's
    seed here and another ``seed`` so it draws different goals from the same set.
    """
    from tasks.pixel_env import PixelEnv

    return PixelEnv(spec(name), seed=seed, image_size=image_size, goal_seed=goal_seed)


__all__ = ["DOMAINS", "PROFILES", "SPLITS", "TASKS", "TaskSpec", "make", "names", "seen_tasks", "spec"]
