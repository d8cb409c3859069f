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

import os
import statistics
import time

import pytest
import torch

from common.runtime import torch_threads
from rewards.models import vqdiffusion
from rewards.models.codec import VQGAN, CodecConfig
from rewards.models.precision import autocast
from rewards.models.video_model import score_episode_tokens
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
    """Random weights (the cost does not depend on them), frozen as ``rewards.models.store`` loads a model for
    a reward provider: under bf16 autocast a frozen model's weights are cast again at every linear."""
    if preset not in _MODELS:
        torch.manual_seed(0)
        net = VQDiffusion.from_config(VQDiffusionConfig.preset(preset, context=2))
        _MODELS[preset] = net.eval().requires_grad_(False)
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
    out = benchmark.pedantic(
        lambda: score(m, ctx, tgt, torch.Generator().manual_seed(1)),
        rounds=rounds,
        iterations=1,
        warmup_rounds=0 if benchmark.disabled else 1,
    )
    assert out.shape == (windows,) and torch.isfinite(out).all()
    if not benchmark.disabled:
        benchmark.extra_info["frames_per_s"] = windows / benchmark.stats.stats.mean
        benchmark.extra_info["windows"] = windows


_CODECS: dict = {}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bench_label_episode_paper(benchmark, precision):
    """What ``diffusion_reward`` does when an episode ends, at the paper preset: encode its 101 frames with
    the codec, score its 100 transitions (CE, 10 steps, one batch). The bf16 goal: <= 8 s on the 2-core
    EPYC in bf16 (docs/precision.md has the measured medians and the command).

        pytest tests/benchmarks/test_bench_vqdiffusion.py --benchmark-enable -k label_episode
    """
    n = 5 if benchmark.disabled else EPISODE_WINDOWS + 1
    label = labeller(n, precision)
    out = benchmark.pedantic(
        label, rounds=1 if benchmark.disabled else 3, iterations=1, warmup_rounds=0 if benchmark.disabled else 1
    )
    assert out.shape == (n - 1,) and torch.isfinite(out).all()
    if not benchmark.disabled:
        benchmark.extra_info["seconds_median"] = benchmark.stats.stats.median
        benchmark.extra_info["precision"] = precision


def labeller(n: int, precision: str, lowp_scoring: bool = True):
    """``label()``: what ``diffusion_reward`` does at an episode's end for ``n`` frames, paper preset (codec
    encoding, then CE scoring of the ``n - 1`` transitions in one batch), frozen models as the provider's.
    ``lowp_scoring=False``: bf16 scoring on the autocast path (``vqdiffusion.LOWP_SCORING``)."""
    if "paper" not in _CODECS:
        torch.manual_seed(0)
        _CODECS["paper"] = VQGAN(CodecConfig.preset("paper")).eval().requires_grad_(False)
    codec, m = _CODECS["paper"], model("paper")
    frames = torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    def label():
        before = vqdiffusion.LOWP_SCORING
        vqdiffusion.LOWP_SCORING = lowp_scoring
        try:
            with torch.no_grad():
                tokens = codec.encode(frames, precision=precision)
                return score_episode_tokens(
                    m,
                    tokens,
                    "ce",
                    steps=10,
                    noise=True,
                    batch_size=n,
                    generator=torch.Generator().manual_seed(1),
                    precision=precision,
                )
        finally:
            vqdiffusion.LOWP_SCORING = before

    return label


def test_bench_label_episode_paper_interleaved(benchmark):
    """The label_episode work of ``test_bench_label_episode_paper`` three ways in one process, alternating
    within every round so that load from other jobs hits all alike, on 1 torch thread (less sensitive to
    a busy machine than 2): fp32; bf16 on the autocast path (how bf16 scoring ran before it had its own
    path); bf16 on its own path (``vqdiffusion.LowPrecisionWeights``). ``extra_info`` holds each one's
    median wall and process-CPU seconds and the ratios to fp32, and the load average during the rounds.
    The bf16 goal is <= 8 s in bf16 on the idle 2-core EPYC where fp32 takes 12.9 s: a bf16/fp32 ratio
    <= 0.62 (docs/precision.md, "Speed").

        pytest tests/benchmarks/test_bench_vqdiffusion.py --benchmark-enable -k interleaved
    """
    n = 5 if benchmark.disabled else EPISODE_WINDOWS + 1
    ways = {
        "fp32": labeller(n, "fp32"),
        "bf16_autocast": labeller(n, "bf16", lowp_scoring=False),
        "bf16": labeller(n, "bf16"),
    }
    wall: dict[str, list[float]] = {w: [] for w in ways}
    cpu: dict[str, list[float]] = {w: [] for w in ways}
    loads, outs = [], {}

    def one_round():
        for way, label in ways.items():
            c, t = time.process_time(), time.perf_counter()
            outs[way] = label()
            wall[way].append(time.perf_counter() - t)
            cpu[way].append(time.process_time() - c)
            loads.append(os.getloadavg()[0])

    with torch_threads(1):
        benchmark.pedantic(one_round, rounds=1 if benchmark.disabled else 3, iterations=1)
    assert all(o.shape == (n - 1,) and torch.isfinite(o).all() for o in outs.values())
    assert not torch.equal(outs["bf16"], outs["fp32"])  # the bf16 path did run in bf16
    med = {f"{kind}_{w}": round(statistics.median(v[w]), 2) for kind, v in (("wall", wall), ("cpu", cpu)) for w in ways}
    ratios = {
        f"{kind}_{w}_over_fp32": round(med[f"{kind}_{w}"] / med[f"{kind}_fp32"], 3)
        for kind in ("wall", "cpu")
        for w in ("bf16_autocast", "bf16")
    }
    benchmark.extra_info.update(
        windows=n - 1,
        threads=1,
        **med,
        **ratios,
        load_average=[round(min(loads), 2), round(statistics.median(loads), 2), round(max(loads), 2)],
    )
    print(
        f"\nlabel one episode ({n - 1} transitions, paper preset, 1 thread), medians: {med}; {ratios}; "
        f"load average min/median/max {benchmark.extra_info['load_average']}"
    )
