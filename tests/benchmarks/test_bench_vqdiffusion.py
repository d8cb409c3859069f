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

from rewards.models.precision import autocast
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


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("kind", sorted(SCORERS))
@pytest.mark.parametrize("preset", ["small", "paper"])
def test_bench_vqdiffusion_episode(benchmark, preset, kind, precision):
    m = model(preset)
    if precision == "bf16":  # the network under bf16 autocast, posteriors in fp32 (rewards.models.precision)
        score_fp32 = SCORERS[kind]

        def score_bf16(*args):
            with autocast("bf16", "cpu"):
                return score_fp32(*args)
    SCORERS_NOW = {kind: score_bf16 if precision == "bf16" else SCORERS[kind]}
    windows = 4 if benchmark.disabled else EPISODE_WINDOWS
    g = torch.Generator().manual_seed(0)
    ctx = torch.randint(0, K, (windows, 2, 64), generator=g)
    tgt = torch.randint(0, K, (windows, 64), generator=g)
    score = SCORERS_NOW[kind]
    rounds = 1 if benchmark.disabled else (3 if preset == "small" else 2)
    out = benchmark.pedantic(lambda: score(m, ctx, tgt, torch.Generator().manual_seed(1)),
                             rounds=rounds, iterations=1, warmup_rounds=0 if benchmark.disabled else 1)
    assert out.shape == (windows,) and torch.isfinite(out).all()
    if not benchmark.disabled:
        benchmark.extra_info["frames_per_s"] = windows / benchmark.stats.stats.mean
        benchmark.extra_info["windows"] = windows


_CODECS: dict = {}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bench_label_episode_paper(benchmark, precision):
    """What ``diffusion_reward`` does when an episode ends, at the paper preset: encode its 101 frames with
    the codec, score its 100 transitions (CE, 10 steps, one batch). Issue 12's goal: <= 8 s on the 2-core
    EPYC in bf16 (docs/precision.md has the measured medians and the command).

        pytest tests/benchmarks/test_bench_vqdiffusion.py --benchmark-enable -k label_episode
    """
    from rewards.models.codec import VQGAN, CodecConfig
    from rewards.models.video_model import score_episode_tokens

    if "paper" not in _CODECS:
        torch.manual_seed(0)
        _CODECS["paper"] = VQGAN(CodecConfig.preset("paper")).eval()
    codec, m = _CODECS["paper"], model("paper")
    n = 5 if benchmark.disabled else EPISODE_WINDOWS + 1
    frames = torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    def label():
        with torch.no_grad():
            tokens = codec.encode(frames, precision=precision)
            return score_episode_tokens(m, tokens, "ce", steps=10, noise=True, batch_size=n,
                                        generator=torch.Generator().manual_seed(1), precision=precision)

    out = benchmark.pedantic(label, rounds=1 if benchmark.disabled else 3, iterations=1,
                             warmup_rounds=0 if benchmark.disabled else 1)
    assert out.shape == (n - 1,) and torch.isfinite(out).all()
    if not benchmark.disabled:
        benchmark.extra_info["seconds_median"] = benchmark.stats.stats.median
        benchmark.extra_info["precision"] = precision
