"""VQ-Diffusion (rewards/models/vqdiffusion.py): the diffusion maths, the contract, and a short real training run.

The maths is checked against explicit transition matrices on a tiny codebook; the model is trained for
a few hundred steps on a synthetic "video" (each frame a fixed permutation of a 16-code vocabulary
applied to the previous one, per grid cell) and must then fit it, be more certain on such contexts than
on random ones, and prefer the true next frame.
"""

from __future__ import annotations

import math

import pytest
import torch

from rewards.models.pretrain import VideoModelTrainer
from rewards.models.vqdiffusion import (
    LOG_EPS,
    MaskReplaceSchedule,
    VQDiffusion,
    VQDiffusionConfig,
    VQDiffusionOptim,
    _gumbel_argmax,
)

K = 1024


def onehot_log(x: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.where(torch.nn.functional.one_hot(x, classes).bool(), 0.0, LOG_EPS)


def levels(b: int, value: int) -> torch.Tensor:
    return torch.full((b,), value, dtype=torch.long)


# ----------------------------------------------------------------------------- config and shapes


def test_presets_and_config_round_trip():
    small = VQDiffusionConfig.preset("small", context=3)
    paper = VQDiffusionConfig.preset("paper", context=2)
    assert (paper.depth, paper.width, paper.heads, paper.diffusion_steps) == (16, 128, 16, 100)
    assert (small.depth, small.width, small.context) == (4, 64, 3)
    assert paper.optim.betas == (0.9, 0.96) and paper.optim.weight_decay == pytest.approx(4.5e-2)
    assert paper.optim.lr == pytest.approx(4.5e-4) and paper.optim.warmup_steps > 0
    again = VQDiffusionConfig.from_dict(small.to_dict())
    assert again == small and isinstance(again.optim, VQDiffusionOptim)
    with pytest.raises(ValueError, match="small"):
        VQDiffusionConfig.preset("huge")
    with pytest.raises(ValueError, match="context"):
        VQDiffusionConfig.from_dict({**small.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="uniform"):
        VQDiffusion.from_config(VQDiffusionConfig.preset("small", time_sampling="bogus"))


@pytest.fixture(scope="module")
def fresh_model():
    torch.manual_seed(0)
    return VQDiffusion.from_config(VQDiffusionConfig.preset("small", context=2, depth=2)).eval()


def test_shapes(fresh_model):
    m = fresh_model
    ctx = torch.randint(0, K, (3, 2, 64))
    tgt = torch.randint(0, K, (3, 64))
    loss, info = m.loss(ctx, tgt)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert {"loss", "vb_per_token", "x0_ce_per_token", "x0_acc"} <= set(info)
    assert all(isinstance(v, float) and math.isfinite(v) for v in info.values())
    ce, ll = m.score_ce(ctx, steps=2), m.score_ll(ctx, tgt, steps=2)
    sample = m.sample(ctx, steps=2)
    assert ce.shape == ll.shape == (3,) and ce.dtype == ll.dtype == torch.float32
    assert sample.shape == (3, 64) and sample.dtype == torch.long
    assert int(sample.min()) >= 0 and int(sample.max()) < K  # a finished sample has no mask tokens
    # model.config is what the checkpoint stores
    assert VQDiffusion.from_config(m.config.to_dict()).config == m.config


def test_loss_backward_gives_finite_gradients(fresh_model):
    m = VQDiffusion.from_config(fresh_model.config)
    loss, _ = m.loss(torch.randint(0, K, (4, 2, 64)), torch.randint(0, K, (4, 64)))
    loss.backward()
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


# ----------------------------------------------------------------------------- diffusion maths


def test_schedule_endpoints():
    s = MaskReplaceSchedule(K, 100, 0.99999, 0.000009, 0.000009, 0.99999)
    keep, mask = s.log_a[0].exp(), s.log_c[0].exp()
    assert keep[1] == pytest.approx(0.99999) and keep[100] == pytest.approx(0.000009, rel=1e-3)
    assert mask[1] == pytest.approx(0.000009, rel=1e-3) and mask[100] == pytest.approx(0.99999)
    assert torch.all(keep[1:] < keep[:-1]) and torch.all(mask[1:] > mask[:-1])


def test_marginals_sum_to_one_and_match_composed_one_step_transitions():
    s = MaskReplaceSchedule(K, 100, 0.99999, 0.000009, 0.000009, 0.99999)
    x0 = torch.randint(0, K, (2, 64))
    start = onehot_log(x0, K + 1)
    chain = start
    for v in range(1, 101):
        chain = s.propagate(chain, levels(2, v - 1), levels(2, v))  # one step at a time
        if v in (1, 2, 10, 37, 60, 99, 100):
            direct = s.propagate(start, levels(2, 0), levels(2, v))  # q(z_v | x0)
            assert torch.allclose(direct.logsumexp(-1), torch.zeros(2, 64), atol=1e-5)
            assert torch.allclose(chain.exp(), direct.exp(), atol=1e-5)
    # a skip u -> w equals u -> v -> w
    mid = s.propagate(s.propagate(start, levels(2, 0), levels(2, 30)), levels(2, 30), levels(2, 80))
    assert torch.allclose(mid.exp(), s.propagate(start, levels(2, 0), levels(2, 80)).exp(), atol=1e-5)


def _explicit_matrices(s: MaskReplaceSchedule, k: int) -> list[torch.Tensor]:
    """One-step transition matrices Q_v[i, j] = q(z_v = j | z_{v-1} = i), float64, from the tables."""
    mats = []
    for v in range(1, s.steps + 1):
        a, b, c = (float(getattr(s, n)[v - 1, v].double().exp()) for n in ("log_a", "log_b", "log_c"))
        q = torch.full((k + 1, k + 1), b, dtype=torch.float64)
        q[:k, :k] += a * torch.eye(k, dtype=torch.float64)
        q[:k, k] = c
        q[k] = 0.0
        q[k, k] = 1.0
        mats.append(q)
    return mats


def test_posterior_matches_explicit_bayes_and_sums_to_one():
    k, steps = 6, 10
    s = MaskReplaceSchedule(k, steps, 0.99999, 0.000009, 0.000009, 0.99999)
    mats = _explicit_matrices(s, k)

    def q_between(u, v):
        out = torch.eye(k + 1, dtype=torch.float64)
        for m in mats[u:v]:
            out = out @ m
        return out

    torch.manual_seed(1)
    p_x0 = torch.softmax(torch.randn(k, dtype=torch.float64) * 2, 0)
    for u, v in [(0, 1), (4, 5), (0, 7), (3, 9), (9, 10), (1, 10)]:
        quv, q0u, q0v = q_between(u, v), q_between(0, u), q_between(0, v)
        for zv in [0, 3, k]:  # two real tokens and the mask
            # model posterior p(z_u | z_v) = sum_x0 q(z_u | z_v, x0) p(x0), by brute force
            expected = torch.zeros(k + 1, dtype=torch.float64)
            for x0 in range(k):
                joint = q0u[x0] * quv[:, zv]  # q(z_u | x0) q(z_v | z_u)
                if q0v[x0, zv] > 0:
                    expected += p_x0[x0] * joint / q0v[x0, zv]
            log_p = torch.cat([p_x0.log().float(), torch.tensor([LOG_EPS])]).clamp(min=LOG_EPS)
            got = s.posterior(log_p.view(1, 1, -1), torch.tensor([[zv]]), levels(1, u), levels(1, v))
            bayes = s.posterior_bayes(log_p.view(1, 1, -1), torch.tensor([[zv]]), levels(1, u), levels(1, v))
            assert torch.allclose(got.exp().double().view(-1), expected, atol=1e-5), (u, v, zv)
            assert torch.allclose(bayes.exp(), got.exp(), atol=1e-5)
            assert float(got.logsumexp(-1)) == pytest.approx(0.0, abs=1e-5)
            # true posterior q(z_u | z_v, x0) for a one-hot x0
            x0 = 2
            truth = q0u[x0] * quv[:, zv] / q0v[x0, zv]
            got = s.posterior(onehot_log(torch.tensor([[x0]]), k + 1), torch.tensor([[zv]]), levels(1, u), levels(1, v))
            assert torch.allclose(got.exp().double().view(-1), truth, atol=1e-5)
            assert float(got.logsumexp(-1)) == pytest.approx(0.0, abs=1e-5)


def test_posterior_sums_to_one_at_full_size():
    s = MaskReplaceSchedule(K, 100, 0.99999, 0.000009, 0.000009, 0.99999)
    torch.manual_seed(2)
    x0 = torch.randint(0, K, (4, 64))
    log_p = torch.log_softmax(torch.randn(4, 64, K) * 3, -1)
    log_p = torch.cat([log_p, torch.full_like(log_p[..., :1], LOG_EPS)], -1)
    for u, v in [(0, 1), (9, 10), (10, 20), (90, 100), (1, 10)]:
        z = s.sample_marginal(x0, levels(4, v), None)
        z[:, :5] = K  # make sure some masks are present
        for inp in (log_p, onehot_log(x0, K + 1)):
            post = s.posterior(inp, z, levels(4, u), levels(4, v))
            assert torch.allclose(post.logsumexp(-1), torch.zeros(4, 64), atol=1e-5)
            assert torch.allclose(post.exp(), s.posterior_bayes(inp, z, levels(4, u), levels(4, v)).exp(), atol=1e-5)


def test_sample_marginal_frequencies():
    s = MaskReplaceSchedule(K, 100, 0.99999, 0.000009, 0.000009, 0.99999)
    x0 = torch.full((200, 64), 5)
    g = torch.Generator().manual_seed(0)
    z = s.sample_marginal(x0, levels(200, 50), g)
    keep, mask = float(s.log_a[0, 50].exp()), float(s.log_c[0, 50].exp())
    assert float((z == K).float().mean()) == pytest.approx(mask, abs=0.01)
    assert float((z == 5).float().mean()) == pytest.approx(keep, abs=0.01)


def test_gumbel_sampler_draws_from_the_distribution():
    log_p = torch.log_softmax(torch.tensor([1.0, -2.0, 0.5, 2.0, -0.5]), -1)
    draws = _gumbel_argmax(log_p.expand(100_000, 1, 5).contiguous(), torch.Generator().manual_seed(0))
    freq = torch.bincount(draws.view(-1), minlength=5).float() / draws.numel()
    assert torch.allclose(freq, log_p.exp(), atol=0.01)


# ----------------------------------------------------------------------------- scores: determinism, steps


def test_visited_levels():
    m = VQDiffusion.from_config(VQDiffusionConfig.preset("small", depth=1))
    assert m.visited_levels(10) == [100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 1]  # t = 99, 89, ..., 9, 0
    assert m.visited_levels(2) == [100, 50, 1]
    assert m.visited_levels(100) == list(range(100, 0, -1))
    for bad in (0, 101, 2.5, "10"):
        with pytest.raises(ValueError, match="steps"):
            m.visited_levels(bad)


def test_score_ce_deterministic_and_finite(fresh_model):
    m = fresh_model
    ctx = torch.randint(0, K, (3, 2, 64), generator=torch.Generator().manual_seed(0))
    a = m.score_ce(ctx, generator=torch.Generator().manual_seed(7))
    b = m.score_ce(ctx, generator=torch.Generator().manual_seed(7))
    c = m.score_ce(ctx, generator=torch.Generator().manual_seed(8))
    assert torch.isfinite(a).all() and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(m.score_ce(ctx, noise=False), m.score_ce(ctx, noise=False))
    # caching the condition's keys/values changes nothing but the speed
    d = m.score_ce(ctx, generator=torch.Generator().manual_seed(7), cache_condition=False)
    assert torch.allclose(a, d, atol=1e-3)
    # windows are scored independently of their batch neighbours (no-noise chain)
    assert torch.allclose(m.score_ce(ctx[:1], noise=False), m.score_ce(ctx, noise=False)[:1], atol=1e-3)


@pytest.mark.parametrize("steps", [2, 5, 10, 20])
def test_skipping_steps_gives_finite_scores(fresh_model, steps):
    ctx = torch.randint(0, K, (2, 2, 64))
    tgt = torch.randint(0, K, (2, 64))
    g = torch.Generator().manual_seed(0)
    ce = fresh_model.score_ce(ctx, steps=steps, generator=g)
    ll = fresh_model.score_ll(ctx, tgt, steps=steps, generator=g)
    assert torch.isfinite(ce).all() and torch.isfinite(ll).all()
    assert (ll < 0).all()  # an ELBO of a discrete variable is a log-probability bound


def test_bad_inputs_raise_value_error(fresh_model):
    m = fresh_model
    ctx, tgt = torch.randint(0, K, (2, 2, 64)), torch.randint(0, K, (2, 64))
    bad_calls = [
        lambda: m.score_ce(ctx.float()),  # wrong dtype
        lambda: m.score_ce(ctx.int()),
        lambda: m.score_ce(ctx[:, :1]),  # wrong context length
        lambda: m.score_ce(ctx[..., :32]),  # wrong token count
        lambda: m.score_ce(ctx[0]),  # missing batch axis
        lambda: m.score_ce(ctx.numpy()),  # not a tensor
        lambda: m.score_ce(ctx + K),  # id out of range (K is the mask)
        lambda: m.score_ce(ctx, noise="yes"),
        lambda: m.score_ce(ctx, steps=0),
        lambda: m.score_ll(ctx, tgt[:1]),  # batch mismatch
        lambda: m.score_ll(ctx, tgt.float()),
        lambda: m.loss(ctx, tgt[:, :10]),
        lambda: m.sample(ctx[:, :, :8]),
        lambda: m.score_ce(ctx[:0]),  # empty batch
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()


# ----------------------------------------------------------------------------- a real (short) training run

VOCAB = 16


def toy_task(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(K, generator=g)[:VOCAB], torch.randperm(VOCAB, generator=g)


def toy_batch(task, n: int, g: torch.Generator):
    """Each frame applies a fixed permutation of a 16-code vocabulary to the previous one, per cell."""
    codes, perm = task
    f0 = torch.randint(0, VOCAB, (n, 64), generator=g)
    f1, f2 = perm[f0], perm[perm[f0]]
    return torch.stack([codes[f0], codes[f1]], 1), codes[f2]


def heldout_loss(m: VQDiffusion, ctx, tgt) -> float:
    """Mean training loss (an unbiased estimate of the bound per token) over fixed draws of t and z_t."""
    m.eval()
    with torch.no_grad():
        out = [m.loss(ctx, tgt, generator=torch.Generator().manual_seed(s))[0].item() for s in range(4)]
    return sum(out) / len(out)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    cfg = VQDiffusionConfig.preset("small", context=2, depth=2)
    m = VQDiffusion.from_config(cfg)
    task = toy_task()
    held_ctx, held_tgt = toy_batch(task, 32, torch.Generator().manual_seed(99))
    before = heldout_loss(m, held_ctx, held_tgt)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3, betas=cfg.optim.betas, weight_decay=cfg.optim.weight_decay)
    g = torch.Generator().manual_seed(1)
    m.train()
    for _ in range(220):
        ctx, tgt = toy_batch(task, 32, g)
        loss, _ = m.loss(ctx, tgt, generator=g)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
    after = heldout_loss(m, held_ctx, held_tgt)
    m.eval()
    return dict(model=m, before=before, after=after, ctx=held_ctx, tgt=held_tgt)


def test_training_lowers_heldout_loss(trained):
    assert math.isfinite(trained["before"]) and math.isfinite(trained["after"])
    assert trained["after"] < 0.3 * trained["before"], (trained["before"], trained["after"])


def test_trained_model_samples_the_next_frame(trained):
    m, ctx, tgt = trained["model"], trained["ctx"], trained["tgt"]
    sample = m.sample(ctx, noise=False)
    assert float((sample == tgt).float().mean()) > 0.6


def test_score_ce_higher_in_distribution_than_for_random_contexts(trained):
    m, ctx = trained["model"], trained["ctx"]
    rand = torch.randint(0, K, ctx.shape, generator=torch.Generator().manual_seed(5))
    for noise in (True, False):
        seen = m.score_ce(ctx, noise=noise, generator=torch.Generator().manual_seed(3))
        unseen = m.score_ce(rand, noise=noise, generator=torch.Generator().manual_seed(3))
        assert float(seen.mean()) > float(unseen.mean()) + 20.0, (noise, seen.mean(), unseen.mean())


def test_score_ll_prefers_the_true_next_frame(trained):
    m, ctx, tgt = trained["model"], trained["ctx"], trained["tgt"]
    rand = torch.randint(0, K, tgt.shape, generator=torch.Generator().manual_seed(6))
    wrong = toy_task()[0][torch.randint(0, VOCAB, tgt.shape, generator=torch.Generator().manual_seed(7))]
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    true_ll = m.score_ll(ctx, tgt, generator=g())
    assert (true_ll > m.score_ll(ctx, rand, generator=g())).all()
    assert (true_ll > m.score_ll(ctx, wrong, generator=g())).all()  # right vocabulary, wrong frame


def test_state_dict_round_trip_gives_identical_scores(trained):
    m, ctx, tgt = trained["model"], trained["ctx"][:4], trained["tgt"][:4]
    blob = {"config": m.config.to_dict(), "state_dict": m.state_dict()}
    clone = VQDiffusion.from_config(blob["config"])
    clone.load_state_dict(blob["state_dict"])
    clone.eval()
    for fn in (
        lambda x: x.score_ce(ctx, generator=torch.Generator().manual_seed(2)),
        lambda x: x.score_ce(ctx, noise=False),
        lambda x: x.score_ll(ctx, tgt, generator=torch.Generator().manual_seed(2)),
    ):
        assert torch.equal(fn(m), fn(clone))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_deterministically(fresh_model):
    m = VQDiffusion.from_config(fresh_model.config)
    m.load_state_dict(fresh_model.state_dict())
    m = m.to("cuda").eval()
    ctx = torch.randint(0, K, (3, 2, 64))
    a = m.score_ce(ctx, generator=torch.Generator().manual_seed(0))
    b = m.score_ce(ctx.cuda(), generator=torch.Generator().manual_seed(0))
    assert a.device.type == "cuda" and torch.equal(a, b)
    assert m.score_ll(ctx, torch.randint(0, K, (3, 64))).device.type == "cuda"
    loss, _ = m.loss(ctx.cuda(), torch.randint(0, K, (3, 64), device="cuda"))
    assert torch.isfinite(loss)


# ----------------------------------------------------------------------------- the trainer reads the optim block


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_trainer_reads_warmup_start_lr_and_grad_clip(clip):
    """``VideoModelTrainer`` starts the warm-up at ``warmup_start_lr`` and clips to ``grad_clip`` (the
    config's values, not numbers of its own)."""
    optim = VQDiffusionOptim(lr=1e-3, warmup_steps=10, warmup_start_lr=1e-4, grad_clip=clip)
    cfg = VQDiffusionConfig.preset("small", context=2, depth=1, width=32, heads=2, num_classes=16, optim=optim)
    torch.manual_seed(0)
    trainer = VideoModelTrainer("vqdiffusion", cfg, torch.device("cpu"))
    # step 0 trains at start + (lr - start) / warmup_steps, and the rate reaches lr after the warm-up
    assert trainer.sched.get_last_lr()[0] == pytest.approx(1e-4 + (1e-3 - 1e-4) / 10)
    g = torch.Generator().manual_seed(0)
    ctx, tgt = torch.randint(0, 16, (8, 2, 64), generator=g), torch.randint(0, 16, (8, 64), generator=g)
    trainer.step((ctx, tgt), 0)
    norm = torch.linalg.vector_norm(
        torch.stack([p.grad.norm() for p in trainer.model.parameters() if p.grad is not None])
    )
    if clip is None:
        assert norm > 1e-2  # unclipped: the raw gradient of a fresh model
    else:
        assert norm == pytest.approx(clip, rel=1e-3)
    for s in range(1, 12):
        trainer.step((ctx, tgt), s)
    assert trainer.sched.get_last_lr()[0] == pytest.approx(1e-3)
