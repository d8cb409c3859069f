"""Speed of the DrQ-v2 agent: one update at batch 256 on 3x64x64 uint8 frames (fast and reference-style),
act() on one frame, and a replay sample of 256.

    pytest tests/benchmarks/test_bench_agent.py --benchmark-enable

The reference-style update (``agents.reference.ReferenceDrQV2``: grid_sample shift, NCHW encoder,
separate passes, critic weight gradients in the actor step, for-loop Adam, ``.item()`` metrics) runs on
the same networks and batch, so the two numbers compare on the same machine. Thread count is left to
torch's default (the runner's choice).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import DrQV2Agent, DrQV2Config, ReplayBuffer
from agents.reference import ReferenceDrQV2

OBS = (3, 64, 64)
ACTION_DIM = 4
BATCH = 256
STEP = 5000  # past the exploration phase


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return dict(obs=torch.randint(0, 256, (BATCH, *OBS), dtype=torch.uint8, generator=g),
                next_obs=torch.randint(0, 256, (BATCH, *OBS), dtype=torch.uint8, generator=g),
                action=torch.rand(BATCH, ACTION_DIM, generator=g) * 2 - 1,
                reward=torch.rand(BATCH, generator=g), discount=torch.full((BATCH,), 0.99 ** 3))


@pytest.fixture(scope="module")
def agent() -> DrQV2Agent:
    return DrQV2Agent(OBS, ACTION_DIM, DrQV2Config(batch_size=BATCH), device="cpu")


def test_bench_update_fast(benchmark, agent, batch):
    metrics = benchmark(agent.update, batch, STEP)
    assert np.isfinite(metrics["critic_loss"]) and np.isfinite(metrics["actor_loss"])


def test_bench_update_reference(benchmark, agent, batch):
    ref = ReferenceDrQV2(agent)
    metrics = benchmark(ref.update, batch, STEP)
    assert np.isfinite(metrics["critic_loss"]) and np.isfinite(metrics["actor_loss"])


def test_bench_act(benchmark, agent):
    obs = np.random.default_rng(0).integers(0, 256, OBS, dtype=np.uint8)
    action = benchmark(agent.act, obs, STEP, False)
    assert action.shape == (ACTION_DIM,) and np.all(np.abs(action) <= 1)


def test_bench_replay_sample(benchmark):
    rb = ReplayBuffer(100_000, OBS, ACTION_DIM, nstep=3, gamma=0.99, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        rb.add_episode(rng.integers(0, 256, (101, *OBS), dtype=np.uint8), rng.uniform(-1, 1, (100, ACTION_DIM)),
                       rng.random(100), np.ones(100))
    out = benchmark(rb.sample, BATCH)
    assert out["obs"].shape == (BATCH, *OBS)


def test_bench_sgemm_peak(benchmark):
    """This machine's float32 matmul speed (2048^3, 17.2 GFLOP): the ceiling any implementation of the
    update could reach. An update is 55.8 GFLOP at batch 256 (``torch.utils.flop_counter``), 78% of it
    convolutions, so update time >= 55.8 GFLOP / this rate."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2048, 2048, generator=g), torch.randn(2048, 2048, generator=g)
    out = benchmark(torch.mm, a, b)
    assert out.shape == (2048, 2048) and torch.isfinite(out).all()
