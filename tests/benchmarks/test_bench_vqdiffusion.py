"""Speed of VQ-Diffusion scoring: frames per second for one 100-frame episode, on CPU.

One episode = 100 windows (context l = 2) scored in one batch, as the Diffusion Reward labels an
episode when it ends. ``ce`` is score_ce with 10 steps (11 network calls) and the condition's
cross-attention keys/values computed once; ``ce_recompute`` recomputes them at every step (the
gain of the cache); ``ll`` is score_ll over the same visited levels.

    pytest tests/benchmarks/test_bench_vqdiffusion.py --benchmark-enable

``extra_info["frames_per_s"]`` holds the throughput. With --benchmark-disable (the default) each case
runs once on a 4-window episode so the test suite stays cheap.
"""
from __future__ import annotations

import pytest
import torch

from rewards.models.vqdiffusion import VQDiffusion, VQDiffusionConfig

K = 1024
EPISODE_WINDOWS = 100

SCORERS = {
    "ce": lambda m, ctx, tgt, g: m.score_ce(ctx, steps=10, generator=g),
    "ce_recompute": lambda m, ctx, tgt, g: m.score_ce(ctx, steps=10, generator=g, cache_condition=False),
    "ll": lambda m, ctx, tgt, g: m.score_ll(ctx, tgt, steps=10, generator=g),
}

_MODELS: dict[str, VQDiffusion] = {}


def model(preset: str) -> VQDiffusion:
    if preset not in _MODELS:
        torch.manual_seed(0)
        _MODELS[preset] = VQDiffusion.from_config(VQDiffusionConfig.preset(preset, context=2)).eval()
    return _MODELS[preset]


@pytest.mark.parametrize("kind", sorted(SCORERS))
@pytest.mark.parametrize("preset", ["small", "paper"])
def test_bench_vqdiffusion_episode(benchmark, preset, kind):
    m = model(preset)
    windows = 4 if benchmark.disabled else EPISODE_WINDOWS
    g = torch.Generator().manual_seed(0)
    ctx = torch.randint(0, K, (windows, 2, 64), generator=g)
    tgt = torch.randint(0, K, (windows, 64), generator=g)
    score = SCORERS[kind]
    rounds = 1 if benchmark.disabled else (3 if preset == "small" else 2)
    out = benchmark.pedantic(lambda: score(m, ctx, tgt, torch.Generator().manual_seed(1)),
                             rounds=rounds, iterations=1, warmup_rounds=0 if benchmark.disabled else 1)
    assert out.shape == (windows,) and torch.isfinite(out).all()
    if not benchmark.disabled:
        benchmark.extra_info["frames_per_s"] = windows / benchmark.stats.stats.mean
        benchmark.extra_info["windows"] = windows
