"""RND's cost per agent update (bonus + predictor step, batch 64, 64x64 frames): what rnd, viper,
viper_std and diffusion_reward (alpha 0.95) pay at every update on MetaWorld.

    pytest tests/benchmarks/test_bench_rnd.py --benchmark-enable

The update reuses the forward its bonus made on the same batch (``RNDReward.bonus`` keeps it); the old way,
a bonus without autograd and a second forward in the update, is what the bonus does under
``torch.no_grad()``. Both are timed in one process, back to back in pairs whose order alternates, and the
median of the pairs' ratios is reported (``extra_info``).
"""

import torch

import rewards
from tests.benchmarks.timing import paired_ratio

BATCH, CALLS, PAIRS = 64, 10, 7


def _batches(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"next_obs": torch.randint(0, 256, (BATCH, 3, 64, 64), dtype=torch.uint8, generator=g)} for _ in range(n)]


def _driver(fused: bool):
    rnd = rewards.make("rnd", task="reach", domain="metaworld", seed=0)
    batches = _batches()

    def drive():
        for i in range(CALLS):
            batch = batches[i % len(batches)]
            if fused:
                rnd.bonus(batch)
            else:
                with torch.no_grad():
                    rnd.bonus(batch)
            rnd.update(batch, i)

    return drive, rnd


def test_bench_rnd_bonus_and_update_fused_vs_separate(benchmark):
    fused, a = _driver(True)
    separate, b = _driver(False)
    benchmark.extra_info["calls_per_round"] = CALLS
    benchmark.pedantic(fused, rounds=1 if benchmark.disabled else 3, warmup_rounds=0 if benchmark.disabled else 1)
    if benchmark.disabled:  # one round each: both learned the same (the fusion changes no number)
        separate()
        assert all(torch.equal(p, q) for p, q in zip(a.predictor.parameters(), b.predictor.parameters()))
        return
    ratio, ratios, _ = paired_ratio(fused, separate, PAIRS)
    benchmark.extra_info.update(
        fused_over_separate=round(ratio, 3), ratios=[round(r, 3) for r in ratios], threads=torch.get_num_threads()
    )
    print(f"\nRND bonus + update, batch {BATCH}: fused / separate time {ratio:.3f} (pairs {ratios})")
    assert ratio < 1.0, ratios
