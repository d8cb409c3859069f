"""The pretrained video rewards on real recorded episodes with tiny, briefly trained models."""

import numpy as np
import pytest
import torch

import rewards
from rewards.models.pretrain import pretrain
from rewards.models.store import ModelRef
from suites.plan import expand
from tasks import datasets as ds
from tasks.collect import collect

VIDEO_PROVIDERS = ["diffusion_reward", "diffusion_reward_nonoise", "diffusion_ll", "viper", "viper_std", "viper_ce"]


@pytest.fixture
def root(video_model_root):
    """reach: 2 train + 1 test expert episodes; codec and both video models trained briefly on them
    (``video_model_root`` of tests/conftest.py, built once per session)."""
    return video_model_root


def _make(name, root, **kw):
    return rewards.make(name, task="reach", domain="metaworld", device="cpu", data_root=root, seed=0, **kw)


def test_video_providers_are_registered_and_get_the_profiles_model_size():
    """``uses_video_model`` is what makes the planner hand a provider the profile's model preset."""
    assert set(VIDEO_PROVIDERS) <= set(rewards.available())
    runs = expand("metaworld7", "smoke", methods=["sparse", "viper", "diffusion_reward"], tasks=["reach"])
    overrides = {r.config.method: r.config.provider_overrides for r in runs}
    assert overrides == {"sparse": {}, "viper": {"preset": "small"}, "diffusion_reward": {"preset": "small"}}
    assert all(rewards.get(name).uses_video_model for name in VIDEO_PROVIDERS)
    assert not rewards.get("sparse").uses_video_model


@pytest.mark.parametrize("name", VIDEO_PROVIDERS)
def test_each_provider_labels_a_real_episode(name, root):
    ep = ds.load_episodes("metaworld", ["reach"], split="test", root=root)[0]
    provider = _make(name, root)
    r = provider.label_episode(ep.frames, ep.rewards)
    assert r.shape == ep.rewards.shape and r.dtype == np.float32 and np.all(np.isfinite(r))
    expected_alpha = {"viper": 0.5, "viper_std": 0.5, "viper_ce": 0.5}.get(name, 0.95)
    assert provider.bonus_scale == expected_alpha == provider.params["alpha"]
    assert provider.params["trained_on"] == ["reach"]
    with pytest.raises(ValueError, match="uint8"):
        provider.label_episode(ep.frames.astype(np.float32), ep.rewards)


def test_pen_uses_alpha_zero_for_diffusion_reward(tmp_path):
    """A diffusion_reward provider built for pen has no RND bonus (alpha 0, design section 5); on door the
    same provider keeps alpha 0.95. Real Adroit expert videos, briefly trained models."""
    collect("adroit", ["pen", "door"], episodes=2, root=tmp_path, show_progress=False)
    for kind in ("codec", "vqdiffusion"):
        pretrain(
            ModelRef("adroit", kind, "small", 2, tmp_path),
            steps=2,
            tasks=["pen"],
            device="cpu",
            quality=False,
            progress=False,
            log=lambda m: None,
        )
    pen = rewards.make("diffusion_reward", task="pen", domain="adroit", device="cpu", data_root=tmp_path)
    assert pen.alpha == pen.bonus_scale == pen.params["alpha"] == 0.0 and pen.rnd is None
    ep = ds.load_episodes("adroit", ["pen"], root=tmp_path)[0]
    assert pen.bonus({"next_obs": torch.as_tensor(ep.frames)}) is None
    door = rewards.make("diffusion_reward", task="door", domain="adroit", device="cpu", data_root=tmp_path)
    assert door.bonus_scale == 0.95 and door.rnd is not None


def test_alpha_and_beta_combine_as_the_formula_says(root):
    ep = ds.load_episodes("metaworld", ["reach"], root=root)[0]
    p = _make("viper_std", root, alpha=0.3, beta=2.0)
    s = p.scores(ep.frames)
    expected = 0.7 * (s - p.mu) / p.sigma + 2.0 * ep.rewards
    np.testing.assert_allclose(p.label_episode(ep.frames, ep.rewards), expected, rtol=1e-5, atol=1e-5)
    raw = _make("viper", root, alpha=0.0, beta=0.0)  # VIPER: the raw log-likelihood, not standardised
    np.testing.assert_allclose(raw.label_episode(ep.frames, ep.rewards), s, rtol=1e-5, atol=1e-4)
    assert (raw.mu, raw.sigma) == (0.0, 1.0)


@pytest.mark.parametrize("name, tol", [("viper_std", 1e-3), ("diffusion_ll", 0.35)])
def test_standardised_expert_returns_have_mean_0_std_1_on_training_videos(name, tol, root):
    """Exact for VideoGPT's deterministic LL; VQ-Diffusion's ELBO samples z_t, so only close to it."""
    p = _make(name, root, alpha=0.0, beta=0.0)
    scores = np.concatenate(
        [p.label_episode(e.frames, e.rewards) for e in ds.load_episodes("metaworld", ["reach"], root=root)]
    )
    assert abs(scores.mean()) < tol and abs(scores.std() - 1.0) < tol


def test_noise_off_is_deterministic_and_checkpoints_round_trip(root):
    ep = ds.load_episodes("metaworld", ["reach"], root=root)[0]
    a, b = _make("diffusion_reward_nonoise", root), _make("diffusion_reward_nonoise", root)
    np.testing.assert_array_equal(a.label_episode(ep.frames, ep.rewards), b.label_episode(ep.frames, ep.rewards))
    noisy = _make("diffusion_reward", root)
    noisy.label_episode(ep.frames, ep.rewards)
    state = noisy.state_dict()
    first = noisy.label_episode(ep.frames, ep.rewards)
    again = _make("diffusion_reward", root)
    again.load_state_dict(state)
    np.testing.assert_array_equal(again.label_episode(ep.frames, ep.rewards), first)


def test_non_finite_rewards_name_provider_task_and_episode(root):
    ep = ds.load_episodes("metaworld", ["reach"], root=root)[0]
    p = _make("viper_std", root)
    p.sigma = 0.0
    with pytest.raises(ValueError, match=r"viper_std: non-finite reward on task 'reach', episode 1"):
        p.label_episode(ep.frames, ep.rewards)


def test_missing_models_name_the_command(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="python -m rewards.models.pretrain --domain metaworld --model videogpt"
    ):
        _make("viper", tmp_path)
