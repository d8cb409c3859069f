"""Pretraining speed: training steps per second of VQ-Diffusion and VideoGPT, fp32 vs bf16 in one process.

What a pretraining budget costs is its steps divided by this number, so the budget study's CPU-hours
follow from it. One step is ``rewards.models.pretrain.VideoModelTrainer.step`` exactly as pretraining runs
it (forward under the precision's autocast, fp32 loss, backward, gradient clip, AdamW, warm-up schedule,
the EMA update every 25 steps) at the small preset, context 2, batch 32 (pretraining's default), on random
tokens: the cost of a step does not depend on the data or the weights.

    OMP_NUM_THREADS=1 nice -n 10 pytest tests/benchmarks/test_bench_pretrain.py --benchmark-enable

The two precisions alternate block by block (fp32, bf16, bf16, fp32, ...) on 1 torch thread and on every
core, so load from other jobs hits both alike; each one's median steps/s over the blocks is reported
(``extra_info``) and printed, with their ratio and the CPU seconds per step (``time.process_time``: on one
thread less sensitive to other jobs than the wall clock, and the unit of the budget study's CPU-hours). Under the
default ``--benchmark-disable`` each case is a
plain test on one thread: one step per precision, which must give a finite loss and move the weights.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
import torch

from common.runtime import torch_threads
from rewards.models.pretrain import VideoModelTrainer
from rewards.models.video_model import preset_config

BATCH, CONTEXT, VOCAB = 32, 2, 1024
PRECISIONS = ("fp32", "bf16")
#: timed blocks per precision and steps per block (with --benchmark-enable)
BLOCKS, BLOCK_STEPS = 4, 5


def trainer(name: str, precision: str) -> VideoModelTrainer:
    torch.manual_seed(0)
    return VideoModelTrainer(name, preset_config(name, "small", CONTEXT), torch.device("cpu"), precision)


def batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randint(0, VOCAB, (BATCH, CONTEXT, 64), generator=g), torch.randint(0, VOCAB, (BATCH, 64), generator=g))
        for _ in range(n)
    ]


def run_steps(t: VideoModelTrainer, data, start: int) -> tuple[float, float, list[float]]:
    """Wall-clock and CPU seconds (this process, every thread) for ``len(data)`` training steps from step
    ``start``, and their losses."""
    losses = []
    t0, c0 = time.perf_counter(), time.process_time()
    for i, batch in enumerate(data):
        losses.append(t.step(batch, start + i)["loss"])
    return time.perf_counter() - t0, time.process_time() - c0, losses


@pytest.mark.parametrize("threads", sorted({1, os.cpu_count() or 1}))
@pytest.mark.parametrize("name", ["vqdiffusion", "videogpt"])
def test_bench_pretrain_steps_per_second(benchmark, name, threads):
    enabled = not benchmark.disabled
    if not enabled and threads > 1:
        pytest.skip("as a plain test one thread checks the steps; the thread count matters only for timing")
    blocks, per_block = (BLOCKS, BLOCK_STEPS) if enabled else (1, 1)
    trainers = {p: trainer(name, p) for p in PRECISIONS}
    before = {p: [w.detach().clone() for w in t.model.parameters()] for p, t in trainers.items()}
    data = batches(per_block)
    step = {p: 0 for p in PRECISIONS}
    seconds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    cpu: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    losses: dict[str, list[float]] = {p: [] for p in PRECISIONS}

    def one_round():
        for i in range(blocks):
            for p in PRECISIONS if i % 2 == 0 else PRECISIONS[::-1]:
                s, c, ls = run_steps(trainers[p], data, step[p])
                step[p] += per_block
                seconds[p].append(s)
                cpu[p].append(c)
                losses[p] += ls

    with torch_threads(threads):
        if enabled:  # one untimed block each: first-call allocations and kernel selection
            for p in PRECISIONS:
                run_steps(trainers[p], data[:2], step[p])
                step[p] += 2
        benchmark.pedantic(one_round, rounds=1, iterations=1)

    for p, t in trainers.items():
        assert all(math.isfinite(x) for x in losses[p]), (p, losses[p])
        assert any(not torch.equal(a, b) for a, b in zip(before[p], t.model.parameters())), f"{p}: no update"
    rate = {p: per_block / float(np.median(s)) for p, s in seconds.items()}
    cpu_per_step = {p: float(np.median(c)) / per_block for p, c in cpu.items()}
    if enabled:
        benchmark.extra_info.update(
            model=name,
            preset="small",
            batch=BATCH,
            threads=threads,
            steps_per_s_fp32=round(rate["fp32"], 3),
            steps_per_s_bf16=round(rate["bf16"], 3),
            bf16_speedup=round(rate["bf16"] / rate["fp32"], 3),
            cpu_s_per_step_fp32=round(cpu_per_step["fp32"], 3),
            cpu_s_per_step_bf16=round(cpu_per_step["bf16"], 3),
            block_seconds={p: [round(x, 3) for x in s] for p, s in seconds.items()},
        )
        print(
            f"\n{name} small, batch {BATCH}, {threads} thread(s): fp32 {rate['fp32']:.2f} steps/s, "
            f"bf16 {rate['bf16']:.2f} steps/s ({rate['bf16'] / rate['fp32']:.2f}x); CPU s/step fp32 "
            f"{cpu_per_step['fp32']:.3f}, bf16 {cpu_per_step['bf16']:.3f}; wall s per block {seconds}"
        )
        assert all(r > 0 for r in rate.values())
