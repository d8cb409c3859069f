"""Frames per second of a whole training run: sparse reward, DrQ-v2 at batch 256, MetaWorld reach.

The run has 200 seed frames and then updates every 2 agent steps as in the paper setting, so the figure
is the steady-state cost of env stepping + rendering + updates + episode bookkeeping:

    pytest tests/benchmarks/test_bench_training.py --benchmark-enable
"""
import shutil

from suites import train
from suites.plan import expand



def test_training_fps_sparse_reach(benchmark, tmp_path):
    frames = 400 if benchmark.disabled else 600  # whole 200-frame episodes; as a plain test, a shorter run
    [spec] = expand("metaworld7", "paper", methods=["sparse"], tasks=["reach"], seeds=[0],
                    results=tmp_path, frames=frames)
    config = dict(spec.config)
    config["agent"] = {**config["agent"], "num_seed_frames": 200, "num_expl_steps": 100}
    config.update(eval_every_frames=10**9, eval_episodes=1, checkpoint_every_frames=10**9)

    def one_run():
        shutil.rmtree(spec.run_dir, ignore_errors=True)
        return train.run(config, spec.run_dir)

    done = benchmark.pedantic(one_run, rounds=1, iterations=1)
    assert done["frame"] == frames
    benchmark.extra_info["frames"] = frames
    benchmark.extra_info["frames_per_second"] = frames / done["seconds"]
