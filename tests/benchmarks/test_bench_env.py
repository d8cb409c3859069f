"""Pixel-env steps per second at 64x64 (issue targets: >= 150 MetaWorld steps/s per process, wrapper
overhead <= 10% over the raw env plus its renderer with the same fast settings).

    pytest tests/benchmarks/test_bench_env.py --benchmark-enable
"""
import mujoco
import numpy as np
import pytest

import tasks
from tasks.simulators import fast_render_settings

STEPS = 50


def _drive(env, actions):
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()


@pytest.mark.parametrize("name", ["reach", "door"])
def test_pixel_env_steps(benchmark, name):
    env = tasks.make(name, seed=0)
    env.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (STEPS, *env.action_space.shape)).astype(np.float32)
    benchmark.extra_info["steps_per_call"] = STEPS
    benchmark.pedantic(_drive, args=(env, actions), rounds=5, warmup_rounds=1)
    env.close()


def test_raw_metaworld_env_plus_renderer(benchmark):
    """The baseline: MetaWorld's own env stepped twice (action repeat 2) and a bare mujoco.Renderer."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    env = ALL_V3_ENVIRONMENTS["reach-v3"]()
    env._set_task_called, env._freeze_rand_vec, env.seeded_rand_vec = True, False, True
    env.seed(0)
    fast_render_settings(env.model, 64)
    env.reset()
    renderer = mujoco.Renderer(env.model, 64, 64)
    cam = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_CAMERA, "corner2")
    actions = np.random.default_rng(0).uniform(-1, 1, (STEPS, 4)).astype(np.float32)

    def drive():
        for a in actions:
            env.step(a)
            env.step(a)
            renderer.update_scene(env.data, camera=cam)
            renderer.render()
            if env.curr_path_length >= 200:
                env.reset()

    benchmark.extra_info["steps_per_call"] = STEPS
    benchmark.pedantic(drive, rounds=5, warmup_rounds=1)
    renderer.close()
    env.close()
