"""Pixel tasks (MetaWorld, Adroit), their expert policies and recorded video datasets.

env = tasks.make("reach", seed=0)          # gymnasium.Env, obs uint8 [3, 64, 64]
tasks.names("metaworld_unseen")            # task lists per split
"""

import warnings as _warnings

from common.faults import EnvironmentFault as _EnvironmentFault
from common.faults import check_gl as _check_gl
from tasks.cli import refuse_in_commands as _refuse_in_commands

# The off-screen GL back end must be settled before anything imports mujoco (tasks.registry does, below):
# MUJOCO_GL defaults to egl; a value that cannot render here is refused now, in one line naming the valid
# ones and their packages, not in MuJoCo's import traceback or in every run (common.faults.check_gl).
try:
    _check_gl()
except _EnvironmentFault as _e:
    _refuse_in_commands(_e)  # a command of this project exits in one line, as for a bad flag
    raise

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
