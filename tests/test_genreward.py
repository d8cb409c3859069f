"""GenReward on real recorded MetaWorld episodes with a tiny, briefly trained codec and VQ-Diffusion:
goal-video rollouts (shape, determinism, cache), the provider's two levels, and exact checkpoints."""
import copy

import numpy as np
import pytest
import torch

import rewards
from rewards.genreward import model_ref
from rewards.goal_video import GoalVideoCache, generate, rollout_tokens
from rewards.models.pretrain import pretrain
from rewards.models.store import ModelMissingError
from tasks import datasets as ds
from tasks.collect import collect

TASK = "pick-place"  # the scripted expert succeeds in ~27 steps, so its videos are short
FAST = dict(goal_frames=6, goal_steps=2)  # short rollouts keep the tests fast on a 2-core CPU


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """pick-place: 3 expert episodes (2 train, 1 test); codec and VQ-Diffusion trained briefly on them at the
    genreward task set's model root."""
    root = tmp_path_factory.mktemp("genreward")
    collect("metaworld", [TASK], episodes=3, root=root, show_progress=False)
    ref = model_ref("metaworld", "small", 2, root, "genreward")
    for r in (ref.codec, ref):
        pretrain(r, 10, tasks=[TASK], device="cpu", quality=False, progress=False, log=lambda m: None)
    return root


def _make(name, root, **kw):
    return rewards.make(name, task=TASK, domain="metaworld", device="cpu", data_root=root, seed=0, **{**FAST, **kw})


def _episode(root):
    return ds.load_episodes("metaworld", [TASK], split="test", root=root)[0]


def test_rollout_shape_determinism_and_cache(root):
    codec, model = model_ref("metaworld", "small", 2, root, "genreward").load_with_codec("cpu")
    ep = _episode(root)
    first = codec.encode(torch.from_numpy(ep.frames[:2]))
    toks = rollout_tokens(model, first, 4, steps=2, generator=torch.Generator().manual_seed(0))
    assert toks.shape == (2, 5, 64) and torch.equal(toks[:, 0], first)
    a = generate(codec, model, ep.frames[0], 5, seed=3, steps=2)
    b = generate(codec, model, ep.frames[0], 5, seed=3, steps=2)
    c = generate(codec, model, ep.frames[0], 5, seed=4, steps=2)
    assert a.frames.shape == (6, 3, 64, 64) and a.frames.dtype == np.uint8 and a.latents.shape[0] == 6
    assert np.array_equal(a.frames, b.frames) and torch.equal(a.latents, b.latents)
    assert not np.array_equal(a.frames, c.frames)  # the seed matters
    cache = GoalVideoCache(codec, model, seed=3, steps=2)
    assert np.array_equal(cache.get(ep.frames[0], 5).frames, a.frames)
    cache.get(ep.frames[0], 5)
    assert cache.misses == 1  # same first frame: paid once
    cache.get(ep.frames[1], 5)
    assert cache.misses == 2 and len(cache) == 2
    with pytest.raises(ValueError, match="length"):
        rollout_tokens(model, first, 0)


def test_providers_are_registered_and_label_a_real_episode(root):
    assert {"genreward", "genreward_video", "genreward_frame"} <= set(rewards.available())
    ep = _episode(root)
    p = _make("genreward", root)
    r = p.label_episode(ep.frames, ep.rewards)
    assert r.shape == ep.rewards.shape and r.dtype == np.float32 and np.all(np.isfinite(r))
    assert p.params["trained_on"] == [TASK] and p.params["sigma"] > 0
    assert len(p.key_frames) == 1 and p.key_frames[0].shape == (3, 64, 64)
    # the env reward enters with beta, the video level with w_video
    v = _make("genreward_video", root, beta=0.0).label_episode(ep.frames, ep.rewards)
    f = _make("genreward_frame", root).label_episode(ep.frames, ep.rewards)
    np.testing.assert_allclose(r, v + ep.rewards, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(f, ep.rewards)
    assert _make("genreward_video", root).bonus_scale == 0.0


def _batch(ep, gen, n=8):
    idx = torch.randint(0, len(ep.rewards) - 3, (n,), generator=gen)
    frames = torch.from_numpy(ep.frames)
    return {"obs": frames[idx], "action": torch.from_numpy(ep.actions)[idx], "reward": torch.zeros(n),
            "discount": torch.ones(n), "next_obs": frames[idx + 3]}


def test_frame_level_bonus_learns_and_checkpoints_resume_exactly(root):
    ep = _episode(root)
    p = _make("genreward", root)
    gen = torch.Generator().manual_seed(0)
    assert p.bonus(_batch(ep, gen)) is None  # no goal video yet
    p.label_episode(ep.frames, ep.rewards)
    for step in range(4):
        b = _batch(ep, gen)
        assert p.bonus(b).shape == (8,)
        info = p.update(b, step)
    assert {"fb_loss", "fb_ortho_loss"} <= set(info)
    state = copy.deepcopy(p.state_dict())
    batches = [_batch(ep, gen) for _ in range(3)]
    a = [(p.bonus(b), p.update(b, 10 + i)) for i, b in enumerate(batches)]
    q = _make("genreward", root)  # a fresh process after kill -9: nothing but the checkpoint
    q.load_state_dict(state)
    qa = [(q.bonus(b), q.update(b, 10 + i)) for i, b in enumerate(batches)]
    for (b1, i1), (b2, i2) in zip(a, qa):
        assert torch.equal(b1, b2) and i1 == i2
    r1, r2 = p.label_episode(ep.frames, ep.rewards), q.label_episode(ep.frames, ep.rewards)
    np.testing.assert_array_equal(r1, r2)  # the goal cache is not saved: regenerated identically
    with pytest.raises(ValueError, match="parameters differ"):
        _make("genreward", root, w_frame=0.5).load_state_dict(state)


def test_bad_input_and_missing_models_say_what_to_do(root, tmp_path):
    with pytest.raises(ValueError, match="valid: genreward, seen"):
        _make("genreward", root, pretrained_on="other")
    with pytest.raises(ModelMissingError, match="rewards.models.pretrain .*--tasks bin-picking"):
        rewards.make("genreward", task=TASK, domain="metaworld", data_root=tmp_path)
    p = _make("genreward", root)
    with pytest.raises(ValueError, match="keys obs, action, next_obs"):
        p.bonus({"next_obs": torch.zeros(2, 3, 64, 64, dtype=torch.uint8)})
