"""Frames per second of a whole training run, fp32 (the old default) vs bf16, side by side in one process.

Sparse reward on MetaWorld reach with the quick profile's DrQ-v2 settings (batch 64, an update every 2
agent steps), run through ``suites.train.run`` exactly as the suite runs it. Two things are shortened so
that the figure is the steady-state cost of env stepping + rendering + act + updates + episode
bookkeeping in a benchmark-sized run: updates start after 200 seed frames (quick: 4000) with 50
exploration steps, and checkpoints are pushed out of the run. The figure is training frames/s over the
episodes that update (the frames per second the run logs for each episode in ``train.csv``, pooled), so
the 1-episode evaluations at frame 0 and at the end are not in it; their cost in a real quick run, and
the rest of a run's time, is profiled in agents/README.md.

    pytest tests/benchmarks/test_bench_training.py --benchmark-enable

The two precisions alternate run by run (fp32, bf16, fp32, bf16, ...) so load from other jobs hits both
alike; each one's best frames/s is reported, and their ratio.
"""
import csv
import shutil

from suites import train
from suites.plan import expand

SEED_FRAMES = 200
TRAINING_SPEEDUP_GOAL = 2.0  # issue 12: bf16 run >= 2x the fp32 run's frames/s (reported, see below)
TRAINING_SPEEDUP_FLOOR = 1.3  # what the benchmark asserts: below this the bf16 path has regressed


def quick_config(tmp_path, precision: str, frames: int):
    [spec] = expand("metaworld7", "quick", methods=["sparse"], tasks=["reach"], seeds=[0],
                    results=tmp_path / precision, frames=frames)
    config = dict(spec.config)
    assert config["agent"]["batch_size"] == 64  # the quick profile's DrQ-v2
    config["agent"] = {**config["agent"], "num_seed_frames": SEED_FRAMES, "num_expl_steps": SEED_FRAMES // 4,
                       "precision": precision}
    config.update(eval_every_frames=10**9, eval_episodes=1, checkpoint_every_frames=10**9)
    return config, spec.run_dir


def training_fps(run_dir) -> float:
    """Frames / seconds over the episodes that ran updates (train.csv logs each episode's frames/s)."""
    with open(run_dir / "train.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["frame"]) > SEED_FRAMES]
    assert rows, f"no updating episode in {run_dir}"
    frames = [int(b["frame"]) - int(a["frame"]) for a, b in zip([{"frame": SEED_FRAMES}] + rows, rows)]
    return sum(frames) / sum(n / float(r["fps"]) for n, r in zip(frames, rows))


def test_training_fps_sparse_reach_fp32_vs_bf16(benchmark, tmp_path):
    frames = 400 if benchmark.disabled else 1000  # whole 200-frame episodes: 1 or 4 of them update
    runs = {p: quick_config(tmp_path, p, frames) for p in ("fp32", "bf16")}
    fps: dict[str, list[float]] = {p: [] for p in runs}

    def one_round():
        for precision, (config, run_dir) in runs.items():
            shutil.rmtree(run_dir, ignore_errors=True)
            done = train.run(config, run_dir)
            assert done["frame"] == frames, done
            fps[precision].append(training_fps(run_dir))

    benchmark.pedantic(one_round, rounds=1 if benchmark.disabled else 2, iterations=1)
    best = {p: max(v) for p, v in fps.items()}
    speedup = best["bf16"] / best["fp32"]
    benchmark.extra_info.update(frames=frames, fps_fp32=round(best["fp32"], 1), fps_bf16=round(best["bf16"], 1),
                                speedup=round(speedup, 3), goal=TRAINING_SPEEDUP_GOAL)
    print(f"\ntraining frames/s, quick sparse reach: fp32 {best['fp32']:.1f}, bf16 {best['bf16']:.1f} "
          f"({speedup:.2f}x; all runs {fps})")
    assert all(v > 0 for v in best.values())
    if not benchmark.disabled:
        assert speedup >= TRAINING_SPEEDUP_FLOOR, fps
