"""VideoGPT: contract shapes, KV-cache correctness, causality, score determinism, training, checkpoints."""

import pytest
import torch

from rewards.models import store
from rewards.models.pretrain import VideoModelTrainer
from rewards.models.store import ModelRef
from rewards.models.video_model import ce_windows, config_from_dict, config_to_dict, ll_windows, score_episode_tokens
from rewards.models.videogpt import VideoGPT, VideoGPTConfig, VideoGPTOptim
from tasks.datasets import load_episodes
from tests.conftest import TASK


def tiny_config(**kw) -> VideoGPTConfig:
    base = dict(
        context=1,
        vocab_size=256,
        n_layers=2,
        width=64,
        n_heads=4,
        dropout=0.0,
        optim=VideoGPTOptim(lr=2e-3, warmup_steps=20),
    )
    base.update(kw)
    return VideoGPTConfig(**base)


def random_tokens(*shape, vocab=256, seed=0):
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def test_windows_follow_the_reward_alignment():
    tokens = torch.arange(5)[:, None].repeat(1, 64)  # frame i is all i: o_0..o_4, T = 4
    ctx = ce_windows(tokens, 2)
    assert ctx.shape == (4, 2, 64)
    # CE of transition t: the 2 frames ending at o_{t+1}, o_0 repeated before the start
    assert ctx[:, :, 0].tolist() == [[0, 1], [1, 2], [2, 3], [3, 4]]
    c, t = ll_windows(tokens, 2)
    assert c[:, :, 0].tolist() == [[0, 0], [0, 1], [1, 2], [2, 3]]
    assert t[:, 0].tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"\[T\+1, 64\]"):
        ll_windows(torch.zeros(5, 32, dtype=torch.long), 2)


def test_shapes_and_bad_inputs():
    m = VideoGPT(tiny_config(context=2)).eval()
    ctx, tgt = random_tokens(3, 2, 64), random_tokens(3, 64, seed=1)
    assert m.loss(ctx, tgt).ndim == 0
    assert m.score_ll(ctx, tgt).shape == (3,)
    assert m.score_ce(ctx, noise=False).shape == (3,)
    s = m.sample(ctx, noise=False)
    assert s.shape == (3, 64) and s.dtype == torch.long and s.max() < 256
    with pytest.raises(ValueError, match=r"context must be LongTensor \[B, 2, 64\]"):
        m.score_ll(random_tokens(3, 1, 64), tgt)
    with pytest.raises(ValueError, match="target must be"):
        m.score_ll(ctx, random_tokens(3, 63))
    with pytest.raises(ValueError, match="int64"):
        m.score_ce(ctx.float())
    with pytest.raises(ValueError, match="paper, small"):
        VideoGPTConfig.preset("tiny")
    paper = VideoGPTConfig.preset("paper", context=3)
    assert (paper.n_layers, paper.width, paper.n_heads, paper.context) == (8, 512, 8, 3)


def test_kv_cache_rollout_matches_teacher_forcing_on_its_sample():
    """score_ce = -sum of entropies of the teacher-forced predictive distributions on the model's own sample."""
    torch.manual_seed(0)
    m = VideoGPT(tiny_config()).eval()
    ctx = random_tokens(4, 1, 64)
    for noise in (False, True):
        g = torch.Generator().manual_seed(3)
        ce = m.score_ce(ctx, noise=noise, generator=g)
        sample = m.sample(ctx, noise=noise, generator=torch.Generator().manual_seed(3))
        logp = m._logits(ctx, sample)[:, -64:].log_softmax(-1)
        ent = -(logp.exp() * logp).sum(-1).sum(1)
        torch.testing.assert_close(ce, -ent, atol=1e-3, rtol=1e-4)
        if not noise:  # greedy: each sampled token is the argmax of its teacher-forced distribution
            assert torch.equal(sample, logp.argmax(-1))


def test_ll_is_causal_and_a_log_probability():
    torch.manual_seed(0)
    m = VideoGPT(tiny_config()).eval()
    ctx, tgt = random_tokens(2, 1, 64), random_tokens(2, 64, seed=1)
    ll = m.score_ll(ctx, tgt)
    assert (ll < 0).all()
    logp = m._logits(ctx, tgt)[:, -64:].log_softmax(-1)
    torch.testing.assert_close(ll, logp.gather(-1, tgt[..., None]).squeeze(-1).sum(1))
    tgt2 = tgt.clone()
    tgt2[:, 40] = (tgt2[:, 40] + 1) % 256
    logp2 = m._logits(ctx, tgt2)[:, -64:].log_softmax(-1)
    torch.testing.assert_close(logp[:, :41], logp2[:, :41])  # token 40 only affects later predictions
    assert not torch.allclose(logp[:, 41:], logp2[:, 41:])


def test_entropy_score_is_finite_and_deterministic():
    torch.manual_seed(0)
    m = VideoGPT(tiny_config()).eval()
    ctx = random_tokens(5, 1, 64)
    a, b = m.score_ce(ctx, noise=False), m.score_ce(ctx, noise=False)
    assert torch.isfinite(a).all() and torch.equal(a, b)
    assert (a <= 0).all() and (a >= -64 * torch.log(torch.tensor(256.0))).all()
    n1 = m.score_ce(ctx, noise=True, generator=torch.Generator().manual_seed(7))
    n2 = m.score_ce(ctx, noise=True, generator=torch.Generator().manual_seed(7))
    assert torch.equal(n1, n2)


@pytest.fixture(scope="module")
def episode_tokens(trained_codec, tiny_dataset):
    return {
        split: [
            trained_codec.encode(torch.from_numpy(e.frames))
            for e in load_episodes("metaworld", [TASK], split=split, root=tiny_dataset)
        ]
        for split in ("train", "test")
    }


def _windows(eps, context):
    c, t = zip(*(ll_windows(e, context) for e in eps))
    return torch.cat(c), torch.cat(t)


def test_training_lowers_validation_loss(episode_tokens):
    torch.manual_seed(0)
    trainer = VideoModelTrainer("videogpt", tiny_config(), torch.device("cpu"))
    train, val = _windows(episode_tokens["train"], 1), _windows(episode_tokens["test"], 1)
    before = trainer.validate(val)
    gen = torch.Generator().manual_seed(0)
    for step in range(200):
        idx = torch.randint(0, len(train[0]), (16,), generator=gen)
        trainer.step((train[0][idx], train[1][idx]), step)
    after = trainer.validate(val)
    assert before > 5.0  # ~ln(256) at init
    assert after < 0.6 * before, (before, after)


def test_checkpoint_round_trip_gives_identical_scores(episode_tokens, tmp_path):
    torch.manual_seed(0)
    m = VideoGPT(tiny_config()).eval()
    ref = ModelRef("metaworld", "videogpt", "small", 1, tmp_path)
    store.save_checkpoint(ref.checkpoint, "videogpt", config_to_dict(m.config), {"tasks": [TASK]}, m)
    loaded = ref.load("cpu")
    assert loaded.config == m.config and loaded.meta["tasks"] == [TASK]
    ep = episode_tokens["test"][0]
    for kind in ("ll", "ce"):
        a = score_episode_tokens(m, ep, kind, noise=False)
        b = score_episode_tokens(loaded, ep, kind, noise=False)
        assert a.shape == (ep.shape[0] - 1,) and torch.equal(a, b)
    assert config_from_dict(VideoGPTConfig, config_to_dict(m.config)) == m.config
