"""Speed of the video models on CPU: scoring one 100-frame episode (LL and CE), and codec encoding.

Run with ``pytest tests/benchmarks/test_bench_video_models.py --benchmark-enable``. Under the default
``--benchmark-disable`` each benchmark runs once as a plain test on a 5-frame episode (cheap).
Reported numbers: frames (transitions) per second = episode transitions / mean time.
"""

import pytest
import torch

from rewards.models.codec import VQGAN, CodecConfig
from rewards.models.video_model import score_episode_tokens
from rewards.models.videogpt import VideoGPT, VideoGPTConfig

FULL_FRAMES = 101  # a 100-step episode: 100 transitions


def _frames(benchmark) -> int:
    return 5 if benchmark.disabled else FULL_FRAMES


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("preset", ["small", "paper"])
@pytest.mark.parametrize("kind", ["ll", "ce"])
def test_bench_videogpt_score_episode(benchmark, preset, kind, precision):
    torch.manual_seed(0)
    model = VideoGPT(VideoGPTConfig.preset(preset, context=2)).eval()
    n = _frames(benchmark)
    tokens = torch.randint(0, 1024, (n, 64))
    gen = torch.Generator().manual_seed(0)
    scores = benchmark.pedantic(
        score_episode_tokens,
        args=(model, tokens, kind),
        kwargs=dict(noise=True, generator=gen, batch_size=128, precision=precision),
        rounds=1 if preset == "paper" else 3,
        iterations=1,
    )
    assert scores.shape == (n - 1,) and torch.isfinite(scores).all()
    if not benchmark.disabled:
        benchmark.extra_info["frames_per_second"] = (n - 1) / benchmark.stats.stats.mean


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("preset", ["small", "paper"])
def test_bench_codec_encode(benchmark, preset, precision):
    torch.manual_seed(0)
    codec = VQGAN(CodecConfig.preset(preset)).eval()
    n = 16 if benchmark.disabled else 100
    frames = torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8)
    tokens = benchmark.pedantic(codec.encode, args=(frames,), kwargs=dict(precision=precision), rounds=3, iterations=1)
    assert tokens.shape == (n, 64)
    if not benchmark.disabled:
        benchmark.extra_info["frames_per_second"] = n / benchmark.stats.stats.mean
