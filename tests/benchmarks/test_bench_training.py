"""Frames per second of a whole training run: sparse reward, DrQ-v2 at batch 256, MetaWorld reach.

The run has 200 seed frames and then updates every 2 agent steps as in the paper setting, so the figure
is the steady-state cost of env stepping + rendering + updates + episode bookkeeping:

    pytest tests/benchmarks/test_bench_training.py --benchmark-enable
"""
import shutil

from suites import train
from suites.plan import expand

FRAMES = 600


def test_training_fps_sparse_reach(benchmark, tmp_path):
    [spec] = expand("metaworld7", "paper", methods=["sparse"], tasks=["reach"], seeds=[0],
                    results=tmp_path, frames=FRAMES)
    config = dict(spec.config)
    config["agent"] = {**config["agent"], "num_seed_frames": 200, "num_expl_steps": 100}
    config.update(eval_every_frames=10**9, eval_episodes=1, checkpoint_every_frames=10**9)

    def one_run():
        shutil.rmtree(spec.run_dir, ignore_errors=True)
        return train.run(config, spec.run_dir)

    done = benchmark.pedantic(one_run, rounds=1, iterations=1)
    assert done["frame"] == FRAMES
    benchmark.extra_info["frames"] = FRAMES
    benchmark.extra_info["frames_per_second"] = FRAMES / done["seconds"]
