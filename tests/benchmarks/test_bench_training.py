"""Frames per second of whole training runs, side by side in one process: fp32 (the old default) vs bf16,
and a ``diffusion_reward`` run vs a ``sparse`` one.

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

``test_training_fps_diffusion_reward_vs_sparse``: a goal of the bf16 work (docs/performance.md),
a ``diffusion_reward`` run at
>= 0.8x the frames/s of a ``sparse`` run at the quick profile (small video models, the quick profile's
DrQ-v2), same shortening as above, the two methods alternating run by run, at each precision.

    pytest tests/benchmarks/test_bench_training.py --benchmark-enable -k diffusion_reward
"""

import csv
import dataclasses
import math
import shutil

import pytest

from common.runs import RunConfig
from suites import train
from suites.plan import RunSpec, expand
from suites.run import prepare

SEED_FRAMES = 200
TRAINING_SPEEDUP_GOAL = 2.0  # the bf16 goal: bf16 run >= 2x the fp32 run's frames/s (reported, see below)
TRAINING_SPEEDUP_FLOOR = 1.3  # what the benchmark asserts: below this the bf16 path has regressed


def quick_config(tmp_path, precision: str, frames: int):
    [spec] = expand(
        "metaworld7",
        "quick",
        methods=["sparse"],
        tasks=["reach"],
        seeds=[0],
        results=tmp_path / precision,
        frames=frames,
    )
    return shorten(spec.config, precision), spec.run_dir


def shorten(config: RunConfig, precision: str) -> RunConfig:
    """The quick profile's config with updates from frame 200 and no checkpoint or evaluation inside."""
    assert config.agent["batch_size"] == 64  # the quick profile's DrQ-v2
    agent = {**config.agent, "num_seed_frames": SEED_FRAMES, "num_expl_steps": SEED_FRAMES // 4, "precision": precision}
    return dataclasses.replace(
        config, agent=agent, eval_every_frames=10**9, eval_episodes=1, checkpoint_every_frames=10**9
    )


def training_fps(run_dir) -> float:
    """Frames / seconds over the episodes that ran updates (train.csv logs each episode's frames/s)."""
    with open(run_dir / "train.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["frame"]) > SEED_FRAMES]
    assert rows, f"no updating episode in {run_dir}"
    frames = [int(b["frame"]) - int(a["frame"]) for a, b in zip([{"frame": SEED_FRAMES}] + rows, rows)]
    return sum(frames) / sum(n / float(r["fps"]) for n, r in zip(frames, rows))


def alternate(benchmark, runs: dict, frames: int) -> dict[str, list[float]]:
    """Run each of ``runs`` (name -> (config, run_dir)) from scratch through ``suites.train.run``, one after
    the other, for 2 rounds: each name's training frames/s per round."""
    fps: dict[str, list[float]] = {name: [] for name in runs}

    def one_round():
        for name, (config, run_dir) in runs.items():
            shutil.rmtree(run_dir, ignore_errors=True)
            done = train.run(config, run_dir)
            assert done["frame"] == frames, done
            fps[name].append(training_fps(run_dir))

    benchmark.pedantic(one_round, rounds=2, iterations=1)
    return fps


def test_training_fps_sparse_reach_fp32_vs_bf16(benchmark, tmp_path):
    """Skipped without --benchmark-enable, like the diffusion_reward comparison below: a timing only; bf16 and
    fp32 updates are tested in tests/test_agent.py and training runs in tests/test_suites*.py."""
    if benchmark.disabled:
        pytest.skip("a frames/s comparison: run with --benchmark-enable")
    frames = 1000  # whole 200-frame episodes: 4 of them update
    runs = {p: quick_config(tmp_path, p, frames) for p in ("fp32", "bf16")}
    fps = alternate(benchmark, runs, frames)
    best = {p: max(v) for p, v in fps.items()}
    speedup = best["bf16"] / best["fp32"]
    benchmark.extra_info.update(
        frames=frames,
        fps_fp32=round(best["fp32"], 1),
        fps_bf16=round(best["bf16"], 1),
        speedup=round(speedup, 3),
        goal=TRAINING_SPEEDUP_GOAL,
    )
    print(
        f"\ntraining frames/s, quick sparse reach: fp32 {best['fp32']:.1f}, bf16 {best['bf16']:.1f} "
        f"({speedup:.2f}x; all runs {fps})"
    )
    assert all(v > 0 for v in best.values())
    assert speedup >= TRAINING_SPEEDUP_FLOOR, fps


#: goal: a diffusion_reward run's frames/s >= 0.8x a sparse run's at the quick profile (reported; the
#: benchmark asserts only that both ran, since the figure depends on the machine and its load)
DIFFUSION_VS_SPARSE_GOAL = 0.8
#: what the video model is pretrained with here: labelling and RND cost do not depend on the weights, so a
#: few steps on 2 expert episodes (collected and pretrained by the provider's own ``prepare``) stand in for
#: the quick profile's 1000 steps on 20
PRETRAIN_STEPS, EXPERT_EPISODES = 5, 2


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_fps_diffusion_reward_vs_sparse(benchmark, tmp_path, precision):
    """Each run goes through ``suites.train.run``; the diffusion_reward run's provider is prepared by
    ``suites.run.prepare`` (collect the expert videos, pretrain codec and VQ-Diffusion, score statistics)
    in a temporary data root, at the run's precision. Per episode it labels the 100 transitions with the
    small VQ-Diffusion (CE, 10 steps, one batch) and at every update trains and applies the RND bonus
    (alpha 0.95): that is what its frames/s pays beyond sparse's. It asserts that
    both logged finite frames/s and that diffusion_reward's rewards are its own (not the sparse env
    reward). Skipped without --benchmark-enable: it would add minutes to the test suite."""
    if benchmark.disabled:  # a timing only; diffusion_reward training runs are tested in tests/test_suites*.py
        pytest.skip("a frames/s comparison: run with --benchmark-enable")
    frames = 1000
    data_root = tmp_path / "data"
    runs = {}
    for method in ("sparse", "diffusion_reward"):
        [spec] = expand(
            "metaworld7",
            "quick",
            methods=[method],
            tasks=["reach"],
            seeds=[0],
            results=tmp_path,
            frames=frames,
            data_root=str(data_root),
            precision=precision,
        )
        config, run_dir, request = shorten(spec.config, precision), spec.run_dir, spec.prepare
        if method != "sparse":
            request = dataclasses.replace(
                request, pretrain_steps=PRETRAIN_STEPS, expert_episodes=EXPERT_EPISODES, reports=False
            )
            config = dataclasses.replace(
                config, pretrain_steps=PRETRAIN_STEPS, expert_episodes=EXPERT_EPISODES, model_reports=False
            )
            prepare([RunSpec(config, run_dir, request)], log=lambda message: None)
        runs[method] = (config, run_dir)
    fps = alternate(benchmark, runs, frames)
    best = {m: max(v) for m, v in fps.items()}
    ratio = best["diffusion_reward"] / best["sparse"]
    benchmark.extra_info.update(
        frames=frames,
        precision=precision,
        fps_sparse=round(best["sparse"], 1),
        fps_diffusion_reward=round(best["diffusion_reward"], 1),
        ratio=round(ratio, 3),
        goal=DIFFUSION_VS_SPARSE_GOAL,
        all_runs=fps,
    )
    print(
        f"\ntraining frames/s, quick reach, {precision}: sparse {best['sparse']:.1f}, diffusion_reward "
        f"{best['diffusion_reward']:.1f} ({ratio:.2f}x; all runs {fps})"
    )
    assert all(v > 0 and math.isfinite(v) for v in best.values()), fps
    rows = {m: list(csv.DictReader(open(run_dir / "train.csv", newline=""))) for m, (_, run_dir) in runs.items()}
    assert all(rows.values()), rows
    learned = [float(r["learned_return"]) for r in rows["diffusion_reward"]]
    env = [float(r["episode_return"]) for r in rows["diffusion_reward"]]
    assert all(map(math.isfinite, learned)) and learned != env  # the video model's rewards, not the env's
